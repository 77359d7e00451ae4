"""A registry of defense checks, each with its score direction (as Quantus' ``score_direction``).

A check is a function ``check(model, layer, neuron_selector, *, param, ...) -> Tensor`` returning
one score per unit. Registering it takes one decorator line; the audit then finds it by name and
knows whether a high score means "more suspicious".

Example:
    >>> import torch
    >>> from captum_slingshot.checks.base import available_checks, get_check, register_check
    >>> @register_check("always_zero", higher_is_more_suspicious=True, description="a dummy check")
    ... def always_zero(model, layer, neuron_selector, *, param, **kwargs):
    ...     n = len(neuron_selector) if isinstance(neuron_selector, list) else None
    ...     return torch.zeros(n) if n else torch.tensor(0.0)
    >>> info = get_check("always_zero")
    >>> info.higher_is_more_suspicious, info.description
    (True, 'a dummy check')
    >>> fn, direction, description = available_checks()["always_zero"]
    >>> fn is always_zero
    True
    >>> unregister_check("always_zero")
"""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple, TypeVar

__all__ = ["CheckInfo", "CHECKS", "register_check", "unregister_check", "get_check", "available_checks"]

F = TypeVar("F", bound=Callable)


class CheckInfo(NamedTuple):
    """A registered check: the function, its score direction and a one-line description.

    Registration options beyond these three are kept as attributes of the function:
    ``requires_data`` (the check needs natural data) and ``min_scale`` (the smallest spread of
    scores across units the audit treats as meaningful, in score units).
    """

    function: Callable
    higher_is_more_suspicious: bool
    description: str


#: name -> :class:`CheckInfo`
CHECKS: Dict[str, CheckInfo] = {}


def _ident(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def register_check(
    name: str,
    higher_is_more_suspicious: bool = True,
    description: str = "",
    *,
    requires_data: bool = False,
    min_scale: float = 0.05,
) -> Callable[[F], F]:
    """Decorator adding a check function to :data:`CHECKS` under ``name``.

    Args:
        name: registry name (what :func:`~captum_slingshot.checks.audit_layer` takes).
        higher_is_more_suspicious: score direction; ``False`` means low scores are suspicious.
        description: one line for reports.
        requires_data: the check needs natural data (``data=``); the audit refuses to run it
            without.
        min_scale: floor on the robust spread (1.4826 MAD) of this check's scores across a
            layer's units, so that near-identical scores do not give huge z-scores.

    Returns:
        The decorator; it returns the function unchanged (with ``check_name``,
        ``requires_data`` and ``min_scale`` attributes set).

    Example:
        >>> @register_check("tmp_check", description="demo")
        ... def tmp_check(model, layer, neuron_selector, *, param):
        ...     return None
        >>> "tmp_check" in available_checks(), tmp_check.min_scale
        (True, 0.05)
        >>> unregister_check("tmp_check")
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a check needs a non-empty string name, got {name!r}")
    if not min_scale > 0:
        raise ValueError(f"min_scale must be positive, got {min_scale}")

    def deco(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"register_check decorates functions, got {type(fn).__name__}")
        old = CHECKS.get(name)
        if old is not None and _ident(old.function) != _ident(fn):  # re-importing a module is fine
            raise ValueError(f"a check named {name!r} is already registered ({_ident(old.function)})")
        fn.check_name = name  # type: ignore[attr-defined]
        fn.requires_data = bool(requires_data)  # type: ignore[attr-defined]
        fn.min_scale = float(min_scale)  # type: ignore[attr-defined]
        CHECKS[name] = CheckInfo(fn, bool(higher_is_more_suspicious), str(description))
        return fn

    return deco


def unregister_check(name: str) -> None:
    """Remove a check from the registry (no error if it is not there).

    Example:
        >>> unregister_check("no_such_check")
    """
    CHECKS.pop(name, None)


def get_check(name: str) -> CheckInfo:
    """The registered check ``name`` as ``CheckInfo(function, higher_is_more_suspicious, description)``.

    Example:
        >>> import captum_slingshot.checks
        >>> get_check("slingshot_field").higher_is_more_suspicious
        True
    """
    try:
        return CHECKS[name]
    except KeyError:
        raise ValueError(f"unknown check {name!r}; available: {sorted(CHECKS)}") from None


def available_checks() -> Dict[str, CheckInfo]:
    """All registered checks: name -> ``(function, higher_is_more_suspicious, description)``.

    Example:
        >>> import captum_slingshot.checks
        >>> sorted(available_checks())[:4]
        ['activation_excess', 'natural_gap', 'slingshot_field', 'strategy_divergence']
    """
    return dict(sorted(CHECKS.items()))
