"""Every setting of the command line and of study files as a flat option, merged from defaults, YAML and flags.

Each :class:`~captum_slingshot._utils.settings.FlatOption` is one flag (``--batch-size``) and one
YAML key (``batch_size``; ``batch-size`` works too). The model, data and parametrization options
are written here; a transform's options come from the transform itself
(:meth:`~captum_slingshot.transforms.ModelTransform.options`, generated from its settings
dataclasses), so every option of the library is reachable from the command line and from a study
file. Precedence: the defaults, then the YAML file, then the flags given on the command line. A key
that is not an option is an error that names it and lists the valid keys.

Example:
    >>> from captum_slingshot.experiments.options import manipulate_options, merge_settings
    >>> opts = manipulate_options("gradient_slingshot")
    >>> s = merge_settings(opts, {"gamma": 5.0, "alpha": 0.5}, {"gamma": 20.0, "steps": 10})
    >>> s["gamma"], s["alpha"], s["steps"], s["sigma"]
    (20.0, 0.5, 10, 0.1)
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .._utils.settings import FlatOption
from .errors import SettingsError

__all__ = ["MODEL_OPTIONS", "PARAM_OPTIONS", "DATA_OPTIONS", "UNIT_OPTIONS", "RUN_OPTIONS", "transform_options",
           "transform_aliases", "manipulate_options", "read_yaml_mapping", "read_config", "coerce_settings",
           "merge_settings", "EXCLUSIVE"]

MODEL_OPTIONS = [
    FlatOption("model", "the model: a registered name (mnist_cnn, the paper's MNIST CNN, is the default unless "
               "--torchvision is given; also vgg9, small_rgb_cnn) or an import path 'package.module:factory' called "
               "with no arguments", None, "text", optional=True),
    FlatOption("torchvision", "a torchvision model name (e.g. resnet18, resnet50, vit_b_16, alexnet, vgg16); needs "
               "--weights: 'default' (torchvision's pretrained weights, downloaded) or a state-dict FILE (offline)",
               None, "text", optional=True),
    FlatOption("weights", "state dict to load into the model (torch.save(model.state_dict(), FILE), read with "
               "weights_only=True); 'default' for a --torchvision model's pretrained weights (downloaded by "
               "torchvision); for mnist_cnn without it: the cached pretrained_mnist_cnn()", None, "text", optional=True),
    FlatOption("num_classes", "num_classes for --torchvision models whose head is not the default", None, "int",
               optional=True),
    FlatOption("layer", "layer holding the unit(s), a dotted module name (default: logits for mnist_cnn)", None, "text",
               optional=True),
]


def _param_names() -> tuple:
    from ..fv import PARAMETRIZATIONS

    return tuple(PARAMETRIZATIONS)


PARAM_OPTIONS = [
    FlatOption("param", "FV parametrization of the auditor", "pixel", "text", choices=_param_names()),
    FlatOption("shape", "FV image shape C,H,W (default: the data's shape; 1,28,28 for mnist_cnn; 3,224,224 for "
               "torchvision)", None, "ints", optional=True),
    FlatOption("resize", "preprocessing: resize the shorter side of natural images to N px (default: the "
               "--torchvision model's preset, e.g. 256; else none)", None, "int", optional=True),
    FlatOption("crop", "preprocessing: centre crop of N x N px (default: the --torchvision model's preset, e.g. "
               "224; else none); also the FV image size when --shape is not given", None, "int", optional=True),
    FlatOption("mean", "preprocessing: per-channel normalization mean the model expects, used for the natural data "
               "and the FV parametrization alike (default: the --torchvision model's preset, MNIST's for mnist_cnn "
               "or --data mnist, ImageNet's for RGB)", None, "floats", optional=True),
    FlatOption("std", "per-channel normalization std (give with --mean)", None, "floats", optional=True),
]

DATA_OPTIONS = [
    FlatOption("data", "natural inputs: 'mnist' (MNIST training split), an image folder DIR laid out as "
               "DIR/<class>/<image>.png (torchvision's ImageFolder; read with --resize/--crop/--mean/--std) or a .pt "
               "file with a tensor of normalized inputs (N, C, H, W)", "mnist", "text"),
    FlatOption("data_limit", "use only the first N natural inputs (of an image folder: N spread over the classes)",
               None, "int", optional=True),
]

#: the unit and the target image, for transforms that take them (``context``)
UNIT_OPTIONS = {
    "neuron_selector": FlatOption("unit", "the unit to manipulate: a channel/feature index, or C,H,W for one "
                                  "position", 0, "selector"),
    "target": FlatOption("target", "image FV should show: a packaged target (cross, fake) or an image file", "cross",
                         "text"),
}

RUN_OPTIONS = [
    FlatOption("resume", "resume from a checkpoint written with the same settings", None, "text", optional=True),
    FlatOption("out", "output folder (model.pt, run.json)", os.path.join("out", "manipulate"), "text"),
]

#: options that replace each other: giving one as a flag drops the others from the YAML file
EXCLUSIVE = [("model", "torchvision"), ("steps", "epochs")]


def transform_options(name: str) -> List[FlatOption]:
    """The options of the registered transform ``name``: its unit and target (when it takes them) and
    its own settings, generated from its settings dataclasses."""
    from ..transforms import TRANSFORMS

    cls = TRANSFORMS.get(name)
    return [UNIT_OPTIONS[c] for c in ("target", "neuron_selector") if c in cls.context] + list(cls.options())


def transform_aliases(name: str) -> Dict[str, str]:
    """Old spellings of the transform's options still accepted (``checkpoint`` for ``checkpoint_path``)."""
    from ..transforms import TRANSFORMS

    return dict(getattr(TRANSFORMS.get(name), "aliases", {}) or {})


