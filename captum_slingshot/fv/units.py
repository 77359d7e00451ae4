"""Units in Captum's terms: a layer plus a ``neuron_selector``.

A *unit* is what feature visualization maximizes: a logit, a conv channel
(averaged over space), a single spatial neuron, or a direction in a layer's
channel space. As in Captum's neuron methods, ``layer`` is a module (or here
also a dotted name such as ``"features.3"``) and ``neuron_selector`` is

* an ``int`` or ``tuple`` indexing the layer output without its batch
  dimension; dimensions left over are averaged (so ``3`` on a conv layer means
  "channel 3, spatial mean", and ``(3, 5, 5)`` the neuron at row 5, column 5),
* a :class:`Direction` (``<h, v>`` over channels, spatial mean),
* a :class:`Token` for a transformer's layer output ``(B, tokens, D)``: a feature or a
  :class:`Direction` over ``D`` (a direction in the residual stream) of one token, by default
  token 0 (ViT's CLS token), or averaged over tokens with ``token=None``, or
* a callable taking the layer output ``(B, ...)`` and returning ``(B,)``.

On a transformer (a model containing ``nn.MultiheadAttention``, :func:`has_attention`) a layer
with outputs ``(B, tokens, D)`` has ``D`` units per token, not "channels on dimension 1":
:func:`layer_units` lists them as :class:`Token` selectors.

Activations are read with forward hooks that are removed after every call,
also when the forward raises.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv.units import unit_activation
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    >>> x = torch.randn(2, 1, 8, 8)
    >>> unit_activation(model, "0", 2, x).shape
    torch.Size([2])
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .._utils.devices import model_device
from .._utils.modes import eval_mode

from .._utils.attention import has_attention, math_attention
from .._utils.hooks import LayerCapture, LayerNotReachedError, capture_layer, count_hooks
from .._utils.layers import layer_name, resolve_layer
from .._utils.selectors import Direction, NeuronSelector, Token, check_selector, select_neuron

__all__ = [
    "Direction",
    "Token",
    "NeuronSelector",
    "has_attention",
    "math_attention",
    "LayerNotReachedError",
    "resolve_layer",
    "layer_name",
    "select_neuron",
    "check_selector",
    "LayerCapture",
    "capture_layer",
    "unit_activation",
    "count_hooks",
    "layer_output_shape",
    "layer_units",
]


def unit_activation(
    model: nn.Module,
    layer: Union[nn.Module, str],
    neuron_selector: NeuronSelector,
    inputs: Tensor,
) -> Tensor:
    """Activation ``(B,)`` of one unit for a batch of (normalized) inputs."""
    out = capture_layer(model, layer, inputs)
    check_selector(neuron_selector, out.shape[1:], f"layer {layer!r}" if isinstance(layer, str) else "the layer")
    return select_neuron(out, neuron_selector)


def layer_output_shape(model: nn.Module, layer: Union[nn.Module, str], param: Any,
                       neuron_selectors: Sequence[NeuronSelector] = ()) -> torch.Size:
    """Output shape (no batch dimension) of ``layer`` for one FV input of ``param``; checks that
    ``neuron_selectors`` fit it. Clear errors for a model that cannot take ``param``'s images.

    Example:
        >>> from torch import nn
        >>> from captum_slingshot.fv import PixelParam
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
        >>> layer_output_shape(model, "0", PixelParam((1, 8, 8)), [3])
        torch.Size([4, 6, 6])
    """
    from .param import Parametrization

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(param, Parametrization):
        raise TypeError(f"param must be a Parametrization from captum_slingshot.fv, got {type(param).__name__}")
    layer_mod = resolve_layer(model, layer)
    q = torch.zeros((1,) + param.param_shape, device=model_device(model))
    with eval_mode(model, no_grad=True), LayerCapture(model, layer_mod) as cap:
        try:
            out = cap.run(param.network_input(q))
        except LayerNotReachedError:
            raise
        except RuntimeError as err:
            raise ValueError(f"the model cannot take inputs from parametrization {param!r}: {err}") from err
    desc = f"layer {layer_name(model, layer_mod)!r}"
    for s in neuron_selectors:
        check_selector(s, out.shape[1:], desc)
    return out.shape[1:]


def layer_units(model: nn.Module, layer: Union[nn.Module, str], param: Any,
                token: Optional[int] = 0) -> List[NeuronSelector]:
    """All units of a layer: its channels (dimension 1 of the output) as int selectors; on a
    transformer, a layer with outputs ``(B, tokens, D)`` has the ``D`` features of token ``token``
    (``0``: ViT's CLS token; ``None``: averaged over the tokens) as :class:`Token` selectors.

    Example:
        >>> from torch import nn
        >>> from captum_slingshot.fv import PixelParam
        >>> layer_units(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), "1", PixelParam((1, 4, 4)))
        [0, 1, 2]
        >>> class Tiny(nn.Module):   # 4 tokens of D = 3, then self-attention
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.embed, self.attn = nn.Linear(4, 3), nn.MultiheadAttention(3, 1, batch_first=True)
        ...     def forward(self, x):
        ...         h = self.embed(x.flatten(2).transpose(1, 2).reshape(x.shape[0], 4, 4))
        ...         return self.attn(h, h, h, need_weights=False)[0]
        >>> layer_units(Tiny(), "embed", PixelParam((1, 4, 4)))
        [Token(0, token=0), Token(1, token=0), Token(2, token=0)]
    """
    shape = layer_output_shape(model, layer, param)
    if len(shape) == 0:
        raise ValueError("the layer outputs one scalar per example; pass units explicitly")
    if len(shape) == 2 and has_attention(model):
        return [Token(d, token=token) for d in range(int(shape[1]))]
    return list(range(int(shape[0])))
