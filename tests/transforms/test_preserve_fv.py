"""Preservation(fv_paths=FVPaths(...)): the other units' FV paths join the preservation loss."""

import pytest
import torch
from torch import nn

from captum_slingshot.fv import PixelParam, count_hooks
from captum_slingshot.transforms import (
    FieldDirection, FVPaths, GradientSlingshot, Optimizer, Preservation, Run, Sampling, Trajectories,
)
from captum_slingshot.transforms.slingshot import SlingshotRun
from captum_slingshot.transforms.slingshot.preservation import other_units

PARAM = PixelParam((1, 8, 8))
DATA = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
TARGET = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Tanh(),
                         nn.Linear(16, 5)).eval()


def _gs(fv_paths=None, steps=60, **run):
    return GradientSlingshot("5", 0, TARGET, PARAM, loss=FieldDirection(),
                             sampling=Sampling(batch_size=8, trajectories=Trajectories("gc", starts=2)),
                             preservation=Preservation(batch_size=8, fv_paths=fv_paths), optimizer=Optimizer(lr=3e-3),
                             run=Run(steps=steps, progress=False, **run))


def _fit(gs, model):
    """Fit and return the result and the run (which holds the kept FV-path points)."""
    run = SlingshotRun(gs, model, DATA)
    out = run.train()
    return out["model"], run


def _drift(original, manipulated, points):
    """MSE of the other logits (1..4) between the two models at ``points``."""
    with torch.no_grad():
        x = PARAM.network_input(points)
        return float((manipulated(x)[:, 1:] - original(x)[:, 1:]).pow(2).mean())


def test_points_lie_on_the_other_units_fv_paths_and_the_term_keeps_those_fvs():
    model = _model()
    plain = _gs().fit(model, DATA)
    kept, run = _fit(_gs(FVPaths(weight=10.0)), model)
    points = run.fv_points
    # 4 other units x 2 starts x 8 recorded steps of GC (200 steps, every 25th)
    assert points.shape == (4 * 2 * 8, 1, 8, 8)
    # the other logits drift less on their own FV paths than without the term
    assert _drift(model, kept, points) < 0.5 * _drift(model, plain.model, points)
    # the points are the original model's GC path: unit 1's first start after 25 clipped steps of lr 0.1
    q = (torch.randn((4 * 2, 1, 8, 8), generator=torch.Generator().manual_seed(700_001)) * 0.01)[:1]
    for _ in range(25):
        q.requires_grad_(True)
        (grad,) = torch.autograd.grad(model(PARAM.network_input(q))[:, 1].sum(), q)
        q = (q + 0.1 * grad / grad.norm().clamp_min(1.0)).detach()
    torch.testing.assert_close(points[0], q[0], rtol=1e-4, atol=1e-5)
    assert _gs(FVPaths(weight=10.0)).settings()["preserve_fv"] == 10.0 and plain.settings["preserve_fv"] == 0.0
    assert count_hooks(model) == 0 and count_hooks(kept) == 0


def test_chosen_units_and_errors():
    model = _model()
    _, run = _fit(_gs(FVPaths(units=[2]), steps=2), model)
    assert run.fv_points.shape == (1 * 2 * 8, 1, 8, 8)
    assert other_units(FVPaths(), 0, 5) == [1, 2, 3, 4] and other_units(FVPaths(), (3,), 5) == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="preserve_fv must be a positive weight"):
        FVPaths(weight=0.0)
    with pytest.raises(ValueError, match="preserve_fv must be a non-negative weight"):
        GradientSlingshot.from_settings(layer="5", neuron_selector=0, target=TARGET, param=PARAM, steps=1,
                                        preserve_fv=-1.0)
    with pytest.raises(ValueError, match="preserve_fv_units is empty"):
        FVPaths(units=[])
    with pytest.raises(ValueError, match=r"preserve_fv_units \[9\] are out of range for a layer of 5 channels"):
        _gs(FVPaths(units=[9]), steps=1).fit(model, DATA)


def test_resume_is_exact_with_preserve_fv(tmp_path):
    model = _model()
    full = _gs(FVPaths(), steps=8).fit(model, DATA)
    ck = str(tmp_path / "ck.pt")
    _gs(FVPaths(), steps=8, checkpoint_path=ck, checkpoint_every=4).fit(model, DATA,
                                                                        callback=lambda step, rec, m: step + 1 < 4)
    resumed = _gs(FVPaths(), steps=8).fit(model, DATA, resume=ck)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history["loss"] == full.history["loss"]
    with pytest.raises(ValueError, match="other settings: \\['preserve_fv'"):
        _gs(FVPaths(weight=2.0), steps=8).fit(model, DATA, resume=ck)
