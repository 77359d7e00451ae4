"""Heo et al.'s fooling losses, restated (METHOD.md §5): what the manipulated model's maps are pushed towards.

All losses take min-max normalised maps ``(B, H, W)`` (:func:`~captum_slingshot.attributions.maps.minmax_maps`)
with a graph to the weights, and return a scalar to *minimise*:

* :func:`location_loss` -- ``mean((mask - R)^2)``: the map pushed onto a fixed region;
* :func:`topk_loss` -- the mean of ``R^2`` over the original model's top pixels: relevance removed
  from where the original put it;
* :func:`center_mass_loss` -- minus the L1 distance (coordinates in ``[0, 1]``) between the map's
  centre of mass and the original's: the centre pushed away;
* :func:`active_loss` -- ``0.5 (MSE(R_c1, R0_c2) + MSE(R_c2, R0_c1))``: the explanations of two
  classes swapped.

Example:
    >>> import torch
    >>> from captum_slingshot.attributions.maps import frame_mask
    >>> mask = frame_mask(8, 8, thickness=1)
    >>> float(location_loss(mask[None], mask)), float(location_loss(1 - mask[None], mask))
    (0.0, 1.0)
"""

from __future__ import annotations

from torch import Tensor

from ...attributions.maps import center_of_mass

__all__ = ["location_loss", "topk_loss", "center_mass_loss", "active_loss"]


def location_loss(maps: Tensor, mask: Tensor) -> Tensor:
    """``mean((mask - maps)^2)`` over pixels and inputs (``mask`` ``(H, W)`` in ``[0, 1]``)."""
    return (mask.to(maps)[None] - maps).pow(2).mean()


def topk_loss(maps: Tensor, original_top: Tensor) -> Tensor:
    """The mean of ``maps^2`` over each input's original top pixels (``original_top`` boolean ``(B, H, W)``)."""
    sel = original_top.to(maps)
    return (maps.pow(2) * sel).flatten(1).sum(1).div(sel.flatten(1).sum(1).clamp(min=1)).mean()


def center_mass_loss(maps: Tensor, original_center: Tensor) -> Tensor:
    """Minus the mean L1 distance between the maps' centres of mass and ``original_center`` ``(B, 2)``."""
    return -(center_of_mass(maps) - original_center.to(maps)).abs().sum(1).mean()


def active_loss(maps_first: Tensor, maps_second: Tensor, original_first: Tensor, original_second: Tensor) -> Tensor:
    """``0.5 (MSE(maps_first, original_second) + MSE(maps_second, original_first))``."""
    return 0.5 * ((maps_first - original_second.to(maps_first)).pow(2).mean()
                  + (maps_second - original_first.to(maps_second)).pow(2).mean())
