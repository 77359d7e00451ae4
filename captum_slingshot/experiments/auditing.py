"""The audit's settings from the command line or a study file: check names and the checks' own settings.

Example:
    >>> from captum_slingshot.experiments.auditing import audit_check_kwargs, check_names
    >>> check_names("natural_gap,slingshot_field")
    ['natural_gap', 'slingshot_field']
    >>> audit_check_kwargs(["slingshot_field"], {"starts": 2, "samples": 8}, warn=print)
    note: none of the checks slingshot_field takes n_starts; ignored
    {'n_samples': 8}
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Sequence

from .errors import SettingsError
from .loading import split_names

__all__ = ["check_names", "audit_check_kwargs", "AUDIT_SETTINGS"]

#: audit setting (flag / study key) -> the checks' keyword argument it sets
AUDIT_SETTINGS = {"starts": "n_starts", "steps": "steps", "k": "k", "samples": "n_samples"}


def check_names(names: Any, what: str = "--checks") -> List[str]:
    """``"a,b"`` (or a list) -> registered check names; unknown or no names are a :class:`SettingsError`."""
    from ..checks import available_checks

    checks = split_names(names)
    known = available_checks()
    unknown = [c for c in checks if c not in known]
    if unknown:
        raise SettingsError(f"unknown check {unknown[0]!r}; available checks: {', '.join(sorted(known))}")
    if not checks:
        raise SettingsError(f"{what} is empty")
    return checks


def audit_check_kwargs(checks: Sequence[str], s: Mapping[str, Any],
                       warn: Callable[[str], None] = print) -> Dict[str, Any]:
    """The checks' keyword arguments among the audit settings ``s`` (``starts``, ``steps``, ``k``,
    ``samples``, ``no_lpips``); a setting none of ``checks`` takes is dropped with a note."""
    from ..checks import get_check

    wanted = {AUDIT_SETTINGS[k]: s.get(k) for k in AUDIT_SETTINGS}
    wanted["lpips"] = False if s.get("no_lpips") else None
    takers = set().union(*(get_check(c).parameters() for c in checks))
    check_kwargs = {}
    for key, value in wanted.items():
        if value is None:
            continue
        if key in takers:
            check_kwargs[key] = value
        else:
            warn(f"note: none of the checks {', '.join(checks)} takes {key}; ignored")
    return check_kwargs
