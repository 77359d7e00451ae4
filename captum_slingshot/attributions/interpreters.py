"""Captum's attributions with a graph back to the weights: what an attack on explanations trains against.

Each :class:`Interpreter` wraps one attribution method and returns maps that can be
differentiated with respect to the model's weights:

* ``"grad_cam"`` -- Captum's ``LayerGradCam`` with ``grad_kwargs={"create_graph": True}``;
* ``"saliency"`` and ``"input_x_gradient"`` -- Captum's ``Saliency`` and ``InputXGradient``
  with their gradient function replaced by one that keeps the graph (``create_graph=True``);
* ``"gradient_x_activation"`` -- Captum's ``LayerGradientXActivation`` with ``create_graph``;
* ``"lrp_epsilon"`` and ``"lrp_zplus"`` -- :func:`~captum_slingshot.attributions.lrp.lrp`
  (Captum's ``LRP`` writes ``.data`` in place and cannot be differentiated).

``attribute`` returns Captum's own output (same shape, equal values); ``heatmap`` returns the map
a person looks at, ``(B, H, W)`` at the input's resolution: channels summed (for saliency, of
absolute gradients), layer maps upsampled bilinearly.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    >>> cam = make_interpreter("grad_cam", model)      # the last conv layer by default
    >>> maps = cam.heatmap(torch.randn(2, 1, 8, 8), target=1)
    >>> maps.shape, maps.requires_grad
    (torch.Size([2, 8, 8]), True)
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._utils.layers import layer_name, resolve_layer
from .._utils.registry import Registry
from .lrp import lrp

__all__ = ["Interpreter", "GradCAM", "Saliency", "InputXGradient", "GradientXActivation", "LRPEpsilon", "LRPZPlus",
           "INTERPRETERS", "make_interpreter", "available_interpreters", "last_conv_layer"]

Target = Union[int, Tensor]


def _targets(target: Target, batch: int, device: torch.device) -> Tensor:
    t = torch.as_tensor(target, device=device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(batch)
    if t.numel() != batch:
        raise ValueError(f"target must be one class or one per input ({batch}), got {t.numel()}")
    return t


def _graph_gradients(forward_fn: Any, inputs: Tuple[Tensor, ...], target_ind: Any = None,
                     additional_forward_args: Any = None) -> Tuple[Tensor, ...]:
    """Captum's ``compute_gradients`` (gradients of the target outputs w.r.t. the inputs), keeping the graph."""
    with torch.enable_grad():
        extra = () if additional_forward_args is None else (
            additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,))
        outputs = forward_fn(*inputs, *extra)
        if target_ind is not None:
            index = _targets(target_ind, outputs.shape[0], outputs.device)
            outputs = outputs.gather(1, index[:, None])[:, 0]
        return torch.autograd.grad(torch.unbind(outputs), inputs, create_graph=True)


def last_conv_layer(model: nn.Module) -> nn.Module:
    """The model's last ``Conv2d`` (where Grad-CAM looks by default); a clear error when it has none."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional layer and this model has none; pass layer=... (a module "
                         "whose output is (batch, channels, height, width))")
    return convs[-1]


def _upsample(maps: Tensor, size: Tuple[int, int]) -> Tensor:
    """``(B, h, w)`` to ``(B, H, W)`` (bilinear), unchanged when already that size."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


