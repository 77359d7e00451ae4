"""The named random streams of long runs, in one place.

A run draws from several independent streams (the manipulation batch of step ``k``, the
on-policy FV trajectories refreshed at step ``k``, ...). Each stream's generator is seeded
``seed * STRIDE + offset + step`` with a fixed offset per stream, so that any step can be
re-drawn on its own (exact resume from a checkpoint) and streams never share a seed in
practice. The offsets are part of a run's reproducibility: changing one changes every result.

Example:
    >>> stream_seed(0, "rollout", step=50), stream_seed(2, "manipulation", step=3)
    (500059, 2000009)
    >>> import torch
    >>> a = generator(1, "manipulation", 7)
    >>> bool(torch.rand(1, generator=a) == torch.rand(1, generator=generator(1, "manipulation", 7)))
    True
"""

from __future__ import annotations

from typing import Dict, Optional, Union

import torch

__all__ = ["STRIDE", "STREAMS", "stream_seed", "generator", "natural_order_seed"]

#: seeds of different runs lie this far apart
STRIDE = 1_000_003
#: stream -> offset inside a run's seed range
STREAMS: Dict[str, int] = {
    "manipulation": 0,          # tunnel samples, transform draws and buffer picks of step k
    "rollout": 500_009,         # on-policy FV trajectories refreshed at step k
    "fv_paths": 700_001,        # the other units' FV paths on the original model (once)
    "fv_path_batches": 900_007,  # which FV-path points step k preserves
    "activation_cap": 300_007,  # which trajectory points step k caps (ActivationCap)
    # the 2nd to 6th auditors' trajectories when several are rolled out (Trajectories("gc+tr+adam"))
    "rollout1": 100_003,
    "rollout2": 200_003,
    "rollout3": 400_009,
    "rollout4": 600_011,
    "rollout5": 800_011,
}
#: natural batches: the permutation of epoch e is seeded ``seed * NATURAL_STRIDE + e``
NATURAL_STRIDE = 7919


def stream_seed(seed: int, stream: str, step: int = 0) -> int:
    """The seed of ``stream`` at ``step`` for a run seeded ``seed``."""
    try:
        offset = STREAMS[stream]
    except KeyError:
        raise ValueError(f"unknown random stream {stream!r}; streams: {', '.join(STREAMS)}") from None
    return int(seed) * STRIDE + offset + int(step)


def generator(seed: int, stream: Optional[str] = None, step: int = 0,
              device: Union[None, str, torch.device] = None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded for ``stream`` at ``step`` (just ``seed`` without a stream)."""
    value = int(seed) if stream is None else stream_seed(seed, stream, step)
    g = torch.Generator(device=device) if device is not None else torch.Generator()
    return g.manual_seed(value)


def natural_order_seed(seed: int, epoch: int) -> int:
    """The seed of the natural-data permutation of ``epoch``."""
    return int(seed) * NATURAL_STRIDE + int(epoch)