def manipulate_options(name: str = "gradient_slingshot") -> List[FlatOption]:
    """Every option of ``captum-slingshot manipulate --transform NAME`` (and of its ``--config`` file)."""
    return MODEL_OPTIONS + DATA_OPTIONS + PARAM_OPTIONS + transform_options(name) + RUN_OPTIONS


def read_yaml_mapping(path: str) -> Dict[Any, Any]:
    """The mapping a YAML file holds (``{}`` for an empty file); a missing file, invalid YAML or a
    document that is not a mapping is a :class:`SettingsError`."""
    import yaml

    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise SettingsError(f"config file {path!r} does not exist")
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise SettingsError(f"config file {path!r} is not valid YAML: {' '.join(str(err).split())}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SettingsError(f"cannot read config file {path!r}: {err}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SettingsError(f"config file {path!r} must hold a mapping of settings (key: value), "
                            f"got a {type(doc).__name__}")
    return doc


def coerce_settings(doc: Mapping[Any, Any], options: Sequence[FlatOption], where: str,
                    aliases: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """Check and convert a mapping of settings (``-`` or ``_`` in keys); unknown keys are errors that
    name ``where`` the mapping came from, the closest valid key and all valid keys."""
    by_key = {o.name: o for o in options}
    aliases = dict(aliases or {})
    out: Dict[str, Any] = {}
    for raw_key, value in doc.items():
        key = str(raw_key).replace("-", "_")
        key = aliases.get(key, key)
        if key not in by_key:
            close = difflib.get_close_matches(key, list(by_key), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(f"unknown key {raw_key!r} in {where}{hint}; valid keys: {', '.join(sorted(by_key))}")
        try:
            out[key] = by_key[key].convert(value)
        except ValueError as err:
            raise SettingsError(f"{where}, key {key!r}: {err}") from None
    return out


def read_config(path: str, options: Sequence[FlatOption], aliases: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The settings of a YAML file, checked and converted; unknown keys are errors."""
    path = os.path.expanduser(str(path))
    return coerce_settings(read_yaml_mapping(path), options, f"config file {path!r}", aliases)


def merge_settings(options: Sequence[FlatOption], from_file: Mapping[str, Any],
                   from_flags: Mapping[str, Any]) -> Dict[str, Any]:
    """Defaults, then the YAML file's settings, then the flags given (a flag also drops its alternatives
    from the file: ``--epochs`` drops ``steps``); one epoch when neither ``steps`` nor ``epochs`` is set."""
    settings = {o.name: o.default for o in options}
    from_file = dict(from_file)
    for group in EXCLUSIVE:
        if any(k in from_flags for k in group):
            for k in group:
                from_file.pop(k, None)
    settings.update(from_file)
    settings.update({k: v for k, v in from_flags.items() if k in settings})
    if "steps" in settings and "epochs" in settings and settings["steps"] is None and settings["epochs"] is None:
        settings["epochs"] = 1.0
    return settings
