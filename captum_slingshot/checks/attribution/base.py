"""Attribution checks declare themselves: a registry of :class:`AttributionCheckSpec`.

An attribution check is shaped like ``captum.metrics.sensitivity_max``: it takes an
``explanation_func`` (called as ``explanation_func(inputs, target=target)``: a Captum attribution's
``attribute``, an :class:`~captum_slingshot.attributions.Interpreter`'s ``heatmap``, or any function
returning attributions of the inputs' spatial size or a layer's) and ``inputs``, and returns one
score per input ``(B,)``. Registering it takes one decorator line saying, as data, the score
direction (as Quantus' ``score_direction``), whether it compares two explanation functions
(``reference_func=``), whether it compares with the model before a fine-tune (``original_func=``),
and the smallest change of its score the audit treats as meaningful.

Example:
    >>> import torch
    >>> from captum_slingshot.checks.attribution.base import (available_attribution_checks,
    ...     register_attribution_check, unregister_attribution_check)
    >>> @register_attribution_check("always_zero", description="a dummy check")
    ... def always_zero(explanation_func, inputs, *, target=None, max_examples_per_batch=None):
    ...     return torch.zeros(inputs.shape[0])
    >>> available_attribution_checks()["always_zero"]
    'a dummy check'
    >>> unregister_attribution_check("always_zero")
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..._utils.registry import Registry

__all__ = ["AttributionCheckSpec", "ATTRIBUTION_CHECKS", "register_attribution_check", "unregister_attribution_check",
           "get_attribution_check", "available_attribution_checks", "explanation_maps", "Target"]

F_ = TypeVar("F_", bound=Callable)
#: a Captum-style target: one class index, or one per input
Target = Optional[Any]


@dataclass(frozen=True)
class AttributionCheckSpec:
    """A registered attribution check and what it declares about itself.

    Attributes:
        name: registry name.
        function: the check function.
        description: one line for reports.
        higher_is_more_suspicious: score direction; ``False``: low scores are suspicious.
        pairwise: the check compares ``explanation_func`` with a ``reference_func`` (another
            interpreter of the same model); the audit passes every other interpreter in turn.
        needs_original: the check compares ``explanation_func`` with ``original_func``, the same interpreter of
            the model *before* a fine-tune (``explanation_drift``, ``class_swap``); the audit runs it only when
            it is given that model (``original=``).
        min_scale: the change of the score (against a trusted reference model) worth one z unit.
        min_classes: the fewest classes among the targets the check can work with (``mosaic_focus`` sets
            inputs of different classes side by side: 2); the audit's default leaves it out below that.
    """

    name: str
    function: Callable
    description: str
    higher_is_more_suspicious: bool = True
    pairwise: bool = False
    min_scale: float = 0.1
    min_classes: int = 1
    needs_original: bool = False


#: name -> :class:`AttributionCheckSpec`
ATTRIBUTION_CHECKS: Registry[AttributionCheckSpec] = Registry("attribution check")


def register_attribution_check(name: str, higher_is_more_suspicious: bool = True, description: str = "", *,
                               pairwise: bool = False, min_scale: float = 0.1,
                               min_classes: int = 1, needs_original: bool = False) -> Callable[[F_], F_]:
    """Decorator adding an attribution check to :data:`ATTRIBUTION_CHECKS` under ``name`` (see the
    module docstring); it returns the function unchanged."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an attribution check needs a non-empty string name, got {name!r}")
    if not min_scale > 0:
        raise ValueError(f"min_scale must be positive, got {min_scale}")
    if int(min_classes) < 1:
        raise ValueError(f"min_classes must be at least 1, got {min_classes}")
    if pairwise and needs_original:
        raise ValueError(f"attribution check {name!r}: a check compares with another interpreter (pairwise) or with "
                         "the original model (needs_original), not both")

    def deco(fn: F_) -> F_:
        text = " ".join(str(description).split()) or inspect.getdoc(fn) or ""
        spec = AttributionCheckSpec(name, fn, text.splitlines()[0] if text else "", bool(higher_is_more_suspicious),
                                    bool(pairwise), float(min_scale), int(min_classes), bool(needs_original))
        old = ATTRIBUTION_CHECKS.get(name, None)
        if old is not None and (old.function.__module__, old.function.__qualname__) == (fn.__module__, fn.__qualname__):
            ATTRIBUTION_CHECKS.unregister(name)  # the same function again (a module imported twice)
        ATTRIBUTION_CHECKS.register(name, spec, description=spec.description)
        return fn

    return deco


def unregister_attribution_check(name: str) -> None:
    """Remove an attribution check from the registry (no error if it is not there)."""
    ATTRIBUTION_CHECKS.unregister(name)


def get_attribution_check(name: str) -> AttributionCheckSpec:
    """The registered attribution check ``name``."""
    return ATTRIBUTION_CHECKS.get(name)


def available_attribution_checks() -> Dict[str, str]:
    """All registered attribution checks: ``{name: one-line description}``."""
    return ATTRIBUTION_CHECKS.describe()


def explanation_maps(explanation_func: Callable[..., Any], inputs: Tensor, target: Target = None,
                     max_examples_per_batch: Optional[int] = None) -> Tensor:
    """``explanation_func``'s maps of ``inputs`` as ``(B, H, W)`` at the inputs' resolution (channels
    summed, a layer's maps upsampled bilinearly), detached, in chunks of ``max_examples_per_batch``.

    Example:
        >>> import torch
        >>> explanation_maps(lambda x, target=None: x * 2, torch.ones(3, 2, 4, 4)).shape
        torch.Size([3, 4, 4])
    """
    if not callable(explanation_func):
        raise TypeError(f"explanation_func must be callable (e.g. Saliency(model).attribute), got "
                        f"{type(explanation_func).__name__}")
    if not isinstance(inputs, Tensor) or inputs.dim() < 3 or inputs.shape[0] == 0:
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be a non-empty image batch (B, C, H, W) or (B, H, W), got {shape}")
    n = inputs.shape[0]
    step = n if not max_examples_per_batch else int(max_examples_per_batch)
    size = tuple(inputs.shape[-2:])
    out = []
    for i in range(0, n, step):
        t = target
        if isinstance(target, Tensor) and target.dim() > 0:
            t = target[i:i + step]
        elif isinstance(target, (list, tuple)):
            t = list(target[i:i + step])
        attr = explanation_func(inputs[i:i + step], target=t)
        if isinstance(attr, tuple):
            attr = attr[0]
        attr = attr.detach().float()
        if attr.dim() == 4:
            attr = attr.sum(1)
        if attr.dim() != 3:
            raise ValueError(f"explanation_func returned attributions of shape {tuple(attr.shape)}; expected "
                             f"(B, C, H, W) or (B, H, W)")
        if tuple(attr.shape[-2:]) != size:
            attr = F.interpolate(attr[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        out.append(attr)
    return torch.cat(out)
