"""ProxPulse (``proxpulse``): the pulse step and the barrier where the answer is known, the pulse raising the unit at
the target, the run comforts (original untouched, exact resume, NaN guard), clear errors, registry and command line."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from captum_slingshot.cli import main
from captum_slingshot.fv import PixelParam
from captum_slingshot.transforms import ProxPulse, available_transforms, get_transform
from captum_slingshot.transforms.peer import PulseObjective, pulse_loss, pulse_point


def _toy(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3)).eval()


def _data(n: int = 48, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 4, 4, generator=g), torch.arange(n) % 3


TARGET = torch.linspace(0, 1, 16).view(1, 4, 4)


def _pulse(**kw) -> ProxPulse:
    base = dict(layer="2", neuron_selector=_active_unit(_toy()), target=TARGET, param=PixelParam((1, 4, 4)), steps=4,
                batch_size=8, progress=False)
    return get_transform("proxpulse", **{**base, **kw})


# -- the pulse and the barrier where the answer is known ----------------------------------------------------
def test_the_pulse_is_a_step_of_the_given_length_up_the_squared_activation():
    w = torch.tensor([3.0, 4.0])
    unit = lambda z: 1.0 + z.flatten(1) @ w  # a > 0: grad of a^2 points along w
    x = torch.zeros(2, 1, 1, 2)
    p = pulse_point(unit, x, 0.2)
    assert torch.allclose(p.flatten(1), torch.tensor([[0.12, 0.16]] * 2))
    assert torch.allclose((p - x).flatten(1).norm(dim=1), torch.tensor([0.2, 0.2]))
    down = pulse_point(lambda z: -1.0 + z.flatten(1) @ w, x, 0.2)  # a < 0: a^2 grows downhill
    assert torch.allclose(down.flatten(1), torch.tensor([[-0.12, -0.16]] * 2))
    flat = pulse_point(lambda z: z.sum((1, 2, 3)) * 0 + 1.0, x, 0.2)  # no gradient: stays
    assert torch.equal(flat, x) and not p.requires_grad


def test_the_barrier_is_log_one_plus_c_over_eps_plus_a_squared():
    assert float(pulse_loss(torch.tensor([0.0]))) == pytest.approx(math.log(1 + 1e-6 / 1e-12))
    assert float(pulse_loss(torch.tensor([1e-3]))) == pytest.approx(math.log(2.0), rel=1e-5)
    assert float(pulse_loss(torch.tensor([2.0]), c=1.0, eps=0.0)) == pytest.approx(math.log(1.25))
    a = torch.tensor([-3.0, 0.0, 0.5, 3.0])  # finite everywhere, symmetric, decreasing in |a|
    vals = [float(pulse_loss(v[None], c=1.0)) for v in a]
    assert all(math.isfinite(v) for v in vals) and vals[0] == vals[3] and vals[1] > vals[2] > vals[3]


# -- the pulse raises the unit at the target -------------------------------------------------------------------
def _active_unit(model: nn.Module) -> int:
    with torch.no_grad():
        return int(model[:3](PixelParam((1, 4, 4)).normalize(TARGET[None]))[0].argmax())


def test_the_unit_rises_next_to_the_target():
    model, data = _toy(), _data()
    result = _pulse(neuron_selector=_active_unit(model), steps=40, lr=1e-2, preserve="none").fit(model, data)
    act = result.history["activation"]
    assert act[-1] > 2 * max(act[0], 0.1)
    assert result.history["manipulation"][-1] < result.history["manipulation"][0]


# -- run comforts ---------------------------------------------------------------------------------------------
def test_the_original_model_is_never_modified_and_settings_record_the_target():
    model, data = _toy(), _data()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = _pulse().fit(model, data)
    assert result.model is not model
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    s = result.settings
    assert s["transform"] == "proxpulse" and s["param"] == "PixelParam" and s["shape"] == [1, 4, 4]
    assert s["target"] == _pulse(target=TARGET.clone()).settings()["target"] != _pulse(target=1 - TARGET).settings()[
        "target"]
    assert (s["step_size"], s["pulse_c"], s["pulse_eps"], s["manipulation_weight"]) == (0.2, 1e-6, 1e-12, 1e6)


def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
    model, data = _toy(), _data()
    ck = tmp_path / "pp.pt"
    full = _pulse(steps=6, checkpoint_every=2, checkpoint_path=str(ck)).fit(model, data)
    resumed = _pulse(steps=6).fit(model, data, resume=str(ck))  # from step 4
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in full.model.state_dict().items())
    assert resumed.history["activation"] == full.history["activation"]
    with pytest.raises(ValueError, match="other settings"):
        _pulse(steps=6, target=0.9 * TARGET).fit(model, data, resume=str(ck))
    with pytest.raises(ValueError, match="checkpoint of 'proxpulse', not of 'activation_max_attack'"):
        get_transform("activation_max_attack", layer="2", neuron_selector=0, top_k=5, steps=6, progress=False).fit(
            model, data, resume=str(ck))


def test_a_non_finite_loss_stops_with_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(PulseObjective, "loss", lambda self, model, step: (torch.tensor(float("inf")), {}))
    with pytest.raises(FloatingPointError, match="proxpulse loss became inf at step 0.*pp.pt' is kept"):
        _pulse(checkpoint_path=str(tmp_path / "pp.pt")).fit(_toy(), _data())


# -- clear errors ----------------------------------------------------------------------------------------------
def test_bad_settings_and_inputs_are_refused_with_a_clear_message():
    for kw, message in [(dict(step_size=0.0), "step_size must be a positive number"),
                        (dict(pulse_c=-1.0), "pulse_c must be a positive number"),
                        (dict(preserve="all"), "preserve must be one of"),
                        (dict(lr=0), "lr must be a positive number")]:
        with pytest.raises(ValueError, match=message):
            _pulse(**kw)
        if "lr" not in kw:
            with pytest.raises(ValueError, match=message):
                ProxPulse.check_settings(**kw)
    with pytest.raises(TypeError, match="param must be a Parametrization"):
        _pulse(param=(1, 4, 4))
    with pytest.raises(ValueError, match="3 channels but the parametrization needs 1"):
        _pulse(target=torch.rand(3, 4, 4))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _pulse(target="/no/such/target.png")
    with pytest.raises(ValueError, match="never reached layer|layer"):
        _pulse(layer="nope").fit(_toy(), _data())
    with torch.no_grad():
        silent = int(_toy()[:3](PixelParam((1, 4, 4)).normalize(TARGET[None]))[0].argmin())
    with pytest.raises(ValueError, match="activation at the target is 0 on the original model"):
        _pulse(neuron_selector=silent).fit(_toy(), _data())


# -- reachable ---------------------------------------------------------------------------------------------------
def test_registered_and_reachable_from_the_command_line(capsys):
    assert "proxpulse" in available_transforms()
    assert ProxPulse.context == ("layer", "neuron_selector", "target", "param")
    with pytest.raises(SystemExit) as exc:
        main(["manipulate", "--transform", "proxpulse", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--step-size" in out and "--pulse-c" in out and "--manipulation-weight" in out


def test_manipulate_runs_it_on_mnist_with_a_packaged_target(tmp_path, capsys):
    import json

    out = tmp_path / "pp"
    assert main(["manipulate", "--transform", "proxpulse", "--layer", "relu4", "--unit", "29", "--target", "cross",
                 "--steps", "2", "--batch-size", "16", "--data-limit", "200", "--no-progress", "--out", str(out)]) == 0
    assert "proxpulse: relu4[29] in 2 steps" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["target"].endswith("cross.jpg") and run["settings"]["shape"] == [1, 28, 28]
