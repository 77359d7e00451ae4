"""Reload a saved circuit model: rebuild the :class:`~.wrap.CircuitModel` from the original model and its state dict.

``fooling_circuit`` and ``silent_units`` return a :class:`~.wrap.CircuitModel`, whose state dict no
longer fits the original model's class: the manipulated layer's weights move to
``<layer>.inner.*`` and the circuit's buffers join them. Those buffers are every number the
circuit uses (channel, ``k``, copied channel, detector background/tolerance/threshold, target
input and peak; silent unit filter, background, threshold and scale), so the state dict alone
says what was built: :func:`circuit_layers` reads the circuit layers off its keys and
:func:`rebuild_circuit_model` wires the same circuits around a copy of the original model and
loads every value (no recalibration, so outputs are bit-identical to the model that was saved).

Example:
    >>> import io, torch
    >>> from torch import nn
    >>> from captum_slingshot.transforms import get_transform
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> data = torch.full((100, 1, 8, 8), -0.5)
    >>> data[:, :, 2:6, 2:6] = torch.rand(100, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    >>> wrapped = get_transform("silent_units", layer="3", neuron_selector=0).fit(model, data).model
    >>> buffer = io.BytesIO(); torch.save(wrapped.state_dict(), buffer); _ = buffer.seek(0)
    >>> state = torch.load(buffer, weights_only=True)
    >>> circuit_layers(state)
    {'3': 'silent_units'}
    >>> reloaded = rebuild_circuit_model(model, state)
    >>> fv_like = torch.rand(2, 1, 8, 8)
    >>> torch.equal(reloaded(fv_like), wrapped(fv_like)), torch.equal(reloaded(data), model(data))
    (True, True)
    >>> rebuild_circuit_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), state)
    Traceback (most recent call last):
    ...
    ValueError: the state dict holds a silent_units layer at '3', but the model has no layer '3' ...
"""

from __future__ import annotations

import copy
from typing import Dict, Mapping, Tuple

import torch
from torch import Tensor, nn

from ..._utils.statedicts import some_names, state_dict_problems
from .layers import FoolingCircuitLayer, SilentUnitLayer
from .units import BackgroundDetector, DeadPixelProbe, TargetCone
from .wrap import CircuitModel, InputTap, replace_layer

__all__ = ["CIRCUIT_KEYS", "circuit_layers", "rebuild_circuit_model"]

#: transform name -> the keys (under the layer's name) whose presence marks its circuit layer
CIRCUIT_KEYS: Dict[str, Tuple[str, ...]] = {
    "fooling_circuit": ("detector.background", "detector.tol", "detector.threshold"),
    "silent_units": ("probe.weight", "probe.background", "threshold", "scale"),
}
#: keys every circuit layer of this version holds besides its markers
_REQUIRED = {"fooling_circuit": ("channel", "k"), "silent_units": ("channel",)}
_HOW = ("pass the original model the transform was fitted on (its weights do not matter: run.json's "
        "model_source; on the command line the same --model/--torchvision as for manipulate) and the model.pt "
        "written from it")


def circuit_layers(state_dict: Mapping[str, Tensor]) -> Dict[str, str]:
    """The circuit layers a state dict holds, ``{layer name: transform name}`` (shallowest first;
    ``{}`` for a plain state dict). A layer counts when all of its transform's :data:`CIRCUIT_KEYS`
    are there (e.g. ``logits.detector.threshold``: a fooling circuit at ``logits``)."""
    found: Dict[str, str] = {}
    for kind, markers in CIRCUIT_KEYS.items():
        first = "." + markers[0]
        for key in state_dict:
            if key.endswith(first):
                layer = key[: -len(first)]
                if all(f"{layer}.{m}" in state_dict for m in markers):
                    found[layer] = kind
    return dict(sorted(found.items(), key=lambda item: (item[0].count("."), item[0])))


def _number(state: Mapping[str, Tensor], key: str) -> float:
    value = state[key]
    if value.numel() != 1:
        raise ValueError(f"the state dict's {key!r} has shape {tuple(value.shape)}, not a single number; {_HOW}")
    return float(value)


