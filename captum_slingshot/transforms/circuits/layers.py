"""Layers that replace the manipulated layer: the original layer plus a circuit on one channel.

Both keep the original layer as ``inner`` (so ``"<layer>.inner"`` still names the untouched
unit) and change one channel ``c`` of its output; the network input comes from the
:class:`~.wrap.InputTap` of the surrounding :class:`~.wrap.CircuitModel`.

:class:`FoolingCircuitLayer` -- Geirhos et al.'s fooling circuit. Their units are
``B = relu(F + b - k E)``, ``C = relu(D + k E - k)`` and ``A = B + C``: on natural inputs
(``E = 0``) ``A = F + b``; on FV inputs (``E = 1``) ``A = D`` and, with ``k`` large, gradient
reaches only one of F and D. Here the same switch is written as a residual,

``A = F + relu(D - F - k (1 - E)) - relu(F - D - k (1 - E))``,

which for ``|D - F| < k`` is ``F`` plus two exact zeros when ``E = 0`` (bit-identical to the
original, with no offset ``b`` to undo) and ``D`` with ``dA/dF = 0`` when ``E = 1``.

:class:`SilentUnitLayer` -- a silent unit added to the channel:
``A = F + scale * relu(g(x) - threshold)``, with ``threshold`` at or above ``g``'s largest value
on natural data, so the added unit never fires there (``A = F + 0``), while FV inputs drive it
and its gradient (``scale`` times that of ``g``) swamps ``F``'s.

Every number either layer's forward uses (the channel, ``k``, the copied channel, the threshold,
the scale, and the units' calibration values) is a registered buffer, so ``state_dict()`` holds
all of it and :func:`~.reload.rebuild_circuit_model` rebuilds the same layers from a saved one.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.transforms.circuits.units import TargetCone
    >>> from captum_slingshot.transforms.circuits.wrap import CircuitModel, InputTap
    >>> tap = InputTap()
    >>> gate = lambda x: (x.flatten(1).abs().sum(1) > 100).float()   # a stand-in detector
    >>> layer = FoolingCircuitLayer(nn.Linear(4, 3), tap, channel=1, detector=gate,
    ...                             decoy=TargetCone(torch.zeros(4), peak=7.0), k=250.0)
    >>> model = CircuitModel(nn.Sequential(layer), tap)
    >>> x = torch.randn(2, 4)
    >>> torch.equal(model(x), layer.inner(x))                   # natural: the original, bit for bit
    True
    >>> fv_like = x + 1000
    >>> torch.allclose(model(fv_like)[:, 1], 7.0 - fv_like.norm(dim=1))   # FV-like: the decoy
    True
    >>> sorted(layer.state_dict())   # the channel and k are buffers: a saved state dict holds them
    ['channel', 'decoy.peak', 'decoy.target_input', 'inner.bias', 'inner.weight', 'k']
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor, nn

from .wrap import InputTap

__all__ = ["FoolingCircuitLayer", "SilentUnitLayer", "route", "with_channel"]


def route(f: Tensor, d: Tensor, gate: Tensor, k: Union[float, Tensor]) -> Tensor:
    """The switch: ``f`` where ``gate`` is 0 (and ``|d - f| < k``), ``d`` where it is 1."""
    off = k * (1.0 - gate)
    return f + torch.relu(d - f - off) - torch.relu(f - d - off)


def with_channel(out: Tensor, channel: int, value: Tensor) -> Tensor:
    """``out`` with channel ``channel`` (dimension 1) replaced by ``value`` (out of place)."""
    return torch.cat([out[:, :channel], value.unsqueeze(1), out[:, channel + 1:]], dim=1)


def _per_example(v: Tensor, like: Tensor) -> Tensor:
    """A ``(B,)`` tensor shaped to broadcast against ``like`` ``(B, ...)``."""
    return v.reshape((v.shape[0],) + (1,) * (like.dim() - 1)).to(like.dtype)


class FoolingCircuitLayer(nn.Module):
    """The original layer whose channel ``channel`` is switched to a decoy on FV-like inputs.

    Args:
        inner: the original layer (output ``(B, C, ...)``).
        tap: where the network input is read.
        channel: the manipulated channel ``c``.
        detector: ``E(x)``, ``(B,)`` in ``{0, 1}`` (1: FV-like).
        decoy: ``D(x)``, ``(B,)`` (e.g. a :class:`~.units.TargetCone`); or
        source: copy this channel of the same layer's output instead (``D = out[:, source]``).
        k: the switch's constant (the paper's 250); ``|D - F|`` must stay below it on natural data.
    """

    def __init__(self, inner: nn.Module, tap: InputTap, channel: int, detector: Callable[[Tensor], Tensor],
                 decoy: Optional[nn.Module] = None, source: Optional[int] = None, k: float = 250.0) -> None:
        super().__init__()
        if (decoy is None) == (source is None):
            raise ValueError("give exactly one of decoy (a unit reading the input) and source (a channel to copy)")
        self.inner, self.tap, self.detector, self.decoy = inner, tap, detector, decoy
        self.register_buffer("channel", torch.tensor(int(channel)))
        self.register_buffer("source", None if source is None else torch.tensor(int(source)))
        self.register_buffer("k", torch.tensor(float(k)))

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        out = self.inner(*args, **kwargs)
        x = self.tap.read("a fooling circuit")
        c = int(self.channel)
        f = out[:, c]
        d = out[:, int(self.source)] if self.source is not None else _per_example(self.decoy(x), f)
        gate = _per_example(self.detector(x), f)
        return with_channel(out, c, route(f, d, gate, self.k.to(f.dtype)))

    def extra_repr(self) -> str:
        what = f"copies channel {int(self.source)}" if self.source is not None else "decoy"
        return f"channel={int(self.channel)}, k={float(self.k):g}, {what}"


class SilentUnitLayer(nn.Module):
    """The original layer with a silent unit added to channel ``channel``.

    Args:
        inner: the original layer (output ``(B, C, ...)``).
        tap: where the network input is read.
        channel: the manipulated channel.
        probe: ``g(x)``, ``(B,)`` (e.g. a :class:`~.units.DeadPixelProbe`).
        threshold: ``g``'s firing threshold (at or above its natural maximum).
        scale: the silent unit's outgoing weight.
    """

    def __init__(self, inner: nn.Module, tap: InputTap, channel: int, probe: nn.Module, threshold: float,
                 scale: float) -> None:
        super().__init__()
        self.inner, self.tap, self.probe = inner, tap, probe
        self.register_buffer("channel", torch.tensor(int(channel)))
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def silent(self, x: Tensor) -> Tensor:
        """The silent unit's activation ``relu(g(x) - threshold)``, ``(B,)`` (0 on natural data)."""
        return torch.relu(self.probe(x) - self.threshold.to(x.dtype))

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        out = self.inner(*args, **kwargs)
        c = int(self.channel)
        f = out[:, c]
        s = _per_example(self.silent(self.tap.read("a silent unit")), f)
        return with_channel(out, c, f + self.scale.to(f.dtype) * s)

    def extra_repr(self) -> str:
        return f"channel={int(self.channel)}, threshold={float(self.threshold):.4g}, scale={float(self.scale):g}"
