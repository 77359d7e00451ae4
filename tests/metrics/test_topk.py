"""metrics.topk: stable running top-k, spatial selectors, every data form, and Jaccard."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_slingshot.fv import Direction, count_hooks
from captum_slingshot.metrics import (
    TopK,
    jaccard,
    top_k_activating,
    unit_activations,
)

from ._helpers import Counter, ListDataset, Stream, conv_model, gen, images


def _stable_desc(v):
    return torch.sort(v, descending=True, stable=True)


def test_top_k_equals_argsort_across_batches():
    model, x = conv_model(), images()
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
    x = torch.randint(0, 4, (30, 1), generator=gen(2)).float()  # only 4 distinct values
    ref = _stable_desc(x[:, 0])
    for bs in (1, 3, 7, 1000):
        top = top_k_activating(model, model, 0, x, k=12, max_examples_per_batch=bs)
        assert torch.equal(top.indices, ref.indices[:12])  # ties: lower position first


def test_top_k_spatial_selector_and_list_in_one_pass():
    counter = Counter()
    model = conv_model()
    model.insert(3, counter)  # identity after the second conv that counts forward calls
    x = images()
    sels = [(1, 2, 2), 4, Direction(torch.randn(5, generator=gen(3)))]
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
    model, x = conv_model(), images()
    y = torch.arange(37) % 6
    forms = [
        x,
        (x, y),
        TensorDataset(x, y),
        ListDataset(x, y),
        DataLoader(TensorDataset(x, y), batch_size=8),
        DataLoader(Stream(x), batch_size=8),
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
    model, x = conv_model(), images(8)
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_activating(model, "2", 0, x, k=0)
    with pytest.raises(TypeError, match="k must be an int"):
        top_k_activating(model, "2", 0, x, k=2.0)
    with pytest.raises(ValueError, match="larger than the dataset, which has 8 inputs"):
        top_k_activating(model, "2", 0, x, k=9)
    with pytest.raises(ValueError, match="larger than the dataset, which has 8 inputs"):
        top_k_activating(model, "2", 0, DataLoader(Stream(x), batch_size=3), k=9)  # found after the pass
    with pytest.raises(ValueError, match="no inputs"):
        top_k_activating(model, "2", 0, DataLoader(Stream(x[:0]), batch_size=3), k=1)
    with pytest.raises(ValueError, match="no inputs"):
        top_k_activating(model, "2", 0, ListDataset(x[:0]), k=1)
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
