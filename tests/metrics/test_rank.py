"""Kendall's tau, class shares of a top-k and the ranking change of a unit between two models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from captum_slingshot.metrics import TopK, class_shares, kendall_tau, ranking_change


def test_kendall_tau_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 8, (300,), generator=g).float()  # many ties
    b = a + torch.randn(300, generator=g) * 3
    b[::7] = 0.0
    ref = stats.kendalltau(a.numpy(), b.numpy()).statistic  # tau-b
    assert kendall_tau(a, b) == pytest.approx(float(ref), abs=1e-12)
    assert kendall_tau(a, b, chunk=7) == pytest.approx(kendall_tau(a, b), abs=1e-12)


def test_kendall_tau_known_values_and_errors():
    x = torch.arange(10.0)
    assert kendall_tau(x, 2 * x + 1) == 1.0 and kendall_tau(x, -x) == -1.0
    assert kendall_tau(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 3.0, 2.0, 4.0])) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="same length"):
        kendall_tau(x, x[:3])
    with pytest.raises(ValueError, match="at least 2"):
        kendall_tau(x[:1], x[:1])
    with pytest.raises(ValueError, match="constant"):
        kendall_tau(x, torch.ones(10))
    with pytest.raises(ValueError, match="finite"):
        kendall_tau(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0]))


def test_class_shares():
    labels = torch.tensor([0, 1, 1, 2, 2, 2])
    top = TopK(values=torch.tensor([3.0, 2.0, 1.0]), indices=torch.tensor([3, 4, 1]))
    assert class_shares(top, labels).tolist() == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert class_shares(torch.tensor([0]), labels, num_classes=5).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="no top images"):
        class_shares(torch.tensor([], dtype=torch.long), labels)
    with pytest.raises(ValueError, match="must index the 6 labels"):
        class_shares(torch.tensor([6]), labels)
    with pytest.raises(ValueError, match="num_classes=2"):
        class_shares(torch.tensor([0]), labels, num_classes=2)


def test_ranking_change_between_two_models():
    torch.manual_seed(0)
    before = nn.Sequential(nn.Linear(4, 3))
    after = nn.Sequential(nn.Linear(4, 3))
    after.load_state_dict(before.state_dict())
    x = torch.randn(60, 4)
    y = (x[:, 0] > 0).long()
    same = ranking_change(before, after, "0", 1, (x, y), k=10)
    assert (same.kendall_tau, same.jaccard) == (1.0, 1.0) and torch.equal(same.shares_before, same.shares_after)
    with torch.no_grad():
        after[0].weight[1].neg_()
        after[0].bias[1].neg_()
    flipped = ranking_change(before, after, "0", 1, x, k=10)
    assert flipped.kendall_tau == -1.0 and flipped.jaccard == 0.0 and flipped.shares_after is None
    with pytest.raises(ValueError, match="k=61"):
        ranking_change(before, after, "0", 1, x, k=61)
    with pytest.raises(TypeError, match="dotted name"):
        ranking_change(before, after, before[0], 1, x)
