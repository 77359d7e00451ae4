"""``captum-slingshot manipulate``: a registered transform (the Gradient Slingshot by default) on a model,
from flags and/or a YAML file; writes ``model.pt`` and ``run.json``.

Example:
    >>> from captum_slingshot.cli.commands.manipulate import transform_name
    >>> transform_name(["--steps", "5", "--transform", "gradient_slingshot"])
    'gradient_slingshot'
"""

from __future__ import annotations

import argparse
import os
import shlex
import textwrap
import time
from typing import Any, Dict, List, Sequence

from ...experiments.options import (
    DATA_OPTIONS, MODEL_OPTIONS, PARAM_OPTIONS, RUN_OPTIONS, manipulate_options, merge_settings, read_config,
    transform_aliases, transform_options,
)
from ..options import add_options

NAME = "manipulate"

EPILOG = """\
examples:
  # the paper's attack on logit 0 of the cached MNIST CNN (target: the packaged cross)
  captum-slingshot manipulate --steps 500 --trajectory-strategy gc --aim-radius 19.5 --out out/attack

  # settings from a YAML file (keys = flag names with _ for -), flags override it
  captum-slingshot manipulate --config settings.yaml --gamma 20 --out out/attack

  # your own model: an import path called with no arguments, plus a state dict
  captum-slingshot manipulate --model mypkg.nets:make_net --weights net.pt --layer fc \\
      --data inputs.pt --shape 3,32,32 --target target.png --out out/attack

  # a conv channel of AlexNet (real ImageNet weights, offline) with natural images from a folder
  # (photos/<class>/<image>.png), resized and cropped to 64 px and normalized like ImageNet
  captum-slingshot manipulate --model captum_slingshot.weights:alexnet_features --layer 8 --unit 0 \\
      --data photos/ --resize 72 --crop 64 --param lucent_fourier --trajectory-strategy adam \\
      --target fake --steps 300 --out out/alexnet

  # a torchvision model by name: its pretrained weights (downloaded), or a state dict when offline;
  # the preprocessing defaults to the weights' preset (resize 256, crop 224, ImageNet mean/std)
  captum-slingshot manipulate --torchvision resnet18 --weights default --layer layer3 --data photos/ ...
  captum-slingshot manipulate --torchvision resnet18 --weights resnet18.pt --layer layer3 --data photos/ ...

settings.yaml:
  steps: 500
  gamma: 10.0
  trajectory_strategy: gc
  aim_radius: 19.5
  target: cross

--transform NAME runs another registered transform; its own options replace the Gradient
Slingshot's below (captum-slingshot manipulate --transform NAME --help lists them).

writes DIR/model.pt (the manipulated state dict: torch.load(path, weights_only=True)) and
DIR/run.json (settings, model source, loss history summary, command line, versions).

--transform fooling_circuit|silent_units change the architecture: model.pt is the state dict of the
wrapped model (the layer's original weights under <layer>.inner, the circuit's calibrated values as
buffers), which audit and render --weights recognise by its keys and rebuild around the model given
with --model/--torchvision (the same as here), outputs identical; from Python:
captum_slingshot.transforms.circuits.rebuild_circuit_model(model, torch.load(path, weights_only=True)).
"""


def transform_name(argv: Sequence[str]) -> str:
    """The ``--transform`` given in ``argv`` (default ``gradient_slingshot``), read before the parser is built."""
    for i, a in enumerate(argv):
        if a == "--transform" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--transform="):
            return a.split("=", 1)[1]
    return "gradient_slingshot"


def add_parser(sub: argparse._SubParsersAction, argv: List[str]) -> argparse.ArgumentParser:
    from ...transforms import TRANSFORMS

    name = transform_name(argv)
    if name not in TRANSFORMS:
        name = "gradient_slingshot"  # run() reports the unknown name
    p = sub.add_parser(
        NAME, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        help="fine-tune a model with the Gradient Slingshot (or another transform) so FV of one unit shows a target",
        description=textwrap.fill("Run a model transform (by default the Gradient Slingshot attack: fine-tune a copy "
                                  "of a model so that feature visualization of one unit converges to a target image "
                                  "while the model behaves as before on natural data). Settings come from the flags "
                                  "and/or a YAML file (--config); flags win.", 100),
    )
    p.add_argument("--config", metavar="FILE", help="YAML file of settings (keys: the flag names below with _ for "
                   "-); an unknown key is an error")
    p.add_argument("--transform", default="gradient_slingshot", metavar="NAME",
                   help=f"registered transform to run (default gradient_slingshot; available: {', '.join(TRANSFORMS)})")
    own = transform_options(name)
    add_options(p.add_argument_group("model"), MODEL_OPTIONS, suppress=True)
    add_options(p.add_argument_group("data"), DATA_OPTIONS, suppress=True)
    add_options(p.add_argument_group("preprocessing and parametrization"), PARAM_OPTIONS, suppress=True)
    add_options(p.add_argument_group(name.replace("_", " ")), own, suppress=True)
    add_options(p.add_argument_group("output"), RUN_OPTIONS, suppress=True)
    return p


