"""Finding a layer of a model: by module (Captum's way) or by dotted name (``"features.3"``).

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(nn.ReLU(), nn.Flatten()))
    >>> layer_name(model, resolve_layer(model, "1.0")), first_conv_in_channels(model)
    ('1.0', 1)
    >>> resolve_layer(model, "1.9")
    Traceback (most recent call last):
    ...
    ValueError: unknown layer '1.9'. Did you mean '1.1', '1.0'? Layers of this model: 0, 1, 1.0, 1.1

A layer name written for a model wrapped in ``DistributedDataParallel`` (``"module.1.0"``) finds the
same layer of the bare model, and the other way round:

    >>> resolve_layer(model, "module.1.0") is model[1][0]
    True
"""

from __future__ import annotations

import difflib
from typing import Optional, Union

from torch import nn

__all__ = ["resolve_layer", "layer_name", "first_conv_in_channels"]


def resolve_layer(model: nn.Module, layer: Union[nn.Module, str]) -> nn.Module:
    """Return the submodule ``layer`` names (a module of ``model`` or a dotted name)."""
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError(
                f"layer {type(layer).__name__} is not a submodule of the given model; "
                "pass a module taken from this model (e.g. model.fc3) or its dotted name"
            )
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be an nn.Module or a dotted name, got {type(layer).__name__}")
    names = [n for n, _ in model.named_modules() if n]
    if layer not in names:
        layer = _wrapper_name(layer, names)
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        shown = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
        raise ValueError(f"unknown layer {layer!r}.{hint} Layers of this model: {shown}")
    return model.get_submodule(layer)


def _wrapper_name(layer: str, names: list) -> str:
    """The same layer across a ``DistributedDataParallel`` / ``DataParallel`` wrapper: ``"module.conv1"``
    names ``"conv1"`` of the bare model and ``"conv1"`` names ``"module.conv1"`` of a wrapped one."""
    if layer.startswith("module.") and layer[len("module."):] in names:
        return layer[len("module."):]
    if "module." + layer in names:
        return "module." + layer
    return layer


def layer_name(model: nn.Module, layer: nn.Module) -> str:
    """Dotted name of ``layer`` inside ``model``."""
    for name, module in model.named_modules():
        if module is layer:
            return name
    raise ValueError("layer is not a submodule of the model")


def first_conv_in_channels(model: nn.Module) -> Optional[int]:
    """Input channels of the model's first ``Conv2d`` (``None`` when it has none)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None
