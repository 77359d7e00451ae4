"""GradientSlingshot(preserve_fv=...): the other units' FV paths join the preservation loss."""

import pytest
import torch
from torch import nn

from captum_slingshot.fv import PixelParam, count_hooks
from captum_slingshot.transforms import GradientSlingshot

PARAM = PixelParam((1, 8, 8))
DATA = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
TARGET = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Tanh(),
                         nn.Linear(16, 5)).eval()


def _gs(**kw):
    base = dict(layer="5", neuron_selector=0, target=TARGET, param=PARAM, gamma=1.0, loss="direction",
                trajectory_strategy="gc", trajectory_starts=2, steps=60, batch_size=8, manipulation_batch_size=8,
                lr=3e-3, progress=False)
    base.update(kw)
    return GradientSlingshot(**base)


def _drift(original, manipulated, points):
    """MSE of the other logits (1..4) between the two models at ``points``."""
    with torch.no_grad():
        x = PARAM.network_input(points)
        return float((manipulated(x)[:, 1:] - original(x)[:, 1:]).pow(2).mean())


def test_points_lie_on_the_other_units_fv_paths_and_the_term_keeps_those_fvs():
    model = _model()
    plain = _gs().fit(model, DATA)
    gs = _gs(preserve_fv=10.0)
    kept = gs.fit(model, DATA)
    # 4 other units x 2 starts x 8 recorded steps of GC (200 steps, every 25th)
    assert gs._fv_points.shape == (4 * 2 * 8, 1, 8, 8)
    # the other logits drift less on their own FV paths than without the term
    assert _drift(model, kept.model, gs._fv_points) < 0.5 * _drift(model, plain.model, gs._fv_points)
    # the points are the original model's GC path: unit 1's first start after 25 clipped steps of lr 0.1
    q = (torch.randn((4 * 2, 1, 8, 8), generator=torch.Generator().manual_seed(700_001)) * 0.01)[:1]
    for _ in range(25):
        q.requires_grad_(True)
        (grad,) = torch.autograd.grad(model(PARAM.network_input(q))[:, 1].sum(), q)
        q = (q + 0.1 * grad / grad.norm().clamp_min(1.0)).detach()
    torch.testing.assert_close(gs._fv_points[0], q[0], rtol=1e-4, atol=1e-5)
    assert kept.settings["preserve_fv"] == 10.0 and "preserve_fv" not in plain.settings
    assert count_hooks(model) == 0 and count_hooks(kept.model) == 0


def test_chosen_units_and_errors():
    model = _model()
    gs = _gs(preserve_fv=1.0, preserve_fv_units=[2], steps=2)
    gs.fit(model, DATA)
    assert gs._fv_points.shape == (1 * 2 * 8, 1, 8, 8)
    assert gs._unit_mask((5,), torch.device("cpu")).tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="preserve_fv must be a non-negative weight"):
        _gs(preserve_fv=-1.0)
    with pytest.raises(ValueError, match="preserve_fv_units is empty"):
        _gs(preserve_fv=1.0, preserve_fv_units=[])
    with pytest.raises(ValueError, match=r"preserve_fv_units \[9\] are out of range for a layer of 5 channels"):
        _gs(preserve_fv=1.0, preserve_fv_units=[9], steps=1).fit(model, DATA)


def test_resume_is_exact_with_preserve_fv(tmp_path):
    model = _model()
    full = _gs(preserve_fv=1.0, steps=8).fit(model, DATA)
    ck = str(tmp_path / "ck.pt")
    _gs(preserve_fv=1.0, steps=8, checkpoint_path=ck, checkpoint_every=4,
        callback=lambda step, rec, m: step + 1 < 4).fit(model, DATA)
    resumed = _gs(preserve_fv=1.0, steps=8).fit(model, DATA, resume=ck)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history["loss"] == full.history["loss"]
    with pytest.raises(ValueError, match="other settings: \\['preserve_fv'"):
        _gs(preserve_fv=2.0, steps=8).fit(model, DATA, resume=ck)
