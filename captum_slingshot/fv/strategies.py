"""Activation-maximization (AM) strategies as plain data.

An :class:`AMStrategy` says how feature visualization optimizes ``q``: which
optimizer, learning rate and number of steps, whether the gradient of each
start is clipped, which random transforms are applied (transformation
robustness), and whether the input is resized before the model (lucent
upsamples images smaller than 224 px).

Named strategies (:data:`STRATEGIES`), after the paper and lucent:

============  =====  ======  =====  ====  ==========================
name          opt.   lr      steps  clip  transforms
============  =====  ======  =====  ====  ==========================
none          SGD    0.1     200    --    --
gc            SGD    0.1     200    1.0   --
tr            SGD    0.1     200    --    paper (by image size)
gc_tr         SGD    0.1     200    1.0   paper
adam          Adam   0.01    200    --    --
adam_gc       Adam   0.01    200    1.0   --
adam_tr       Adam   0.01    200    --    paper
adam_gc_tr    Adam   0.01    200    1.0   paper
lucent        Adam   0.05    512    --    lucent_standard, resize 224
============  =====  ======  =====  ====  ==========================

``lucent`` is lucent's ``render_vis`` default. Learning rate and steps are
configurable: ``get_strategy("gc", lr=1.0, steps=100)``.

Example:
    >>> from captum_slingshot.fv.strategies import get_strategy
    >>> s = get_strategy("adam_gc_tr", steps=50)
    >>> (s.optimizer, s.lr, s.steps, s.clip_grad_norm, s.transforms)
    ('adam', 0.01, 50, 1.0, 'paper')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

from .._utils.registry import Registry
from .transforms import Compose, Resize, make_transforms

__all__ = ["AMStrategy", "STRATEGIES", "get_strategy", "register_strategy", "available_strategies",
           "random_transforms"]

_OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class AMStrategy:
    """How an auditor runs activation maximization.

    Args:
        name: label used in reports.
        optimizer: ``"sgd"`` (plain gradient ascent) or ``"adam"``.
        lr: learning rate.
        steps: optimization steps.
        clip_grad_norm: if set, the gradient of *each start* is clipped to this
            L2 norm before the optimizer step (the paper's GC).
        transforms: name of a transform set (see
            :mod:`captum_slingshot.fv.transforms`) or ``None``.
        resize_to: resize the transformed image to this square size before the
            model, ``"lucent"`` for lucent's rule (224 when smaller), or ``None``.
    """

    name: str
    optimizer: str = "sgd"
    lr: float = 0.1
    steps: int = 200
    clip_grad_norm: Optional[float] = None
    transforms: Optional[str] = None
    resize_to: Union[None, int, str] = None

    def __post_init__(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be positive or None, got {self.clip_grad_norm}")
        if self.resize_to is not None and self.resize_to != "lucent":
            if not isinstance(self.resize_to, int) or self.resize_to < 1:
                raise ValueError(f"resize_to must be None, 'lucent' or a positive int, got {self.resize_to!r}")
        if self.transforms is not None:
            make_transforms(self.transforms, (32, 32))  # validates the name

    def replace(self, **changes) -> "AMStrategy":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line: optimizer, learning rate, steps, clipping, transforms."""
        parts = [f"{'Adam' if self.optimizer == 'adam' else 'SGD'} lr {self.lr:g}, {self.steps} steps"]
        if self.clip_grad_norm is not None:
            parts.append(f"gradient clipped to {self.clip_grad_norm:g}")
        if self.transforms:
            parts.append(f"{self.transforms} transforms")
        if self.resize_to is not None:
            parts.append(f"resized ({self.resize_to})")
        return ", ".join(parts)

    def build_transforms(self, size: Tuple[int, int]) -> Optional[Compose]:
        """The random transforms plus the resize for images of ``size``."""
        ts = list(make_transforms(self.transforms, size).transforms) if self.transforms else []
        out = Compose(ts).output_size(size)
        target = None
        if self.resize_to == "lucent":
            if out[0] < 224 or out[1] < 224:
                target = (224, 224)
        elif self.resize_to is not None:
            target = (self.resize_to, self.resize_to)
        if target is not None:
            ts.append(Resize(target))
        return Compose(ts) if ts else None


#: name -> :class:`AMStrategy` (a read-only mapping; add with :func:`register_strategy`)
STRATEGIES: Registry[AMStrategy] = Registry("AM strategy")


def register_strategy(strategy: AMStrategy, description: Optional[str] = None) -> AMStrategy:
    """Add a strategy to the registry under ``strategy.name`` (a different strategy under a taken
    name raises)."""
    if not isinstance(strategy, AMStrategy):
        raise TypeError(f"register_strategy takes an AMStrategy, got {type(strategy).__name__}")
    return STRATEGIES.register(strategy.name, strategy, description=description or strategy.describe())


def available_strategies() -> Dict[str, str]:
    """Registered AM strategies: ``{name: one-line description}``.

    Example:
        >>> available_strategies()["gc"]
        'SGD lr 0.1, 200 steps, gradient clipped to 1'
    """
    return STRATEGIES.describe()


for _s in (
    AMStrategy("none"),
    AMStrategy("gc", clip_grad_norm=1.0),
    AMStrategy("tr", transforms="paper"),
    AMStrategy("gc_tr", clip_grad_norm=1.0, transforms="paper"),
    AMStrategy("adam", optimizer="adam", lr=0.01),
    AMStrategy("adam_gc", optimizer="adam", lr=0.01, clip_grad_norm=1.0),
    AMStrategy("adam_tr", optimizer="adam", lr=0.01, transforms="paper"),
    AMStrategy("adam_gc_tr", optimizer="adam", lr=0.01, clip_grad_norm=1.0, transforms="paper"),
    AMStrategy("lucent", optimizer="adam", lr=0.05, steps=512, transforms="lucent_standard", resize_to="lucent"),
):
    register_strategy(_s)


def get_strategy(strategy: Union[str, AMStrategy], **overrides) -> AMStrategy:
    """Look up a strategy by name (or pass one through) and apply overrides."""
    if isinstance(strategy, AMStrategy):
        base = strategy
    else:
        base = STRATEGIES.get(strategy)
    return base.replace(**overrides) if overrides else base


def random_transforms(name: str, size: Tuple[int, int]) -> Compose:
    """The random transforms of a TR strategy (``"tr"``, ``"lucent"``: with its resize) or of a transform
    set (``"paper_mnist"``, ``"lucent_standard"``), for images of ``size``.

    Example:
        >>> random_transforms("lucent", (64, 64)).output_size((64, 64))
        (224, 224)
    """
    if name in STRATEGIES:
        built = STRATEGIES[name].build_transforms(size)
        if built is None:
            raise ValueError(f"strategy {name!r} has no transforms; name a TR strategy or a transform set")
        return built
    try:
        return make_transforms(name, size)
    except ValueError:
        raise ValueError(f"{name!r} is neither an AM strategy nor a transform set; strategies: "
                         f"{', '.join(STRATEGIES)}") from None
