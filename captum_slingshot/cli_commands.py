"""What the ``manipulate``, ``render`` and ``audit`` subcommands do, given their settings.

Each ``run_*`` function takes plain settings (a dict or an ``argparse.Namespace``), loads what it
needs through :mod:`captum_slingshot.cli_loading`, writes its files atomically into the output
folder and returns a small dict describing what it wrote. User errors are raised as
:class:`~captum_slingshot.cli_loading.CLIError`.

Example:
    >>> from captum_slingshot.cli_commands import versions
    >>> sorted(versions())[:2]
    ['captum', 'captum_slingshot']
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from .cli_loading import (
    CLIError, LoadedModel, build_param, default_layer, load_data, load_model, parse_ints,
    resolve_target, split_names,
)
from .cli_settings import slingshot_kwargs
from .paths import atomic_path

__all__ = ["run_manipulate", "run_render", "run_audit", "versions", "history_summary", "load_for_manipulation",
           "fit_manipulation", "check_names", "audit_check_kwargs"]


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


def _write_json(path: str, doc: Dict[str, Any]) -> str:
    text = json.dumps(doc, indent=2, default=str)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text + "\n")
    return path


def _write_text(path: str, text: str) -> str:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return path


def _model(s: Dict[str, Any]) -> LoadedModel:
    return load_model(model=s.get("model"), torchvision=s.get("torchvision"), weights=s.get("weights"),
                      num_classes=s.get("num_classes"), device=s.get("device"), progress=s.get("progress", True))


def _param(s: Dict[str, Any], loaded: LoadedModel, data=None, data_spec: Optional[str] = None):
    return build_param(s.get("param") or "pixel", s.get("shape"), s.get("mean"), s.get("std"), loaded,
                       data=data, data_spec=data_spec)


def _param_record(param) -> Dict[str, Any]:
    return {"name": param.name, "shape": list(param.shape), "mean": list(param.mean), "std": list(param.std)}


def history_summary(history: Dict[str, List[float]]) -> Dict[str, Any]:
    """First, last, minimum and mean of the last tenth of each loss curve."""
    out: Dict[str, Any] = {"steps": len(history.get("loss", []))}
    for key in ("loss", "manipulation", "preservation"):
        values = history.get(key) or []
        if values:
            tail = values[-max(1, len(values) // 10):]
            out[key] = {"first": values[0], "last": values[-1], "min": min(values),
                        "mean_last_tenth": sum(tail) / len(tail)}
    if history.get("lr"):
        out["lr_last"] = history["lr"][-1]
    return out


# -- manipulate ---------------------------------------------------------------------------------
def load_for_manipulation(s: Dict[str, Any]) -> Tuple[LoadedModel, str, torch.Tensor, Dict[str, Any], Any]:
    """What a manipulation of ``s`` needs besides its settings: the model, the layer's name, the
    natural data (and where it came from) and the auditor's parametrization."""
    loaded = _model(s)
    layer = default_layer(loaded, s.get("layer"))
    data, data_source = load_data(s.get("data") or "mnist", s.get("data_limit"))
    return loaded, layer, data, data_source, _param(s, loaded, data, s.get("data"))


def fit_manipulation(s: Dict[str, Any], loaded: LoadedModel, layer: str, data: torch.Tensor, param,
                     resume: Optional[str] = None) -> Tuple[Any, str]:
    """Fit the gradient slingshot of the merged settings ``s``; returns ``(SlingshotResult, target path)``."""
    from .transforms import get_transform

    target = resolve_target(s.get("target") or "cross")
    try:
        gs = get_transform("gradient_slingshot", layer=layer, neuron_selector=s.get("unit", 0),
                           target=target, param=param, **slingshot_kwargs(s))
        return gs.fit(loaded.model, data, resume=resume), target
    except FloatingPointError as err:
        raise CLIError(str(err)) from None


