"""A registered transform built from merged flat settings, and fitted on the model they name.

The command line's ``manipulate`` and every cell of a study go through here: the model, its layer,
the natural data and the auditor's parametrization are loaded from the settings
(:mod:`.loading`); the transform gets the context it declares (layer, unit, target,
parametrization) and its own options; options that hold a tensor (``input_aim``) are read from
their files.

Example:
    >>> from captum_slingshot.experiments.manipulation import transform_settings
    >>> sorted(transform_settings("gradient_slingshot", {"gamma": 2.0, "model": "mnist_cnn", "unit": 3}))
    ['gamma']
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple


from .errors import SettingsError
from .loading import (
    LoadedModel, build_param, check_model_input, default_layer, load_data, load_model, load_tensor, resolve_preprocess,
    resolve_target,
)

__all__ = ["uses_labels", "load_for_manipulation", "transform_settings", "build_transform", "fit_manipulation"]


def uses_labels(transform: str) -> bool:
    """Whether the registered transform reads labels from its natural data (``uses_labels``)."""
    from ..transforms import TRANSFORMS

    return bool(getattr(TRANSFORMS.get(transform), "uses_labels", False))


def load_for_manipulation(s: Mapping[str, Any], labels: bool = False) -> Tuple[LoadedModel, str, Any, Dict[str, Any], Any]:
    """What a manipulation of ``s`` needs besides its settings: the model, the layer's name, the natural
    data (and where it came from) and the auditor's parametrization. The model's preprocessing
    (``resize``, ``crop``, ``mean``, ``std``; :func:`.loading.resolve_preprocess`) prepares the data
    and gives the parametrization its mean/std and size. ``labels``: the natural data as
    ``(inputs, labels)`` where labels are known."""
    loaded = load_model(model=s.get("model"), torchvision=s.get("torchvision"), weights=s.get("weights"),
                        num_classes=s.get("num_classes"), device=s.get("device"), progress=s.get("progress", True))
    layer = default_layer(loaded, s.get("layer"))
    spec = s.get("data") or "mnist"
    preprocess = resolve_preprocess(loaded, spec, s.get("resize"), s.get("crop"), s.get("mean"), s.get("std"))
    data, data_source = load_data(spec, s.get("data_limit"), labels=labels, preprocess=preprocess)
    inputs = data[0] if isinstance(data, tuple) else data
    check_model_input(loaded, inputs, preprocess=preprocess)
    param = build_param(s.get("param") or "pixel", s.get("shape"), None, None, loaded, data=inputs, data_spec=spec,
                        preprocess=preprocess)
    return loaded, layer, data, data_source, param


def transform_settings(name: str, s: Mapping[str, Any]) -> Dict[str, Any]:
    """The transform's own options among merged settings ``s`` (tensor options read from their files)."""
    from ..transforms import TRANSFORMS

    out: Dict[str, Any] = {}
    for opt in TRANSFORMS.get(name).options():
        if opt.name not in s:
            continue
        value = s[opt.name]
        if opt.kind == "tensor" and isinstance(value, str):
            value = load_tensor(value, f"--{opt.name.replace('_', '-')}")
        out[opt.name] = value
    return out


def build_transform(name: str, s: Mapping[str, Any], layer: str, param: Any) -> Tuple[Any, Optional[str]]:
    """The transform ``name`` from merged settings ``s``: ``(transform, target path or None)``."""
    from ..transforms import TRANSFORMS, get_transform

    cls = TRANSFORMS.get(name)
    context: Dict[str, Any] = {}
    target = None
    if "layer" in cls.context:
        context["layer"] = layer
    if "neuron_selector" in cls.context:
        context["neuron_selector"] = s.get("unit", 0)
    if "target" in cls.context:
        target = resolve_target(s.get("target") or "cross")
        context["target"] = target
    if "param" in cls.context:
        context["param"] = param
    return get_transform(name, **context, **transform_settings(name, s)), target


def fit_manipulation(s: Mapping[str, Any], loaded: LoadedModel, layer: str, data: Any, param: Any,
                     resume: Optional[str] = None, transform: str = "gradient_slingshot") -> Tuple[Any, Optional[str]]:
    """Fit the transform of the merged settings ``s``; returns ``(result, target path or None)``."""
    if "unit" in s:
        from .loading import model_units

        s = dict(s, unit=model_units(loaded.model, layer, param, [s["unit"]])[0])
    t, target = build_transform(transform, s, layer, param)
    try:
        return t.fit(loaded.model, data, resume=resume), target
    except FloatingPointError as err:
        raise SettingsError(str(err)) from None
