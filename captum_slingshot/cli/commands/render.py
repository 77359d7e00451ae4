"""``captum-slingshot render``: FVs of units of a layer under several AM strategies (PNG grid + JSON)."""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import Any, Dict, List

from ..options import add_model_options

NAME = "render"

EPILOG = """\
example:
  captum-slingshot render --units 0,3,7 --strategies gc,tr,adam --starts 4 --steps 100 --out out/fv
  captum-slingshot render --weights out/attack/model.pt --out out/fv_attacked
  captum-slingshot render --torchvision resnet18 --weights default --layer layer4 --units 0,1 --out out/fv_resnet

writes DIR/fv.png (one row per strategy: the start with the highest activation, one column per
unit) and DIR/fv.json (every start's final activation, per strategy).

--weights also takes the model.pt of manipulate --transform fooling_circuit|silent_units: its
state-dict keys (<layer>.detector.* or <layer>.probe.*) say it holds a circuit, and the wrapped model
is rebuilt around the model of --model/--torchvision (the same as for manipulate).
"""


def add_parser(sub: argparse._SubParsersAction, argv: List[str]) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        help="render FVs of units of a model under several AM strategies (PNG grid + JSON)",
        description=textwrap.fill("Feature visualization of units of a layer under several activation-maximization "
                                  "strategies (gc, tr, adam, lucent ...), all random starts in one batch per "
                                  "strategy.", 100),
    )
    add_model_options(p)
    g = p.add_argument_group("rendering")
    g.add_argument("--units", metavar="I,J,...", help="units (channels/features) to render (default: all units of "
                   "the layer)")
    g.add_argument("--strategies", default="gc,tr,adam", metavar="S,S,...",
                   help="AM strategies (default: gc,tr,adam; also none, gc_tr, adam_gc, adam_tr, lucent ...)")
    g.add_argument("--starts", type=int, default=1, metavar="N", help="random starts per unit (default 1)")
    g.add_argument("--steps", type=int, default=None, metavar="N", help="optimization steps (default: each "
                   "strategy's own, 200 for gc/tr/adam)")
    g.add_argument("--lr", type=float, default=None, help="learning rate for every strategy (default: each "
                   "strategy's own)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    g.add_argument("--out", default=os.path.join("out", "render"), metavar="DIR",
                   help="output folder (default: out/render)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    return p


def units_of(model: Any, layer: str, param: Any, units: Any) -> List[Any]:
    """``--units`` as a list of ints (on a transformer layer: the CLS token's features), or every unit of the layer."""
    from ..._utils.settings import FlatOption
    from ...experiments.errors import SettingsError
    from ...experiments.loading import model_units
    from ...fv import layer_units

    if units:
        try:
            values = list(FlatOption("units", "", None, "ints").convert(units))
        except ValueError as err:
            raise SettingsError(f"--units: {err}") from None
        if not values:
            raise SettingsError("--units is empty")
        return model_units(model, layer, param, values)
    return layer_units(model, layer, param)


def run_render(s: Dict[str, Any]) -> Dict[str, Any]:
    """FV of units under several AM strategies: ``fv.png`` (best start per unit) and ``fv.json``."""
    import torch

    from ...experiments.errors import SettingsError
    from ...experiments.loading import (
        build_param, check_model_input, default_layer, load_model, resolve_preprocess, split_names,
    )
    from ...experiments.records import write_json
    from ...figures import fv_grid
    from ...fv import get_strategy, render

    out = s["out"]
    loaded = load_model(model=s.get("model"), torchvision=s.get("torchvision"), weights=s.get("weights"),
                        num_classes=s.get("num_classes"), device=s.get("device"), progress=s.get("progress", True))
    layer = default_layer(loaded, s.get("layer"))
    preprocess = resolve_preprocess(loaded, None, s.get("resize"), s.get("crop"), s.get("mean"), s.get("std"))
    param = build_param(s.get("param") or "pixel", s.get("shape"), None, None, loaded, preprocess=preprocess)
    check_model_input(loaded, torch.zeros(param.shape), "FV images", preprocess=preprocess)
    strategies = split_names(s.get("strategies") or "")
    if not strategies:
        raise SettingsError("--strategies is empty")
    overrides = {} if s.get("steps") is None else {"steps": int(s["steps"])}
    if s.get("lr") is not None:
        overrides["lr"] = float(s["lr"])
    for name in strategies:
        get_strategy(name, **overrides)  # unknown names fail before any work
    units = units_of(loaded.model, layer, param, s.get("units"))
    n_starts = int(s.get("starts") or 1)
    if n_starts < 1:
        raise SettingsError(f"--starts must be at least 1, got {n_starts}")
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
    doc = {"command": NAME, "model_source": loaded.source, "layer": layer, "units": list(units),
           "param": {"name": param.name, "shape": list(param.shape), "mean": list(param.mean), "std": list(param.std)},
           "n_starts": n_starts, "seed": s.get("seed", 0),
           "strategies": record, "files": {"figure": png, "json": os.path.join(out, "fv.json")}}
    write_json(doc["files"]["json"], doc)
    return doc


def run(args: argparse.Namespace, argv: List[str]) -> int:
    doc = run_render(vars(args))
    for name, rec in doc["strategies"].items():
        acts = ", ".join(f"{u}: {a:.3g}" for u, a in zip(doc["units"], rec["best_activation"]))
        print(f"{name:<10} best activation per unit  {acts}")
    print(f"wrote {doc['files']['figure']} and {doc['files']['json']}")
    return 0
