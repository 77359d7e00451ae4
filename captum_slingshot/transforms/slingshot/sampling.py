"""Where the manipulation loss is evaluated: the paper's tunnel and the auditor's own FV paths.

Every step draws ``q = p q* + u`` (``p ~ U[0, 1]``, ``u ~ U[-sigma, sigma]``; without the tunnel
half at ``p = 0`` and half at ``p = 1``) from its own seeded stream, so any step can be re-drawn
(exact resume). With :class:`~.config.Trajectories` part of the batch is replaced by points the
auditor's optimizer visits under the model being manipulated (:func:`rollout`), refreshed every
``refresh`` steps.

Example:
    >>> import torch
    >>> q, tr_u = manipulation_batch(Sampling(batch_size=4), torch.ones(1, 2, 2), step=0, seed=0)
    >>> q.shape, tr_u
    (torch.Size([4, 1, 2, 2]), None)
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

import torch
from torch import Tensor

from ..._utils.hooks import LayerCapture
from ..._utils.seeding import generator
from ...fv.optimize import optimize
from ...fv.param import Parametrization, PixelParam, make_param
from ...fv.strategies import AMStrategy
from ...fv.transforms import Compose
from .config import Sampling, Trajectories

__all__ = ["manipulation_batch", "rollout", "trajectory_auditors"]

#: one auditor of the trajectories: its strategy, its parametrization (``None``: the attacker's) and transforms
Auditor = Tuple[AMStrategy, Optional[Parametrization], Optional[Compose]]


def manipulation_batch(sampling: Sampling, aim: Tensor, step: int, seed: int, transform: Optional[Compose] = None,
                       buffer: Optional[Tensor] = None,
                       device: Union[None, str, torch.device] = None) -> Tuple[Tensor, Optional[Tensor]]:
    """The manipulation batch of ``step``: ``(q (B, *aim.shape), transform uniforms (B, n) or None)``."""
    device = aim.device if device is None else torch.device(device)
    g = generator(seed, "manipulation", step, device)
    b = sampling.batch_size
    shape = (b,) + (1,) * aim.dim()
    if sampling.tunnel:
        p = torch.rand(shape, generator=g, device=device)
    else:
        p = (torch.arange(b, device=device) % 2).float().view(shape)
    u = (torch.rand((b,) + tuple(aim.shape), generator=g, device=device) * 2 - 1) * sampling.sigma
    q = p * aim + u
    tr_u = torch.rand(b, transform.n_random, generator=g, device=device) if transform is not None else None
    fraction = sampling.trajectories.fraction if sampling.trajectories is not None else 0.0
    k = int(round(fraction * b)) if buffer is not None else 0
    if k:
        idx = torch.randint(len(buffer), (k,), generator=g, device=device)
        q = torch.cat([q[: b - k], buffer[idx]])
    return q, tr_u


def rollout(capture: LayerCapture, param: Parametrization, neuron_selector: Any, strategy: AMStrategy,
            transform: Optional[Compose], starts: int, seed: int, step: int, device: torch.device,
            rows: slice = slice(None), stream: str = "rollout") -> Tensor:
    """Points the auditor's FV optimizer visits under the model ``capture`` runs: ``starts`` random
    starts, ``q`` kept 25 times along the way, ``(starts * 25, *param_shape)``; with ``rows``, only
    those starts (one process's share; each start is optimized on its own, so the shares of all
    processes, concatenated, are the full rollout). ``stream`` names the seeded stream of the starts
    and transforms (one per strategy when several auditors are rolled out)."""
    g = generator(seed, stream, step, device)
    q0 = torch.randn((starts,) + tuple(param.param_shape), generator=g, device=device) * 0.01
    n_random = transform.n_random if transform is not None else 0
    u = torch.rand(starts, strategy.steps, n_random, generator=g, device=device)
    q0, u = q0[rows], u[rows]
    trace = optimize(capture, param, [neuron_selector], q0, strategy, uniforms=u, transform=transform,
                     record_every=max(1, strategy.steps // 25))
    return trace.snapshots.flatten(0, 1)


def trajectory_auditors(trajectories: Trajectories, param: Parametrization) -> List[Auditor]:
    """The auditors whose FV paths the trajectories roll out: ``[(strategy, parametrization or None, transforms)]``.

    An entry in another parametrization (``gc@lucent_fourier``) is built with ``param``'s shape and
    normalization; its points are fed back as network inputs, so ``param`` must be a
    :class:`~captum_slingshot.fv.param.PixelParam` (clear error otherwise).

    Example:
        >>> from captum_slingshot.fv import PixelParam
        >>> auditors = trajectory_auditors(Trajectories("gc+adam@lucent_fourier"), PixelParam((3, 16, 16)))
        >>> [(s.name, p if p is None else p.name) for s, p, _ in auditors]
        [('gc', None), ('adam', 'lucent_fourier')]
    """
    out: List[Auditor] = []
    for strategy, name in trajectories.parts():
        other = None
        if name is not None:
            if not isinstance(param, PixelParam):
                raise ValueError(f"trajectory strategy {strategy.name}@{name} runs in another parametrization, whose "
                                 f"points enter the manipulation batch as network inputs: that needs the attacker's "
                                 f"parametrization to be 'pixel' (q is the network input), not {param.name!r}; "
                                 "drop the @ entry or manipulate in the pixel parametrization")
            other = make_param(name, param.shape, mean=param.mean, std=param.std)
        out.append((strategy, other, strategy.build_transforms((param.height, param.width))))
    return out