class Interpreter:
    """One attribution method on one model, differentiable with respect to the model's weights.

    Args:
        model: the classifier (logits ``(B, classes)``); evaluated as it is (put it in eval mode).
        layer: the layer of a layer method (a module of ``model`` or its dotted name); Grad-CAM
            defaults to the last convolution.
    """

    #: registry name
    name: ClassVar[str] = ""
    #: attributes to a hidden layer (``layer``) rather than to the input
    layer_method: ClassVar[bool] = False

    def __init__(self, model: nn.Module, layer: Union[None, nn.Module, str] = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.layer: Optional[nn.Module] = None
        if self.layer_method:
            self.layer = last_conv_layer(model) if layer is None else resolve_layer(model, layer)
        elif layer is not None:
            raise ValueError(f"{self.name} attributes to the input and takes no layer")

    def attribute(self, inputs: Tensor, target: Target) -> Tensor:  # pragma: no cover - interface
        """Captum's attribution (same shape and values as Captum's own method), with a graph to the weights."""
        raise NotImplementedError

    def heatmap(self, inputs: Tensor, target: Target) -> Tensor:
        """The map a person looks at: ``(B, H, W)`` at the input's resolution (channels summed)."""
        attr = self.attribute(inputs, target)
        maps = attr.sum(1) if attr.dim() == 4 else attr
        return _upsample(maps, tuple(inputs.shape[-2:]))

    def _leaf(self, inputs: Tensor) -> Tensor:
        return inputs if inputs.requires_grad else inputs.detach().requires_grad_(True)

    def __repr__(self) -> str:
        where = "" if self.layer is None else f", layer={layer_name(self.model, self.layer)!r}"
        return f"{type(self).__name__}({type(self.model).__name__}{where})"


class GradCAM(Interpreter):
    """Captum's ``LayerGradCam`` (ReLU of the gradient-weighted channel sum), keeping the graph."""

    name = "grad_cam"
    layer_method = True

    def attribute(self, inputs: Tensor, target: Target) -> Tensor:
        from captum.attr import LayerGradCam

        x = self._leaf(inputs)
        with torch.enable_grad():
            probe: Dict[str, Any] = {}

            def record(module: nn.Module, args: Any, out: Tensor) -> None:
                probe.setdefault("shape", tuple(out.shape))

            handle = self.layer.register_forward_hook(record)
            try:
                maps = LayerGradCam(self.model, self.layer).attribute(
                    x, target=_targets(target, x.shape[0], x.device), relu_attributions=True,
                    grad_kwargs={"create_graph": True})
            finally:
                handle.remove()
        if len(probe.get("shape", ())) != 4:
            raise ValueError(f"Grad-CAM needs a layer with a spatial output (batch, channels, height, width); layer "
                             f"{layer_name(self.model, self.layer)!r} outputs {probe.get('shape')}")
        return maps


class Saliency(Interpreter):
    """Captum's ``Saliency`` (absolute input gradient), keeping the graph."""

    name = "saliency"

    def attribute(self, inputs: Tensor, target: Target) -> Tensor:
        from captum.attr import Saliency as CaptumSaliency

        method = CaptumSaliency(self.model)
        method.gradient_func = _graph_gradients
        x = self._leaf(inputs)
        return method.attribute(x, target=_targets(target, x.shape[0], x.device), abs=True)


class InputXGradient(Interpreter):
    """Captum's ``InputXGradient``, keeping the graph."""

    name = "input_x_gradient"

    def attribute(self, inputs: Tensor, target: Target) -> Tensor:
        from captum.attr import InputXGradient as CaptumInputXGradient

        method = CaptumInputXGradient(self.model)
        method.gradient_func = _graph_gradients
        x = self._leaf(inputs)
        return method.attribute(x, target=_targets(target, x.shape[0], x.device))


class GradientXActivation(Interpreter):
    """Captum's ``LayerGradientXActivation`` at a layer (default: the last convolution), keeping the graph."""

    name = "gradient_x_activation"
    layer_method = True

    def attribute(self, inputs: Tensor, target: Target) -> Tensor:
        from captum.attr import LayerGradientXActivation

        x = self._leaf(inputs)
        with torch.enable_grad():
            return LayerGradientXActivation(self.model, self.layer).attribute(
                x, target=_targets(target, x.shape[0], x.device), grad_kwargs={"create_graph": True})


class LRPEpsilon(Interpreter):
    """LRP with the epsilon rule everywhere (equal to Captum's ``LRP`` with its default rules), differentiable."""

    name = "lrp_epsilon"
    rule = "epsilon"

    def attribute(self, inputs: Tensor, target: Target) -> Tensor:
        return lrp(self.model, inputs, _targets(target, inputs.shape[0], inputs.device), rule=self.rule)


class LRPZPlus(LRPEpsilon):
    """LRP with the z+ rule on linear and conv layers (Captum's ``Alpha1_Beta0_Rule``), differentiable."""

    name = "lrp_zplus"
    rule = "zplus"


#: name -> interpreter class
INTERPRETERS: Registry = Registry("interpreter")
for _cls in (GradCAM, Saliency, InputXGradient, GradientXActivation, LRPEpsilon, LRPZPlus):
    INTERPRETERS.register(_cls.name, _cls)


def make_interpreter(name: str, model: nn.Module, layer: Union[None, nn.Module, str] = None) -> Interpreter:
    """The registered interpreter ``name`` on ``model`` (and ``layer`` for layer methods)."""
    return INTERPRETERS.get(name)(model, layer)


def available_interpreters() -> Dict[str, str]:
    """Registered interpreters: ``{name: one-line description}``.

    Example:
        >>> sorted(available_interpreters())
        ['grad_cam', 'gradient_x_activation', 'input_x_gradient', 'lrp_epsilon', 'lrp_zplus', 'saliency']
    """
    return INTERPRETERS.describe()
