import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from captum_slingshot.fv import Direction, LayerNotReachedError, count_hooks
from captum_slingshot.metrics import (
    TopK,
    accuracy,
    auroc,
    jaccard,
    top_k_activating,
    unit_activations,
    unit_auroc,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _conv_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 6)
    )


def _images(n=37, seed=1):
    return torch.randn(n, 3, 8, 8, generator=_gen(seed))


class _ListDataset(Dataset):
    """A plain map-style dataset of (x, y) items (not a TensorDataset)."""

    def __init__(self, x, y=None):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] if self.y is None else (self.x[i], int(self.y[i]))


class _Stream(IterableDataset):
    def __init__(self, x):
        self.x = x

    def __iter__(self):
        return iter(self.x)


class _Counter(nn.Module):
    """Identity that counts its forward calls and records the training flag it saw."""

    def __init__(self):
        super().__init__()
        self.calls, self.modes = 0, []

    def forward(self, x):
        self.calls += 1
        self.modes.append(self.training)
        return x


class _Boom(nn.Module):
    def forward(self, x):
        raise AssertionError("the forward should have stopped before this layer")


# ------------------------------------------------------------------------------------ accuracy


def _accuracy_setup():
    """Identity classifier on 10 inputs whose labels are right for exactly 7 of them."""
    model = nn.Linear(4, 4, bias=False)
    nn.init.eye_(model.weight)
    x = torch.randn(10, 4, generator=_gen(3))
    pred = x.argmax(1)
    labels = pred.clone()
    labels[[1, 4, 8]] = (pred[[1, 4, 8]] + 1) % 4
    return model, x, labels


def test_accuracy_known_fraction_all_data_forms():
    model, x, y = _accuracy_setup()
    forms = [
        (x, y),
        TensorDataset(x, y),
        _ListDataset(x, y),
        [(x[i], int(y[i])) for i in range(10)],
        DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, generator=_gen(0)),
    ]
    for data in forms:
        for bs in (1, 3, 256):
            assert accuracy(model, data, max_examples_per_batch=bs, device="cpu") == pytest.approx(0.7)
    assert accuracy(model, (x, x.argmax(1))) == 1.0


def test_accuracy_runs_in_eval_mode_and_restores_each_flag():
    counter = _Counter()
    model = nn.Sequential(nn.Linear(4, 4), counter, nn.Dropout(0.9), nn.Linear(4, 3))
    model.train()
    model[3].eval()  # mixed modes must come back as they were
    x, y = torch.randn(6, 4, generator=_gen()), torch.zeros(6, dtype=torch.long)
    acc1, acc2 = accuracy(model, (x, y)), accuracy(model, (x, y))
    assert acc1 == acc2  # dropout was off
    assert counter.modes and not any(counter.modes)
    assert [m.training for m in model] == [True, True, True, False]
    assert model.training and torch.is_grad_enabled()


def test_accuracy_errors():
    model, x, y = _accuracy_setup()
    with pytest.raises(ValueError, match="needs labels"):
        accuracy(model, x)
    with pytest.raises(ValueError, match="needs labels"):
        accuracy(model, _ListDataset(x))
    with pytest.raises(ValueError, match="no inputs"):
        accuracy(model, (x[:0], y[:0]))
    with pytest.raises(ValueError, match="same first"):
        accuracy(model, (x, y[:5]))
    with pytest.raises(ValueError, match="logits of shape"):
        accuracy(nn.Sequential(nn.Linear(4, 4), nn.Flatten(0)), (x, y))
    with pytest.raises(ValueError, match="one integer class label"):
        accuracy(model, (x, y.float()))
    with pytest.raises(ValueError, match="max_examples_per_batch must be >= 1"):
        accuracy(model, (x, y), max_examples_per_batch=0)
    with pytest.raises(TypeError, match="data must be"):
        accuracy(model, {"x": x})
    assert model.training  # restored after errors too


# ---------------------------------------------------------------------------- unit activations


