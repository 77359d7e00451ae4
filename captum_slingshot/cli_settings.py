"""Command-line options as data, and settings merged from defaults, a YAML file and flags.

Each :class:`Option` is one flag and, for ``manipulate``, one key of the ``--config`` YAML file
(the flag's name with ``_`` for ``-``: ``--batch-size`` is ``batch_size``). Precedence: the
defaults, then the YAML file, then the flags given on the command line. A key the YAML file does
not know is an error that names it and lists the valid keys.

Example:
    >>> from captum_slingshot.cli_settings import MANIPULATE_OPTIONS, merge_settings
    >>> from_yaml, from_flags = {"gamma": 5.0, "alpha": 0.5}, {"gamma": 20.0, "steps": 10}
    >>> s = merge_settings(MANIPULATE_OPTIONS, from_yaml, from_flags)
    >>> s["gamma"], s["alpha"], s["steps"], s["sigma"]
    (20.0, 0.5, 10, 0.1)
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from .cli_loading import CLIError, parse_floats, parse_ints, parse_selector

__all__ = ["Option", "MODEL_OPTIONS", "PARAM_OPTIONS", "MANIPULATE_OPTIONS", "add_options",
           "read_config", "read_yaml_mapping", "coerce_settings", "merge_settings", "slingshot_kwargs"]


# -- value converters: text (a flag) or a YAML value -> the setting ---------------------------
def _none(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip().lower() in ("none", "null", ""))


def _number(kind: type, optional: bool = False) -> Callable[[Any], Any]:
    word = "an integer" if kind is int else "a number"

    def conv(v: Any) -> Any:
        if optional and _none(v):
            return None
        if isinstance(v, bool) or isinstance(v, (list, dict)):
            raise CLIError(f"expected {word}, got {v!r}")
        try:
            return kind(str(v).strip())
        except ValueError:
            raise CLIError(f"expected {word}{' or none' if optional else ''}, got {v!r}") from None

    conv.__name__ = f"{'optional ' if optional else ''}{kind.__name__}"
    return conv


def _text(optional: bool = False) -> Callable[[Any], Any]:
    def conv(v: Any) -> Any:
        if optional and _none(v):
            return None
        if isinstance(v, (bool, list, dict)) or v is None:
            raise CLIError(f"expected a text value, got {v!r}")
        return str(v)

    conv.__name__ = "text"
    return conv


def _ints(v: Any) -> Any:
    return None if _none(v) else parse_ints(v, "the value")


def _floats(v: Any) -> Any:
    return None if _none(v) else parse_floats(v, "the value")


def _selector(v: Any) -> Any:
    return parse_selector(v)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise CLIError(f"expected true or false, got {v!r}")


@dataclass(frozen=True)
class Option:
    """One flag (``--key-with-dashes``) and YAML key (``key_with_underscores``)."""

    key: str
    help: str
    default: Any = None
    convert: Callable[[Any], Any] = _text()
    choices: Optional[Sequence[str]] = None
    metavar: Optional[str] = None
    #: a boolean switched by a flag: "store_true" (``--key``) or "store_false" (``--no-key``)
    switch: Optional[str] = None
    #: flag spelling when it is not ``--key-with-dashes``
    flag: Optional[str] = None

    @property
    def flags(self) -> List[str]:
        if self.flag:
            return [self.flag]
        dashed = self.key.replace("_", "-")
        return [f"--no-{dashed}" if self.switch == "store_false" else f"--{dashed}"]

    def coerce(self, value: Any) -> Any:
        value = _bool(value) if self.switch else self.convert(value)
        if self.choices is not None and value is not None and value not in self.choices:
            raise CLIError(f"expected one of {', '.join(self.choices)}, got {value!r}")
        return value


MODEL_OPTIONS = [
    Option("model", "the model: 'mnist_cnn' (the paper's MNIST CNN; the default unless --torchvision is "
           "given) or an import path 'package.module:factory' called with no arguments", metavar="SPEC"),
    Option("torchvision", "a torchvision model name (e.g. resnet18), built with weights=None; needs --weights "
           "(nothing is downloaded)", metavar="NAME"),
    Option("weights", "state dict to load into the model (torch.save(model.state_dict(), FILE)); for "
           "mnist_cnn without it: the cached pretrained_mnist_cnn()", metavar="FILE"),
    Option("num_classes", "num_classes for --torchvision models whose head is not the default",
           convert=_number(int, optional=True), metavar="N"),
    Option("layer", "layer holding the unit(s), a dotted module name (default: logits for mnist_cnn)",
           metavar="NAME"),
]

PARAM_OPTIONS = [
    Option("param", "FV parametrization of the auditor", "pixel",
           choices=("pixel", "lucent_pixel", "lucent_fourier", "paper_fourier")),
    Option("shape", "FV image shape C,H,W (default: the data's shape; 1,28,28 for mnist_cnn; 3,224,224 "
           "for torchvision)", convert=_ints, metavar="C,H,W"),
    Option("mean", "per-channel normalization mean the model expects (default: MNIST's for mnist_cnn or "
           "--data mnist, ImageNet's for RGB)", convert=_floats, metavar="M[,M,M]"),
    Option("std", "per-channel normalization std (give with --mean)", convert=_floats, metavar="S[,S,S]"),
]

_DATA = Option("data", "natural inputs: 'mnist' (normalized MNIST training split) or a .pt file with a "
               "tensor of normalized inputs (N, C, H, W)", "mnist", metavar="mnist|FILE")
_DATA_LIMIT = Option("data_limit", "use only the first N natural inputs", convert=_number(int, optional=True),
                     metavar="N")


def _slingshot_default(name: str) -> Any:
    from .transforms.slingshot import GradientSlingshot

    return inspect.signature(GradientSlingshot.__init__).parameters[name].default


def _gs(key: str, help: str, convert: Callable[[Any], Any], **kw: Any) -> Option:
    """An option of GradientSlingshot whose default is the class's own."""
    return Option(key, help, _slingshot_default(key), convert, **kw)