def run_manipulate(s: Dict[str, Any], argv: Sequence[str] = ()) -> Dict[str, Any]:
    """Fit a gradient slingshot with the merged settings ``s``; write ``model.pt`` and ``run.json``."""
    t0 = time.perf_counter()
    out = s["out"]
    loaded, layer, data, data_source, param = load_for_manipulation(s)
    resolve_target(s.get("target") or "cross")  # a bad target fails before the resume check
    if s.get("resume") is not None and not os.path.isfile(s["resume"]):
        raise CLIError(f"checkpoint file {s['resume']!r} (--resume) does not exist")
    result, target = fit_manipulation(s, loaded, layer, data, param, resume=s.get("resume"))
    os.makedirs(out, exist_ok=True)
    model_path = os.path.join(out, "model.pt")
    with atomic_path(model_path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in result.model.state_dict().items()}, tmp)
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()}
    run = {
        "command": "manipulate",
        "command_line": shlex.join(["captum-slingshot", *argv]),
        "settings": result.settings,
        "config": config,
        "model_source": loaded.source,
        "data": data_source,
        "target": os.path.abspath(target),
        "param": _param_record(param),
        "history": history_summary(result.history),
        "seconds": round(time.perf_counter() - t0, 1),
        "versions": versions(),
        "files": {"model": model_path, "run": os.path.join(out, "run.json")},
    }
    _write_json(run["files"]["run"], run)
    return run


# -- render -------------------------------------------------------------------------------------
def _units(model, layer: str, param, units: Optional[str]) -> List[Any]:
    if units:
        values = list(parse_ints(units, "--units"))
        if not values:
            raise CLIError("--units is empty")
        return values
    from .checks._util import layer_units
    from .fv.units import resolve_layer

    return layer_units(model, resolve_layer(model, layer), param)


def run_render(s: Dict[str, Any]) -> Dict[str, Any]:
    """FV of units under several AM strategies: ``fv.png`` (best start per unit) and ``fv.json``."""
    from .fv import get_strategy, render
    from .report import fv_grid

    out = s["out"]
    loaded = _model(s)
    layer = default_layer(loaded, s.get("layer"))
    param = _param(s, loaded)
    strategies = split_names(s.get("strategies") or "")
    if not strategies:
        raise CLIError("--strategies is empty")
    overrides = {} if s.get("steps") is None else {"steps": int(s["steps"])}
    if s.get("lr") is not None:
        overrides["lr"] = float(s["lr"])
    for name in strategies:
        get_strategy(name, **overrides)  # unknown names fail before any work
    units = _units(loaded.model, layer, param, s.get("units"))
    n_starts = int(s.get("starts") or 1)
    if n_starts < 1:
        raise CLIError(f"--starts must be at least 1, got {n_starts}")
    rows, record = {}, {}
    for name in strategies:
        res = render(loaded.model, layer, list(units), param, name, n_starts=n_starts, seed=s.get("seed", 0),
                     progress=s.get("progress", True), **overrides)
        acts = res.activations.detach().cpu()  # (U, N)
        best = acts.argmax(1)
        rows[f"{name} (best of {n_starts})" if n_starts > 1 else name] = \
            res.images[torch.arange(len(units)), best].detach().cpu()
        strat = res.strategy
        record[name] = {
            "optimizer": strat.optimizer, "lr": strat.lr, "steps": strat.steps,
            "clip_grad_norm": strat.clip_grad_norm, "transforms": strat.transforms,
            "activations": acts.tolist(), "best_start": best.tolist(),
            "best_activation": acts.max(1).values.tolist(),
        }
    os.makedirs(out, exist_ok=True)
    png = fv_grid(rows, os.path.join(out, "fv.png"), col_labels=[f"unit {u}" for u in units],
                  title=f"FV of layer {layer!r}")
    doc = {"command": "render", "model_source": loaded.source, "layer": layer, "units": list(units),
           "param": _param_record(param), "n_starts": n_starts, "seed": s.get("seed", 0),
           "strategies": record, "files": {"figure": png, "json": os.path.join(out, "fv.json")}}
    _write_json(doc["files"]["json"], doc)
    return doc


