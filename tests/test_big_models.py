"""Big models on CPU: torchvision's ResNet-50 and ViT-B/16 with random weights at 64 px.

Marked ``slow`` (they still run in CI): each model is built once for the module, and every step is
as small as it can be while still going through the real code -- a 2-step slingshot with batches
of 2, a render of 2 starts for 5 steps, an audit of 3 units with 2 starts of 3 steps. The ViT runs
with the defaults a user gets: its units are :class:`~captum_slingshot.fv.Token` selectors (the CLS
token's features, or a direction in the residual stream) and the slingshot picks the activation
form itself; the gradient form is run once too (attention on the math kernel, double backward).
About 5 s on one thread (OMP_NUM_THREADS=1); two threads on a busy two-core machine took 30 s.
"""

import logging

import pytest
import torch
import torchvision

from captum_slingshot.checks import audit_layer
from captum_slingshot.fv import IMAGENET_MEAN, IMAGENET_STD, Direction, LucentFourierParam, Token, count_hooks, render
from captum_slingshot.fv import layer_units
from captum_slingshot.transforms import FieldMSE, GradientSlingshot, Preservation, Run, Sampling

pytestmark = pytest.mark.slow

PARAM = LucentFourierParam((3, 64, 64), mean=IMAGENET_MEAN, std=IMAGENET_STD)
DATA = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
TARGET = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))
VIT_LAYER = "encoder.layers.encoder_layer_2"


def _build(make):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return make().eval()


@pytest.fixture(scope="module")
def resnet50():
    return _build(torchvision.models.resnet50)


@pytest.fixture(scope="module")
def vit_b_16():
    return _build(lambda: torchvision.models.vit_b_16(image_size=64))


def _slingshot(model, layer, unit, steps=2, **parts):
    gs = GradientSlingshot(layer, unit, TARGET, PARAM, sampling=Sampling(batch_size=2),
                           preservation=Preservation(batch_size=2), run=Run(steps=steps, progress=False), **parts)
    result = gs.fit(model, DATA)
    assert len(result.history["loss"]) == steps and all(torch.isfinite(torch.tensor(result.history["loss"])))
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), result.model.parameters()))
    assert count_hooks(model) == 0 and count_hooks(result.model) == 0
    return result


def _render_and_audit(model, layer, unit, units):
    fv = render(model, layer, unit, PARAM, "adam", n_starts=2, seed=0, steps=5)
    assert fv.images.shape == (2, 3, 64, 64) and torch.isfinite(fv.activations).all()
    report = audit_layer(model, layer, param=PARAM, data=DATA, units=units, n_starts=2, steps=3, progress=False)
    assert len(report.table) == len(units) and torch.isfinite(report.combined).all()
    return report


def test_resnet50_slingshot_render_audit(resnet50):
    result = _slingshot(resnet50, "layer2", 3)  # the paper's gradient form (double backward)
    assert result.settings["loss"] == "gradient"
    _render_and_audit(result.model, "layer2", 3, [0, 1, 3])


def test_vit_b_16_slingshot_render_audit(vit_b_16, caplog):
    units = layer_units(vit_b_16, VIT_LAYER, PARAM)
    assert len(units) == 768 and units[5] == Token(5, token=0)  # the CLS token's features
    with caplog.at_level(logging.INFO, logger="captum_slingshot"):
        result = _slingshot(vit_b_16, VIT_LAYER, Token(3))
    assert result.settings["loss"] == "activation" and "transformer" in caplog.text
    direction = Token(Direction(torch.randn(768, generator=torch.Generator().manual_seed(2))))
    report = _render_and_audit(result.model, VIT_LAYER, direction, [Token(3), Token(4), direction])
    assert str(report.units[0]) == "Token(3, token=0)"


def test_vit_b_16_gradient_form_runs_on_the_math_attention_kernel(vit_b_16):
    result = _slingshot(vit_b_16, VIT_LAYER, Token(3), steps=1, loss=FieldMSE())
    assert result.settings["loss"] == "gradient"
