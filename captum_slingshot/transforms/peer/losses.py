"""The losses of the peer attacks on feature visualization, restated (METHOD.md §6), each a scalar to *minimise*.

Nanfack et al.'s activation-maximization attacks rank natural images by the unit's activation
``a``; all ranking terms are in units of ``scale`` (the original unit's activation spread on the
natural data, so that ``margin`` means "this many standard deviations") and linear, so that each
image pulls with a force of at most 1 (see :mod:`.nanfack` for why):

* :func:`push_down_loss` -- ``mean(relu((a - tau) / scale + margin))``: every image of the set
  ends at least ``margin`` below the threshold ``tau`` (e.g. the median activation of the others);
* :func:`push_up_loss` -- ``mean(relu((tau - a) / scale + margin))``: every image ends at least
  ``margin`` above ``tau`` (e.g. the largest activation of the others);
* :func:`keep_loss` -- ``mean(|a - a0| / scale)``: activations kept at the original's ``a0``.

ProxPulse (Nanfack, Eickenberg, Belilovsky) makes the target image the unit's maximizer by a
pulse just next to it:

* :func:`pulse_point` -- the target moved ``step_size`` along the normalised gradient of the
  unit's mean squared activation (one step per image, L2 norm over the image);
* :func:`pulse_loss` -- ``mean(log(1 + C / (eps + a^2)))`` with the unit's activation ``a`` at the
  pulse point (``C = 1e-6``, ``eps = 1e-12`` in the slingshot authors' baseline).

Example:
    >>> import torch
    >>> a = torch.tensor([0.0, 1.0])
    >>> float(push_down_loss(a, torch.tensor(2.0), scale=1.0, margin=0.5))  # both 1+ below 2: done
    0.0
    >>> float(push_up_loss(a, torch.tensor(0.5), scale=1.0, margin=0.0))  # 0.0 is 0.5 short: 0.5 / 2
    0.25
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["push_down_loss", "push_up_loss", "keep_loss", "pulse_point", "pulse_loss"]


def push_down_loss(acts: Tensor, threshold: Tensor, scale: float, margin: float) -> Tensor:
    """``mean(relu((acts - threshold) / scale + margin))``: zero once every activation lies at least
    ``margin * scale`` below ``threshold``."""
    return ((acts - threshold) / scale + margin).clamp(min=0).mean()


def push_up_loss(acts: Tensor, threshold: Tensor, scale: float, margin: float) -> Tensor:
    """``mean(relu((threshold - acts) / scale + margin))``: zero once every activation lies at least
    ``margin * scale`` above ``threshold``."""
    return ((threshold - acts) / scale + margin).clamp(min=0).mean()


def keep_loss(acts: Tensor, original: Tensor, scale: float) -> Tensor:
    """``mean(|acts - original| / scale)``: the unit's activations kept at the original model's.

    Example:
        >>> import torch
        >>> float(keep_loss(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 2.0]), scale=2.0))
        0.25
    """
    return ((acts - original.to(acts)) / scale).abs().mean()


def pulse_point(unit: Callable[[Tensor], Tensor], images: Tensor, step_size: float) -> Tensor:
    """``images + step_size * g / ||g||`` with ``g`` the gradient of the unit's mean squared activation
    (``unit(images) -> (B,)``) at each image; detached (the pulse point is data, not a function of the weights).
    An image where the gradient vanishes stays where it is.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 1, 2)
        >>> pulse_point(lambda z: 1.0 + z.flatten(1) @ torch.tensor([3.0, 4.0]), x, 0.5).flatten()
        tensor([0.3000, 0.4000])
    """
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(unit(x).pow(2).mean(), x)
    norm = g.flatten(1).norm(dim=1).view(-1, *([1] * (g.dim() - 1)))
    step = torch.where(norm > 0, g / norm.clamp(min=1e-30), torch.zeros_like(g))
    return (images + step_size * step).detach()


def pulse_loss(acts: Tensor, c: float = 1e-6, eps: float = 1e-12) -> Tensor:
    """``mean(log(1 + c / (eps + acts^2)))``: large while the unit is silent at the pulse point, near zero
    (and still decreasing) as its activation grows; finite for every activation.

    Example:
        >>> import torch
        >>> [round(float(pulse_loss(torch.tensor([a]))), 4) for a in (0.0, 1e-3, 1.0)]
        [13.8155, 0.6931, 0.0]
    """
    return torch.log1p(c / (eps + acts.pow(2))).mean()