# -- audit --------------------------------------------------------------------------------------
def check_names(names: Any, what: str = "--checks") -> List[str]:
    """``"a,b"`` (or a list) -> registered check names; unknown or no names are a :class:`CLIError`."""
    from .checks import available_checks

    checks = split_names(names)
    known = available_checks()
    unknown = [c for c in checks if c not in known]
    if unknown:
        raise CLIError(f"unknown check {unknown[0]!r}; available checks: {', '.join(sorted(known))}")
    if not checks:
        raise CLIError(f"{what} is empty")
    return checks


def audit_check_kwargs(checks: Sequence[str], s: Dict[str, Any], warn=print) -> Dict[str, Any]:
    """The checks' keyword arguments among the audit settings ``s`` (``starts``, ``steps``, ``k``,
    ``samples``, ``no_lpips``); a setting none of ``checks`` takes is dropped with a note."""
    from .checks import available_checks
    from .checks.audit import _accepted

    known = available_checks()
    wanted = {"n_starts": s.get("starts"), "steps": s.get("steps"), "k": s.get("k"),
              "n_samples": s.get("samples"), "lpips": False if s.get("no_lpips") else None}
    takers = set().union(*(_accepted(known[c].function) for c in checks))
    check_kwargs = {}
    for key, value in wanted.items():
        if value is None:
            continue
        if key in takers:
            check_kwargs[key] = value
        else:
            warn(f"note: none of the checks {', '.join(checks)} takes {key}; ignored")
    return check_kwargs


def run_audit(s: Dict[str, Any], warn=print) -> Dict[str, Any]:
    """``audit_layer`` on a layer; writes report.json, report.csv, summary.txt and figures/."""
    from .checks import DEFAULT_CHECKS, audit_layer, available_checks

    out = s["out"]
    checks = check_names(s.get("checks") or ",".join(DEFAULT_CHECKS))
    known = available_checks()
    loaded = _model(s)
    layer = default_layer(loaded, s.get("layer"))
    needs_data = [c for c in checks if getattr(known[c].function, "requires_data", False)]
    data_spec = s.get("data")
    if data_spec is None and loaded.kind == "mnist_cnn":
        data_spec = "mnist"
    data, data_source = None, None
    if needs_data:
        if data_spec is None:
            raise CLIError(f"check {needs_data[0]} needs natural data: give --data mnist|FILE, or leave it "
                           "out of --checks")
        data, data_source = load_data(data_spec, s.get("data_limit"))
    param = _param(s, loaded, data, data_spec)
    units = _units(loaded.model, layer, param, s.get("units")) if s.get("units") else None

    check_kwargs = audit_check_kwargs(checks, s, warn)
    report = audit_layer(loaded.model, layer, param=param, data=data, units=units, checks=checks,
                         threshold=float(s.get("threshold", 3.5)), combine=s.get("combine") or "stouffer",
                         max_examples_per_batch=s.get("max_batch"), seed=int(s.get("seed", 0)),
                         progress=s.get("progress", True), **check_kwargs)
    os.makedirs(out, exist_ok=True)
    files = {"json": report.to_json(os.path.join(out, "report.json")),
             "csv": report.to_csv(os.path.join(out, "report.csv"))}
    summary = report.summary()
    files["summary"] = _write_text(os.path.join(out, "summary.txt"), summary)
    figures: List[str] = []
    if report.flagged:
        try:
            figures = report.save_figures(os.path.join(out, "figures"))
        except ValueError as err:  # checks without images (e.g. activation_excess only)
            warn(f"note: no figures: {err}")
    files["figures"] = figures
    return {"report": report, "summary": summary, "flagged": report.flagged, "files": files,
            "model_source": loaded.source, "data": data_source}
