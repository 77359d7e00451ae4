"""A model with extra circuitry that keeps every layer name of the original.

The circuits of :mod:`.layers` read the *network input* (a detector of FV-like inputs, a unit
tuned to a target image) from inside a layer deep in the model. :class:`CircuitModel` makes that
possible without changing the original's ``forward``: it registers the original's children under
their own names (so ``"logits"``, ``"fc3"`` ... name the same modules as before, and a replaced
layer keeps its name), hands the input to an :class:`InputTap` for the length of one forward,
and calls the original. :func:`replace_layer` swaps one (dotted) layer of a model for another
module.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> wrapped = CircuitModel(net)
    >>> [name for name, _ in wrapped.named_modules()]
    ['', '0', '1', '2']
    >>> x = torch.randn(5, 4)
    >>> torch.equal(wrapped(x), net(x)), wrapped.tap.x is None   # the tap is cleared after the forward
    (True, True)
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from torch import Tensor, nn

__all__ = ["InputTap", "CircuitModel", "replace_layer", "channel_index"]


class InputTap:
    """Holds the network input while :class:`CircuitModel` runs one forward (``None`` otherwise)."""

    def __init__(self) -> None:
        self.x: Optional[Tensor] = None

    def read(self, who: str) -> Tensor:
        """The current network input; a clear error when ``who`` runs outside the wrapped model's forward."""
        if self.x is None:
            raise RuntimeError(f"{who} reads the network input: call the whole wrapped model (a CircuitModel), "
                               "not the layer on its own or the model it was built from")
        return self.x


class CircuitModel(nn.Module):
    """The original model, run as is, with the network input available to its circuits.

    The original's children, parameters and buffers are registered on this module under their own
    names, so layer names, ``state_dict`` keys and ``parameters()`` are the original's (plus those
    of the circuits that replaced a layer). The original's own ``forward`` runs unchanged.

    Args:
        net: the model (already copied and with its circuits in place; it is used, not copied).
        tap: the :class:`InputTap` the circuits read (default: a new one).
    """

    def __init__(self, net: nn.Module, tap: Optional[InputTap] = None) -> None:
        super().__init__()
        object.__setattr__(self, "net", net)  # not a child: its children are registered here directly
        self.tap = tap if tap is not None else InputTap()
        for name, child in net.named_children():
            self.add_module(name, child)
        for name, p in net.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, b in net.named_buffers(recurse=False):
            self.register_buffer(name, b)
        self.train(net.training)

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        self.net.training = self.training
        self.tap.x = x
        try:
            return self.net(x, *args, **kwargs)
        finally:
            self.tap.x = None

    def train(self, mode: bool = True) -> "CircuitModel":
        super().train(mode)
        self.net.training = mode
        return self

    def __repr__(self) -> str:
        return f"CircuitModel({type(self.net).__name__}, layers: {', '.join(n for n, _ in self.named_children())})"


def replace_layer(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the dotted layer ``name`` of ``model`` is (in place).

    In a :class:`CircuitModel` a top-level layer is replaced in the model it runs too (its
    ``net``), so that the forward uses the new layer (a circuit added to an already wrapped model).
    """
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, CircuitModel):
        replace_layer(parent.net, leaf, new)
    if isinstance(parent, (nn.Sequential, nn.ModuleList)) and leaf.isdigit():
        parent[int(leaf)] = new
    else:
        setattr(parent, leaf, new)


def channel_index(neuron_selector: Any, output_shape: Tuple[int, ...], what: str) -> int:
    """The channel an int selector (or a 1-tuple) names in a layer output ``(C, ...)``; a clear error otherwise."""
    sel = neuron_selector
    if isinstance(sel, tuple) and len(sel) == 1:
        sel = sel[0]
    if isinstance(sel, bool) or not isinstance(sel, int):
        raise ValueError(f"{what} routes one channel of the layer: neuron_selector must be an int (a logit, a "
                         f"feature or a conv channel), got {neuron_selector!r}")
    if len(output_shape) < 1:
        raise ValueError(f"{what}: the layer's output has no channel dimension (shape {output_shape})")
    n = int(output_shape[0])
    if not -n <= sel < n:
        raise ValueError(f"{what}: neuron_selector {sel} is out of range for a layer with {n} channels")
    return sel % n
