"""An audit as one self-contained HTML page, for the person who has to read the verdict.

The page holds everything (images are embedded, no network, no CDN): the verdict and the audit's
settings; a table of every unit with each check's z, the pooled z and the flag (most suspicious
first; a few lines of plain JavaScript sort it by any column and filter it to flagged units, and
without JavaScript it is simply a table); and a panel per unit with its FVs under every rendered
strategy, its top natural images, the activation each strategy's optimizer saw step by step
(against the highest natural activation when a check measured it), each check's z against the
layer's, and one plain-language line per check saying why. Flags are marked by words and a
symbol, not by colour alone; images carry alt text; the layout reflows on a narrow window.

Example:
    >>> import os, tempfile, torch
    >>> from captum_slingshot.checks.report import AuditReport
    >>> rep = AuditReport("fc", [0, 1, 2], ["c"], {"c": True}, {"c": torch.tensor([0.1, 0.2, 9.0])},
    ...                   {"c": torch.tensor([0.0, 0.5, 9.0])}, torch.tensor([0.0, 0.5, 9.0]), 3.5)
    >>> html = audit_html(rep)
    >>> html.count('<tr class="unit-row'), "1 of 3 units" in html
    (3, True)
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from PIL import Image
from torch import Tensor

from ..paths import write_text

__all__ = ["audit_html", "write_audit_html", "image_data_uri", "html_page", "sortable_table"]

#: one colour and one dash pattern per line, so that lines differ without colour too
_LINES = [("#1f77b4", ""), ("#d62728", "6 3"), ("#2ca02c", "2 2"), ("#9467bd", "8 3 2 3"), ("#8c564b", "4 4"),
          ("#e377c2", "1 3")]


def _fmt(v: Any, digits: str = ".2f") -> str:
    """A number for a cell; NaN and missing values are written as ``n/a``."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not math.isfinite(f) else format(f, digits)


def _sort_key(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if not math.isfinite(f) else repr(f)


def image_data_uri(images: Tensor, gap: int = 2) -> str:
    """A row of images ``(K, C, H, W)`` in ``[0, 1]`` as one ``data:`` URI (PNG for gray, JPEG for colour).

    Example:
        >>> import torch
        >>> image_data_uri(torch.rand(3, 1, 8, 8)).startswith("data:image/png;base64,")
        True
    """
    x = images.detach().float().cpu().clamp(0, 1)
    if x.dim() == 3:
        x = x[None]
    k, c, h, w = x.shape
    canvas = torch.ones(c, h, k * w + (k - 1) * gap)
    for i in range(k):
        canvas[:, :, i * (w + gap): i * (w + gap) + w] = x[i]
    arr = (canvas * 255).round().to(torch.uint8)
    if c == 1:
        img, fmt, mime = Image.fromarray(arr[0].numpy(), "L"), "PNG", "png"
    else:
        img, fmt, mime = Image.fromarray(arr[:3].permute(1, 2, 0).contiguous().numpy(), "RGB"), "JPEG", "jpeg"
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {"optimize": True}))
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _unit_id(unit: Any) -> str:
    return "unit-" + "".join(ch if ch.isalnum() else "_" for ch in str(unit))


