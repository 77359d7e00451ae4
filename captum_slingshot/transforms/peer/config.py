"""The settings parts of the peer feature-visualization attacks, as data: the run (:class:`Training`: batches,
Adam steps, checkpoints) and the ranking sets and hinge of the activation-maximization attacks (:class:`Ranking`).

Example:
    >>> Training(steps=200, lr=1e-3).steps, Ranking(top_k=20).margin
    (200, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..._utils.settings import check_positive, setting

__all__ = ["Training", "Ranking"]


@dataclass
class Training:
    """How a peer attack trains: Adam on the whole copied model, one natural batch per step.

    Attributes:
        batch_size: natural batch size (and the size of the attack's own batches).
        lr: Adam learning rate.
        steps: training steps.
        seed: seed of the data order and of the attack batches (batch ``k`` depends only on ``(seed, k)``).
        device: torch device to train on (default: the model's).
        checkpoint_path: write an atomic checkpoint here every ``checkpoint_every`` steps.
        checkpoint_every: steps between checkpoints.
        progress: show a progress bar.
    """

    batch_size: int = setting(64, "natural batch size (and the attack's batch size)", flat="batch_size", kind="int")
    lr: float = setting(1e-4, "Adam learning rate", flat="lr", kind="float")
    steps: int = setting(300, "training steps", flat="steps", kind="int")
    seed: int = setting(0, "seed of the data order and the attack batches", flat="seed", kind="int")
    device: Optional[str] = setting(None, "torch device to train on, e.g. cuda (default: the model's)", flat="device",
                                    kind="text", optional=True)
    checkpoint_path: Optional[str] = setting(None, "write an atomic checkpoint here every checkpoint_every steps",
                                             flat="checkpoint_path", kind="text", optional=True)
    checkpoint_every: int = setting(100, "steps between checkpoints", flat="checkpoint_every", kind="int")
    progress: bool = setting(True, "hide progress bars", flat="progress", kind="bool")

    def __post_init__(self) -> None:
        check_positive("lr", self.lr)
        for name in ("batch_size", "steps", "checkpoint_every"):
            check_positive(name, getattr(self, name), integer=True)


@dataclass
class Ranking:
    """Which images an :class:`~.nanfack.ActivationMaxAttack` moves, and how far.

    Attributes:
        top_k: the original's most activating natural images pushed down (push-down) or outranked (push-up).
        margin: how far past the threshold, in units of the original's activation spread.
        keep_weight: weight of keeping the unit's activations on the other natural images at the original's.
        fv_starts: push-down also pushes down this many FVs of the original (rendered with the
            attack's ``param``; 0: none).
    """

    top_k: int = setting(50, "the original's most activating natural images pushed down (push_down) or outranked "
                         "(push_up)", flat="top_k", kind="int")
    margin: float = setting(0.5, "how far past the threshold the images are pushed, in units of the unit's activation "
                            "spread on the natural data", flat="margin", kind="float")
    keep_weight: float = setting(2.0, "weight of keeping the unit's activations on the other natural images at the "
                                 "original's (above 1, silencing the unit never pays; 0: off)",
                                 flat="keep_weight", kind="float")
    fv_starts: int = setting(4, "push_down: FVs of the original (rendered with the auditor's parametrization) pushed "
                             "down with the top images; 0: none", flat="fv_starts", kind="int")

    def __post_init__(self) -> None:
        check_positive("top_k", self.top_k, integer=True)
        if isinstance(self.fv_starts, bool) or not isinstance(self.fv_starts, int) or self.fv_starts < 0:
            raise ValueError(f"fv_starts must be a non-negative integer, got {self.fv_starts!r}")
        for name in ("margin", "keep_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
