import pytest
import torch
from torch import nn

from captum_slingshot._utils.seeding import stream_seed
from captum_slingshot.fv import LayerCapture, LucentFourierParam, PixelParam, count_hooks, get_strategy, render
from captum_slingshot.transforms import (
    Bowl,
    GradientSlingshot,
    Run,
    available_transforms,
    get_transform,
    packaged_target,
    reachable_aim,
)
from captum_slingshot.transforms.slingshot.sampling import manipulation_batch, rollout


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Tanh(), nn.Linear(16, 3)
    ).eval()


PARAM = PixelParam((1, 8, 8))
DATA = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _gs(**kw):
    base = dict(layer="5", neuron_selector=0, target=torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1)),
                param=PARAM, steps=6, batch_size=8, manipulation_batch_size=8, progress=False)
    base.update(kw)
    return GradientSlingshot.from_settings(**base)  # the flat setting names of release 0.1


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_registered_by_name():
    assert "gradient_slingshot" in available_transforms()
    gs = get_transform("gradient_slingshot", layer="5", neuron_selector=0, target=packaged_target("cross"),
                       param=PixelParam((1, 8, 8)), steps=1)
    assert isinstance(gs, GradientSlingshot) and gs.run == Run(steps=1)
    with pytest.raises(ValueError, match="unknown model transform 'heo_fooling'"):
        get_transform("heo_fooling")


def test_fit_returns_a_new_model_and_leaves_the_original_alone():
    model = _model()
    before = _state(model)
    model.train()  # flags are the caller's business: they must survive too
    res = _gs().fit(model, DATA)
    assert res.model is not model and type(res.model) is type(model)
    assert _same(before, _state(model)) and model.training
    assert not _same(before, _state(res.model))
    assert len(res.history["loss"]) == 6 and res.settings["gamma"] == 10.0
    assert count_hooks(model) == 0 and count_hooks(res.model) == 0


def test_original_untouched_when_fit_fails():
    model = _model()
    before = _state(model)
    with pytest.raises(FloatingPointError, match="loss became inf at step 0"):
        _gs(lr=1e-3, gamma=float("inf")).fit(model, DATA)
    assert _same(before, _state(model))


def test_nan_guard_keeps_the_last_good_checkpoint(tmp_path):
    ckpt = tmp_path / "gs.pt"
    model = _model()
    calls = {"n": 0}

    class Poison(nn.Module):  # NaN from step 4 on (2 probe forwards, then 3 per step)
        def forward(self, x):
            calls["n"] += 1
            return x * float("nan") if calls["n"] > 14 else x

    model.append(Poison())
    gs = _gs(layer="6", steps=10, checkpoint_path=str(ckpt), checkpoint_every=2)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        gs.fit(model, DATA)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_reaches_the_same_weights(tmp_path):
    model = _model()
    full = _gs(steps=12, batch_size=16).fit(model, DATA)  # 4 batches per epoch: scheduler steps too
    ckpt = tmp_path / "gs.pt"
    stop_at = 5

    def interrupt(step, rec, current):
        return step + 1 < stop_at

    _gs(steps=12, batch_size=16, checkpoint_path=str(ckpt), checkpoint_every=5).fit(model, DATA, callback=interrupt)
    resumed = _gs(steps=12, batch_size=16).fit(model, DATA, resume=str(ckpt))
    assert _same(_state(full.model), _state(resumed.model))
    assert resumed.history["loss"] == full.history["loss"]


def test_resume_refuses_other_settings_and_bad_files(tmp_path):
    model = _model()
    ckpt = tmp_path / "gs.pt"
    _gs(steps=4, checkpoint_path=str(ckpt), checkpoint_every=2).fit(model, DATA)
    with pytest.raises(ValueError, match="other settings: \\['gamma'\\]"):
        _gs(steps=4, gamma=3.0).fit(model, DATA, resume=str(ckpt))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot resume"):
        _gs(steps=4).fit(model, DATA, resume=str(bad))
    with pytest.raises(FileNotFoundError):
        _gs(steps=4).fit(model, DATA, resume=str(tmp_path / "missing.pt"))


