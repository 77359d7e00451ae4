"""``captum-slingshot audit``: the defense checks on every unit of a layer; report files and figures."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import Any, Callable, Dict, List

from ..options import add_model_options

NAME = "audit"

EPILOG = """\
example:
  captum-slingshot audit --weights out/attack/model.pt --layer logits --out out/audit
  captum-slingshot audit --checks slingshot_field,natural_gap --no-lpips --starts 2 --out out/audit
  captum-slingshot audit --model captum_slingshot.weights:alexnet_features --weights out/alexnet/model.pt \
      --layer 8 --units 0,1,2,3 --data photos/ --resize 72 --crop 64 --checks natural_gap --no-lpips --out out/audit
  captum-slingshot audit --list-checks

writes DIR/report.html (one self-contained page: verdict, sortable table, a panel per unit; --no-html
leaves it out), DIR/report.json, DIR/report.csv, DIR/summary.txt and DIR/figures/unit_*.png (flagged
units), and prints the summary and the flagged units.

--weights also takes the model.pt of manipulate --transform fooling_circuit|silent_units (or a study's
saved model of one): its state-dict keys (<layer>.detector.* or <layer>.probe.*, next to
<layer>.inner.*) say it holds a circuit, and the wrapped model is rebuilt around the model of
--model/--torchvision (give the same as for manipulate), outputs identical to the manipulated model's.
"""


def add_parser(sub: argparse._SubParsersAction, argv: List[str]) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        help="audit every unit of a layer with the defense checks and flag the outliers",
        description=textwrap.fill("Run the defense checks on every unit of a layer and flag the units that stand out "
                                  "from their own layer (robust z-scores; no labels and no clean reference model "
                                  "needed).", 100),
    )
    add_model_options(p)
    g = p.add_argument_group("audit")
    g.add_argument("--data", default=None, metavar="mnist|DIR|FILE",
                   help="natural inputs for the checks that need them: 'mnist' (default for mnist_cnn), an image "
                   "folder DIR/<class>/<image> (read with --resize/--crop/--mean/--std) or a .pt file with a tensor "
                   "of normalized inputs")
    g.add_argument("--data-limit", type=int, default=None, metavar="N", help="use only the first N natural inputs")
    g.add_argument("--units", metavar="I,J,...", help="units to audit (default: every unit of the layer)")
    g.add_argument("--checks", default=None, metavar="C,C,...",
                   help="checks to run (default: activation_excess,strategy_divergence; --list-checks shows all)")
    g.add_argument("--list-checks", action="store_true", help="list the registered checks, what each needs, and exit")
    g.add_argument("--threshold", type=float, default=3.5, help="flag units whose combined z exceeds this "
                   "(default 3.5)")
    g.add_argument("--combine", choices=("stouffer", "mean", "max"), default="stouffer",
                   help="pool the per-check z: stouffer = sum/sqrt(K) (default), mean, or max")
    g.add_argument("--starts", type=int, default=None, metavar="N", help="FV starts per unit in the checks "
                   "(default: each check's own, 4)")
    g.add_argument("--steps", type=int, default=None, metavar="N", help="FV steps in the checks (default: the "
                   "strategies' own)")
    g.add_argument("--k", type=int, default=None, help="top-k natural images for natural_gap (default 16)")
    g.add_argument("--samples", type=int, default=None, metavar="N", help="gradient samples per radius for "
                   "slingshot_field (default 96)")
    g.add_argument("--no-lpips", action="store_true", help="natural_gap without LPIPS (faster)")
    g.add_argument("--max-batch", type=int, default=None, metavar="N", help="at most N examples per batch")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    g.add_argument("--out", default=os.path.join("out", "audit"), metavar="DIR",
                   help="report folder (default: out/audit)")
    g.add_argument("--html", action=argparse.BooleanOptionalAction, default=True,
                   help="write DIR/report.html, the audit as one self-contained page (default: on)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    return p


def list_checks() -> str:
    """One line per registered check: name, direction, what it needs, cost, description."""
    from ...checks import CHECKS

    lines = []
    for name, spec in CHECKS.items():
        needs = ", ".join(x for x, on in (("data", spec.needs_data), ("shared renders", spec.uses_renders)) if on)
        arrow = "high" if spec.higher_is_more_suspicious else "low"
        lines.append(f"{name:<22} {arrow} = suspicious; needs {needs or 'nothing else'}; cost: {spec.cost}; "
                     f"{spec.description}")
    return "\n".join(lines)


def run_audit(s: Dict[str, Any], warn: Callable[[str], None] = print) -> Dict[str, Any]:
    """``audit_layer`` on a layer; writes report.json, report.csv, summary.txt and figures/."""
    import torch

    from ...checks import DEFAULT_CHECKS, audit_layer, get_check
    from ...experiments.auditing import audit_check_kwargs, check_names
    from ...experiments.errors import SettingsError
    from ...experiments.loading import (
        build_param, check_model_input, default_layer, load_data, load_model, resolve_preprocess,
    )
    from ...distributed import current_shard
    from ...paths import write_text
    from .render import units_of

    out = s["out"]
    checks = check_names(s.get("checks") or ",".join(DEFAULT_CHECKS))
    loaded = load_model(model=s.get("model"), torchvision=s.get("torchvision"), weights=s.get("weights"),
                        num_classes=s.get("num_classes"), device=s.get("device"), progress=s.get("progress", True))
    layer = default_layer(loaded, s.get("layer"))
    needs_data = [c for c in checks if get_check(c).needs_data]
    data_spec = s.get("data")
    if data_spec is None and loaded.kind == "mnist_cnn":
        data_spec = "mnist"
    preprocess = resolve_preprocess(loaded, data_spec, s.get("resize"), s.get("crop"), s.get("mean"), s.get("std"))
    data, data_source = None, None
    if needs_data:
        if data_spec is None:
            raise SettingsError(f"check {needs_data[0]} needs natural data: give --data mnist|DIR|FILE, or leave it "
                                "out of --checks")
        data, data_source = load_data(data_spec, s.get("data_limit"), preprocess=preprocess)
        check_model_input(loaded, data, preprocess=preprocess)
    param = build_param(s.get("param") or "pixel", s.get("shape"), None, None, loaded, data=data, data_spec=data_spec,
                        preprocess=preprocess)
    if data is None:
        check_model_input(loaded, torch.zeros(param.shape), "FV images", preprocess=preprocess)
    units = units_of(loaded.model, layer, param, s.get("units")) if s.get("units") else None

    check_kwargs = audit_check_kwargs(checks, s, warn)
    report = audit_layer(loaded.model, layer, param=param, data=data, units=units, checks=checks,
                         threshold=float(s.get("threshold", 3.5)), combine=s.get("combine") or "stouffer",
                         max_examples_per_batch=s.get("max_batch"), seed=int(s.get("seed", 0)),
                         progress=s.get("progress", True), **check_kwargs)
    if not current_shard().is_main:  # under torchrun every process holds the merged report; rank 0 writes it
        return {"report": report, "summary": report.summary(), "flagged": report.flagged, "files": None,
                "model_source": loaded.source, "data": data_source}
    os.makedirs(out, exist_ok=True)
    files: Dict[str, Any] = {"json": report.to_json(os.path.join(out, "report.json")),
                             "csv": report.to_csv(os.path.join(out, "report.csv"))}
    if s.get("html", True):
        files["html"] = report.to_html(os.path.join(out, "report.html"),
                                       title=f"Audit of layer {layer!r} of {loaded.source.get('model') or loaded.kind}")
    summary = report.summary()
    files["summary"] = write_text(os.path.join(out, "summary.txt"), summary)
    figures: List[str] = []
    if report.flagged:
        try:
            figures = report.save_figures(os.path.join(out, "figures"))
        except ValueError as err:  # no renders and no check images
            warn(f"note: no figures: {err}")
    files["figures"] = figures
    return {"report": report, "summary": summary, "flagged": report.flagged, "files": files,
            "model_source": loaded.source, "data": data_source}


def run(args: argparse.Namespace, argv: List[str]) -> int:
    if args.list_checks:
        print(list_checks())
        return 0
    res = run_audit(vars(args), warn=lambda msg: print(msg, file=sys.stderr))
    if res["files"] is None:  # not rank 0 of a torchrun
        return 0
    print(res["summary"])
    print(f"\nflagged units: {res['flagged']}")
    files = res["files"]
    extra = f" and {len(files['figures'])} figures" if files["figures"] else ""
    page = f"{files['html']}, " if "html" in files else ""
    print(f"wrote {page}{files['json']}, {files['csv']}, {files['summary']}{extra}")
    return 0
