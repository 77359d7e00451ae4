"""Adaptive attackers against ``strategy_divergence``: trajectories of several auditors at once
(``Trajectories("gc+tr+adam@lucent_fourier")``)."""

import pytest
import torch
from torch import nn

from captum_slingshot.fv import LayerCapture, LucentFourierParam, PixelParam
from captum_slingshot.transforms import GradientSlingshot, Preservation, Run, Sampling, Trajectories
from captum_slingshot.transforms.slingshot.flat import parts_from_flat
from captum_slingshot.transforms.slingshot.sampling import rollout, trajectory_auditors
from captum_slingshot.transforms.slingshot.trainer import SlingshotRun

PARAM = PixelParam((1, 8, 8))


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 3)).eval()


def _gs(strategy, steps=4, param=PARAM):
    return GradientSlingshot("3", 0, torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1)), param,
                             sampling=Sampling(batch_size=4, trajectories=Trajectories(strategy, steps=10, refresh=2,
                                                                                       starts=2)),
                             preservation=Preservation(batch_size=8), run=Run(steps=steps, progress=False))


def test_entries_are_checked_and_written_down():
    t = Trajectories(" gc + tr+adam@lucent_fourier", steps=5)
    assert t.name == "gc+tr+adam@lucent_fourier"
    assert [(s.name, s.steps, p) for s, p in t.parts()] == [("gc", 5, None), ("tr", 5, None),
                                                             ("adam", 5, "lucent_fourier")]
    assert t.resolved().name == "gc"
    assert Trajectories("adam").parts()[0][0].name == "adam"
    for bad, message in (("gc+nope", "nope"), ("gc+", "strategy name"), ("gc@", "strategy name"),
                         ("gc@nowhere", "nowhere")):
        with pytest.raises(ValueError, match=message):
            Trajectories(bad)
    parts = parts_from_flat({"trajectory_strategy": "gc+adam", "steps": 3})
    assert parts["sampling"].trajectories.name == "gc+adam"


def test_the_buffer_holds_every_auditors_paths_and_the_first_keeps_its_stream():
    model, data = _model(), torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    single = SlingshotRun(_gs("gc"), model, data)
    multi = SlingshotRun(_gs("gc+adam+gc@lucent_fourier"), model, data)
    with LayerCapture(single.student, "3") as cap:
        one = single._rollout(cap, 0)
    with LayerCapture(multi.student, "3") as cap:
        three = multi._rollout(cap, 0)
        fourier = LucentFourierParam((1, 8, 8))
        gc = multi.auditors[0][0]
        direct = rollout(cap, fourier, 0, gc, None, 2, 0, 0, multi.device, stream="rollout2")
    assert three.shape == (3 * len(one),) + one.shape[1:]
    assert torch.equal(three[: len(one)], one)  # a one-strategy run's results are unchanged
    assert not torch.allclose(three[len(one): 2 * len(one)], one)  # adam's paths are other points
    # the Fourier auditor's points are the images the model sees: its network input, the pixel q
    assert torch.allclose(three[2 * len(one):], fourier.network_input(direct), atol=1e-6)


def test_a_multi_auditor_fit_runs_and_resumes_exactly(tmp_path):
    model, data = _model(), torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    full = _gs("gc+tr+adam", steps=6).fit(model, data)
    assert full.settings["trajectory_strategy"] == "gc+tr+adam"
    ck = str(tmp_path / "ck.pt")
    gs = _gs("gc+tr+adam", steps=6)
    gs.replace(run=Run(steps=6, progress=False, checkpoint_path=ck, checkpoint_every=3)).fit(model, data)
    resumed = gs.fit(model, data, resume=ck)
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert model[1].weight.requires_grad  # the original is untouched and unfrozen
    assert not any(torch.equal(a, b) for a, b in zip(full.model.parameters(), model.parameters()))


def test_another_parametrization_needs_the_pixel_attacker():
    fourier = LucentFourierParam((1, 8, 8))
    with pytest.raises(ValueError, match="pixel"):
        trajectory_auditors(Trajectories("gc+gc@lucent_fourier"), fourier)
    assert len(trajectory_auditors(Trajectories("gc+adam"), fourier)) == 2  # same parametrization: fine


def test_capping_every_auditor_keeps_adams_fv_lower_than_capping_gc_alone():
    # faint natural inputs: the unit's natural range is narrow and every auditor's FV climbs far above it
    from captum_slingshot.fv import render
    from captum_slingshot.transforms import ActivationCap

    model, data = _model(), 0.05 * torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))

    def capped(strategy):
        gs = _gs(strategy, steps=30)
        return gs.replace(preservation=Preservation(batch_size=8, activation_cap=ActivationCap(weight=50.0))).fit(
            model, data).model

    adam_top = lambda m: float(render(m, "3", 0, PARAM, "adam", n_starts=4, steps=10).activations.max())
    assert adam_top(capped("gc+adam")) < adam_top(capped("gc"))
