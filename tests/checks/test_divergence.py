"""strategy_divergence: separation on the manipulated toy, details and errors."""

import pytest
import torch
from torch import nn

from captum_slingshot.checks import dissimilarity_matrix, strategy_divergence
from captum_slingshot.fv import LucentFourierParam, PixelParam, count_hooks, get_strategy

from .conftest import LAYER, MANIPULATED

UNITS = list(range(10))


@pytest.fixture(scope="module")
def divergence(reports):
    """The check's scores and details for all 10 logits, as the audit computed them (one batched call each)."""
    man, clean = reports["manipulated"], reports["clean"]
    return (man.scores["strategy_divergence"], man.details["strategy_divergence"]), clean.scores["strategy_divergence"]


def test_separates_the_manipulated_logit(divergence):
    (man, det), clean = divergence
    others = torch.cat([man[1:], clean])
    # measured: 0.62 against at most 0.10 (other logits) / 0.25 (clean model)
    assert man[MANIPULATED] > others.max() + 0.2, (man, clean)
    # both parts point the same way: Adam climbs higher than GC on the slingshot's bowl ...
    assert det["gain"][MANIPULATED] > 0.1 and det["gain"][1:].max() < 0.02
    # ... and reaches it with a different image
    adam = det["labels"].index("adam") - 1
    assert det["excess"][MANIPULATED, adam] > 2 * det["excess"][1:, adam].max()


def test_details_shapes_and_labels(divergence, toy):
    _, det = divergence[0]
    assert det["labels"] == ["gc", "tr", "adam", "gc@lucent_fourier"]
    assert det["images"]["tr"].shape == (10, 4, 1, 14, 14)
    assert det["activations"]["adam"].shape == (10, 4)
    assert det["matrix"].shape == (10, 4, 4) and det["excess"].shape == (10, 3)
    assert det["fv"]["gc"].strategy == get_strategy("gc")
    assert isinstance(det["fv"]["gc@lucent_fourier"].params, torch.Tensor)
    # the GC FV of the manipulated logit is the planted cross
    err = (det["images"]["gc"][MANIPULATED] - toy.target).pow(2).mean()
    assert err < 0.04
    assert count_hooks(toy.manipulated) == 0


def test_single_unit_custom_strategies_and_lpips(toy):
    param = toy.param
    s = strategy_divergence(toy.manipulated, LAYER, 3, param=param, n_starts=2, steps=20,
                            strategies=("gc", ("adam", LucentFourierParam((1, 14, 14)))), measure="lpips")
    assert s.dim() == 0 and torch.isfinite(s)


def test_dissimilarity_matrix():
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    m = dissimilarity_matrix(torch.cat([x, 1 - x[:1]]))
    assert m[0, 3] == pytest.approx(2.0, abs=1e-5)  # anti-correlated
    assert torch.allclose(m, m.T)
    with pytest.raises(ValueError, match="measure must be one of"):
        dissimilarity_matrix(x, "ssim")


def test_bad_arguments():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    param = PixelParam((1, 4, 4))
    with pytest.raises(ValueError, match="at least 2 strategies"):
        strategy_divergence(model, "1", 0, param=param, strategies=("gc",))
    with pytest.raises(ValueError, match="strategies must differ"):
        strategy_divergence(model, "1", 0, param=param, strategies=("gc", "gc"), steps=2)
    with pytest.raises(ValueError, match="unknown AM strategy 'sgd'"):
        strategy_divergence(model, "1", 0, param=param, strategies=("gc", "sgd"))
    with pytest.raises(ValueError, match="makes images of shape \\(1, 8, 8\\)"):
        strategy_divergence(model, "1", 0, param=param, strategies=("gc", ("gc", PixelParam((1, 8, 8)))))
    with pytest.raises(ValueError, match="measure must be one of"):
        strategy_divergence(model, "1", 0, param=param, measure="mse")
    with pytest.raises(ValueError, match="tolerance must be positive"):
        strategy_divergence(model, "1", 0, param=param, tolerance=0)
    with pytest.raises(ValueError, match="out of range"):
        strategy_divergence(model, "1", [0, 3], param=param)
