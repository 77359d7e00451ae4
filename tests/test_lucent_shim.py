"""The lucent shim: names, reuse of lucent's code, and a render_vis without side effects."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from captum_slingshot.compat import lucent
from captum_slingshot.fv import LucentFourierParam, count_hooks, unit_activation

from .fv.conftest import make_rgb_cnn


def _nested():
    return nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


def test_layer_names_round_trip():
    model = _nested()
    assert lucent.lucent_layer_name(model, model[0][0]) == "0_0"
    assert lucent.module_from_lucent_name(model, "0_0") is model[0][0]
    with pytest.raises(ValueError, match="no layer is named"):
        lucent.module_from_lucent_name(model, "features_9")


def test_ambiguous_lucent_name():
    model = nn.Module()
    model.a_b = nn.Linear(1, 1)
    model.a = nn.Module()
    model.a.b = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="ambiguous"):
        lucent.module_from_lucent_name(model, "a_b")


def test_render_vis_leaves_no_hooks_and_opens_no_window(monkeypatch):
    monkeypatch.setattr(Image.Image, "show", lambda *a, **k: pytest.fail("render_vis opened a window"))
    model = make_rgb_cnn()
    model[0].register_forward_hook(lambda *a: None)  # a user's own hook must survive
    obj = lucent.objective(model, model[3], 2)
    imgs = lucent.render_vis(model, obj, lucent.native_image(24), thresholds=(3, 6), seed=0)
    assert [i.shape for i in imgs] == [(1, 24, 24, 3), (1, 24, 24, 3)]
    assert count_hooks(model) == 1


def test_render_vis_removes_hooks_when_it_raises():
    model = make_rgb_cnn()
    bad = lucent.lucent_objectives.channel("no_such_layer", 0)
    with pytest.raises(AssertionError, match="Invalid layer"):
        lucent.render_vis(model, bad, lucent.native_image(16), thresholds=(2,), seed=0)
    assert count_hooks(model) == 0


def test_render_vis_is_reproducible_with_seed():
    model = make_rgb_cnn()
    obj = lucent.objective(model, "3", 1)
    a = lucent.render_vis(model, obj, lucent.native_image(16), thresholds=(5,), seed=3)[0]
    np.random.rand(7)  # disturb the global RNGs
    torch.rand(3)
    b = lucent.render_vis(model, obj, lucent.native_image(16), thresholds=(5,), seed=3)[0]
    c = lucent.render_vis(model, obj, lucent.native_image(16), thresholds=(5,), seed=4)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_devices_restored():
    before = (lucent.lucent_spatial.device, lucent.lucent_transform.device)
    with lucent.lucent_devices("meta"):
        assert lucent.lucent_spatial.device == torch.device("meta")
    assert (lucent.lucent_spatial.device, lucent.lucent_transform.device) == before


def test_objective_is_minus_the_units_activation():
    model = make_rgb_cnn()
    x = torch.randn(3, 3, 20, 20)
    for selector in [1, (1, 2, 3)]:
        obj = lucent.objective(model, "3", selector)
        feats = {}
        h = model[3].register_forward_hook(lambda m, i, o: feats.__setitem__("3", o))
        model(x)
        h.remove()
        value = obj(lambda name: feats[name])
        torch.testing.assert_close(value, -unit_activation(model, "3", selector, x).mean())
    with pytest.raises(ValueError, match="cannot express"):
        lucent.objective(model, "3", (1, 2))


def test_our_param_drives_render_vis():
    model = make_rgb_cnn()
    p = LucentFourierParam((3, 16, 16))
    q = p.sample_init(1, seeds=[0])
    imgs = lucent.render_vis(model, lucent.objective(model, "3", 0), lucent.param_f_from(p, q=q),
                              optimizer=lambda ps: torch.optim.SGD(ps, lr=1e-9), transforms=[],
                              thresholds=(1,), seed=0)
    # a negligible step: lucent shows our parametrization's image of q
    np.testing.assert_allclose(imgs[0][0], p.image(q)[0].permute(1, 2, 0).numpy(), atol=1e-5)