def _trajectory_svg(curves: Dict[str, List[float]], natural_max: Optional[float], unit: Any) -> str:
    """The median activation each strategy's optimizer saw per step, one line each, and the natural maximum."""
    if not curves:
        return '<p class="gap">No FV was rendered for this unit: no trajectory to show.</p>'
    values = [v for c in curves.values() for v in c if math.isfinite(v)]
    if natural_max is not None and math.isfinite(natural_max):
        values.append(natural_max)
    if not values:
        return '<p class="gap">The trajectories hold no finite value (NaN): nothing to plot.</p>'
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    width, height, left, right, top, bottom = 360, 170, 46, 100, 10, 24
    pw, ph = width - left - right, height - top - bottom

    def xy(i: int, n: int, v: float) -> str:
        return f"{left + pw * i / max(1, n - 1):.1f},{top + ph * (1 - (v - lo) / (hi - lo)):.1f}"

    parts = [f'<svg class="traj" viewBox="0 0 {width} {height}" role="img" aria-label="activation per optimizer '
             f'step of unit {html.escape(str(unit))}, one line per strategy">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 9}" text-anchor="end" class="tick">{hi:.3g}</text>',
             f'<text x="{left - 4}" y="{top + ph}" text-anchor="end" class="tick">{lo:.3g}</text>',
             f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" class="tick">optimizer step</text>']
    if natural_max is not None and math.isfinite(natural_max):
        y = top + ph * (1 - (natural_max - lo) / (hi - lo))
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#000" '
                     f'stroke-dasharray="2 4"/><text x="{left + 4}" y="{y - 3:.1f}" class="tick">natural max</text>')
    for j, (label, curve) in enumerate(curves.items()):
        colour, dash = _LINES[j % len(_LINES)]
        pts = [xy(i, len(curve), v) for i, v in enumerate(curve) if math.isfinite(v)]
        if not pts:
            continue
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" stroke-dasharray="{dash}" '
                     f'points="{" ".join(pts)}"/>')
        y_end = pts[-1].split(",")[1]
        parts.append(f'<text x="{left + pw + 4}" y="{float(y_end) + 3 + 9 * (j % 2):.1f}" class="tick" '
                     f'fill="{colour}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _strip_svg(rows: Dict[str, Tensor], index: int, threshold: float) -> str:
    """Each check's z of every unit (grey ticks) and this unit's (a black diamond), one row per check."""
    width, row_h, left = 360, 22, 150
    finite = [float(v) for z in rows.values() for v in z.tolist() if math.isfinite(float(v))] + [threshold, 0.0]
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    pw = width - left - 20
    x = lambda v: left + pw * (v - lo) / (hi - lo)  # noqa: E731
    height = row_h * len(rows) + 18
    parts = [f'<svg class="strip" viewBox="0 0 {width} {height}" role="img" aria-label="robust z of this unit '
             f'against the layer, per check">']
    for r, (name, z) in enumerate(rows.items()):
        y = 8 + r * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 10}" text-anchor="end" class="tick">{html.escape(name)}</text>')
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y + 7}" y2="{y + 7}" stroke="#ddd"/>')
        for v in z.tolist():
            if math.isfinite(float(v)):
                parts.append(f'<line x1="{x(float(v)):.1f}" x2="{x(float(v)):.1f}" y1="{y + 2}" y2="{y + 12}" '
                             f'stroke="#aaa"/>')
        me = float(z[index])
        if math.isfinite(me):
            cx, cy = x(me), y + 7
            parts.append(f'<polygon points="{cx:.1f},{cy - 6} {cx + 5:.1f},{cy} {cx:.1f},{cy + 6} {cx - 5:.1f},{cy}" '
                         f'fill="#000"/>')
        else:
            parts.append(f'<text x="{left + 4}" y="{y + 11}" class="tick">n/a (no finite score)</text>')
    tx = x(threshold)
    parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="4" y2="{height - 14}" stroke="#b00" stroke-dasharray="3 3"/>'
                 f'<text x="{tx:.1f}" y="{height - 3}" text-anchor="middle" class="tick">flag at {threshold:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _curves(report: Any, index: int, max_points: int = 120) -> Dict[str, List[float]]:
    out = {}
    for label, fv in report.renders.items():
        traj = fv.trajectory[index].detach().float().cpu()  # (N, steps)
        if traj.numel() == 0:
            continue
        med = traj.median(dim=0).values
        stride = max(1, math.ceil(med.shape[0] / max_points))
        out[label] = med[::stride].tolist()
    return out


def _natural_max(report: Any, index: int) -> Optional[float]:
    for check in report.checks:
        det = report.details.get(check) or {}
        value = det.get("natural_max")
        if isinstance(value, Tensor) and value.dim() == 1 and value.shape[0] == len(report.units):
            return float(value[index])
    return None


