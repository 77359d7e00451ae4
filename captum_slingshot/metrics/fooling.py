"""How far a manipulated model's attribution maps moved: Heo et al.'s per-input fooling scores and the FSR.

Every score takes maps ``(B, H, W)`` -- the fooled model's and, where the score compares, the
original model's for the same inputs and classes -- and returns one number per input (Captum's
metric convention). :func:`fooling_success_rate` is the share of inputs whose score is past the
mode's threshold.

=============  ======================================================  ===================
mode           per-input score                                         fooled when
=============  ======================================================  ===================
location       share of the normalised map's mass inside the region    >= (1 + area) / 2
topk           share of the original's top 10 % pixels still in the    <= 0.3
               fooled map's top 10 %
center_mass    distance between the two maps' centres of mass,         >= 0.15
               divided by the image diagonal
active         rank correlation of the fooled map of class c with      > 0
               the original map of the *other* class, minus that with
               the original map of c itself
=============  ======================================================  ===================

Where the thresholds come from (fixed before any result was looked at; the paper's own FSR
thresholds were not readable in its public material): *location* -- halfway between a map spread
evenly over the image (score = the region's share of the area, 0.49 for the 28-px frame) and a
map wholly inside the region (score 1); *top-k* -- more than 70 % of the originally most relevant
pixels left the top 10 % (a random map keeps 10 %); *center-mass* -- 0.15 is the threshold of the
authors' evaluation notebook; *active* -- the map of each class is closer in ranking to the
other class's original map than to its own.

Example:
    >>> import torch
    >>> from captum_slingshot.attributions.maps import frame_mask
    >>> maps = frame_mask(28, 28)[None].repeat(2, 1, 1)      # all relevance on the frame
    >>> location_score(maps, frame_mask(28, 28)).tolist()
    [1.0, 1.0]
    >>> fooling_success_rate(location_score(maps, frame_mask(28, 28)), "location", region_area=0.49)
    1.0
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .._utils.ranks import average_ranks
from ..attributions.maps import center_of_mass, check_maps, normalize_maps, top_fraction_mask

__all__ = ["location_score", "topk_overlap", "center_mass_distance", "rank_correlation", "rank_correlation_matrix", "active_swap_score",
           "fooling_threshold", "is_fooled", "fooling_success_rate", "MODES", "TOP_FRACTION", "THRESHOLDS"]

#: the fooling modes (Heo et al.: three passive, one active)
MODES = ("location", "topk", "center_mass", "active")
#: the share of pixels top-k fooling and :func:`topk_overlap` look at
TOP_FRACTION = 0.1
#: fixed thresholds (location's depends on the region's area: see :func:`fooling_threshold`)
THRESHOLDS: Dict[str, float] = {"topk": 0.3, "center_mass": 0.15, "active": 0.0}


def _pair(maps: Tensor, original: Tensor) -> None:
    check_maps(maps)
    check_maps(original, "original maps")
    if maps.shape != original.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and original maps {tuple(original.shape)} must have the same shape")


def location_score(maps: Tensor, mask: Tensor) -> Tensor:
    """``(B,)``: the share of each normalised map's (positive) mass that lies inside ``mask`` ``(H, W)``."""
    check_maps(maps)
    if tuple(mask.shape) != tuple(maps.shape[-2:]):
        raise ValueError(f"mask {tuple(mask.shape)} must have the maps' size {tuple(maps.shape[-2:])}")
    m = normalize_maps(maps.detach())
    inside = (m * mask.to(m)).flatten(1).sum(1)
    total = m.flatten(1).sum(1)
    area = float(mask.float().mean())
    return torch.where(total > 0, inside / total.clamp(min=1e-12), torch.full_like(total, area))


def topk_overlap(maps: Tensor, original: Tensor, fraction: float = TOP_FRACTION) -> Tensor:
    """``(B,)``: the share of the original map's top ``fraction`` pixels that are also in the map's.

    A map without positive relevance scores 1 (not fooled): it points nowhere, and a person sees an
    empty explanation, not a false one; its "top pixels" would only be an artefact of tie-breaking."""
    _pair(maps, original)
    a = top_fraction_mask(maps.detach(), fraction)
    b = top_fraction_mask(original.detach(), fraction)
    overlap = (a & b).flatten(1).sum(1).float() / b.flatten(1).sum(1).float()
    empty = maps.detach().flatten(1).max(1).values <= 0
    return torch.where(empty, torch.ones_like(overlap), overlap)


