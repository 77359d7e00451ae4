"""The one module that imports lucent: names, reuse, and a leak-free ``render_vis``.

Auditors run lucent's ``render_vis``; the slingshot is aimed at exactly that.
Lucent (torch-lucent 0.1.8) has quirks this shim fixes in one place:

* every ``render_vis`` call registers a forward hook on *every* submodule and
  never removes them -- :func:`render_vis` removes whatever the call added,
  also when it raises;
* tensors go to ``cuda:0`` whenever CUDA exists, whatever the model's device
  -- the wrapper points lucent's module-level devices at the model's device
  for the duration of the call;
* its transforms draw from numpy's global RNG, which its ``set_seed`` leaves
  alone -- ``seed=`` seeds numpy and torch;
* ``show_image=True`` and a progress bar are its defaults -- here both are off
  unless asked;
* importing it emits a ``FutureWarning`` from ``torch.jit.script`` -- silenced.

Lucent names layers by joining the module path with ``_`` (``features.3`` ->
``features_3``); :func:`lucent_layer_name` and :func:`module_from_lucent_name`
translate between the two.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.compat import lucent
    >>> from captum_slingshot.fv import count_hooks
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    >>> imgs = lucent.render_vis(model, lucent.objective(model, model[0], 1),
    ...                          lucent.param_f_from(lucent.native_image(32)), thresholds=(5,), seed=0)
    >>> imgs[0].shape, count_hooks(model)
    ((1, 32, 32, 3), 0)
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    import lucent.optvis.param as lucent_param
    import lucent.optvis.param.color as lucent_color
    import lucent.optvis.param.spatial as lucent_spatial
    import lucent.optvis.render as lucent_render
    import lucent.optvis.transform as lucent_transform
    from lucent.optvis import objectives as lucent_objectives

from .._utils.devices import model_device
from .._utils.layers import layer_name, resolve_layer
from .._utils.selectors import Direction
from ..fv.param import Parametrization

__all__ = [
    "lucent_layer_name",
    "module_from_lucent_name",
    "native_image",
    "param_f_from",
    "objective",
    "standard_transforms",
    "render_vis",
    "lucent_devices",
]


def lucent_layer_name(model: nn.Module, layer: Union[nn.Module, str]) -> str:
    """Lucent's name for a layer of ``model`` (dotted path joined with ``_``)."""
    return layer_name(model, resolve_layer(model, layer)).replace(".", "_")


def module_from_lucent_name(model: nn.Module, name: str) -> nn.Module:
    """The module that lucent calls ``name``; errors if unknown or ambiguous."""
    matches = [m for n, m in model.named_modules() if n and n.replace(".", "_") == name]
    if not matches:
        known = [n.replace(".", "_") for n, _ in model.named_modules() if n]
        raise ValueError(f"no layer is named {name!r} in lucent's naming; known: {known[:12]}")
    if len(matches) > 1:
        raise ValueError(f"lucent name {name!r} is ambiguous in this model ({len(matches)} modules)")
    return matches[0]


def native_image(w: int, h: Optional[int] = None, batch: int = 1, channels: Optional[int] = None,
                 fft: bool = True, decorrelate: bool = True, sd: Optional[float] = None):
    """Lucent's own ``param.image`` (its ``(params, image_f)`` pair), unmodified.

    Build it inside :func:`lucent_devices` (or through :func:`render_vis`) to
    get tensors on the model's device.
    """
    return lambda: lucent_param.image(w, h=h, sd=sd, batch=batch, decorrelate=decorrelate,
                                      fft=fft, channels=channels)


def param_f_from(factory_or_param: Union[Callable, Parametrization], q: Optional[Tensor] = None,
                 batch: int = 1, seed: int = 0, sd: float = 0.01) -> Callable[[], Tuple[List[Tensor], Callable[[], Tensor]]]:
    """A lucent ``param_f`` (returning ``(params, image_f)``).

    Pass a callable from :func:`native_image` to use lucent's code as is, or one
    of our :class:`~captum_slingshot.fv.param.Parametrization` objects (with
    starting values ``q`` or seeded ones); the latter is created on the device
    that :func:`render_vis` is running on.
    """
    if not isinstance(factory_or_param, Parametrization):
        return factory_or_param
    p = factory_or_param

    def param_f():
        dev = lucent_spatial.device
        start = q if q is not None else p.sample_init(batch, generator=torch.Generator().manual_seed(seed), sd=sd)
        t = start.detach().clone().to(dev).requires_grad_(True)
        return [t], lambda: p.raw_image(t)

    return param_f


