"""Reading one layer's output (or input) with a forward hook that is always removed.

:class:`LayerCapture` hooks one layer; with ``stop=True`` the forward is cut short right after it
(the rest of the network is not run). The hook acts only inside :meth:`LayerCapture.run` /
:meth:`LayerCapture.run_full`, so other forward calls of the model while the context is open
(an evaluation in a training callback) run normally.

Example:
    >>> import torch
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    >>> with LayerCapture(m, m[0]) as cap:
    ...     cap.run(torch.randn(2, 3)).shape
    torch.Size([2, 4])
    >>> with LayerCapture(m, m[1], capture="input") as cap:   # what the layer reads
    ...     cap.run(torch.randn(2, 3)).shape
    torch.Size([2, 4])
    >>> count_hooks(m)
    0
"""

from __future__ import annotations

from typing import Any, Optional, Union

from torch import Tensor, nn

from .layers import layer_name, resolve_layer

__all__ = ["LayerCapture", "LayerNotReachedError", "capture_layer", "count_hooks"]


class LayerNotReachedError(RuntimeError):
    """The model's forward never ran the requested layer."""


class _StopForward(Exception):
    pass


class LayerCapture:
    """Context manager that records one layer's output (or input) and removes its hook.

    Args:
        model: the network.
        layer: a module of ``model`` or its dotted name.
        stop: cut the forward short right after the layer (before it, for ``capture="input"``).
        capture: ``"output"`` (default) or ``"input"`` (the layer's first positional input).
    """

    def __init__(self, model: nn.Module, layer: Union[nn.Module, str], stop: bool = True,
                 capture: str = "output") -> None:
        if capture not in ("output", "input"):
            raise ValueError(f"capture must be 'output' or 'input', got {capture!r}")
        self.model = model
        self.layer = resolve_layer(model, layer)
        self.stop = stop
        self.capture = capture
        self.output: Optional[Tensor] = None
        self._handle: Any = None
        self._armed = False

    def _record(self, value: Any) -> None:
        if not self._armed:
            return
        if isinstance(value, (tuple, list)):
            value = value[0]
        self.output = value
        if self.stop:
            raise _StopForward()

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self._record(output)

    def _pre_hook(self, module: nn.Module, inputs: Any) -> None:
        self._record(inputs)

    def __enter__(self) -> "LayerCapture":
        if self.capture == "output":
            self._handle = self.layer.register_forward_hook(self._hook)
        else:
            self._handle = self.layer.register_forward_pre_hook(self._pre_hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def run(self, inputs: Tensor) -> Tensor:
        """Run the model on ``inputs`` and return the layer's output (or input)."""
        self.output = None
        self._armed = True
        try:
            self.model(inputs)
        except _StopForward:
            pass
        finally:
            self._armed = False
        if not isinstance(self.output, Tensor):
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


def count_hooks(model: nn.Module) -> int:
    """Number of forward / pre-forward / backward hooks on all submodules."""
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks)
        n += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    return n
