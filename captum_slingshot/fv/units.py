"""Units in Captum's terms: a layer plus a ``neuron_selector``.

A *unit* is what feature visualization maximizes: a logit, a conv channel
(averaged over space), a single spatial neuron, or a direction in a layer's
channel space. As in Captum's neuron methods, ``layer`` is a module (or here
also a dotted name such as ``"features.3"``) and ``neuron_selector`` is

* an ``int`` or ``tuple`` indexing the layer output without its batch
  dimension; dimensions left over are averaged (so ``3`` on a conv layer means
  "channel 3, spatial mean", and ``(3, 5, 5)`` the neuron at row 5, column 5),
* a :class:`Direction` (``<h, v>`` over channels, spatial mean), or
* a callable taking the layer output ``(B, ...)`` and returning ``(B,)``.

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

import difflib
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = [
    "Direction",
    "NeuronSelector",
    "LayerNotReachedError",
    "resolve_layer",
    "layer_name",
    "select_neuron",
    "check_selector",
    "LayerCapture",
    "capture_layer",
    "unit_activation",
    "count_hooks",
]


class Direction:
    """A direction ``v`` in a layer's channel space: activation ``<h, v>``.

    For outputs with spatial dimensions the channel vector is averaged over
    space first, i.e. the activation is ``mean_{y,x} sum_c h[c, y, x] v[c]``.

    Example:
        >>> import torch
        >>> d = Direction(torch.tensor([1.0, -1.0]))
        >>> d(torch.tensor([[3.0, 1.0]]))
        tensor([2.])
    """

    def __init__(self, vector: Union[Tensor, Sequence[float]]) -> None:
        v = torch.as_tensor(vector, dtype=torch.float32).flatten()
        if v.numel() == 0 or not torch.isfinite(v).all():
            raise ValueError("a direction needs a non-empty, finite vector")
        self.vector = v

    def __call__(self, output: Tensor) -> Tensor:
        if output.dim() < 2 or output.shape[1] != self.vector.numel():
            raise ValueError(
                f"direction has {self.vector.numel()} entries but the layer output "
                f"has shape {tuple(output.shape)} (channels on dim 1)"
            )
        v = self.vector.to(device=output.device, dtype=output.dtype)
        h = output.flatten(2).mean(-1) if output.dim() > 2 else output
        return h @ v

    def __repr__(self) -> str:
        return f"Direction(dim={self.vector.numel()})"


NeuronSelector = Union[int, Tuple[int, ...], Direction, Callable[[Tensor], Tensor]]


class LayerNotReachedError(RuntimeError):
    """The model's forward never ran the requested layer."""


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
        close = difflib.get_close_matches(layer, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        shown = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
        raise ValueError(f"unknown layer {layer!r}.{hint} Layers of this model: {shown}")
    return model.get_submodule(layer)


def layer_name(model: nn.Module, layer: nn.Module) -> str:
    """Dotted name of ``layer`` inside ``model``."""
    for name, module in model.named_modules():
        if module is layer:
            return name
    raise ValueError("layer is not a submodule of the model")


def _index_tuple(selector: Union[int, Tuple[int, ...]]) -> Tuple[int, ...]:
    if isinstance(selector, (int,)) and not isinstance(selector, bool):
        return (int(selector),)
    if isinstance(selector, tuple) and all(isinstance(i, int) for i in selector):
        return tuple(int(i) for i in selector)
    raise TypeError(
        "neuron_selector must be an int, a tuple of ints, a Direction or a callable, "
        f"got {selector!r}"
    )


def check_selector(selector: NeuronSelector, output_shape: Sequence[int], layer_desc: str = "the layer") -> None:
    """Raise a clear error if an index selector does not fit ``output_shape`` (no batch dim)."""
    if isinstance(selector, Direction) or callable(selector):
        return
    idx = _index_tuple(selector)
    shape = tuple(output_shape)
    if len(idx) > len(shape):
        raise ValueError(
            f"neuron_selector {selector!r} has {len(idx)} indices but {layer_desc} "
            f"outputs shape {shape} per example"
        )
    for i, (k, n) in enumerate(zip(idx, shape)):
        if not -n <= k < n:
            raise ValueError(
                f"neuron_selector {selector!r} is out of range for {layer_desc}: index "
                f"{k} on dimension {i} of size {n} (output shape per example {shape})"
            )


def select_neuron(output: Tensor, selector: NeuronSelector) -> Tensor:
    """One activation per example, ``(B,)``, from a layer output ``(B, ...)``."""
    if isinstance(selector, Direction) or (callable(selector) and not isinstance(selector, (int, tuple))):
        act = selector(output)
        if act.dim() != 1 or act.shape[0] != output.shape[0]:
            raise ValueError(
                f"a callable neuron_selector must return one value per example, shape "
                f"({output.shape[0]},), got {tuple(act.shape)}"
            )
        return act
    idx = _index_tuple(selector)  # type: ignore[arg-type]
    act = output[(slice(None),) + idx]
    return act.flatten(1).mean(1) if act.dim() > 1 else act


class _StopForward(Exception):
    pass


class LayerCapture:
    """Context manager that records one layer's output and removes its hook.

    With ``stop=True`` the forward is cut short right after the layer (the
    rest of the network is not run), which saves time when only the layer's
    activation is needed. The hook acts only inside :meth:`run` /
    :meth:`run_full`: other forward calls of the model while the context is
    open (e.g. an evaluation in a training callback) run normally.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        >>> with LayerCapture(m, m[0]) as cap:
        ...     cap.run(torch.randn(2, 3)).shape
        torch.Size([2, 4])
        >>> count_hooks(m)
        0
    """

    def __init__(self, model: nn.Module, layer: Union[nn.Module, str], stop: bool = True) -> None:
        self.model = model
        self.layer = resolve_layer(model, layer)
        self.stop = stop
        self.output: Optional[Tensor] = None
        self._handle: Any = None
        self._armed = False

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if not self._armed:
            return
        if isinstance(output, (tuple, list)):
            output = output[0]
        self.output = output
        if self.stop:
            raise _StopForward()

    def __enter__(self) -> "LayerCapture":
        self._handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def run(self, inputs: Tensor) -> Tensor:
        """Run the model on ``inputs`` and return the layer's output."""
        self.output = None
        self._armed = True
        try:
            self.model(inputs)
        except _StopForward:
            pass
        finally:
            self._armed = False
        if self.output is None:
            raise LayerNotReachedError(
                f"the forward pass never reached layer {type(self.layer).__name__} "
                f"({layer_name(self.model, self.layer)!r}); pick a layer that the "
                "model's forward() calls"
            )
        return self.output

    def run_full(self, inputs: Tensor) -> Any:
        """Run the whole model (no early stop) and return its output; the layer is recorded too."""
        stop, self.stop = self.stop, False
        self._armed = True
        try:
            return self.model(inputs)
        finally:
            self.stop, self._armed = stop, False


def capture_layer(model: nn.Module, layer: Union[nn.Module, str], inputs: Tensor, stop: bool = True) -> Tensor:
    """Layer output for ``inputs``; the hook is gone when this returns or raises."""
    with LayerCapture(model, layer, stop=stop) as cap:
        return cap.run(inputs)


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


def count_hooks(model: nn.Module) -> int:
    """Number of forward / pre-forward / backward hooks on all submodules."""
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks)
        n += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    return n
