"""The adaptive attacker against ``activation_excess``: ``ActivationCap`` keeps the unit's activation along
the auditor's FV trajectories inside its natural range."""

import pytest
import torch
from torch import nn

from captum_slingshot.fv import PixelParam
from captum_slingshot.transforms import (
    ActivationCap, GradientSlingshot, Preservation, Run, Sampling, Trajectories,
)
from captum_slingshot.transforms.slingshot.flat import parts_from_flat
from captum_slingshot.transforms.slingshot.trainer import SlingshotRun

PARAM = PixelParam((1, 8, 8))


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 3)).eval()


def _gs(cap=ActivationCap(), trajectories=Trajectories("gc", steps=10, refresh=2, starts=2), steps=4):
    return GradientSlingshot("3", 0, torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1)), PARAM,
                             sampling=Sampling(batch_size=4, trajectories=trajectories),
                             preservation=Preservation(batch_size=8, activation_cap=cap),
                             run=Run(steps=steps, progress=False))


def test_the_cap_is_the_natural_range_and_only_activations_above_it_cost():
    model, data = _model(), torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    run = SlingshotRun(_gs(ActivationCap(weight=2.0, margin=1.0)), model, data)
    from captum_slingshot.fv import LayerCapture

    with LayerCapture(model, "3") as frozen:
        limit, scale = run._natural_cap(frozen)
        acts = frozen.run(data)[:, 0]
    used = acts[: (64 // 8) * 8]  # the natural batches the cap reads
    assert limit == pytest.approx(float(used.max().detach()), abs=1e-6)
    assert scale == pytest.approx(float((used.max() - used.median()).detach()), abs=1e-6)
    run.cap = (limit, scale)
    # points whose activation is below the cap cost nothing; points above it cost weight * ((a - cap)/scale)^2
    run.buffer = torch.zeros(5, 1, 8, 8)
    with LayerCapture(run.student, "3") as cap:
        a0 = float(cap.run(PARAM.network_input(run.buffer[:1]))[0, 0])
        run.cap = (a0 + 1.0, 0.5)
        assert float(run.activation_cap_loss(cap, 0)) == 0.0
        run.cap = (a0 - 1.0, 0.5)
        assert float(run.activation_cap_loss(cap, 0)) == pytest.approx(2.0 * (1.0 / 0.5) ** 2, rel=1e-5)


def test_a_capped_fit_runs_resumes_exactly_and_records_its_settings(tmp_path):
    model, data = _model(), torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    full = _gs(steps=6).fit(model, data)
    assert full.settings["activation_cap"] == 1.0 and full.settings["activation_cap_margin"] == 1.0
    assert "activation_cap" not in _gs(cap=None).settings()  # off: the flat settings of earlier releases
    ck = str(tmp_path / "ck.pt")
    gs = _gs(steps=6).replace(run=Run(steps=6, progress=False, checkpoint_path=ck, checkpoint_every=3))
    gs.fit(model, data)
    resumed = _gs(steps=6).fit(model, data, resume=ck)
    for k, v in full.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6)


def test_the_cap_lowers_the_activation_along_the_fv_path():
    # faint natural inputs: the unit's natural range is narrow and the auditor's FV climbs far above it
    model, data = _model(), 0.05 * torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    from captum_slingshot.fv import render

    top = lambda m: float(render(m, "3", 0, PARAM, "gc", n_starts=4, steps=10).activations.max())
    free = _gs(cap=None, steps=30).fit(model, data).model
    capped = _gs(cap=ActivationCap(weight=50.0), steps=30).fit(model, data).model
    natural_max = float(model(data)[:, 0].max())
    assert top(free) > natural_max  # without the cap the FV climbs above the natural range ...
    assert top(capped) < top(free) - 0.1 * (top(free) - natural_max)  # ... the cap pulls it back down


def test_clear_errors():
    with pytest.raises(ValueError, match="positive weight"):
        ActivationCap(weight=0.0)
    with pytest.raises(ValueError, match="margin must be positive"):
        ActivationCap(margin=0.0)
    with pytest.raises(ValueError, match="set trajectory_strategy too"):
        parts_from_flat({"activation_cap": 1.0, "steps": 3})
    with pytest.raises(ValueError, match="trajectory strategy"):
        _gs(trajectories=None).fit(_model(), torch.randn(16, 1, 8, 8))