_F, _I = _number(float), _number(int)
_OF, _OI = _number(float, optional=True), _number(int, optional=True)

MANIPULATE_OPTIONS = MODEL_OPTIONS + [
    _DATA, _DATA_LIMIT,
    Option("target", "image FV should show: a packaged target (cross, fake) or an image file", "cross",
           metavar="NAME|FILE"),
    Option("unit", "the unit to manipulate: a channel/feature index, or C,H,W for one position",
           0, _selector, metavar="INDEX"),
] + PARAM_OPTIONS + [
    _gs("gamma", "slope of the bowl: the unit's input gradient is trained towards gamma (q* - q)", _F),
    _gs("alpha", "weight of the preservation loss in [0, 1]", _F),
    _gs("sigma", "half-width of the noise around the tunnel", _F),
    _gs("w", "weight of the unit itself inside the layer preservation loss, in [0, 1]", _F),
    _gs("loss", "manipulation loss", _text(), choices=("gradient", "direction", "activation")),
    _gs("bowl_level", "activation loss: fit the bowl's values (fixed, the paper) or only their differences "
        "between samples (free: the unit keeps its level)", _text(), choices=("fixed", "free")),
    _gs("bowl_shape", "activation loss: the bowl gamma (1 - d^2) (quadratic, the paper) or the cone "
        "gamma (1 - d)", _text(), choices=("quadratic", "cone")),
    _gs("preservation", "preservation loss", _text(), choices=("activation", "logits")),
    _gs("lr", "AdamW learning rate", _F),
    _gs("weight_decay", "AdamW weight decay", _F),
    _gs("clip_grad_norm", "gradient norm clipping (none: off)", _OF),
    _gs("steps", "training steps (wins over --epochs)", _OI, metavar="N"),
    Option("epochs", "training epochs over the natural data (default 1 when --steps is not given)",
           None, _OF, metavar="E"),
    _gs("batch_size", "natural batch size", _I, metavar="N"),
    _gs("manipulation_batch_size", "synthetic (manipulation) batch size", _I, metavar="N"),
    _gs("aim_radius", "aim at the point within this radius that looks most like the target "
        "(e.g. lr*steps of the auditor's clipped SGD, 19.5 for gc); none: aim at the target itself", _OF,
        metavar="R"),
    _gs("trajectory_strategy", "AM strategy whose FV trajectories are mixed into the manipulation "
        "batches (e.g. gc); none: the paper's tunnel only", _text(optional=True), metavar="NAME"),
    _gs("trajectory_fraction", "share of each manipulation batch drawn from the trajectories", _F),
    _gs("trajectory_refresh", "re-run the trajectories every N steps", _I, metavar="N"),
    _gs("trajectory_starts", "FV starts per trajectory refresh", _I, metavar="N"),
    _gs("transform_robust", "apply this AM strategy's / transform set's random transforms inside the "
        "manipulation loss (e.g. tr, lucent)", _text(optional=True), metavar="NAME"),
    _gs("preserve_fv", "weight of FV-path preservation: the layer's other units keep their original "
        "activations along their own FV paths, so their FVs stay as they were (0: off, the paper)", _F),
    _gs("preserve_fv_units", "channels whose FV paths --preserve-fv keeps (default: every other channel, "
        "at most 64)", _ints, metavar="I,J,..."),
    _gs("tunnel", "sample only the two ends of the tunnel, not the whole segment", None, switch="store_false"),
    _gs("seed", "seed of the manipulation batches, data order and transforms", _I),
    _gs("device", "torch device to train on, e.g. cuda (default: cpu)", _text(optional=True)),
    Option("checkpoint", "write an atomic checkpoint here every --checkpoint-every steps", None,
           _text(optional=True), metavar="FILE"),
    _gs("checkpoint_every", "steps between checkpoints", _I, metavar="N"),
    Option("resume", "resume from a checkpoint written with the same settings", None, _text(optional=True),
           metavar="FILE"),
    Option("out", "output folder (model.pt, run.json)", os.path.join("out", "manipulate"), metavar="DIR"),
    Option("progress", "hide progress bars", True, switch="store_false"),
]

