"""metrics.accuracy: known fractions over every data form, eval mode, errors."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_slingshot.metrics import (
    accuracy,
)

from ._helpers import Counter, ListDataset, gen


def _accuracy_setup():
    """Identity classifier on 10 inputs whose labels are right for exactly 7 of them."""
    model = nn.Linear(4, 4, bias=False)
    nn.init.eye_(model.weight)
    x = torch.randn(10, 4, generator=gen(3))
    pred = x.argmax(1)
    labels = pred.clone()
    labels[[1, 4, 8]] = (pred[[1, 4, 8]] + 1) % 4
    return model, x, labels


def test_accuracy_known_fraction_all_data_forms():
    model, x, y = _accuracy_setup()
    forms = [
        (x, y),
        TensorDataset(x, y),
        ListDataset(x, y),
        [(x[i], int(y[i])) for i in range(10)],
        DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, generator=gen(0)),
    ]
    for data in forms:
        for bs in (1, 3, 256):
            assert accuracy(model, data, max_examples_per_batch=bs, device="cpu") == pytest.approx(0.7)
    assert accuracy(model, (x, x.argmax(1))) == 1.0


def test_accuracy_runs_in_eval_mode_and_restores_each_flag():
    counter = Counter()
    model = nn.Sequential(nn.Linear(4, 4), counter, nn.Dropout(0.9), nn.Linear(4, 3))
    model.train()
    model[3].eval()  # mixed modes must come back as they were
    x, y = torch.randn(6, 4, generator=gen()), torch.zeros(6, dtype=torch.long)
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
        accuracy(model, ListDataset(x))
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