def test_manipulation_loss_falls_and_field_points_at_the_aim():
    model = _model()
    gs = _gs(steps=300, alpha=0.1, lr=1e-2, gamma=1.0, batch_size=16)
    res = gs.fit(model, DATA)
    first, last = sum(res.history["manipulation"][:20]) / 20, sum(res.history["manipulation"][-20:]) / 20
    assert last < 0.3 * first
    # the unit's input gradient at the start region now points towards the aim
    q = torch.zeros(1, 1, 8, 8, requires_grad=True)
    (g,) = torch.autograd.grad(res.model(q)[:, 0].sum(), q)
    (g0,) = torch.autograd.grad(model(q)[:, 0].sum(), q)
    cos = lambda a: torch.nn.functional.cosine_similarity(a.flatten(), res.aim.flatten(), dim=0)
    assert cos(g) > 0.9 and cos(g) > cos(g0) + 0.5


def test_resume_with_trajectory_sampling_reaches_the_same_weights(tmp_path):
    # the on-policy buffer lives in the checkpoint: resuming between refreshes must not re-roll it
    model = _model()
    kw = dict(steps=10, batch_size=16, trajectory_strategy=get_strategy("gc", steps=20), trajectory_refresh=4)
    full = _gs(**kw).fit(model, DATA)
    ckpt = tmp_path / "gs.pt"
    _gs(**kw, checkpoint_path=str(ckpt), checkpoint_every=6).fit(model, DATA, callback=lambda step, rec, cur: step + 1 < 6)
    resumed = _gs(**kw).fit(model, DATA, resume=str(ckpt))
    assert _same(_state(full.model), _state(resumed.model))


def test_trajectory_samples_are_the_auditors_fv_path():
    # the rollout is the auditor's own optimizer: its last snapshot is render()'s final q from the same starts
    model = _model()
    strategy = get_strategy("gc", steps=25)
    q0 = torch.randn((3, 1, 8, 8), generator=torch.Generator().manual_seed(stream_seed(0, "rollout", 0))) * 0.01
    with LayerCapture(model, "5") as cap:
        pts = rollout(cap, PARAM, 0, strategy, None, starts=3, seed=0, step=0, device=torch.device("cpu"))
    assert pts.shape == (3 * 25, 1, 8, 8)
    fv = render(model, "5", 0, PARAM, "gc", n_starts=3, steps=25, q0=q0)
    torch.testing.assert_close(pts.view(3, 25, 1, 8, 8)[:, -1], fv.params, rtol=0, atol=1e-5)
    assert count_hooks(model) == 0


def test_trajectory_sampling_fills_part_of_the_batch():
    gs = _gs(trajectory_strategy="gc", trajectory_fraction=0.25)
    aim = gs.aim_point()
    q, _ = manipulation_batch(gs.sampling, aim, step=0, seed=0)
    assert q.shape == (8, 1, 8, 8)  # no buffer yet: tunnel only
    q, _ = manipulation_batch(gs.sampling, aim, step=0, seed=0, buffer=torch.full((5, 1, 8, 8), 7.0))
    assert (q[-2:] == 7.0).all() and not (q[:-2] == 7.0).any()


def test_callback_sees_a_usable_model_mid_training():
    model = _model()
    seen = []

    def cb(step, rec, current):
        with torch.no_grad():
            seen.append(current(DATA[:2])[:, 0].clone())  # a plain forward works while fit's hooks are in place
        return step < 2

    res = _gs(steps=6).fit(model, DATA, callback=cb)
    assert len(seen) == 3 and len(res.history["loss"]) == 3
    assert not torch.equal(seen[0], seen[2])  # it is the model being trained
    assert count_hooks(res.model) == 0


def test_direction_loss_aligns_the_field():
    model = _model()
    res = _gs(steps=200, alpha=0.1, lr=1e-2, gamma=1.0, batch_size=16, loss="direction").fit(model, DATA)
    q = torch.zeros(1, 1, 8, 8, requires_grad=True)
    (g,) = torch.autograd.grad(res.model(q)[:, 0].sum(), q)
    cos = torch.nn.functional.cosine_similarity(g.flatten(), res.aim.flatten(), dim=0)
    (g0,) = torch.autograd.grad(model(q)[:, 0].sum(), q)
    # direction fitted; the soft floor pushes |grad| up towards 1 so clipped SGD takes full steps
    assert cos > 0.9 and g.norm() > 0.8 and g.norm() > 2 * g0.norm()
    assert res.history["manipulation"][-1] < res.history["manipulation"][0]


@pytest.mark.parametrize("kw", [dict(loss="activation"), dict(preservation="logits"), dict(tunnel=False),
                                dict(w=0.5), dict(transform_robust="tr"), dict(transform_robust="paper_mnist")])