def test_unit_activations_equal_manual_forward():
    model, x = _conv_model(), _images()
    with torch.no_grad():
        h = model[:3](x)  # (N, 5, 4, 4)
        logits = model(x)
    # an int on a conv output is the channel's spatial mean (select_neuron flattens the rest)
    torch.testing.assert_close(unit_activations(model, "2", 3, x), h[:, 3].mean((1, 2)))
    # (channel, y, x) is a single spatial neuron
    torch.testing.assert_close(unit_activations(model, model[2], (3, 1, 2), x), h[:, 3, 1, 2])
    torch.testing.assert_close(unit_activations(model, "5", 2, x), logits[:, 2])
    v = torch.randn(5, generator=_gen(9))
    torch.testing.assert_close(
        unit_activations(model, "2", Direction(v), x), torch.einsum("nchw,c->n", h, v) / 16
    )
    torch.testing.assert_close(unit_activations(model, "2", lambda o: o.amax((1, 2, 3)), x), h.amax((1, 2, 3)))
    assert count_hooks(model) == 0


def test_unit_activations_batching_invariance_and_data_forms():
    model, x = _conv_model(), _images()
    y = torch.arange(len(x)) % 6
    ref = unit_activations(model, "2", (1, 0, 3), x, max_examples_per_batch=1000)
    assert ref.shape == (37,)
    # CPU float32 conv kernels may round differently for other batch sizes (1 ulp seen), so
    # not bit-for-bit; a misaligned or reordered batch would be off by ~0.1, not 1e-6
    small = unit_activations(model, "2", (1, 0, 3), x, max_examples_per_batch=3)
    torch.testing.assert_close(small, ref, rtol=0, atol=1e-6)
    forms = [
        (x, y),
        (x,),
        TensorDataset(x, y),
        _ListDataset(x, y),
        _ListDataset(x),
        list(x),
        DataLoader(TensorDataset(x, y), batch_size=10),
        DataLoader(_Stream(x), batch_size=8),
    ]
    for data in forms:
        torch.testing.assert_close(unit_activations(model, "2", (1, 0, 3), data, max_examples_per_batch=4), ref)
    assert count_hooks(model) == 0


def test_unit_activations_list_of_selectors():
    model, x = _conv_model(), _images()
    sels = [0, (4, 3, 3), Direction(torch.ones(5))]
    acts = unit_activations(model, "2", sels, x, max_examples_per_batch=5)
    assert acts.shape == (37, 3)
    for j, s in enumerate(sels):
        torch.testing.assert_close(acts[:, j], unit_activations(model, "2", s, x))
    assert unit_activations(model, "2", [1], x).shape == (37, 1)


def test_unit_activations_stop_after_layer_eval_mode_and_flags():
    counter = _Counter()
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), counter, _Boom())
    model.train()
    x = torch.randn(9, 3, generator=_gen())
    a = unit_activations(model, counter, 1, x, max_examples_per_batch=4)
    torch.testing.assert_close(a, unit_activations(model, counter, 1, x))  # dropout off
    with torch.no_grad():
        torch.testing.assert_close(a, model[0](x)[:, 1])
    assert counter.calls == 3 + 1 and not any(counter.modes)
    assert all(m.training for m in model) and count_hooks(model) == 0