def objective(model: nn.Module, layer: Union[nn.Module, str], neuron_selector: Any):
    """Lucent objective for a Captum-style unit (lucent's own objective functions).

    ``int`` -> ``objectives.channel`` (spatial mean; logits too), ``(c, y, x)``
    -> ``objectives.neuron``, :class:`Direction` -> mean of ``<h, v>`` (lucent's
    ``direction`` uses cosine similarity, which is a different unit), callable
    -> a wrapped objective.
    """
    name = lucent_layer_name(model, layer)
    if isinstance(neuron_selector, int) and not isinstance(neuron_selector, bool):
        return lucent_objectives.channel(name, neuron_selector)
    if isinstance(neuron_selector, tuple) and len(neuron_selector) == 1:
        return lucent_objectives.channel(name, neuron_selector[0])
    if isinstance(neuron_selector, tuple) and len(neuron_selector) == 3:
        c, y, x = neuron_selector
        return lucent_objectives.neuron(name, c, x=x, y=y)
    if isinstance(neuron_selector, Direction) or callable(neuron_selector):
        sel = neuron_selector
        return lucent_objectives.Objective(lambda hook: -sel(hook(name)).mean(), name=name,
                                           description=f"{sel!r} of {name}")
    raise ValueError(f"cannot express neuron_selector {neuron_selector!r} as a lucent objective")


def standard_transforms() -> list:
    """A copy of lucent's ``transform.standard_transforms`` list."""
    return list(lucent_transform.standard_transforms)


def _decorrelate_on(device: torch.device) -> Callable[[Tensor], Tensor]:
    matrix = torch.tensor(lucent_color.color_correlation_normalized.T)

    def decorrelate(tensor: Tensor) -> Tensor:  # lucent's math, on the tensor's device
        t = tensor.permute(0, 2, 3, 1)
        t = torch.matmul(t, matrix.to(t.device))
        return t.permute(0, 3, 1, 2)

    return decorrelate


@contextlib.contextmanager
def lucent_devices(device: Union[str, torch.device]) -> Iterator[None]:
    """Temporarily make lucent put its tensors on ``device`` (not ``cuda:0``)."""
    device = torch.device(device)
    saved = (lucent_spatial.device, lucent_transform.device, lucent_color._linear_decorrelate_color)
    lucent_spatial.device = device
    lucent_transform.device = device
    lucent_color._linear_decorrelate_color = _decorrelate_on(device)
    try:
        yield
    finally:
        lucent_spatial.device, lucent_transform.device, lucent_color._linear_decorrelate_color = saved


def _hook_snapshot(model: nn.Module) -> Dict[int, Tuple[nn.Module, set]]:
    return {id(m): (m, set(m._forward_hooks.keys())) for m in model.modules()}


def render_vis(
    model: nn.Module,
    objective_f: Any,
    param_f: Optional[Callable] = None,
    optimizer: Optional[Callable] = None,
    transforms: Optional[list] = None,
    thresholds: Sequence[int] = (512,),
    seed: Optional[int] = None,
    progress: bool = False,
    show_image: bool = False,
    **kwargs: Any,
) -> List[np.ndarray]:
    """Lucent's ``render_vis``, unmodified in its math, without its side effects.

    Same arguments as ``lucent.optvis.render.render_vis`` (``preprocess``,
    ``fixed_image_size``, ...), plus ``seed`` (seeds numpy and torch so that
    lucent's transforms are reproducible). No hooks remain on ``model``
    afterwards, nothing opens a window, no progress bar unless ``progress``.
    Returns lucent's list of ``(B, H, W, C)`` arrays, one per threshold.
    """
    if seed is not None:
        np.random.seed(seed)
        torch.manual_seed(seed)
    before = _hook_snapshot(model)
    try:
        with lucent_devices(model_device(model)), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return lucent_render.render_vis(
                model, objective_f, param_f=param_f, optimizer=optimizer, transforms=transforms,
                thresholds=tuple(thresholds), progress=progress, show_image=show_image, **kwargs,
            )
    finally:
        for m in model.modules():
            old = before.get(id(m), (m, set()))[1]
            for key in [k for k in m._forward_hooks.keys() if k not in old]:
                del m._forward_hooks[key]
                getattr(m, "_forward_hooks_with_kwargs", {}).pop(key, None)
                getattr(m, "_forward_hooks_always_called", {}).pop(key, None)