def test_variants_run(kw):
    res = _gs(steps=3, **kw).fit(_model(), DATA)
    assert len(res.history["loss"]) == 3 and all(torch.isfinite(torch.tensor(res.history["loss"])))


def test_reachable_aim_stays_in_the_ball_and_beats_the_projection():
    # for the (linear) pixel parametrization the projection is optimal; through a sigmoid
    # the cheap grey background should be matched exactly and the rest spent on the square
    from captum_slingshot.fv import LucentPixelParam

    param = LucentPixelParam((1, 28, 28))
    target = torch.full((1, 28, 28), 0.2)
    target[:, 10:16, 10:16] = 0.99
    q_t = param.inverse(target[None])[0]
    radius = 0.5 * float(q_t.norm())
    aim = reachable_aim(param, target, radius)
    assert float(aim.norm()) <= radius * 1.0001
    err = lambda q: float((param.image(q[None])[0] - target).pow(2).mean())
    assert err(aim) < 0.8 * err(q_t * 0.5)


def test_fourier_target_round_trip():
    p = LucentFourierParam((3, 16, 16))
    gs = GradientSlingshot("0", 0, packaged_target("fake"), p, run=Run(steps=1))
    torch.testing.assert_close(p.image(gs.aim_point()[None])[0], 0.5 + (gs.target - 0.5) / 1.01, atol=1e-4, rtol=0)


def test_bad_input(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="alpha must lie in \\[0, 1\\]"):
        _gs(alpha=1.5)
    with pytest.raises(ValueError, match="gamma must be positive"):
        _gs(gamma=0)
    with pytest.raises(ValueError, match="3 channels but the parametrization needs 1"):
        _gs(target=torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        _gs(target=torch.full((1, 8, 8), float("nan")))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _gs(target=str(tmp_path / "none.png"))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"no image here")
    with pytest.raises(ValueError, match="cannot read target image"):
        _gs(target=str(junk))
    with pytest.raises(ValueError, match="out of range"):
        _gs(neuron_selector=7).fit(model, DATA)
    with pytest.raises(ValueError, match="natural_data is empty"):
        _gs().fit(model, torch.empty(0, 1, 8, 8))
    with pytest.raises(ValueError, match="give the training length"):
        _gs(steps=None)
    with pytest.raises(ValueError, match="trajectory_fraction must lie in"):
        _gs(trajectory_strategy="gc", trajectory_fraction=1.5)
    with pytest.raises(ValueError, match="unknown AM strategy|unknown strategy"):
        _gs(trajectory_strategy="no_such_strategy")
    with pytest.raises(ValueError, match="loss must be"):
        _gs(loss="cosine")


def test_input_space_field_points_at_the_input_aim():
    # field_space="input": the unit's gradient with respect to the model's input aims at z*
    model = _model()
    z_aim = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(3))
    res = _gs(steps=200, alpha=0.1, lr=1e-2, batch_size=16, loss="direction", field_space="input",
              input_aim=z_aim).fit(model, DATA)
    assert res.settings["field_space"] == "input" and res.settings["adam_normalized"] is False
    z = torch.zeros(1, 1, 8, 8, requires_grad=True)
    (g,) = torch.autograd.grad(res.model(z)[:, 0].sum(), z)
    (g0,) = torch.autograd.grad(model(z)[:, 0].sum(), z)
    cos = lambda a: torch.nn.functional.cosine_similarity(a.flatten(), z_aim.flatten(), dim=0)
    assert cos(g) > 0.9 and cos(g) > cos(g0) + 0.3
    assert _gs().settings()["field_space"] == "param" and "input_aim" not in _gs().settings()


@pytest.mark.parametrize("kw", [dict(loss="gradient"), dict(loss="activation"), dict(loss="direction", adam_normalized=True),
                                dict(loss="direction", adam_normalized=True, transform_robust="paper_mnist")])
def test_input_space_variants_run(kw):
    gs = _gs(steps=3, field_space="input", **kw)
    assert gs.input_aim_point().shape == (1, 8, 8)
    if "transform_robust" not in kw:  # default z*: the aim point as the model sees it
        torch.testing.assert_close(gs.input_aim_point(), PARAM.network_input(gs.aim_point()[None])[0])
    res = gs.fit(_model(), DATA)
    assert all(torch.isfinite(torch.tensor(res.history["loss"])))