def _image_rows(report: Any, index: int, unit: Any, n_images: int) -> List[str]:
    blocks = []
    rows = report.figure_rows(index, n_images)
    fv_rows = {k: v for k, v in rows.items() if k.startswith("FV ")}
    other = {k: v for k, v in rows.items() if not k.startswith("FV ")}
    for label, images in list(fv_rows.items()) + list(other.items()):
        alt = f"{label} of unit {unit}: {len(images)} image{'s' if len(images) != 1 else ''}"
        blocks.append(f'<figure><figcaption>{html.escape(label)}</figcaption><img src="{image_data_uri(images)}" '
                      f'alt="{html.escape(alt)}"></figure>')
    if "top natural" not in rows:
        blocks.append('<figure><figcaption>top natural</figcaption><p class="gap">No natural data was given to '
                      'the audit: the unit\'s top natural images are not available.</p></figure>')
    if not fv_rows:
        blocks.append('<figure><figcaption>FV</figcaption><p class="gap">No FV was rendered for this unit (no '
                      'check that scores FVs ran).</p></figure>')
    return blocks


_CSS = """
:root { --flag: #b00020; --ink: #1a1a1a; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0;
       padding: 1rem; max-width: 1280px; margin-inline: auto; }
h1 { font-size: 1.5rem; margin: .2rem 0 .4rem; } h2 { font-size: 1.2rem; margin-top: 1.6rem; }
h3 { font-size: 1.05rem; margin: 0; display: inline; }
.verdict { font-size: 1.1rem; padding: .6rem .8rem; border-left: 6px solid #2e7d32; background: #f1f8f1; }
.verdict.flagged { border-color: var(--flag); background: #fdf0f2; }
dl.settings { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; font-size: .9rem; }
dl.settings dt { color: var(--muted); } dl.settings dd { margin: 0; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; min-width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.unit, th.unit, td.text { text-align: left; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer; color: inherit; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; } th[aria-sort="descending"] button::after { content: " \\25BC"; }
tr.is-flagged td { background: #fdf0f2; font-weight: 600; }
.flag { color: var(--flag); font-weight: 700; }
.controls { margin: .4rem 0; }
details.unit { border: 1px solid var(--line); border-radius: 6px; margin: .7rem 0; padding: .5rem .8rem; }
details.unit.is-flagged { border: 2px solid var(--flag); }
details.unit summary { cursor: pointer; }
ul.reasons { margin: .4rem 0 .6rem; padding-left: 1.2rem; }
.panel { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.images { flex: 1 1 520px; min-width: 0; }
.plots { flex: 0 1 380px; min-width: 0; }
figure { margin: 0 0 .5rem; } figcaption { font-size: .82rem; color: var(--muted); }
figure img { height: 64px; max-width: 100%; image-rendering: pixelated; border: 1px solid var(--line); }
figure img.plot { height: auto; width: 100%; max-width: 1100px; image-rendering: auto; }
svg { width: 100%; max-width: 380px; height: auto; } svg .tick { font-size: 10px; fill: #333; }
.gap { color: var(--muted); font-style: italic; margin: .2rem 0; border: 1px dashed var(--line); padding: .3rem .5rem; }
@media (max-width: 700px) { body { padding: .5rem; } figure img { height: 48px; } }
"""

_JS = """
(function () {
  function value(row, col) {
    var v = row.cells[col] ? row.cells[col].getAttribute("data-sort") : null;
    return v === "" || v === null ? null : (isNaN(Number(v)) ? v : Number(v));
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var body = table.tBodies[0];
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var desc = th.getAttribute("aria-sort") !== "descending";
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = value(a, col), y = value(b, col);
          if (x === null && y === null) { return 0; }
          if (x === null) { return 1; }
          if (y === null) { return -1; }
          if (x < y) { return desc ? 1 : -1; }
          if (x > y) { return desc ? -1 : 1; }
          return 0;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("input.flagged-only"), function (box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    if (!table) { return; }
    box.disabled = false;
    box.addEventListener("change", function () {
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.hidden = box.checked && !r.classList.contains("is-flagged");
      });
    });
  });
})();
"""