#: flags that replace each other: giving one on the command line drops the others from the YAML file
_EXCLUSIVE = [("model", "torchvision"), ("steps", "epochs")]


def add_options(parser: argparse._ActionsContainer, options: Sequence[Option], suppress: bool = False) -> None:
    """Add the options as flags. ``suppress``: a flag not given leaves no attribute (for merging)."""
    for opt in options:
        default = argparse.SUPPRESS if suppress else opt.default
        shown = "" if opt.default is None or opt.switch else f" (default: {_show(opt.default)})"
        if opt.switch:
            parser.add_argument(*opt.flags, dest=opt.key, action=opt.switch, default=default,
                                help=opt.help)
            continue

        def convert(text: str, _opt: Option = opt) -> Any:
            try:
                return _opt.coerce(text)
            except CLIError as err:
                raise argparse.ArgumentTypeError(str(err)) from None

        convert.__name__ = getattr(opt.convert, "__name__", "value")
        parser.add_argument(*opt.flags, dest=opt.key, type=convert, default=default,
                            metavar=opt.metavar or (("{" + ",".join(opt.choices) + "}") if opt.choices else opt.key.upper()),
                            help=opt.help + shown)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def read_config(path: str, options: Sequence[Option]) -> Dict[str, Any]:
    """The settings of a YAML file, checked and converted; unknown keys are errors."""
    path = os.path.expanduser(str(path))
    return coerce_settings(read_yaml_mapping(path), options, f"config file {path!r}")


def read_yaml_mapping(path: str) -> Dict[Any, Any]:
    """The mapping a YAML file holds (``{}`` for an empty file); a missing file, invalid YAML
    or a document that is not a mapping is a :class:`CLIError`."""
    import yaml

    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise CLIError(f"config file {path!r} does not exist")
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise CLIError(f"config file {path!r} is not valid YAML: {' '.join(str(err).split())}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CLIError(f"cannot read config file {path!r}: {err}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise CLIError(f"config file {path!r} must hold a mapping of settings (key: value), "
                       f"got a {type(doc).__name__}")
    return doc


def coerce_settings(doc: Dict[Any, Any], options: Sequence[Option], where: str) -> Dict[str, Any]:
    """Check and convert a mapping of settings (``-`` or ``_`` in keys); unknown keys are errors
    that name ``where`` the mapping came from, the closest valid key and all valid keys."""
    by_key = {o.key: o for o in options}
    out: Dict[str, Any] = {}
    for raw_key, value in doc.items():
        key = str(raw_key).replace("-", "_")
        if key not in by_key:
            close = difflib.get_close_matches(key, list(by_key), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CLIError(f"unknown key {raw_key!r} in {where}{hint}; valid keys: "
                           f"{', '.join(sorted(by_key))}")
        try:
            out[key] = by_key[key].coerce(value)
        except CLIError as err:
            raise CLIError(f"{where}, key {key!r}: {err}") from None
    return out


def merge_settings(options: Sequence[Option], from_file: Dict[str, Any], from_flags: Dict[str, Any],
                   config_path: Optional[str] = None) -> Dict[str, Any]:
    """Defaults, then the YAML file's settings, then the flags given."""
    settings = {o.key: o.default for o in options}
    from_file = dict(from_file)
    for group in _EXCLUSIVE:
        if any(k in from_flags for k in group):
            for k in group:
                from_file.pop(k, None)
    settings.update(from_file)
    settings.update({k: v for k, v in from_flags.items() if k in settings})
    if settings.get("steps") is None and settings.get("epochs") is None:
        settings["epochs"] = 1.0
    return settings


#: settings of the command, not of the transform
_NOT_SLINGSHOT = {"model", "torchvision", "weights", "num_classes", "layer", "data", "data_limit", "target",
                  "unit", "param", "shape", "mean", "std", "checkpoint", "resume", "out", "progress"}


def slingshot_kwargs(settings: Dict[str, Any]) -> Dict[str, Any]:
    """The keyword arguments of :class:`GradientSlingshot` among the merged settings."""
    kw = {k: v for k, v in settings.items() if k not in _NOT_SLINGSHOT}
    kw["checkpoint_path"] = settings.get("checkpoint")
    kw["progress"] = bool(settings.get("progress", True))
    return kw