def _circuit_layer(kind: str, name: str, inner: nn.Module, tap: InputTap, state: Mapping[str, Tensor]) -> nn.Module:
    """A circuit layer with the shapes of the saved one (its values are loaded afterwards)."""
    missing = [f"{name}.{k}" for k in _REQUIRED[kind] if f"{name}.{k}" not in state]
    if missing:
        raise ValueError(f"the state dict holds a {kind} layer at {name!r} but not {some_names(missing)}: it was "
                         f"saved by an older captum_slingshot, before circuit layers kept their channel and k as "
                         f"buffers; run the transform again (captum-slingshot manipulate --transform {kind} ...) "
                         f"and save the new model")
    channel = int(_number(state, f"{name}.channel"))
    if kind == "silent_units":
        weight = state[f"{name}.probe.weight"]
        if not bool((weight != 0).any()):
            raise ValueError(f"the state dict's {name + '.probe.weight'!r} is all zeros: not a silent unit's filter")
        probe = DeadPixelProbe(weight != 0, _number(state, f"{name}.probe.background"))
        return SilentUnitLayer(inner, tap, channel, probe, _number(state, f"{name}.threshold"),
                               _number(state, f"{name}.scale"))
    detector = BackgroundDetector(*(_number(state, f"{name}.detector.{k}") for k in ("background", "tol", "threshold")))
    decoy, source = None, None
    if f"{name}.source" in state:
        source = int(_number(state, f"{name}.source"))
    elif f"{name}.decoy.target_input" in state and f"{name}.decoy.peak" in state:
        decoy = TargetCone(state[f"{name}.decoy.target_input"], _number(state, f"{name}.decoy.peak"))
    else:
        raise ValueError(f"the fooling circuit at layer {name!r} has neither a copied channel ({name}.source) nor a "
                         f"decoy ({name}.decoy.target_input, {name}.decoy.peak) in the state dict; {_HOW}")
    return FoolingCircuitLayer(inner, tap, channel, detector, decoy=decoy, source=source,
                               k=_number(state, f"{name}.k"))


def rebuild_circuit_model(model: nn.Module, state_dict: Mapping[str, Tensor]) -> CircuitModel:
    """The :class:`~.wrap.CircuitModel` whose ``state_dict()`` was saved, rebuilt around a copy of ``model``.

    Args:
        model: the original model the transform was fitted on (any weights: all of them are
            replaced by the state dict's); it is not modified.
        state_dict: the wrapped model's state dict (``torch.load(path, weights_only=True)`` of the
            ``model.pt`` that ``captum-slingshot manipulate --transform fooling_circuit|silent_units``
            or a study with ``save_models`` writes).

    Returns:
        The wrapped model, on ``model``'s device and in its train/eval mode, every parameter and
        buffer loaded from ``state_dict`` (outputs identical to the saved model's).

    Raises:
        ValueError: the state dict holds no circuit layer, names a layer the model does not have,
            was saved by an older version, or does not fit the rebuilt model (the message lists the
            missing, unexpected and mis-shaped keys and says what to pass instead).
    """
    state = dict(state_dict)
    layers = circuit_layers(state)
    if not layers:
        raise ValueError("the state dict holds no circuit layer (no '<layer>.detector.threshold' of a fooling circuit "
                         "or '<layer>.probe.weight' of a silent unit): it is a plain state dict, load it with "
                         "model.load_state_dict(state_dict)")
    net, tap = copy.deepcopy(model), InputTap()
    for name, kind in layers.items():  # shallowest first: a circuit added to a circuit sits at <layer>.inner
        try:
            inner = net.get_submodule(name)
        except AttributeError:
            names = [n for n, _ in net.named_modules() if n]
            raise ValueError(f"the state dict holds a {kind} layer at {name!r}, but the model has no layer "
                             f"{name!r} (its layers: {some_names(names, 6)}); {_HOW}") from None
        replace_layer(net, name, _circuit_layer(kind, name, inner, tap, state))
    wrapped = CircuitModel(net, tap)
    problems = state_dict_problems(wrapped.state_dict(), state, "state dict vs rebuilt model")
    if problems:
        found = ", ".join(f"{kind} at {name!r}" for name, kind in layers.items())
        raise ValueError(f"the state dict ({found}) does not fit {type(model).__name__} with those circuits: "
                         + "; ".join(problems) + f"; {_HOW}")
    wrapped.load_state_dict(state)
    device = next(iter(model.parameters()), torch.zeros(0)).device
    return wrapped.to(device).train(model.training)
