"""metrics.activations: the unit's activation on every input, batching, selectors, hooks."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_slingshot.fv import Direction, LayerNotReachedError, count_hooks
from captum_slingshot.metrics import (
    unit_activations,
)

from ._helpers import Boom, Counter, ListDataset, Stream, conv_model, gen, images


def test_unit_activations_equal_manual_forward():
    model, x = conv_model(), images()
    with torch.no_grad():
        h = model[:3](x)  # (N, 5, 4, 4)
        logits = model(x)
    # an int on a conv output is the channel's spatial mean (select_neuron flattens the rest)
    torch.testing.assert_close(unit_activations(model, "2", 3, x), h[:, 3].mean((1, 2)))
    # (channel, y, x) is a single spatial neuron
    torch.testing.assert_close(unit_activations(model, model[2], (3, 1, 2), x), h[:, 3, 1, 2])
    torch.testing.assert_close(unit_activations(model, "5", 2, x), logits[:, 2])
    v = torch.randn(5, generator=gen(9))
    torch.testing.assert_close(
        unit_activations(model, "2", Direction(v), x), torch.einsum("nchw,c->n", h, v) / 16
    )
    torch.testing.assert_close(unit_activations(model, "2", lambda o: o.amax((1, 2, 3)), x), h.amax((1, 2, 3)))
    assert count_hooks(model) == 0


def test_unit_activations_batching_invariance_and_data_forms():
    model, x = conv_model(), images()
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
        ListDataset(x, y),
        ListDataset(x),
        list(x),
        DataLoader(TensorDataset(x, y), batch_size=10),
        DataLoader(Stream(x), batch_size=8),
    ]
    for data in forms:
        torch.testing.assert_close(unit_activations(model, "2", (1, 0, 3), data, max_examples_per_batch=4), ref)
    assert count_hooks(model) == 0


def test_unit_activations_list_of_selectors():
    model, x = conv_model(), images()
    sels = [0, (4, 3, 3), Direction(torch.ones(5))]
    acts = unit_activations(model, "2", sels, x, max_examples_per_batch=5)
    assert acts.shape == (37, 3)
    for j, s in enumerate(sels):
        torch.testing.assert_close(acts[:, j], unit_activations(model, "2", s, x))
    assert unit_activations(model, "2", [1], x).shape == (37, 1)


def test_unit_activations_stop_after_layer_eval_mode_and_flags():
    counter = Counter()
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), counter, Boom())
    model.train()
    x = torch.randn(9, 3, generator=gen())
    a = unit_activations(model, counter, 1, x, max_examples_per_batch=4)
    torch.testing.assert_close(a, unit_activations(model, counter, 1, x))  # dropout off
    with torch.no_grad():
        torch.testing.assert_close(a, model[0](x)[:, 1])
    assert counter.calls == 3 + 1 and not any(counter.modes)
    assert all(m.training for m in model) and count_hooks(model) == 0


def test_unit_activations_errors_leave_no_hooks():
    model, x = conv_model(), images(5)
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
