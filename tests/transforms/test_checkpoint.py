"""Checkpoints carry a schema; one written by release 0.1 (before the redesign) resumes or is refused clearly.

``tests/assets/pre_redesign/`` holds a checkpoint written by the 0.1 code at step 6 of a 12-step run
(direction loss, reachable aim, GC trajectories, FV-path preservation, one torch thread), the
model, data and target it ran on, and the SHA-256 of the weights the 0.1 code reached after all
12 steps without interruption.
"""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from captum_slingshot.fv import PixelParam
from captum_slingshot.transforms import (
    Aim, FieldDirection, FVPaths, GradientSlingshot, Preservation, Run, Sampling, Trajectories,
)
from captum_slingshot.transforms.slingshot.checkpoint import SCHEMA

from .._hashes import state_hash

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "pre_redesign"


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the assets were written with one thread; sums differ with two
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def old_run():
    inputs = torch.load(ASSETS / "slingshot_v0_1_inputs.pt", weights_only=True)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Tanh(),
                          nn.Linear(16, 3)).eval()
    model.load_state_dict(inputs["model"])
    expected = json.loads((ASSETS / "slingshot_v0_1_expected.json").read_text())
    return model, inputs["data"], inputs["target"], expected


def _composed(target, **run):
    """The 0.1 run's settings, written in today's composed form."""
    return GradientSlingshot("5", 0, target, PixelParam((1, 8, 8)), loss=FieldDirection(), aim=Aim(radius=5.0),
                             sampling=Sampling(batch_size=8, trajectories=Trajectories("gc", refresh=5, starts=2)),
                             preservation=Preservation(batch_size=16, fv_paths=FVPaths(weight=1.0)),
                             run=Run(steps=12, progress=False, **run))


def test_a_release_0_1_checkpoint_resumes_to_the_same_weights(old_run, one_thread):
    model, data, target, expected = old_run
    ckpt = str(ASSETS / "slingshot_v0_1_checkpoint.pt")
    assert "schema" not in torch.load(ckpt, weights_only=True)  # what 0.1 wrote
    resumed = _composed(target).fit(model, data, resume=ckpt)
    if state_hash(resumed.model.state_dict()) != expected["final_state_sha256"]:
        # The stored hash is bit-exact on the CPU that wrote it (the assets' README); on another CPU
        # (e.g. AVX-512 kernels) the float sums round differently from the first resumed step on, by
        # about 1e-8. Then the resume must still continue the 0.1 run: the loss curve to 1e-6 and the
        # weights of an uninterrupted 12-step run of today's code on this CPU to 1e-5.
        assert resumed.history["loss"] == pytest.approx(expected["final_loss_history"], rel=1e-6, abs=1e-7)
        straight = _composed(target).fit(model, data).model.state_dict()
        for k, v in resumed.model.state_dict().items():
            assert torch.allclose(v, straight[k], atol=1e-5), k
    else:
        assert resumed.history["loss"] == expected["final_loss_history"]
    # the same run from the flat names of 0.1 (gamma=1.0 with loss=direction is accepted and has no effect)
    flat = GradientSlingshot.from_settings(
        layer="5", neuron_selector=0, target=target, param=PixelParam((1, 8, 8)), steps=12, batch_size=16,
        manipulation_batch_size=8, loss="direction", gamma=1.0, aim_radius=5.0, trajectory_strategy="gc",
        trajectory_refresh=5, trajectory_starts=2, preserve_fv=1.0, progress=False)
    assert flat.settings() == _composed(target).settings()


def test_a_release_0_1_checkpoint_with_other_settings_is_refused(old_run, tmp_path):
    model, data, target, _ = old_run
    ckpt = str(ASSETS / "slingshot_v0_1_checkpoint.pt")
    other = _composed(target).replace(preservation=Preservation(alpha=0.5, batch_size=16, fv_paths=FVPaths()))
    with pytest.raises(ValueError, match=r"written with other settings: \['alpha'\] \(alpha: 0.8 there, 0.5 here\)"):
        other.fit(model, data, resume=ckpt)
    state = torch.load(ckpt, weights_only=True)
    state["settings"]["loss"] = "cosine"  # a 0.1 setting that is not valid today
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="release 0.1, checkpoint schema 1.*loss must be"):
        _composed(target).fit(model, data, resume=str(tmp_path / "bad.pt"))


def test_new_checkpoints_carry_their_schema_and_newer_ones_are_refused(old_run, tmp_path):
    model, data, target, _ = old_run
    ck = tmp_path / "ck.pt"
    _composed(target, checkpoint_path=str(ck), checkpoint_every=2).fit(model, data, callback=lambda s, r, m: s < 2)
    state = torch.load(ck, weights_only=True)
    assert state["schema"] == SCHEMA == 2 and state["transform"] == "gradient_slingshot" and state["step"] == 2
    assert state["settings"]["target"].startswith("tensor:")
    state["schema"] = SCHEMA + 1
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="written by a newer captum_slingshot"):
        _composed(target).fit(model, data, resume=str(tmp_path / "future.pt"))
    state["schema"], state["transform"] = SCHEMA, "attribution_fooling"
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="a checkpoint of 'attribution_fooling'"):
        _composed(target).fit(model, data, resume=str(tmp_path / "other.pt"))
    # a schema-2 checkpoint also refuses another target (schema 1 did not record it)
    with pytest.raises(ValueError, match=r"other settings: \['target'\]"):
        GradientSlingshot("5", 0, torch.zeros(1, 8, 8), PixelParam((1, 8, 8)), **{
            k: v for k, v in _composed(target).parts().items()}).fit(model, data, resume=str(ck))
