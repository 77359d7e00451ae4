"""Flat options as ``argparse`` flags: one flag per option, converted the way YAML values are.

Example:
    >>> import argparse
    >>> from captum_slingshot._utils.settings import FlatOption
    >>> p = argparse.ArgumentParser()
    >>> add_options(p, [FlatOption("batch_size", "natural batch size", 32, "int"),
    ...                 FlatOption("tunnel", "sample only the ends", True, "bool")])
    >>> vars(p.parse_args(["--batch-size", "8", "--no-tunnel"]))
    {'batch_size': 8, 'tunnel': False}
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, Sequence

from .._utils.settings import FlatOption

__all__ = ["add_options", "add_model_options", "metavar", "ALIAS_FLAGS"]

#: extra spellings of flags (old names that still work)
ALIAS_FLAGS: Dict[str, str] = {"checkpoint_path": "--checkpoint"}
_METAVARS = {"int": "N", "float": "X", "ints": "I,J,...", "floats": "X[,X,X]", "selector": "INDEX", "tensor": "FILE",
             "text": "VALUE"}
_NAMED = {"model": "SPEC", "torchvision": "NAME", "weights": "FILE|default", "layer": "NAME", "data": "mnist|DIR|FILE",
          "target": "NAME|FILE", "shape": "C,H,W", "out": "DIR", "resume": "FILE", "checkpoint_path": "FILE",
          "trajectory_strategy": "NAME", "transform_robust": "NAME", "preserve_fv_strategy": "NAME", "device": "DEVICE"}


def metavar(opt: FlatOption) -> str:
    """What the flag's value looks like in ``--help``."""
    if opt.choices and opt.kind == "text":
        return "{" + ",".join(opt.choices) + "}"
    return _NAMED.get(opt.name) or _METAVARS[opt.kind]


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def add_options(parser: argparse._ActionsContainer, options: Sequence[FlatOption], suppress: bool = False) -> None:
    """Add the options as flags (``suppress``: a flag not given leaves no attribute, for merging with a YAML file)."""
    for opt in options:
        default = argparse.SUPPRESS if suppress else opt.default
        flags = [opt.flag] + ([ALIAS_FLAGS[opt.name]] if opt.name in ALIAS_FLAGS else [])
        if opt.kind == "bool":
            action = "store_false" if opt.default is True else "store_true"
            parser.add_argument(*flags, dest=opt.name, action=action, default=default, help=opt.help)
            continue

        def convert(text: str, _opt: FlatOption = opt) -> Any:
            try:
                return _opt.convert(text)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None

        convert.__name__ = opt.kind
        shown = "" if opt.default is None else f" (default: {_shown(opt.default)})"
        parser.add_argument(*flags, dest=opt.name, type=convert, default=default, metavar=metavar(opt),
                            help=opt.help + shown)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model and parametrization flags every command that loads a model shares."""
    from ..experiments.options import MODEL_OPTIONS, PARAM_OPTIONS

    add_options(parser.add_argument_group("model"), MODEL_OPTIONS)
    add_options(parser.add_argument_group("preprocessing and parametrization"), PARAM_OPTIONS)
