"""Saving and reloading the models of fooling_circuit and silent_units (captum_slingshot.transforms.circuits.reload)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from captum_slingshot._utils.hooks import capture_layer
from captum_slingshot.data import normalize_mnist
from captum_slingshot.fv import PixelParam
from captum_slingshot.fv.param import MNIST_MEAN, MNIST_STD
from captum_slingshot.models import MNISTCNN
from captum_slingshot.paths import save_state_dict
from captum_slingshot.transforms import get_transform, packaged_target
from captum_slingshot.transforms.circuits import (
    CircuitModel, FoolingCircuitLayer, SilentUnitLayer, circuit_layers, rebuild_circuit_model,
)

PARAM = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
#: (transform, its settings, the manipulated layer)
CASES = {
    "fooling_circuit": ("fooling_circuit", dict(layer="logits", neuron_selector=0, target=packaged_target("cross"),
                                                param=PARAM), "logits"),
    "fooling_circuit_copy": ("fooling_circuit", dict(layer="fc3", neuron_selector=-2, target=None, param=None,
                                                     copy_unit=7, circuit_k=300.0), "fc3"),
    "silent_units": ("silent_units", dict(layer="logits", neuron_selector=3, silent_scale=50.0), "logits"),
}


@pytest.fixture(scope="module")
def natural(mnist_test):
    """300 normalized test digits calibrate, 200 others are unseen."""
    x = normalize_mnist(mnist_test.tensors[0][:500])
    return x[:300], x[300:]


def _fv_like(seed: int = 0) -> torch.Tensor:
    """Inputs as FV produces them: continuous values, no pixel exactly at the background."""
    return 0.3 * torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _reload(path) -> CircuitModel:
    return rebuild_circuit_model(MNISTCNN().eval(), torch.load(path, weights_only=True))  # fresh, random weights


@pytest.mark.parametrize("case", list(CASES))
def test_save_then_reload_gives_identical_outputs(case, mnist_cnn, natural, tmp_path):
    name, settings, layer = CASES[case]
    result = get_transform(name, **settings).fit(mnist_cnn, natural[0])
    path = save_state_dict(result.model, tmp_path / "model.pt")
    state = torch.load(path, weights_only=True)
    assert circuit_layers(state) == {layer: name}
    assert f"{layer}.channel" in state and (name == "silent_units" or f"{layer}.k" in state)
    reloaded = _reload(path)
    assert isinstance(reloaded, CircuitModel) and not reloaded.training
    kind = FoolingCircuitLayer if name == "fooling_circuit" else SilentUnitLayer
    assert isinstance(reloaded.get_submodule(layer), kind)
    assert str(reloaded.get_submodule(layer)) == str(result.model.get_submodule(layer))
    assert reloaded.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in reloaded.state_dict().items())
    with torch.no_grad():
        for x in natural:
            assert torch.equal(reloaded(x), result.model(x)) and torch.equal(reloaded(x), mnist_cnn(x))
        q = _fv_like()
        assert torch.equal(reloaded(q), result.model(q))
        out = capture_layer(reloaded, layer, q)
        assert torch.equal(out, capture_layer(result.model, layer, q))
        assert not torch.equal(out, capture_layer(mnist_cnn, layer, q))  # the circuit is live after the reload


def test_a_circuit_added_to_a_circuit_model_is_live_and_reloads(mnist_cnn, natural, tmp_path):
    first = get_transform("fooling_circuit", **CASES["fooling_circuit"][1]).fit(mnist_cnn, natural[0]).model
    both = get_transform("silent_units", layer="logits", neuron_selector=5).fit(first, natural[0]).model
    assert isinstance(both.logits, SilentUnitLayer) and isinstance(both.logits.inner, FoolingCircuitLayer)
    q = _fv_like(1)
    with torch.no_grad():
        assert torch.equal(both(natural[1]), mnist_cnn(natural[1]))
        assert not torch.equal(both(q)[:, 5], first(q)[:, 5])  # the new layer runs, not only the old one
        assert torch.equal(both(q)[:, 0], first(q)[:, 0])
        state = torch.load(save_state_dict(both, tmp_path / "both.pt"), weights_only=True)
        assert circuit_layers(state) == {"logits": "silent_units", "logits.inner": "fooling_circuit"}
        assert torch.equal(rebuild_circuit_model(mnist_cnn, state)(q), both(q))


@pytest.fixture(scope="module")
def saved(mnist_cnn, natural):
    result = get_transform("fooling_circuit", **CASES["fooling_circuit"][1]).fit(mnist_cnn, natural[0])
    return {k: v.clone() for k, v in result.model.state_dict().items()}


@pytest.mark.parametrize("edit, model, match", [
    ("plain", MNISTCNN, "holds no circuit layer .*load it with model.load_state_dict"),
    (None, lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
     "fooling_circuit layer at 'logits', but the model has no layer 'logits' \\(its layers: 0, 1\\); pass the "
     "original model"),
    ("drop fc1.weight", MNISTCNN, "does not fit MNISTCNN with those circuits: missing 1 keys \\(fc1.weight\\); pass "
     "the original model the transform was fitted on"),
    ("reshape fc2.bias", MNISTCNN, "shape mismatch \\(fc2.bias \\(3,\\) vs \\(120,\\); state dict vs rebuilt model\\)"),
    ("drop logits.channel", MNISTCNN, "but not logits.channel: it was saved by an older captum_slingshot.*run the "
     "transform again"),
    ("drop logits.decoy.peak", MNISTCNN, "has neither a copied channel \\(logits.source\\) nor a decoy"),
])
def test_a_state_dict_that_does_not_fit_is_a_clear_error(saved, edit, model, match):
    state = dict(saved)
    if edit == "plain":
        state = MNISTCNN().state_dict()
    elif edit is not None:
        verb, key = edit.split()
        if verb == "drop":
            del state[key]
        else:
            state[key] = torch.zeros(3)
    with pytest.raises(ValueError, match=match):
        rebuild_circuit_model(model(), state)


def test_the_original_model_is_untouched_and_device_and_mode_follow_it(saved):
    original = MNISTCNN().train()
    before = {k: v.clone() for k, v in original.state_dict().items()}
    rebuilt = rebuild_circuit_model(original, saved)
    assert rebuilt.training and isinstance(original.logits, nn.Linear)
    assert all(torch.equal(v, before[k]) for k, v in original.state_dict().items())
    assert circuit_layers(original.state_dict()) == {}