def test_unit_activations_errors_leave_no_hooks():
    model, x = _conv_model(), _images(5)
    cases = [
        (ValueError, "out of range", dict(layer="2", sel=5)),
        (ValueError, "out of range", dict(layer="2", sel=(0, 4, 0))),
        (ValueError, "has 4 indices", dict(layer="2", sel=(0, 1, 1, 1))),
        (ValueError, "unknown layer", dict(layer="features.2", sel=0)),
        (ValueError, "empty list", dict(layer="2", sel=[])),
        (TypeError, "neuron_selector must be", dict(layer="2", sel="a")),
    ]
    for exc, msg, kw in cases:
        with pytest.raises(exc, match=msg):
            unit_activations(model, kw["layer"], kw["sel"], x)
        assert count_hooks(model) == 0
    with pytest.raises(ValueError, match="no inputs"):
        unit_activations(model, "2", 0, x[:0])
    with pytest.raises(ValueError, match="shuffle=False"):
        unit_activations(model, "2", 0, DataLoader(TensorDataset(x), batch_size=2, shuffle=True))
    assert count_hooks(model) == 0 and model.training

    class WithUnused(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.unused = model, nn.Linear(2, 2)

        def forward(self, x):
            return self.net(x)

    wrapped = WithUnused()
    with pytest.raises(LayerNotReachedError, match="never reached"):
        unit_activations(wrapped, "unused", 0, x)
    assert count_hooks(wrapped) == 0


# --------------------------------------------------------------------------------------- AUROC


def _brute_auroc(s, pos):
    p, n = s[pos], s[~pos]
    wins = (p[:, None] > n[None, :]).double() + 0.5 * (p[:, None] == n[None, :]).double()
    return wins.mean().item()


def test_auroc_matches_pairwise_count_with_ties():
    for seed in range(20):
        g = _gen(seed)
        n = int(torch.randint(2, 40, (1,), generator=g))
        s = torch.randint(0, 5, (n,), generator=g).float()  # many ties
        y = torch.randint(0, 3, (n,), generator=g)
        y[0], y[1] = 2, 0  # both classes present
        assert auroc(s, y, 2) == pytest.approx(_brute_auroc(s, y == 2), abs=1e-12)
        c = torch.randn(n, generator=g)  # continuous, as lists too
        assert auroc(c.tolist(), y.tolist(), 2) == pytest.approx(_brute_auroc(c, y == 2), abs=1e-12)


def test_auroc_matches_sklearn_if_installed():
    metrics = pytest.importorskip("sklearn.metrics")
    g = _gen(4)
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
    g = _gen(5)
    x = torch.randn(40, 2, generator=g)
    y = torch.randint(0, 3, (40,), generator=g)
    for cls in range(3):
        expected = _brute_auroc(x[:, 0], y == cls)
        assert unit_auroc(model, "0", 0, (x, y), cls, max_examples_per_batch=7) == pytest.approx(expected)
        loader = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True, generator=_gen(cls))
        assert unit_auroc(model, "0", 0, loader, cls) == pytest.approx(expected)
    sep = (torch.arange(10.0)[:, None] * torch.tensor([1.0, 0.0]), (torch.arange(10) >= 6).long())
    assert unit_auroc(model, model[0], 0, sep, target_class=1) == 1.0
    assert unit_auroc(model, model[0], 0, sep, target_class=0) == 0.0
    assert count_hooks(model) == 0


def test_unit_auroc_errors_leave_no_hooks():
    model = nn.Sequential(nn.Linear(2, 2))
    x, y = torch.randn(6, 2, generator=_gen()), torch.tensor([0, 0, 1, 1, 2, 2])
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


def _stable_desc(v):
    return torch.sort(v, descending=True, stable=True)


def test_top_k_equals_argsort_across_batches():
    model, x = _conv_model(), _images()
    acts = unit_activations(model, "2", 2, x)
    ref = _stable_desc(acts)
    for bs in (1, 3, 4, 36, 1000):
        for k in (1, 10, 37):
            top = top_k_activating(model, "2", 2, x, k=k, max_examples_per_batch=bs)
            assert isinstance(top, TopK) and len(top) == k
            assert top.indices.dtype == torch.int64
            assert torch.equal(top.indices, ref.indices[:k])
            torch.testing.assert_close(top.values, ref.values[:k])
            assert bool((top.values[:-1] >= top.values[1:]).all())


def test_top_k_ties_are_batching_invariant():
    model = nn.Linear(1, 1, bias=False)
    nn.init.ones_(model.weight)
    x = torch.randint(0, 4, (30, 1), generator=_gen(2)).float()  # only 4 distinct values
    ref = _stable_desc(x[:, 0])
    for bs in (1, 3, 7, 1000):
        top = top_k_activating(model, model, 0, x, k=12, max_examples_per_batch=bs)
        assert torch.equal(top.indices, ref.indices[:12])  # ties: lower position first


def test_top_k_spatial_selector_and_list_in_one_pass():
    counter = _Counter()
    model = _conv_model()
    model.insert(3, counter)  # identity after the second conv that counts forward calls
    x = _images()
    sels = [(1, 2, 2), 4, Direction(torch.randn(5, generator=_gen(3)))]
    tops = top_k_activating(model, counter, sels, x, k=5, max_examples_per_batch=10)
    assert counter.calls == 4  # one pass for all three units (37 inputs, chunks of 10)
    assert isinstance(tops, list) and len(tops) == 3
    for top, s in zip(tops, sels):
        ref = _stable_desc(unit_activations(model, counter, s, x))
        assert torch.equal(top.indices, ref.indices[:5])
        torch.testing.assert_close(top.values, ref.values[:5])
    assert tops[0].indices.tolist() != tops[1].indices.tolist()
    assert count_hooks(model) == 0