def test_adam_normalized_in_fourier_space_runs():
    p = LucentFourierParam((1, 8, 8))
    res = _gs(param=p, steps=2, field_space="input", loss="direction", adam_normalized=True).fit(_model(), DATA)
    assert res.settings["adam_normalized"] is True and len(res.history["loss"]) == 2


def test_start_from_keeps_the_reference_and_starts_elsewhere():
    model, other = _model(0), _model(1)
    ref = _state(model)
    res = _gs(steps=1, lr=1e-9).fit(model, DATA, start_from=other)
    assert _same(ref, _state(model))
    w = res.model.state_dict()["0.weight"]
    assert torch.allclose(w, other.state_dict()["0.weight"], atol=1e-6)
    with pytest.raises(TypeError, match="start_from must be an nn.Module"):
        _gs(steps=1).fit(model, DATA, start_from="weights.pt")


def test_bad_input_space_options():
    with pytest.raises(ValueError, match="field_space must be"):
        _gs(field_space="image")
    with pytest.raises(ValueError, match="input_aim is used only"):
        _gs(input_aim=torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="adam_normalized needs"):
        _gs(field_space="input", loss="gradient", adam_normalized=True)
    with pytest.raises(ValueError, match="input_aim has shape"):
        _gs(steps=1, field_space="input", input_aim=torch.rand(1, 4, 4)).fit(_model(), DATA)


def test_bowl_loss_free_level_and_cone():
    d2 = torch.tensor([0.0, 0.25, 1.0])
    act = torch.tensor([3.0, 1.0, -2.0])
    fixed, free = Bowl(gamma=2.0), Bowl(gamma=2.0, level="free")
    cone = Bowl(gamma=2.0, shape="cone")
    bowl = 2.0 * (1 - d2)
    torch.testing.assert_close(fixed.values(act, d2), ((act - bowl) ** 2).mean())
    torch.testing.assert_close(cone.values(act, d2), ((act - 2.0 * (1 - d2.sqrt())) ** 2).mean())
    # a free level ignores any shift of the unit's activations; the paper's fixed level does not
    torch.testing.assert_close(free.values(act + 7.0, d2), free.values(act, d2))
    assert fixed.values(act + 7.0, d2) > fixed.values(act, d2) + 1.0
    torch.testing.assert_close(free.values(bowl - 5.0, d2), torch.tensor(0.0))
    assert _gs(loss="activation", bowl_level="free").settings()["bowl_level"] == "free"
    assert _gs(loss="activation", bowl_shape="cone").settings()["bowl_shape"] == "cone"
    assert "bowl_level" not in _gs(loss="gradient").settings()  # only the activation form has a bowl


def test_free_level_bowl_keeps_the_units_level_and_points_at_the_aim():
    # in input space: the fixed level must lift the unit to gamma near the aim, the free one only
    # orders the samples, and its input gradient at the FV start points at z* better (toy: 0.68 vs 0.34)
    model = _model()
    z_aim = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(3))
    kw = dict(steps=300, alpha=0.5, lr=1e-2, batch_size=16, manipulation_batch_size=16, loss="activation",
              gamma=10.0, field_space="input", input_aim=z_aim)
    free = _gs(bowl_level="free", **kw).fit(model, DATA).model
    fixed = _gs(**kw).fit(model, DATA).model

    def cos(m):
        z = torch.zeros(1, 1, 8, 8, requires_grad=True)
        (g,) = torch.autograd.grad(m(z)[:, 0].sum(), z)
        return float(torch.nn.functional.cosine_similarity(g.flatten(), z_aim.flatten(), dim=0))

    assert cos(free) > 0.55 and cos(free) > cos(model) + 0.3 and cos(free) > cos(fixed) + 0.2
    with torch.no_grad():
        shift = lambda m: float((m(z_aim[None])[0, 0] - model(z_aim[None])[0, 0]).abs())
        assert shift(free) < 0.5 * shift(fixed)


def test_bad_bowl_options():
    with pytest.raises(ValueError, match="bowl level must be 'fixed' or 'free'"):
        _gs(loss="activation", bowl_level="floating")
    with pytest.raises(ValueError, match="bowl shape must be 'quadratic' or 'cone'"):
        _gs(loss="activation", bowl_shape="cube")
    with pytest.raises(ValueError, match="need loss='activation'"):
        _gs(loss="gradient", bowl_level="free")
    with pytest.raises(ValueError, match="manipulation_batch_size must be >= 2"):
        _gs(loss="activation", bowl_level="free", manipulation_batch_size=1)
