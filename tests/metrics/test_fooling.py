"""The per-input fooling scores and the Fooling Success Rate, on maps where the answer is known."""

from __future__ import annotations

import math

import pytest
import torch

from captum_slingshot.attributions.maps import corner_mask, frame_mask
from captum_slingshot.metrics.fooling import (
    active_swap_score, center_mass_distance, fooling_success_rate, fooling_threshold, is_fooled, location_score,
    rank_correlation, rank_correlation_matrix, topk_overlap,
)


def test_location_score_is_the_share_of_positive_mass_in_the_region():
    mask = frame_mask(28, 28)
    inside = mask[None].clone()
    assert location_score(inside, mask).item() == pytest.approx(1.0)
    assert location_score((1 - mask)[None], mask).item() == pytest.approx(0.0)
    uniform = torch.ones(1, 28, 28)
    assert location_score(uniform, mask).item() == pytest.approx(float(mask.mean()))
    signed = mask[None] - 5 * (1 - mask[None])  # negative evidence inside does not count as relevance
    assert location_score(signed, mask).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mask"):
        location_score(uniform, frame_mask(20, 20))


def test_topk_overlap_is_one_for_the_same_map_and_zero_for_disjoint_tops():
    a = torch.arange(100.0).view(1, 10, 10)
    assert topk_overlap(a, a).item() == 1.0
    assert topk_overlap(99.0 - a, a).item() == 0.0
    # a map without positive relevance points nowhere: not fooled (its "top" would be tie-breaking)
    assert topk_overlap(torch.zeros(1, 10, 10), a).item() == 1.0 and topk_overlap(-a, a).item() == 1.0
    half = a.clone()
    half[0, 9, :5] = -1  # five of the original's ten top pixels drop out of the top
    assert topk_overlap(half, a).item() == pytest.approx(0.5)


def test_center_mass_distance_is_normalised_by_the_diagonal():
    a, b = torch.zeros(1, 11, 11), torch.zeros(1, 11, 11)
    a[0, 0, 0], b[0, 10, 10] = 1.0, 1.0
    assert center_mass_distance(a, b).item() == pytest.approx(math.hypot(10, 10) / math.hypot(11, 11))
    assert center_mass_distance(a, a).item() == 0.0


def test_rank_correlation_is_spearmans():
    a = torch.rand(3, 6, 6)
    assert torch.allclose(rank_correlation(a, a), torch.ones(3))
    assert torch.allclose(rank_correlation(-a, a), -torch.ones(3))
    assert torch.allclose(rank_correlation(a.exp(), a), torch.ones(3))  # monotone: the same ranking
    ties = torch.tensor([[[1.0, 1.0, 2.0, 3.0]]])
    ref = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    # scipy.stats.spearmanr([1, 1, 2, 3], [1, 2, 3, 4]) = 0.9486832980505138
    assert rank_correlation(ties, ref).item() == pytest.approx(0.9486833, abs=1e-6)
    assert rank_correlation(torch.ones(1, 2, 2), torch.rand(1, 2, 2)).item() == 0.0


def _spearman_one_row_at_a_time(a, b):
    """Spearman's rho the slow way: ranks by torch.unique per row (ties averaged), then Pearson."""
    def ranks(x):
        flat = x.flatten(1).double()
        out = torch.empty_like(flat)
        for i, row in enumerate(flat):
            values, inverse = torch.unique(row, return_inverse=True)
            first = torch.zeros(len(values), dtype=flat.dtype).index_add_(0, inverse, torch.ones_like(row))
            start = first.cumsum(0) - first
            out[i] = (start + (first - 1) / 2)[inverse]
        return out
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    den = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(den > 0, (ra * rb).sum(1) / den.clamp(min=1e-300), torch.zeros_like(den)).float()


def test_rank_correlation_equals_the_row_by_row_formula_with_many_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (6, 7, 7), generator=g).float()  # five values over 49 pixels: ties everywhere
    b = torch.rand(6, 7, 7, generator=g).relu()
    b[:, :3] = 0  # a block of tied zeros, as in a ReLU map
    a[0] = 2.0  # a constant map: 0 by definition
    assert torch.allclose(rank_correlation(a, b), _spearman_one_row_at_a_time(a, b), atol=1e-6)
    assert rank_correlation(a, b)[0].item() == 0.0


def test_rank_correlation_matrix_is_every_pair_of_rank_correlation():
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 4, (5, 6, 6), generator=g).float()
    others = torch.rand(3, 6, 6, generator=g)
    others[1] = 0.0  # constant: its column is 0
    m = rank_correlation_matrix(a, others)
    assert m.shape == (5, 3)
    for j in range(3):
        assert torch.allclose(m[:, j], rank_correlation(a, others[j:j + 1].expand_as(a)), atol=1e-6)
    assert (m[:, 1] == 0).all()
    with pytest.raises(ValueError, match="same size"):
        rank_correlation_matrix(a, torch.rand(2, 5, 5))


def test_active_swap_score_is_positive_only_when_both_explanations_swapped():
    a, b = torch.rand(4, 8, 8), torch.rand(4, 8, 8)
    assert (active_swap_score(b, a, a, b) > 0.5).all()
    assert (active_swap_score(a, b, a, b) < -0.5).all()
    assert (active_swap_score(b, b, a, b) < 0.5).all()  # only one of the two swapped: not both


def test_fooling_success_rate_uses_the_stated_thresholds():
    area = float(corner_mask(28, 28).mean())
    assert fooling_threshold("location", area) == pytest.approx((1 + area) / 2)
    assert fooling_threshold("topk") == 0.3 and fooling_threshold("center_mass") == 0.15
    scores = torch.tensor([0.1, 0.3, 0.31, 0.9])
    assert is_fooled(scores, "topk").tolist() == [True, True, False, False]
    assert fooling_success_rate(scores, "center_mass") == 0.75
    assert fooling_success_rate(torch.tensor([-0.1, 0.2]), "active") == 0.5
    with pytest.raises(ValueError, match="region_area"):
        fooling_threshold("location")
    with pytest.raises(ValueError, match="unknown fooling mode"):
        fooling_threshold("sideways")
    with pytest.raises(ValueError, match="non-empty"):
        fooling_success_rate(torch.tensor([]), "topk")