def test_top_k_images_from_every_data_form():
    model, x = _conv_model(), _images()
    y = torch.arange(37) % 6
    forms = [
        x,
        (x, y),
        TensorDataset(x, y),
        _ListDataset(x, y),
        DataLoader(TensorDataset(x, y), batch_size=8),
        DataLoader(_Stream(x), batch_size=8),
    ]
    expected = None
    for data in forms:
        top = top_k_activating(model, "0", (0, 3, 3), data, k=7, max_examples_per_batch=5)
        expected = top.indices if expected is None else expected
        assert torch.equal(top.indices, expected)
        imgs = top.images(data)
        assert imgs.shape == (7, 3, 8, 8)
        assert torch.equal(imgs, x[top.indices])
    with pytest.raises(ValueError, match="out of range for data of 5 inputs"):
        TopK(torch.ones(2), torch.tensor([0, 9])).images(x[:5])


def test_top_k_errors_leave_no_hooks():
    model, x = _conv_model(), _images(8)
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_activating(model, "2", 0, x, k=0)
    with pytest.raises(TypeError, match="k must be an int"):
        top_k_activating(model, "2", 0, x, k=2.0)
    with pytest.raises(ValueError, match="larger than the dataset, which has 8 inputs"):
        top_k_activating(model, "2", 0, x, k=9)
    with pytest.raises(ValueError, match="larger than the dataset, which has 8 inputs"):
        top_k_activating(model, "2", 0, DataLoader(_Stream(x), batch_size=3), k=9)  # found after the pass
    with pytest.raises(ValueError, match="no inputs"):
        top_k_activating(model, "2", 0, DataLoader(_Stream(x[:0]), batch_size=3), k=1)
    with pytest.raises(ValueError, match="no inputs"):
        top_k_activating(model, "2", 0, _ListDataset(x[:0]), k=1)
    with pytest.raises(ValueError, match="no inputs"):
        top_k_activating(model, "2", 0, x[:0], k=1)
    with pytest.raises(ValueError, match="out of range"):
        top_k_activating(model, "2", [0, 9], x, k=2)
    with pytest.raises(ValueError, match="shuffle=False"):
        top_k_activating(model, "2", 0, DataLoader(TensorDataset(x), shuffle=True), k=2)
    nan_x = x.clone()
    nan_x[5] = float("nan")
    with pytest.raises(ValueError, match="NaN for input 5"):  # raised between batches, hook on
        top_k_activating(model, "2", 0, nan_x, k=2, max_examples_per_batch=2)
    assert count_hooks(model) == 0 and model.training and torch.is_grad_enabled()


# ------------------------------------------------------------------------------------- Jaccard


def test_jaccard_known_values():
    assert jaccard([0, 1, 2, 3], [2, 3, 4, 5]) == pytest.approx(2 / 6)
    assert jaccard(torch.tensor([1, 2, 3]), [3, 2, 1]) == 1.0
    assert jaccard([1, 2], [3]) == 0.0
    assert jaccard([1, 1, 2], torch.tensor([[2, 5]])) == pytest.approx(1 / 3)  # duplicates once
    assert jaccard([], [4]) == 0.0
    a = TopK(torch.zeros(3), torch.tensor([5, 6, 7]))
    b = TopK(torch.zeros(4), torch.tensor([7, 8, 5, 9]))
    assert jaccard(a, b) == pytest.approx(2 / 5)
    assert jaccard(a, [5, 6, 7]) == 1.0


def test_jaccard_errors():
    with pytest.raises(ValueError, match="both index sets are empty"):
        jaccard([], torch.tensor([], dtype=torch.long))
    with pytest.raises(TypeError, match="integer indices"):
        jaccard(torch.tensor([0.5]), [1])
    with pytest.raises(TypeError, match="integer indices"):
        jaccard([0.5], [1])
    with pytest.raises(TypeError, match="must be a TopK"):
        jaccard(3, [1])


def test_preservation_of_an_unchanged_and_a_perturbed_model():
    """End to end: a copy keeps every metric; a perturbed copy moves them the expected way."""
    model, x = _conv_model(), _images(60, seed=7)
    with torch.no_grad():
        y = model(x).argmax(1)
    copy = _conv_model()
    assert accuracy(copy, (x, y)) == 1.0
    top_a = top_k_activating(model, "2", 1, x, k=15)
    assert jaccard(top_a, top_k_activating(copy, "2", 1, x, k=15)) == 1.0
    other = _conv_model(seed=123)
    assert accuracy(other, (x, y)) < 1.0
    assert jaccard(top_a, top_k_activating(other, "2", 1, x, k=15)) < 1.0
    assert all(count_hooks(m) == 0 for m in (model, copy, other))

