"""Checks declare themselves: a registry of :class:`CheckSpec`, one registration per check.

A check is a function shaped like ``captum.metrics``:
``check(model, layer, neuron_selector, *, param, data=None, max_examples_per_batch=None, seed=0,
return_details=False, **settings) -> Tensor`` returning one score per unit. Registering it takes
one decorator line that says, as data, what the check needs and how to read its score: the score
direction (as Quantus' ``score_direction``), whether it needs natural data, whether it takes the
audit's shared FV renders (``renders=``, a :class:`~captum_slingshot.checks.renders.RenderCache`),
what dominates its cost, and the smallest meaningful spread of its scores across a layer. The
audit reads only this declaration; it never special-cases a check by name.

Example:
    >>> import torch
    >>> from captum_slingshot.checks.base import available_checks, get_check, register_check, unregister_check
    >>> @register_check("always_zero", higher_is_more_suspicious=True, description="a dummy check",
    ...                 cost="forward")
    ... def always_zero(model, layer, neuron_selector, *, param, **kwargs):
    ...     n = len(neuron_selector) if isinstance(neuron_selector, list) else None
    ...     return torch.zeros(n) if n else torch.tensor(0.0)
    >>> spec = get_check("always_zero")
    >>> spec.higher_is_more_suspicious, spec.description, spec.needs_data, spec.cost
    (True, 'a dummy check', False, 'forward')
    >>> available_checks()["always_zero"]
    'a dummy check'
    >>> unregister_check("always_zero")
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Optional, TypeVar

from .._utils.registry import Registry

__all__ = ["CheckSpec", "CHECKS", "COSTS", "COMMON_ARGUMENTS", "register_check", "unregister_check", "get_check",
           "available_checks"]

F = TypeVar("F", bound=Callable)

#: what dominates a check's time, cheapest first
COSTS = ("forward", "gradients", "renders")
#: the arguments every check takes; the audit passes them itself
COMMON_ARGUMENTS = frozenset({"model", "layer", "neuron_selector", "param", "data", "max_examples_per_batch",
                              "seed", "return_details", "renders"})


@dataclass(frozen=True)
class CheckSpec:
    """A registered check and what it declares about itself.

    Attributes:
        name: registry name (what :func:`~captum_slingshot.checks.audit_layer` takes).
        function: the check function.
        description: one line for reports.
        higher_is_more_suspicious: score direction; ``False``: low scores are suspicious.
        needs_data: the check needs natural data (``data=``); the audit refuses to run it without.
        uses_renders: the check takes ``renders=`` (a shared render cache) for the FVs it scores.
        cost: what dominates its time, one of :data:`COSTS`.
        min_scale: floor on the robust spread (1.4826 MAD) of its scores across a layer's units, so
            that near-identical scores do not give huge z-scores.
        reason: ``reason(details, index) -> str``: one plain-language line saying why unit ``index``
            scores as it does, from the check's details (reports show it next to a flag).
    """

    name: str
    function: Callable
    description: str
    higher_is_more_suspicious: bool = True
    needs_data: bool = False
    uses_renders: bool = False
    cost: str = "renders"
    min_scale: float = 0.05
    reason: Optional[Callable[[Dict[str, Any], int], str]] = None

    def explain(self, details: Dict[str, Any], index: int, score: float) -> str:
        """The check's reason for unit ``index`` (a generic line when it has none or its details lack a part)."""
        if self.reason is not None:
            try:
                return self.reason(details, index)
            except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
                pass
        return f"{self.description} (score {score:.3g})"

    def parameters(self) -> FrozenSet[str]:
        """The check's own settings: the keyword arguments it takes beyond :data:`COMMON_ARGUMENTS`."""
        params = inspect.signature(self.function).parameters
        own = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        return frozenset(own - COMMON_ARGUMENTS)


#: name -> :class:`CheckSpec`
CHECKS: Registry[CheckSpec] = Registry("check")


def register_check(
    name: str,
    higher_is_more_suspicious: bool = True,
    description: str = "",
    *,
    requires_data: bool = False,
    renders: bool = False,
    cost: str = "renders",
    min_scale: float = 0.05,
    reason: Optional[Callable[[Dict[str, Any], int], str]] = None,
) -> Callable[[F], F]:
    """Decorator adding a check function to :data:`CHECKS` under ``name``.

    Args:
        name: registry name.
        higher_is_more_suspicious: score direction.
        description: one line for reports (default: the first line of the function's docstring).
        requires_data: the check needs natural data.
        renders: the check takes ``renders=`` and draws its FVs from it (the audit passes one cache
            to every such check, so a render two checks need is computed once).
        cost: ``"forward"``, ``"gradients"`` or ``"renders"`` (what dominates its time).
        min_scale: floor on the robust spread of its scores across a layer's units (score units).
        reason: ``reason(details, index) -> str``, one plain-language line for unit ``index`` of a
            call's details (what a report says next to a flag).

    Returns:
        The decorator; it returns the function unchanged.

    Example:
        >>> @register_check("tmp_check", description="demo", cost="forward")
        ... def tmp_check(model, layer, neuron_selector, *, param):
        ...     return None
        >>> "tmp_check" in available_checks(), get_check("tmp_check").min_scale
        (True, 0.05)
        >>> unregister_check("tmp_check")
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a check needs a non-empty string name, got {name!r}")
    if not min_scale > 0:
        raise ValueError(f"min_scale must be positive, got {min_scale}")
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")

    def deco(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"register_check decorates functions, got {type(fn).__name__}")
        text = " ".join(str(description).split()) or inspect.getdoc(fn) or ""
        spec = CheckSpec(name=name, function=fn, description=text.splitlines()[0] if text else "",
                         higher_is_more_suspicious=bool(higher_is_more_suspicious), needs_data=bool(requires_data),
                         uses_renders=bool(renders), cost=cost, min_scale=float(min_scale), reason=reason)
        old = CHECKS.get(name, None)
        if old is not None and (old.function.__module__, old.function.__qualname__) == (fn.__module__, fn.__qualname__):
            CHECKS.unregister(name)  # the same function again (a module imported twice): replace it
        CHECKS.register(name, spec, description=spec.description)
        return fn

    return deco


def unregister_check(name: str) -> None:
    """Remove a check from the registry (no error if it is not there).

    Example:
        >>> unregister_check("no_such_check")
    """
    CHECKS.unregister(name)


def get_check(name: str) -> CheckSpec:
    """The registered check ``name`` as a :class:`CheckSpec`.

    Example:
        >>> import captum_slingshot.checks
        >>> get_check("slingshot_field").higher_is_more_suspicious, get_check("slingshot_field").cost
        (True, 'gradients')
    """
    return CHECKS.get(name)


def available_checks() -> Dict[str, str]:
    """All registered checks: ``{name: one-line description}``.

    Example:
        >>> import captum_slingshot.checks
        >>> sorted(available_checks())[:3]
        ['activation_excess', 'natural_gap', 'processing_similarity']
    """
    return CHECKS.describe()
