"""Nanfack et al.'s activation-maximization attacks (``activation_max_attack``): the ranking losses where the answer is
known, each mode moving the ranking on a toy model, the run comforts (original untouched, exact resume, NaN guard),
clear errors, and reachability from the registry and the command line."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from captum_slingshot.cli import main
from captum_slingshot.fv import PixelParam
from captum_slingshot.metrics import class_shares, ranking_change
from captum_slingshot.transforms import ActivationMaxAttack, available_transforms, get_transform
from captum_slingshot.transforms.peer import RankingObjective, keep_loss, push_down_loss, push_up_loss


def _toy(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3)).eval()


def _data(n: int = 90, seed: int = 0):
    """Random inputs whose class shows in one pixel (a concept the unit can learn to pick out)."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 1, 4, 4, generator=g), torch.arange(n) % 3
    x[torch.arange(n), 0, 0, y] += 2.0
    return x, y


def _attack(**kw) -> ActivationMaxAttack:
    base = dict(layer="2", neuron_selector=0, top_k=6, fv_starts=0, steps=4, batch_size=16, progress=False)
    return get_transform("activation_max_attack", **{**base, **kw})


def _state(model: nn.Module):
    return {k: v.clone() for k, v in model.state_dict().items()}


# -- the losses where the answer is known -------------------------------------------------------------------
def test_push_down_is_zero_once_every_activation_is_a_margin_below_the_threshold():
    t = torch.tensor(2.0)
    assert float(push_down_loss(torch.tensor([0.0, 1.0]), t, scale=1.0, margin=1.0)) == 0.0
    # 1.5 is 0.5 short of 1 below 2: 0.5 / 2 images
    assert float(push_down_loss(torch.tensor([0.0, 1.5]), t, scale=1.0, margin=1.0)) == pytest.approx(0.25)
    # in units of the scale: the same gap at scale 2 is half as far
    assert float(push_down_loss(torch.tensor([3.0]), t, scale=2.0, margin=0.0)) == pytest.approx(0.5)
    # linear: each image pulls with a force of at most 1 / scale, however far it is
    a = torch.tensor([100.0, 2.5], requires_grad=True)
    push_down_loss(a, t, scale=2.0, margin=0.0).backward()
    assert a.grad.tolist() == [0.25, 0.25]


def test_push_up_is_the_mirror_image_and_keep_is_the_scaled_absolute_deviation():
    t = torch.tensor(1.0)
    assert float(push_up_loss(torch.tensor([2.0, 3.0]), t, scale=1.0, margin=1.0)) == 0.0
    assert float(push_up_loss(torch.tensor([0.0]), t, scale=1.0, margin=1.0)) == pytest.approx(2.0)
    a = torch.tensor([1.0, 2.0])
    assert float(push_up_loss(a, t, 1.0, 0.5)) == float(push_down_loss(-a, -t, 1.0, 0.5))
    assert float(keep_loss(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 1.0]), scale=2.0)) == pytest.approx(0.5)
    assert float(keep_loss(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 1.0]), scale=2.0)) == pytest.approx(0.5)


# -- each mode moves the ranking -----------------------------------------------------------------------------
def _fit(mode: str, **kw):
    model, data = _toy(), _data()
    attack = _attack(mode=mode, steps=60, lr=1e-2, preserve="none", **kw)
    return model, data, attack.fit(model, data).model


def test_push_down_sinks_the_original_top_images_and_keeps_the_unit_alive():
    model, data, after = _fit("push_down")
    r = ranking_change(model, after, "2", 0, data, k=6)
    assert r.jaccard == 0.0  # none of the original top-6 is still in the top-6
    with torch.no_grad():
        acts = after[:3](data[0])[:, 0]
    assert float(acts[r.top_before.indices].max()) <= float(acts.median())  # they sank to the lower half
    assert float(acts.std()) > 0.1  # the unit still ranks the other images


def test_push_up_puts_the_decoy_class_on_top():
    model, data, after = _fit("push_up", decoy_class=0)
    r = ranking_change(model, after, "2", 0, data, k=6)
    assert float(r.shares_after[0]) == 1.0 and float(r.shares_before[0]) < 0.5


def test_fairwash_moves_the_protected_class_out_of_the_top_and_keeps_the_rest():
    model, data, after = _fit("fairwash", protected_class=0)
    r = ranking_change(model, after, "2", 0, data, k=6)
    assert float(r.shares_before[0]) > 0 and float(r.shares_after[0]) == 0.0
    rest = data[0][data[1] != 0]
    with torch.no_grad():
        before_rest, after_rest = model[:3](rest)[:, 0], after[:3](rest)[:, 0]
    assert float((after_rest - before_rest).abs().mean()) < 0.25 * float(before_rest.std())


def test_push_down_also_pushes_the_original_fvs_when_given_a_parametrization():
    model, data = _toy(), _data()
    attack = _attack(param=PixelParam((1, 4, 4)), fv_starts=2)
    from captum_slingshot.transforms.peer import PeerRun

    run = PeerRun(attack, model, data)
    assert isinstance(run.objective, RankingObjective) and run.objective.moved.shape[0] == 6 + 2
    assert attack.settings()["param"] == "PixelParam"


# -- run comforts ---------------------------------------------------------------------------------------------
def test_the_original_model_is_never_modified():
    model, data = _toy(), _data()
    before = _state(model)
    result = _attack(mode="fairwash", protected_class=1).fit(model, data)
    assert result.model is not model
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not all(torch.equal(v, result.model.state_dict()[k]) for k, v in before.items())
    assert set(result.history) >= {"loss", "preservation", "manipulation", "moved", "kept"}
    assert result.settings["transform"] == "activation_max_attack" and result.settings["mode"] == "fairwash"


