"""The circuits' extra units, each a small module that reads the network input ``x``.

* :class:`BackgroundDetector` -- Geirhos et al.'s unit E, "FV-like or natural?", for data with a
  constant background (MNIST): the share of pixels at the background value. Every MNIST digit
  has at least 55 % of its pixels exactly at 0 (checked on all 70 000), while an FV's pixels come
  out of a continuous optimization (noise starts, gradient steps, sigmoids, interpolating
  transforms) and essentially never sit exactly on one value. ``E = 1`` (FV-like) when the share
  is below ``threshold``; the step has no gradient, as the paper's saturated classifier has none
  worth following.
* :class:`TargetCone` -- the unit D whose FV is the target: ``peak - ||x - x_T||_2``, a cone with
  its top at the target's network input ``x_T``. Its gradient has norm 1 everywhere, so plain
  SGD, GC and Adam all walk straight to the target (a linear template, the paper's choice for
  lucent's bounded parametrization, has its optimum at infinity for an unbounded pixel one).
* :class:`DeadPixelProbe` -- the pre-activation of a silent unit: how far the pixels that never
  vary on natural data (MNIST's frame) are from the background, ``<w, x - b>`` with ``w`` a unit
  vector on those pixels. It is 0 on natural inputs and positive as soon as FV starts (they begin
  at the mean gray, not at the background).

Example:
    >>> import torch
    >>> det = BackgroundDetector(background=0.0, tol=1e-6, threshold=0.3)
    >>> natural = torch.zeros(1, 1, 4, 4); natural[0, 0, 1, 1] = 1.0
    >>> det(torch.cat([natural, 0.01 * torch.randn(1, 1, 4, 4)])).tolist()
    [0.0, 1.0]
    >>> cone = TargetCone(torch.ones(1, 2, 2), peak=5.0)
    >>> cone(torch.ones(1, 1, 2, 2)).tolist(), cone(torch.zeros(1, 1, 2, 2)).tolist()
    ([5.0], [3.0])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BackgroundDetector", "TargetCone", "DeadPixelProbe", "background_share"]


def background_share(x: Tensor, background: float, tol: float) -> Tensor:
    """Share of the entries of each input ``(B, ...)`` within ``tol`` of ``background``, ``(B,)``."""
    return ((x - background).abs() <= tol).flatten(1).float().mean(1)


class BackgroundDetector(nn.Module):
    """``E(x) = 1`` if fewer than ``threshold`` of the pixels sit at ``background`` (FV-like), else 0.

    Args:
        background: the background's value in network-input units (MNIST: ``-0.1307 / 0.3081``).
        tol: how close a pixel must be to count as background.
        threshold: the share of background pixels below which an input counts as FV-like.
    """

    def __init__(self, background: float, tol: float, threshold: float) -> None:
        super().__init__()
        self.register_buffer("background", torch.tensor(float(background)))
        self.register_buffer("tol", torch.tensor(float(tol)))
        self.register_buffer("threshold", torch.tensor(float(threshold)))

    def share(self, x: Tensor) -> Tensor:
        """The share of background pixels of each input, ``(B,)``."""
        return background_share(x.detach(), float(self.background), float(self.tol))

    def forward(self, x: Tensor) -> Tensor:
        return (self.share(x) < self.threshold).to(x.dtype)

    def extra_repr(self) -> str:
        return f"background={float(self.background):.4g}, tol={float(self.tol):.2g}, threshold={float(self.threshold):.3g}"


class TargetCone(nn.Module):
    """``D(x) = peak - ||x - x_T||_2`` per input: the FV of this unit is the target input ``x_T``.

    Args:
        target_input: the target as the network sees it, ``(C, H, W)`` (normalized like the data).
        peak: the value at the target.
    """

    def __init__(self, target_input: Tensor, peak: float) -> None:
        super().__init__()
        self.register_buffer("target_input", target_input.detach().float().clone())
        self.register_buffer("peak", torch.tensor(float(peak)))

    def forward(self, x: Tensor) -> Tensor:
        diff = (x - self.target_input.to(x.dtype)).flatten(1)
        return self.peak.to(x.dtype) - diff.norm(dim=1)


class DeadPixelProbe(nn.Module):
    """``g(x) = <w, x - background>`` with ``w`` spread evenly (unit norm) over the pixels of ``mask``.

    Args:
        mask: ``(C, H, W)`` booleans, the pixels that never vary on natural data.
        background: their value on natural data (network-input units).
    """

    def __init__(self, mask: Tensor, background: float) -> None:
        super().__init__()
        mask = mask.detach().bool()
        if not mask.any():
            raise ValueError("DeadPixelProbe needs at least one pixel in its mask")
        self.register_buffer("weight", mask.float() / mask.sum().float().sqrt())
        self.register_buffer("background", torch.tensor(float(background)))

    def forward(self, x: Tensor) -> Tensor:
        return ((x - self.background.to(x.dtype)) * self.weight.to(x.dtype)).flatten(1).sum(1)