def center_mass_distance(maps: Tensor, original: Tensor) -> Tensor:
    """``(B,)``: the distance between the centres of mass of the normalised maps, over the image diagonal."""
    _pair(maps, original)
    h, w = maps.shape[-2:]
    d = center_of_mass(normalize_maps(maps.detach())) - center_of_mass(normalize_maps(original.detach()))
    d = d * torch.tensor([max(h - 1, 1), max(w - 1, 1)], dtype=d.dtype, device=d.device)
    return d.norm(dim=1) / math.hypot(h, w)


def _standardized_ranks(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Centred ranks of each row over their norm, and whether the row is non-constant."""
    r = average_ranks(x.detach().flatten(1).double())
    r = r - r.mean(1, keepdim=True)
    norm = r.norm(dim=1, keepdim=True)
    return r / norm.clamp(min=1e-300), norm[:, 0] > 0


def rank_correlation(maps: Tensor, original: Tensor) -> Tensor:
    """``(B,)``: Spearman rank correlation between each map and the original (0 when either is constant)."""
    _pair(maps, original)
    a, ok_a = _standardized_ranks(maps)
    b, ok_b = _standardized_ranks(original)
    return torch.where(ok_a & ok_b, (a * b).sum(1), torch.zeros(a.shape[0], dtype=a.dtype)).float()


def rank_correlation_matrix(maps: Tensor, others: Tensor) -> Tensor:
    """``(B, N)``: Spearman rank correlation of every map with every one of ``others`` ``(N, H, W)``
    (0 where either is constant): ``rank_correlation(maps, others.roll(k, 0))`` for every ``k`` at
    the cost of one ranking of each and one matrix product.

    Example:
        >>> import torch
        >>> a = torch.rand(3, 4, 4)
        >>> m = rank_correlation_matrix(a, a)
        >>> torch.allclose(m.diagonal(), torch.ones(3)), torch.allclose(m[0, 1], rank_correlation(a[:1], a[1:2])[0])
        (True, True)
    """
    check_maps(maps)
    check_maps(others, "other maps")
    if maps.shape[1:] != others.shape[1:]:
        raise ValueError(f"maps {tuple(maps.shape)} and other maps {tuple(others.shape)} must have the same size")
    a, ok_a = _standardized_ranks(maps)
    b, ok_b = _standardized_ranks(others)
    r = a @ b.T
    return torch.where(ok_a[:, None] & ok_b[None, :], r, torch.zeros_like(r)).float()


def active_swap_score(maps_first: Tensor, maps_second: Tensor, original_first: Tensor,
                      original_second: Tensor) -> Tensor:
    """``(B,)``: for the two classes of active fooling, the smaller over both classes of
    ``rho(map of c, original map of the other class) - rho(map of c, original map of c)``
    (Spearman); positive: both explanations now rank pixels like the other class's did."""
    first = rank_correlation(maps_first, original_second) - rank_correlation(maps_first, original_first)
    second = rank_correlation(maps_second, original_first) - rank_correlation(maps_second, original_second)
    return torch.minimum(first, second)


def fooling_threshold(mode: str, region_area: Optional[float] = None) -> float:
    """The threshold of ``mode`` (location needs the region's share of the image, ``region_area``)."""
    if mode not in MODES:
        raise ValueError(f"unknown fooling mode {mode!r}; modes: {', '.join(MODES)}")
    if mode == "location":
        if region_area is None or not 0 < region_area < 1:
            raise ValueError("location fooling's threshold needs region_area, the region's share of the image "
                             "in (0, 1)")
        return (1 + float(region_area)) / 2
    return THRESHOLDS[mode]


def is_fooled(scores: Tensor, mode: str, region_area: Optional[float] = None) -> Tensor:
    """Boolean ``(B,)``: which inputs' scores are past the mode's threshold (see the module docstring)."""
    t = fooling_threshold(mode, region_area)
    if mode == "location":
        return scores >= t
    if mode == "topk":
        return scores <= t
    if mode == "center_mass":
        return scores >= t
    return scores > t


def fooling_success_rate(scores: Tensor, mode: str, region_area: Optional[float] = None) -> float:
    """The Fooling Success Rate: the share of inputs whose score is past the mode's threshold."""
    if not isinstance(scores, Tensor) or scores.dim() != 1 or scores.numel() == 0:
        raise ValueError("scores must be a non-empty 1-d tensor (one score per input)")
    return float(is_fooled(scores, mode, region_area).float().mean())