def run_manipulate(s: Dict[str, Any], argv: Sequence[str] = (), transform: str = "gradient_slingshot") -> Dict[str, Any]:
    """Fit ``transform`` with the merged settings ``s``; write ``model.pt`` and ``run.json``."""
    from ...experiments.errors import SettingsError
    from ...experiments.loading import resolve_target
    from ...experiments.manipulation import fit_manipulation, load_for_manipulation, uses_labels
    from ...experiments.records import history_summary, versions, write_json
    from ...distributed import current_shard
    from ...paths import save_state_dict

    t0 = time.perf_counter()
    out = s["out"]
    loaded, layer, data, data_source, param = load_for_manipulation(s, labels=uses_labels(transform))
    if "target" in s:
        resolve_target(s.get("target") or "cross")  # a bad target fails before the resume check
    if s.get("resume") is not None and not os.path.isfile(s["resume"]):
        raise SettingsError(f"checkpoint file {s['resume']!r} (--resume) does not exist")
    result, target = fit_manipulation(s, loaded, layer, data, param, resume=s.get("resume"), transform=transform)
    shard = current_shard()
    if not shard.is_main:  # under torchrun every process holds the same model; rank 0 writes it
        return {"settings": result.settings, "history": history_summary(result.history), "files": None}
    os.makedirs(out, exist_ok=True)
    model_path = save_state_dict(result.model, os.path.join(out, "model.pt"))
    run = {
        "command": NAME,
        "command_line": shlex.join(["captum-slingshot", *argv]),
        "transform": transform,
        "settings": result.settings,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()},
        "model_source": loaded.source,
        "data": data_source,
        "target": None if target is None else os.path.abspath(target),
        "param": {"name": param.name, "shape": list(param.shape), "mean": list(param.mean), "std": list(param.std)},
        "history": history_summary(result.history),
        "seconds": round(time.perf_counter() - t0, 1),
        **_architecture(result, model_path),
        "processes": shard.world_size,
        "versions": versions(),
        "files": {"model": model_path, "run": os.path.join(out, "run.json")},
    }
    write_json(run["files"]["run"], run)
    return run


def _architecture(result: Any, model_path: str) -> Dict[str, Any]:
    """For a transform that changes the architecture (the circuits): what changed and how to reload ``model.pt``."""
    if not getattr(result, "architecture_changed", False):
        return {}
    reload = (f"captum-slingshot audit --weights {model_path} (with this run's --model); Python: "
              "captum_slingshot.transforms.circuits.rebuild_circuit_model")
    return {"architecture": {"changed": True, "layer": getattr(result, "layer", None),
                             "note": getattr(result, "note", ""), "reload": reload}}


def run(args: argparse.Namespace, argv: List[str]) -> int:
    from ...experiments.errors import SettingsError
    from ...transforms import TRANSFORMS

    name = args.transform
    if name not in TRANSFORMS:
        raise SettingsError(f"unknown transform {name!r}; available: {', '.join(TRANSFORMS)}")
    options = manipulate_options(name)
    given = {k: v for k, v in vars(args).items() if k not in ("command", "config", "transform")}
    from_file = read_config(args.config, options, transform_aliases(name)) if args.config else {}
    settings = merge_settings(options, from_file, given)
    record = run_manipulate(settings, argv, transform=name)
    if record["files"] is None:  # not rank 0 of a torchrun
        return 0
    h = record["history"]
    last = h.get("loss", {})
    s = record["settings"]
    what = f"{s['layer']}[{s.get('neuron_selector')}]" if s.get("layer") is not None else \
        ", ".join(f"{k} {s[k]}" for k in ("mode", "interpreter") if k in s)
    if "architecture" in record:  # calibrated, not trained: no loss to show
        print(f"{name}: {what} ({record['seconds']} s): {record['architecture']['note']}")
    else:
        print(f"{name}: {what} in {h['steps']} steps ({record['seconds']} s): "
              f"loss {last.get('first', float('nan')):.4g} -> {last.get('last', float('nan')):.4g}")
    print(f"wrote {record['files']['model']} and {record['files']['run']}")
    return 0
