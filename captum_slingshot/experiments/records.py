"""Run records: package versions, loss-curve summaries and JSON files written atomically.

Example:
    >>> from captum_slingshot.experiments.records import history_summary, versions
    >>> sorted(versions())[:2], history_summary({"loss": [3.0, 2.0, 1.0]})["loss"]["last"]
    (['captum', 'captum_slingshot'], 1.0)
"""

from __future__ import annotations

import json
import platform
from typing import Any, Dict, List

from ..paths import write_text

__all__ = ["versions", "history_summary", "write_json"]


def versions() -> Dict[str, str]:
    """Versions of the packages a run depends on (for run records)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("captum_slingshot", "torch", "torchvision", "captum"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def history_summary(history: Dict[str, List[float]]) -> Dict[str, Any]:
    """First, last, minimum and mean of the last tenth of each loss curve (every key but ``lr``)."""
    out: Dict[str, Any] = {"steps": len(history.get("loss", []))}
    for key, values in history.items():
        if key != "lr" and values and all(isinstance(v, (int, float)) for v in values):
            tail = values[-max(1, len(values) // 10):]
            out[key] = {"first": values[0], "last": values[-1], "min": min(values),
                        "mean_last_tenth": sum(tail) / len(tail)}
    if history.get("lr"):
        out["lr_last"] = history["lr"][-1]
    return out


def write_json(path: str, doc: Dict[str, Any]) -> str:
    """Write ``doc`` as indented JSON, atomically; returns ``path``."""
    return write_text(path, json.dumps(doc, indent=2, default=str))
