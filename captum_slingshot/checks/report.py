"""The result of a layer audit: per-unit scores, robust z-scores, flags, files and figures.

Example:
    >>> import os, tempfile, torch
    >>> from captum_slingshot.checks.report import AuditReport, read_table
    >>> rep = AuditReport(layer="fc", units=[0, 1, 2], checks=["demo"], directions={"demo": True},
    ...                   scores={"demo": torch.tensor([0.1, 0.2, 3.0])}, z={"demo": torch.tensor([-1.0, 0.0, 9.0])},
    ...                   combined=torch.tensor([-1.0, 0.0, 9.0]), threshold=3.5)
    >>> rep.flagged
    [2]
    >>> path = rep.to_csv(os.path.join(tempfile.mkdtemp(), "audit.csv"))
    >>> read_table(path) == rep.table
    True
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from ..paths import atomic_path

__all__ = ["AuditReport", "read_table", "robust_z", "parse_cell"]


def robust_z(scores: Tensor, higher_is_more_suspicious: bool = True, min_scale: float = 0.0) -> Tensor:
    """Robust z-scores ``(s - median) / max(1.4826 MAD, min_scale)``, signed so that high = suspicious.

    Example:
        >>> import torch
        >>> robust_z(torch.tensor([1.0, 1.1, 0.9, 1.0, 5.0]), min_scale=0.05)
        tensor([ 0.0000,  0.6745, -0.6745,  0.0000, 26.9796])
        >>> robust_z(torch.tensor([1.0, 1.0, 1.0, 1.5]), min_scale=0.25)  # MAD 0: the floor decides
        tensor([0., 0., 0., 2.])
    """
    s = scores.detach().double().flatten()
    if s.numel() == 0:
        return s.float()
    finite = s[torch.isfinite(s)]
    if finite.numel() == 0:
        return torch.zeros_like(s).float()
    med = finite.quantile(0.5)  # the midpoint for an even count (torch.median takes the lower)
    mad = (finite - med).abs().quantile(0.5)
    scale = max(1.4826 * float(mad), float(min_scale), 1e-12)
    z = (s - med) / scale
    return (z if higher_is_more_suspicious else -z).float()


def _unit_value(unit: Any) -> Any:
    """A JSON/CSV-friendly form of a selector: ints stay ints, anything else becomes its text."""
    if isinstance(unit, bool):
        return str(unit)
    if isinstance(unit, int):
        return int(unit)
    return str(unit)


def parse_cell(value: str) -> Any:
    """A CSV cell back to ``bool``, ``int`` or ``float`` where it parses as one (else the text)."""
    if value in ("True", "False"):
        return value == "True"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def read_table(path: Union[str, os.PathLike]) -> List[Dict[str, Any]]:
    """Read the rows written by :meth:`AuditReport.to_json` or :meth:`AuditReport.to_csv`.

    CSV cells are converted back to ``int``, ``float`` and ``bool`` where they parse as such.

    Example:
        >>> import json, os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "t.json")
        >>> _ = open(p, "w").write(json.dumps({"rows": [{"unit": 1, "flagged": True}]}))
        >>> read_table(p)
        [{'unit': 1, 'flagged': True}]
    """
    path = str(path)
    if path.endswith(".json"):
        with open(path) as f:
            return list(json.load(f)["rows"])
    with open(path, newline="") as f:
        return [{k: parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _finite(v: float) -> float:
    """``v``, or minus infinity for NaN (NaN sorts last)."""
    return v if v == v else float("-inf")


def _safe_name(unit: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(unit)).strip("_") or "unit"


@dataclass
class AuditReport:
    """What :func:`~captum_slingshot.checks.audit_layer` returns.

    Attributes:
        layer: dotted name of the audited layer.
        units: the audited units' selectors, in table order.
        checks: names of the checks that ran.
        directions: check -> ``higher_is_more_suspicious``.
        scores: check -> raw scores ``(U,)``.
        z: check -> robust z-scores ``(U,)`` (high = suspicious whatever the check's direction).
        combined: combined z ``(U,)`` (``combine`` of the per-check z).
        threshold: a unit is flagged when ``combined > threshold``.
        combine: how the per-check z were pooled (a key of ``COMBINE_RULES``).
        details: check -> its ``details`` dict (tensors with a leading unit dimension).
        renders: label -> the audit's FV renders (``FVResult`` with a leading unit dimension), the
            FVs shown in the unit figures.
        info: what else the audit ran with (parametrization, seed, number of natural inputs, the
            checks' own settings), JSON-friendly; reports show it.

    Example:
        >>> import os, tempfile, torch
        >>> rep = AuditReport("fc", [0, 1], ["c"], {"c": True}, {"c": torch.tensor([0.25, 0.75])},
        ...                   {"c": torch.tensor([0.0, 4.0])}, torch.tensor([0.0, 4.0]), 3.5)
        >>> rep.table[1]
        {'unit': 1, 'c': 0.75, 'c_z': 4.0, 'combined': 4.0, 'flagged': True}
        >>> out = tempfile.mkdtemp()
        >>> os.path.basename(rep.to_json(os.path.join(out, "audit.json")))
        'audit.json'
        >>> rep.save_figures(out)  # needs the checks' image details
        Traceback (most recent call last):
        ...
        ValueError: no images to draw: the audit rendered no FVs and no check returned images
    """

    layer: str
    units: List[Any]
    checks: List[str]
    directions: Dict[str, bool]
    scores: Dict[str, Tensor]
    z: Dict[str, Tensor]
    combined: Tensor
    threshold: float
    combine: str = "mean"
    details: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    renders: Dict[str, Any] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)

    # -- views ------------------------------------------------------------------------------
    @property
    def flagged_mask(self) -> Tensor:
        """Boolean ``(U,)``: ``combined > threshold``."""
        return self.combined > self.threshold

    @property
    def flagged(self) -> List[Any]:
        """The flagged units' selectors."""
        return [u for u, f in zip(self.units, self.flagged_mask.tolist()) if f]

    def _extra_columns(self) -> Dict[str, Tensor]:
        """Per-unit scalar details (e.g. the field's ``gamma``) as ``check.key`` columns."""
        out = {}
        n = len(self.units)
        for check in self.checks:
            for key, value in self.details.get(check, {}).items():
                if isinstance(value, Tensor) and value.dim() == 1 and value.shape[0] == n and value.is_floating_point():
                    out[f"{check}.{key}"] = value
        return out

    @property
    def table(self) -> List[Dict[str, Any]]:
        """One row per unit: ``unit``, each check's score and ``_z``, ``combined``, ``flagged``,
        then per-unit scalar details as ``check.key`` columns."""
        extra = self._extra_columns()
        rows = []
        flags = self.flagged_mask.tolist()
        for i, unit in enumerate(self.units):
            row: Dict[str, Any] = {"unit": _unit_value(unit)}
            for check in self.checks:
                row[check] = float(self.scores[check][i])
                row[f"{check}_z"] = float(self.z[check][i])
            row["combined"] = float(self.combined[i])
            row["flagged"] = bool(flags[i])
            for key, value in extra.items():
                row[key] = float(value[i])
            rows.append(row)
        return rows

    def summary(self, max_rows: Optional[int] = None) -> str:
        """A plain-text table (units sorted by combined z, most suspicious first).

        Example:
            >>> import torch
            >>> rep = AuditReport("fc", [0, 1], ["c"], {"c": True}, {"c": torch.tensor([0.1, 0.9])},
            ...                   {"c": torch.tensor([0.0, 4.0])}, torch.tensor([0.0, 4.0]), 3.5)
            >>> print(rep.summary())  # doctest: +NORMALIZE_WHITESPACE
            audit of layer 'fc': 2 units, checks c; flagged (combined z > 3.5): [1]
            unit  c (z)         combined  flagged
            1     0.900 (4.0)   4.0       *
            0     0.100 (0.0)   0.0
        """
        header = ["unit"] + [f"{c} (z)" for c in self.checks] + ["combined", "flagged"]
        order = torch.argsort(self.combined, descending=True, stable=True).tolist()
        if max_rows is not None:
            order = order[: int(max_rows)]
        flags = self.flagged_mask.tolist()
        body = []
        for i in order:
            cells = [str(_unit_value(self.units[i]))]
            for c in self.checks:
                cells.append(f"{float(self.scores[c][i]):.3f} ({float(self.z[c][i]):.1f})")
            cells += [f"{float(self.combined[i]):.1f}", "*" if flags[i] else ""]
            body.append(cells)
        widths = [max(len(r[j]) for r in [header] + body) for j in range(len(header))]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        title = (f"audit of layer {self.layer!r}: {len(self.units)} units, checks {', '.join(self.checks)}; "
                 f"flagged (combined z > {self.threshold:g}): {self.flagged}")
        return "\n".join([title, fmt(header)] + [fmt(r) for r in body])

    # -- files -----------------------------------------------------------------------------
    def to_json(self, path: Union[str, os.PathLike]) -> str:
        """Write the table and the audit settings as JSON (atomically); returns the path."""
        from .base import CHECKS

        doc: Dict[str, Any] = {
            "layer": self.layer,
            "threshold": self.threshold,
            "combine": self.combine,
            "checks": {c: {"higher_is_more_suspicious": self.directions[c],
                           "description": CHECKS[c].description if c in CHECKS else ""} for c in self.checks},
            "flagged": [_unit_value(u) for u in self.flagged],
            "rows": self.table,
        }
        text = json.dumps(doc, indent=2, allow_nan=True)
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write(text + "\n")
        return str(path)

    def to_csv(self, path: Union[str, os.PathLike]) -> str:
        """Write the table as CSV (atomically); returns the path."""
        rows = self.table
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["unit"])
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        return str(path)

    def reasons(self, index: int) -> Dict[str, str]:
        """``{check: one plain-language line}`` for unit ``index``, most suspicious check first."""
        from .base import CHECKS

        order = sorted(self.checks, key=lambda c: -_finite(float(self.z[c][index])))
        out = {}
        for c in order:
            spec = CHECKS.get(c, None)
            score = float(self.scores[c][index])
            if spec is None:
                out[c] = f"score {score:.3g}"
            else:
                out[c] = spec.explain(self.details.get(c) or {}, index, score)
        return out

    def to_html(self, path: Union[str, os.PathLike], title: Optional[str] = None) -> str:
        """Write the audit as one self-contained HTML page (atomically); returns the path.

        The verdict and settings, a table of every unit (sortable, filterable to flagged units;
        it reads without JavaScript too), and a panel per unit with its FVs per strategy, its top
        natural images, its activation trajectories and each check's z against the layer's.
        """
        from .html import write_audit_html

        return write_audit_html(self, path, title=title)

    def figure_rows(self, index: int, n_images: int = 8) -> Dict[str, Tensor]:
        """The image rows of unit ``index``'s figure: its FV under every rendered strategy, then the
        rows the checks returned (their details' ``top_images`` as "top natural", and every entry of
        ``figure_images``), each row once, in check order."""
        rows: Dict[str, Tensor] = {}
        for label, fv in self.renders.items():
            rows[f"FV {label}"] = fv.images[index][:n_images].detach().cpu()
        for check in self.checks:
            det = self.details.get(check) or {}
            if isinstance(det.get("top_images"), Tensor) and "top natural" not in rows:
                rows["top natural"] = det["top_images"][index][:n_images]
            for label, images in (det.get("figure_images") or {}).items():
                rows.setdefault(label, images[index][:n_images])
        return rows

    def save_figures(self, directory: Union[str, os.PathLike], units: Optional[Sequence[Any]] = None,
                     n_images: int = 8) -> List[str]:
        """One PNG per flagged unit (or per unit in ``units``): its FVs under each strategy, its
        top natural images and the image at the field's fitted attractor. Returns the paths."""
        from ..figures import fv_grid

        wanted = self.flagged if units is None else list(units)
        paths = []
        for unit in wanted:
            matches = [i for i, u in enumerate(self.units) if u == unit]
            if not matches:
                raise ValueError(f"unit {unit!r} was not audited; audited units: {self.units}")
            i = matches[0]
            rows = self.figure_rows(i, n_images)
            if not rows:
                raise ValueError("no images to draw: the audit rendered no FVs and no check returned images")
            zs = ", ".join(f"{c} z={float(self.z[c][i]):.1f}" for c in self.checks)
            title = f"layer {self.layer!r}, unit {unit}: combined z={float(self.combined[i]):.1f} ({zs})"
            path = os.path.join(str(directory), f"unit_{_safe_name(unit)}.png")
            paths.append(fv_grid(rows, path, title=title))
        return paths

    def __repr__(self) -> str:
        return (f"AuditReport(layer={self.layer!r}, units={len(self.units)}, checks={self.checks}, "
                f"flagged={self.flagged})")
