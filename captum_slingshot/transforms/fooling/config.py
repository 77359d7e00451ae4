"""The run settings of attribution fooling (batches, optimizer steps, checkpoints), as data.

Example:
    >>> Training(steps=200, lr=1e-3).steps
    200
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..._utils.settings import check_positive, setting

__all__ = ["Training"]


@dataclass
class Training:
    """How an :class:`~.transform.AttributionFooling` trains: Adam on batches of natural inputs.

    Attributes:
        batch_size: natural batch size (and fooling-set batch size).
        lr: Adam learning rate.
        steps: training steps.
        seed: seed of the data order and of the composites.
        device: torch device to train on (default: the model's).
        checkpoint_path: write an atomic checkpoint here every ``checkpoint_every`` steps.
        checkpoint_every: steps between checkpoints.
        progress: show a progress bar.
    """

    batch_size: int = setting(32, "natural batch size (and fooling-set batch size)", flat="batch_size", kind="int")
    lr: float = setting(1e-4, "Adam learning rate", flat="lr", kind="float")
    steps: int = setting(500, "training steps", flat="steps", kind="int")
    seed: int = setting(0, "seed of the data order and the composites", flat="seed", kind="int")
    device: Optional[str] = setting(None, "torch device to train on, e.g. cuda (default: the model's)", flat="device",
                                    kind="text", optional=True)
    checkpoint_path: Optional[str] = setting(None, "write an atomic checkpoint here every checkpoint_every steps",
                                             flat="checkpoint_path", kind="text", optional=True)
    checkpoint_every: int = setting(500, "steps between checkpoints", flat="checkpoint_every", kind="int")
    progress: bool = setting(True, "hide progress bars", flat="progress", kind="bool")

    def __post_init__(self) -> None:
        check_positive("lr", self.lr)
        for name in ("batch_size", "steps", "checkpoint_every"):
            check_positive(name, getattr(self, name), integer=True)