def html_page(title: str, header: str, main: str) -> str:
    """A whole self-contained page: the shared style, ``header`` and ``main`` HTML, the sorting script."""
    esc = html.escape
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
{header}
</header>
<main>
{main}
</main>
<footer><p><small>Written by captum_slingshot. A flag means a unit stands out from its own layer, not proof of
an attack.</small></p></footer>
<script>{_JS}</script>
</body>
</html>
"""


def sortable_table(table_id: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                   flagged: Sequence[bool], sorted_by: Optional[int] = None) -> str:
    """A table whose columns sort on click (numbers by value, missing values last) and whose
    ``flagged`` rows can be shown alone; cells are ``(text, sort value)`` pairs or plain values."""
    esc = html.escape
    sort_attr = ' aria-sort="descending"'
    head = "".join(f'<th scope="col"{sort_attr if j == sorted_by else ""}><button type="button">{esc(c)}</button></th>'
                   for j, c in enumerate(columns))
    body = []
    for row, f in zip(rows, flagged):
        cells = []
        for cell in row:
            text, key = cell if isinstance(cell, tuple) else (esc(_fmt_any(cell)), _sort_key_any(cell))
            kind = ' class="text"' if isinstance(cell, str) else ""
            cells.append(f'<td{kind} data-sort="{esc(str(key))}">{text}</td>')
        body.append(f'<tr class="{"is-flagged" if f else ""}">{"".join(cells)}</tr>')
    if not body:
        body.append(f'<tr><td colspan="{len(columns)}" class="gap">no rows</td></tr>')
    return (f'<p class="controls"><label><input type="checkbox" class="flagged-only" data-table="{table_id}" disabled> '
            f'show flagged rows only</label> &middot; click a column\'s name to sort by it</p>'
            f'<div class="table-wrap"><table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _fmt_any(v: Any) -> str:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return "n/a" if v is None else str(v)
    if isinstance(v, float):
        return _fmt(v, ".4g")
    return str(v)


def _sort_key_any(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return _sort_key(v)
    return "" if v is None else str(v)


def audit_html(report: Any, title: Optional[str] = None, n_images: int = 8) -> str:
    """The page for an :class:`~captum_slingshot.checks.report.AuditReport`, as a string."""
    units = list(report.units)
    n = len(units)
    flags = report.flagged_mask.tolist() if n else []
    pooled = [float(v) for v in report.combined.tolist()] if n else []
    order = sorted(range(n), key=lambda i: -(pooled[i] if math.isfinite(pooled[i]) else float("-inf")))
    title = title or f"Audit of layer {report.layer!r}"
    esc = html.escape
    flagged = [units[i] for i in range(n) if flags[i]]

    if n == 0:
        verdict = '<p class="verdict">No units were audited: the report is empty.</p>'
    elif flagged:
        shown = ", ".join(esc(str(u)) for u in flagged[:20]) + (" ..." if len(flagged) > 20 else "")
        verdict = (f'<p class="verdict flagged"><span class="flag" aria-hidden="true">&#9873;</span> '
                   f'<strong>{len(flagged)} of {n} units</strong> of layer {esc(repr(report.layer))} stand out from '
                   f'their layer (pooled z above {report.threshold:g}): {shown}.</p>')
    else:
        verdict = (f'<p class="verdict">No unit of layer {esc(repr(report.layer))} stands out: 0 of {n} units have a '
                   f'pooled z above {report.threshold:g}.</p>')

    from .base import CHECKS

    settings = [("layer", repr(report.layer)), ("units audited", str(n)),
                ("checks", "; ".join(f"{c} ({'high' if report.directions.get(c, True) else 'low'} = suspicious"
                                     f"{': ' + CHECKS[c].description if c in CHECKS else ''})" for c in report.checks)),
                ("pooling", f"{report.combine} of the per-check robust z; flag above {report.threshold:g}")]
    for label, fv in report.renders.items():
        s = fv.strategy
        settings.append((f"FV {label}", f"{s.describe()}; {fv.activations.shape[-1]} starts"))
    for key, value in (report.info or {}).items():
        settings.append((key.replace("_", " "), str(value)))
    settings_html = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in settings)

    head = ['<th scope="col" class="unit"><button type="button">unit</button></th>',
            '<th scope="col"><button type="button">flag</button></th>',
            '<th scope="col" aria-sort="descending"><button type="button">pooled z</button></th>']
    head += [f'<th scope="col"><button type="button">{esc(c)} z</button></th>' for c in report.checks]
    head += [f'<th scope="col"><button type="button">{esc(c)} score</button></th>' for c in report.checks]
    body = []
    for i in order:
        u, f = units[i], bool(flags[i])
        cells = [f'<td class="unit" data-sort="{esc(str(u))}"><a href="#{_unit_id(u)}">{esc(str(u))}</a></td>',
                 f'<td data-sort="{1 if f else 0}">' + ('<span class="flag">&#9873; flagged</span>' if f else "&ndash;")
                 + "</td>",
                 f'<td data-sort="{_sort_key(pooled[i])}">{_fmt(pooled[i], ".1f")}</td>']
        cells += [f'<td data-sort="{_sort_key(report.z[c][i])}">{_fmt(report.z[c][i], ".1f")}</td>' for c in report.checks]
        cells += [f'<td data-sort="{_sort_key(report.scores[c][i])}">{_fmt(report.scores[c][i], ".3g")}</td>'
                  for c in report.checks]
        body.append(f'<tr class="unit-row{" is-flagged" if f else ""}" data-unit="{esc(str(u))}">{"".join(cells)}</tr>')
    if not body:
        body.append(f'<tr><td colspan="{3 + 2 * len(report.checks)}" class="gap">no units</td></tr>')

    panels = []
    z_rows = {**{c: report.z[c] for c in report.checks}, "pooled": report.combined} if n else {}
    for i in order:
        u, f = units[i], bool(flags[i])
        reasons = report.reasons(i)
        reason_items = "".join(f"<li><strong>{esc(c)}</strong> (z {_fmt(report.z[c][i], '.1f')}): {esc(r)}</li>"
                               for c, r in reasons.items())
        status = ('<span class="flag">&#9873; FLAGGED</span>' if f else "not flagged")
        panels.append(
            f'<details class="unit{" is-flagged" if f else ""}" id="{_unit_id(u)}"{" open" if f else ""}>'
            f'<summary><h3>Unit {esc(str(u))}</h3> &mdash; {status}, pooled z {_fmt(pooled[i], ".1f")}</summary>'
            f'<ul class="reasons">{reason_items}</ul><div class="panel"><div class="images">'
            + "".join(_image_rows(report, i, u, n_images)) +
            '</div><div class="plots"><figure><figcaption>activation the optimizer saw per step (median over starts)'
            f'</figcaption>{_trajectory_svg(_curves(report, i), _natural_max(report, i), u)}</figure>'
            f'<figure><figcaption>this unit (&#9670;) against the layer, robust z per check</figcaption>'
            f'{_strip_svg(z_rows, i, report.threshold)}</figure></div></div></details>')
    if not panels:
        panels.append('<p class="gap">No units: nothing to show.</p>')

    header = f'{verdict}<details><summary>Settings of the audit</summary><dl class="settings">{settings_html}</dl></details>'
    main = f"""<h2 id="table">Units, most suspicious first</h2>
<p class="controls"><label><input type="checkbox" id="flagged-only" class="flagged-only" data-table="units-table"
 disabled> show flagged units only</label> &middot; click a column's name to sort by it</p>
<div class="table-wrap"><table id="units-table" class="sortable">
<thead><tr>{"".join(head)}</tr></thead>
<tbody>{"".join(body)}</tbody>
</table></div>
<h2 id="units">Every unit</h2>
<p>Each panel shows the unit's FV under every strategy the audit ran, its top natural images, what the
optimizer saw on the way, and each check's reason.</p>
{"".join(panels)}"""
    return html_page(title, header, main)


def write_audit_html(report: Any, path: Union[str, os.PathLike], title: Optional[str] = None) -> str:
    """Write :func:`audit_html` to ``path`` atomically; returns the path."""
    return write_text(path, audit_html(report, title=title))
