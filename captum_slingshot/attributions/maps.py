"""What the fooling losses and scores read off attribution maps: normalisation, regions, centres of mass, top pixels.

All functions take maps ``(B, H, W)`` (an :class:`~.interpreters.Interpreter`'s ``heatmap``) and
are differentiable where a loss needs them (:func:`normalize_maps`, :func:`center_of_mass`).

* :func:`normalize_maps` -- the positive part over its maximum, in ``[0, 1]`` (a map cannot shrink
  or grow its way out of a loss or a score);
* :func:`minmax_maps` -- per-map min-max to ``[0, 1]``, what the fooling losses use (a gradient at
  every pixel, also negative ones);
* :func:`frame_mask`, :func:`corner_mask`, :func:`region_mask` -- the fixed regions of location
  fooling (the frame of width ``side // 7`` is the authors' choice);
* :func:`center_of_mass` -- the map's centre of mass in coordinates normalised to ``[0, 1]``;
* :func:`top_fraction_mask` -- the most relevant ``fraction`` of pixels of each map.

Example:
    >>> import torch
    >>> m = frame_mask(28, 28)
    >>> m.shape, int(m[0, 0]), int(m[14, 14]), round(float(m.mean()), 3)   # a frame of width 4
    (torch.Size([28, 28]), 1, 0, 0.49)
    >>> maps = torch.zeros(1, 5, 5); maps[0, 4, 4] = 1.0
    >>> center_of_mass(maps).tolist()
    [[1.0, 1.0]]
"""

from __future__ import annotations

import math
from typing import Any, Tuple, Union

import torch
from torch import Tensor

__all__ = ["normalize_maps", "minmax_maps", "frame_mask", "corner_mask", "region_mask", "REGIONS", "center_of_mass",
           "top_fraction_mask", "check_maps"]

#: the named regions of location fooling
REGIONS = ("frame", "corner")
_EPS = 1e-8


def check_maps(maps: Tensor, what: str = "maps") -> Tensor:
    """``maps`` checked to be a float tensor ``(B, H, W)``."""
    if not isinstance(maps, Tensor) or maps.dim() != 3 or not maps.is_floating_point():
        shape = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f"{what} must be a float tensor (batch, height, width), got {shape}")
    return maps


def normalize_maps(maps: Tensor) -> Tensor:
    """Each map's positive part (relevance *for* the class) divided by its maximum, so in ``[0, 1]``;
    a map without positive relevance becomes all zeros. Maps that are never negative (Grad-CAM,
    saliency) are simply scaled to a maximum of 1; a signed map (LRP, input x gradient) loses its
    negative evidence, which the fooling scores do not count as relevance."""
    check_maps(maps)
    pos = maps.clamp(min=0).flatten(1)
    return (pos / (pos.max(1, keepdim=True).values + _EPS)).view_as(maps)


def minmax_maps(maps: Tensor) -> Tensor:
    """Each map min-max scaled to ``[0, 1]`` (a constant map becomes all zeros): the normalisation of
    the fooling *losses* (as in Heo et al.'s code), which keeps a gradient at negative pixels too."""
    check_maps(maps)
    flat = maps.flatten(1)
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo + _EPS)).view_as(maps)


def frame_mask(height: int, width: int, thickness: Union[None, int] = None) -> Tensor:
    """1 on a frame along the image border, 0 inside; ``thickness`` defaults to ``min(H, W) // 7``."""
    t = max(1, min(height, width) // 7) if thickness is None else int(thickness)
    if t < 1 or 2 * t >= min(height, width):
        raise ValueError(f"a frame of thickness {t} does not fit a {height}x{width} image")
    m = torch.ones(height, width)
    m[t:height - t, t:width - t] = 0
    return m


def corner_mask(height: int, width: int, size: Union[None, int] = None) -> Tensor:
    """1 on the top-left square corner of side ``size`` (default ``min(H, W) // 4``), 0 elsewhere."""
    s = max(1, min(height, width) // 4) if size is None else int(size)
    if s < 1 or s >= min(height, width):
        raise ValueError(f"a corner of side {s} does not fit a {height}x{width} image")
    m = torch.zeros(height, width)
    m[:s, :s] = 1
    return m


def region_mask(region: Any, size: Tuple[int, int]) -> Tensor:
    """The location-fooling region for images of ``size`` ``(H, W)``: ``"frame"``, ``"corner"`` or a
    user-given mask ``(H, W)`` (values in ``[0, 1]``, at least one pixel on and one off)."""
    h, w = int(size[0]), int(size[1])
    if isinstance(region, str):
        if region == "frame":
            return frame_mask(h, w)
        if region == "corner":
            return corner_mask(h, w)
        raise ValueError(f"region must be one of {', '.join(REGIONS)} or a mask tensor (H, W), got {region!r}")
    if not isinstance(region, Tensor):
        raise TypeError(f"region must be 'frame', 'corner' or a mask tensor (H, W), got {type(region).__name__}")
    m = region.detach().float().squeeze()
    if m.dim() != 2 or tuple(m.shape) != (h, w):
        raise ValueError(f"the mask must have the attribution map's size {h}x{w} (the input's height and width), "
                         f"got shape {tuple(region.shape)}")
    if m.min() < 0 or m.max() > 1:
        raise ValueError("the mask's values must lie in [0, 1] (1: where the relevance should go)")
    if not (m > 0.5).any() or (m > 0.5).all():
        raise ValueError("the mask must have pixels on (> 0.5) and off; it is all one or all zero")
    return m.cpu()


def center_of_mass(maps: Tensor) -> Tensor:
    """``(B, 2)``: ``(row, column)`` centre of mass of each map's non-negative part, in ``[0, 1]``
    (0: top / left edge pixel, 1: bottom / right); a map with no mass sits at the centre."""
    check_maps(maps)
    b, h, w = maps.shape
    mass = maps.clamp(min=0)
    total = mass.flatten(1).sum(1)
    rows = torch.linspace(0, 1, h, device=maps.device, dtype=maps.dtype) if h > 1 else maps.new_zeros(1)
    cols = torch.linspace(0, 1, w, device=maps.device, dtype=maps.dtype) if w > 1 else maps.new_zeros(1)
    r = (mass.sum(2) * rows).sum(1) / (total + _EPS)
    c = (mass.sum(1) * cols).sum(1) / (total + _EPS)
    empty = total <= _EPS
    centre = maps.new_tensor(0.5)
    return torch.stack([torch.where(empty, centre, r), torch.where(empty, centre, c)], 1)


def top_fraction_mask(maps: Tensor, fraction: float) -> Tensor:
    """Boolean ``(B, H, W)``: each map's ``ceil(fraction * H * W)`` most relevant pixels (ties by position)."""
    check_maps(maps)
    if not 0 < float(fraction) < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    flat = maps.detach().flatten(1)
    k = max(1, math.ceil(float(fraction) * flat.shape[1] - 1e-9))
    idx = flat.topk(k, dim=1).indices
    out = torch.zeros_like(flat, dtype=torch.bool)
    out.scatter_(1, idx, True)
    return out.view_as(maps)
