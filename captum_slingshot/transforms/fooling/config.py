"""The run settings of attribution fooling (batches, optimizer steps, checkpoints), as data.

Example:
    >>> Training(steps=200, lr=1e-3).steps
    200
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import torch
from torch import nn

from ..._utils.settings import check_positive, setting

__all__ = ["Training", "OPTIMIZERS", "make_optimizer"]

#: the optimizers a fooling run can use
OPTIMIZERS = ("adam", "sgd")


@dataclass
class Training:
    """How an :class:`~.transform.AttributionFooling` trains: Adam (or SGD) on batches of natural inputs.

    Attributes:
        batch_size: natural batch size (and fooling-set batch size).
        lr: the optimizer's learning rate.
        optimizer: ``adam`` (the default) or ``sgd`` (momentum 0.9). Adam scales every gradient up to a step of
            about ``lr``, also the tiny cross-entropy gradients of a model that fits its training data, so its
            preservation term moves predictions on other data; on the benchmark's AlexNet-head photo model a
            cross-entropy-only fine-tune kept 97.5 % of the validation predictions with Adam 1e-4 and all of
            them with SGD 1e-2, though its fooling runs with SGD cost more accuracy, not less (README,
            "Round 5, step 1").
        steps: training steps.
        seed: seed of the data order and of the composites.
        device: torch device to train on (default: the model's).
        checkpoint_path: write an atomic checkpoint here every ``checkpoint_every`` steps.
        checkpoint_every: steps between checkpoints.
        progress: show a progress bar.
    """

    batch_size: int = setting(32, "natural batch size (and fooling-set batch size)", flat="batch_size", kind="int")
    lr: float = setting(1e-4, "learning rate", flat="lr", kind="float")
    optimizer: str = setting("adam", "adam, or sgd (momentum 0.9)", flat="optimizer", kind="text",
                             choices=OPTIMIZERS)
    steps: int = setting(500, "training steps", flat="steps", kind="int")
    seed: int = setting(0, "seed of the data order and the composites", flat="seed", kind="int")
    device: Optional[str] = setting(None, "torch device to train on, e.g. cuda (default: the model's)", flat="device",
                                    kind="text", optional=True)
    checkpoint_path: Optional[str] = setting(None, "write an atomic checkpoint here every checkpoint_every steps",
                                             flat="checkpoint_path", kind="text", optional=True)
    checkpoint_every: int = setting(500, "steps between checkpoints", flat="checkpoint_every", kind="int")
    progress: bool = setting(True, "hide progress bars", flat="progress", kind="bool")

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        check_positive("lr", self.lr)
        for name in ("batch_size", "steps", "checkpoint_every"):
            check_positive(name, getattr(self, name), integer=True)


def make_optimizer(training: Training, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer ``training`` names, over ``params``.

    Example:
        >>> from torch import nn
        >>> type(make_optimizer(Training(optimizer="sgd", lr=0.1), nn.Linear(2, 2).parameters())).__name__
        'SGD'
    """
    if training.optimizer == "sgd":
        return torch.optim.SGD(params, lr=training.lr, momentum=0.9)
    return torch.optim.Adam(params, lr=training.lr)