def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
    model, data = _toy(), _data()
    ck = tmp_path / "am.pt"
    full = _attack(mode="push_up", decoy_class=1, steps=6, checkpoint_every=3, checkpoint_path=str(ck)).fit(model,
                                                                                                            data)
    assert ck.exists()  # written at step 3
    resumed = _attack(mode="push_up", decoy_class=1, steps=6).fit(model, data, resume=str(ck))
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in full.model.state_dict().items())
    assert resumed.history["loss"] == full.history["loss"]
    with pytest.raises(ValueError, match="other settings"):
        _attack(mode="push_up", decoy_class=2, steps=6).fit(model, data, resume=str(ck))


def test_a_non_finite_loss_stops_with_a_clear_error(monkeypatch):
    monkeypatch.setattr(RankingObjective, "loss", lambda self, model, step: (torch.tensor(float("nan")), {}))
    with pytest.raises(FloatingPointError, match="activation_max_attack loss became nan at step 0"):
        _attack().fit(_toy(), _data())


# -- clear errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, message", [
    (dict(mode="sideways"), "unknown mode 'sideways'"),
    (dict(mode="push_up"), "push_up needs decoy_class"),
    (dict(mode="fairwash"), "fairwash needs protected_class"),
    (dict(mode="push_up", decoy_class=-1), "decoy_class must be a non-negative class index"),
    (dict(top_k=0), "top_k must be a positive integer"),
    (dict(margin=-1.0), "margin must be a number >= 0"),
    (dict(preserve="both"), "preserve must be one of"),
    (dict(manipulation_weight=0), "manipulation_weight must be a positive number"),
    (dict(steps=0), "steps must be a positive integer"),
    (dict(gamma=1.0), "unknown setting"),
])
def test_bad_settings_are_refused_with_a_clear_message(kw, message):
    with pytest.raises(ValueError, match=message):
        _attack(**kw)
    if "steps" not in kw and "gamma" not in kw:  # a study checks every cell before loading a model
        with pytest.raises(ValueError, match=message):
            ActivationMaxAttack.check_settings(**kw)


def test_bad_data_and_models_are_refused_with_a_clear_message():
    model, (x, y) = _toy(), _data()
    with pytest.raises(ValueError, match="decoy_class=7 has no images"):
        _attack(mode="push_up", decoy_class=7).fit(model, (x, y))
    with pytest.raises(ValueError, match="needs labelled natural data"):
        _attack(mode="fairwash", protected_class=0, preserve="none").fit(model, x)
    with pytest.raises(ValueError, match="preserve='ce' needs labels"):
        _attack().fit(model, x)
    with pytest.raises(ValueError, match="top_k=90 must be smaller"):
        _attack(top_k=90).fit(model, (x, y))
    with pytest.raises(ValueError, match="neuron_selector 12 is out of range"):
        _attack(neuron_selector=12).fit(model, (x, y))
    with pytest.raises(ValueError, match="constant on the natural data"):
        dead = copy.deepcopy(model)
        nn.init.zeros_(dead[1].weight), nn.init.zeros_(dead[1].bias)
        _attack().fit(dead, (x, y))
    silent = nn.Sequential(nn.Flatten(), nn.Linear(16, 2), nn.ReLU(), nn.Linear(2, 3)).eval()
    with torch.no_grad():  # unit 0 = relu(5 - 10 * pixel 2), silent where pixel 2 is large
        silent[1].weight.zero_(), silent[1].bias.fill_(5.0)
        silent[1].weight[0, 2] = -10.0
        silent[1].weight[1, 0] = 1.0
    xs = x.clone()
    xs[y == 2, 0, 0, 2] = 5.0
    with pytest.raises(ValueError, match="silent .activation 0. on every image of decoy_class=2"):
        _attack(mode="push_up", decoy_class=2).fit(silent, (xs, y))
    with pytest.raises(TypeError, match="nn.Module"):
        _attack().fit("model", (x, y))
    with pytest.raises(ValueError, match="natural_data is empty"):
        _attack().fit(model, (x[:0], y[:0]))


# -- reachable ---------------------------------------------------------------------------------------------------
def test_registered_and_reachable_from_the_command_line(capsys):
    assert "activation_max_attack" in available_transforms()
    names = {o.name for o in ActivationMaxAttack.options()}
    assert {"mode", "top_k", "decoy_class", "protected_class", "keep_weight", "steps", "lr", "checkpoint_path"} <= names
    with pytest.raises(SystemExit) as exc:
        main(["manipulate", "--transform", "activation_max_attack", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--mode" in out and "--decoy-class" in out and "--protected-class" in out and "--fv-starts" in out


def test_manipulate_runs_it_on_mnist_with_labels_and_writes_the_two_files(tmp_path, capsys):
    import json

    out = tmp_path / "am"
    assert main(["manipulate", "--transform", "activation_max_attack", "--layer", "relu4", "--unit", "29", "--mode",
                 "push_up", "--decoy-class", "1", "--top-k", "5", "--steps", "2", "--batch-size", "16",
                 "--data-limit", "200", "--no-progress", "--out", str(out)]) == 0
    assert "activation_max_attack: relu4[29] in 2 steps" in capsys.readouterr().out
    s = json.loads((out / "run.json").read_text())["settings"]
    assert (s["mode"], s["decoy_class"], s["layer"], s["neuron_selector"], s["param"]) == \
        ("push_up", 1, "relu4", 29, "PixelParam")
    assert main(["manipulate", "--transform", "activation_max_attack", "--mode", "fairwash", "--steps", "2",
                 "--data-limit", "50", "--no-progress", "--out", str(tmp_path / "bad")]) == 1
    assert "fairwash needs protected_class" in capsys.readouterr().err
