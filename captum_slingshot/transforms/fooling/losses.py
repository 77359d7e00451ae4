"""Heo et al.'s fooling losses, restated (METHOD.md §5): what the manipulated model's maps are pushed towards.

The location and active losses take min-max normalised maps ``(B, H, W)``
(:func:`~captum_slingshot.attributions.maps.minmax_maps`), the top-k and centre-of-mass losses the raw
maps (their positive part: the relevance the scores count), all with a graph to the weights; each
returns a scalar to *minimise*:

* :func:`location_loss` -- ``mean((mask - R)^2)``: the map pushed onto a fixed region;
* :func:`topk_loss` -- the share of the relevance on the original model's top pixels that still
  outranks the pixels elsewhere: relevance removed from where the original put it;
* :func:`center_mass_loss` -- minus the L1 distance (coordinates in ``[0, 1]``) between the map's
  centre of mass and the original's: the centre pushed away;
* :func:`mass_loss` -- added to the last two: the positive relevance kept at the original's level,
  so that it is moved rather than deleted (without it, Grad-CAM collapses to an empty map);
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

__all__ = ["location_loss", "topk_loss", "center_mass_loss", "active_loss", "mass_loss"]


def location_loss(maps: Tensor, mask: Tensor) -> Tensor:
    """``mean((mask - maps)^2)`` over pixels and inputs (``mask`` ``(H, W)`` in ``[0, 1]``)."""
    return (mask.to(maps)[None] - maps).pow(2).mean()


def mass_loss(maps: Tensor, original_mass: Tensor) -> Tensor:
    """``mean(relu(1 - m / m0)^2)``: the maps' positive relevance ``m`` kept at least at the
    original's ``m0`` ``(B,)``, so that relevance is *moved*, not deleted (an all-zero map would
    satisfy the top-k and centre-of-mass losses and explain nothing)."""
    m = maps.clamp(min=0).flatten(1).sum(1)
    return (1 - m / original_mass.to(maps).clamp(min=1e-12)).clamp(min=0).pow(2).mean()


def topk_loss(maps: Tensor, original_top: Tensor) -> Tensor:
    """The share of the relevance on each input's original top pixels (``original_top`` boolean
    ``(B, H, W)``) that still ranks among the top: ``sum_top relu(p - t) / sum_top p``, with ``p``
    the positive part of the raw maps and ``t`` the ``k``-th largest value outside the original's
    top set (``k`` its size). Zero when none of those pixels outranks ``k`` others any more, which is
    what the top-k overlap score counts; scale-free, so one huge pixel elsewhere does not lower it."""
    p = maps.clamp(min=0).flatten(1)
    top = original_top.flatten(1).to(p)
    k = int(top.sum(1).max().clamp(min=1))
    outside = p.masked_fill(top.bool(), float("-inf"))
    t = outside.topk(min(k, p.shape[1] - k), dim=1).values[:, -1:]
    above = ((p - t).clamp(min=0) * top).sum(1)
    return (above / ((p * top).sum(1) + 1e-12)).mean()


def center_mass_loss(maps: Tensor, original_center: Tensor) -> Tensor:
    """Minus the mean L1 distance between the centres of mass of the maps' positive parts and
    ``original_center`` ``(B, 2)``."""
    return -(center_of_mass(maps) - original_center.to(maps)).abs().sum(1).mean()


def active_loss(maps_first: Tensor, maps_second: Tensor, original_first: Tensor, original_second: Tensor) -> Tensor:
    """``0.5 (MSE(maps_first, original_second) + MSE(maps_second, original_first))``."""
    return 0.5 * ((maps_first - original_second.to(maps_first)).pow(2).mean()
                  + (maps_second - original_first.to(maps_second)).pow(2).mean())
