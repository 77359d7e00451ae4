"""metrics.auroc: the Mann-Whitney AUROC with ties, and a unit's AUROC for its class."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_slingshot.fv import count_hooks
from captum_slingshot.metrics import (
    auroc,
    unit_auroc,
)

from ._helpers import gen


def _brute_auroc(s, pos):
    p, n = s[pos], s[~pos]
    wins = (p[:, None] > n[None, :]).double() + 0.5 * (p[:, None] == n[None, :]).double()
    return wins.mean().item()


def test_auroc_matches_pairwise_count_with_ties():
    for seed in range(20):
        g = gen(seed)
        n = int(torch.randint(2, 40, (1,), generator=g))
        s = torch.randint(0, 5, (n,), generator=g).float()  # many ties
        y = torch.randint(0, 3, (n,), generator=g)
        y[0], y[1] = 2, 0  # both classes present
        assert auroc(s, y, 2) == pytest.approx(_brute_auroc(s, y == 2), abs=1e-12)
        c = torch.randn(n, generator=g)  # continuous, as lists too
        assert auroc(c.tolist(), y.tolist(), 2) == pytest.approx(_brute_auroc(c, y == 2), abs=1e-12)


def test_auroc_matches_sklearn_if_installed():
    metrics = pytest.importorskip("sklearn.metrics")
    g = gen(4)
    s = torch.randint(0, 6, (60,), generator=g).double()
    y = torch.randint(0, 4, (60,), generator=g)
    assert auroc(s, y, 1) == pytest.approx(metrics.roc_auc_score((y == 1).numpy(), s.numpy()))


def test_auroc_extremes():
    y = torch.tensor([0, 0, 0, 1, 1])
    assert auroc(torch.tensor([0.1, 0.2, 0.3, 0.5, 0.9]), y, 1) == 1.0
    assert auroc(torch.tensor([0.9, 0.8, 0.7, 0.5, 0.1]), y, 1) == 0.0
    assert auroc(torch.ones(5), y, 1) == 0.5
    assert auroc(torch.tensor([0.1, 0.2, 0.3, 0.5, 0.9]), y, 0) == 0.0


def test_auroc_errors():
    with pytest.raises(ValueError, match="no positive examples"):
        auroc([0.1, 0.2], [0, 0], 1)
    with pytest.raises(ValueError, match="no negative examples"):
        auroc([0.1, 0.2], [1, 1], 1)
    with pytest.raises(ValueError, match="same length"):
        auroc([0.1, 0.2, 0.3], [0, 1], 1)
    with pytest.raises(ValueError, match="NaN"):
        auroc([0.1, float("nan")], [0, 1], 1)


def test_unit_auroc():
    model = nn.Sequential(nn.Linear(2, 2))
    nn.init.eye_(model[0].weight)
    nn.init.zeros_(model[0].bias)
    g = gen(5)
    x = torch.randn(40, 2, generator=g)
    y = torch.randint(0, 3, (40,), generator=g)
    for cls in range(3):
        expected = _brute_auroc(x[:, 0], y == cls)
        assert unit_auroc(model, "0", 0, (x, y), cls, max_examples_per_batch=7) == pytest.approx(expected)
        loader = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True, generator=gen(cls))
        assert unit_auroc(model, "0", 0, loader, cls) == pytest.approx(expected)
    sep = (torch.arange(10.0)[:, None] * torch.tensor([1.0, 0.0]), (torch.arange(10) >= 6).long())
    assert unit_auroc(model, model[0], 0, sep, target_class=1) == 1.0
    assert unit_auroc(model, model[0], 0, sep, target_class=0) == 0.0
    assert count_hooks(model) == 0


def test_unit_auroc_errors_leave_no_hooks():
    model = nn.Sequential(nn.Linear(2, 2))
    x, y = torch.randn(6, 2, generator=gen()), torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="target_class 7 does not occur"):
        unit_auroc(model, "0", 0, (x, y), 7)
    with pytest.raises(ValueError, match="is the only class"):
        unit_auroc(model, "0", 0, (x, torch.zeros(6, dtype=torch.long)), 0)
    with pytest.raises(ValueError, match="needs labels"):
        unit_auroc(model, "0", 0, x, 0)
    with pytest.raises(ValueError, match="needs labels"):
        unit_auroc(model, "0", 0, DataLoader(TensorDataset(x), batch_size=2), 0)
    with pytest.raises(ValueError, match="one label per input"):
        unit_auroc(model, "0", 0, (x, torch.zeros(6, 2)), 0)  # raised while the hook is on
    with pytest.raises(TypeError, match="one neuron_selector"):
        unit_auroc(model, "0", [0, 1], (x, y), 0)
    with pytest.raises(ValueError, match="out of range"):
        unit_auroc(model, "0", 2, (x, y), 0)
    assert count_hooks(model) == 0


# --------------------------------------------------------------------------------------- top-k
