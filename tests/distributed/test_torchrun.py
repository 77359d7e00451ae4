"""Two CPU processes under torchrun (gloo) do what one process does: the slingshot fine-tune (state
dicts compared), the layer audit (the same report), and a checkpoint written by 2 processes resumes
in 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from . import scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "distributed" / "scenario.py"), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, torch.load(out / "result.pt", weights_only=False)


@pytest.fixture(scope="module")
def one_process():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, data = scenario.model_and_data()
        result = scenario.slingshot().fit(model, data)
        report = scenario.audit(model, data)
    finally:
        torch.set_num_threads(n)
    return model, data, result, report


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_processes_fine_tune_like_one(two_processes, one_process):
    out, two = two_processes
    _, _, one, _ = one_process
    assert two["world_size"] == 2
    assert _max_diff(two["state"], one.model.state_dict()) < 1e-5
    for key in ("loss", "manipulation", "preservation"):
        assert torch.allclose(torch.tensor(two["history"][key]), torch.tensor(one.history[key]), rtol=1e-4,
                              atol=1e-6), key
    # the fine-tune moved the weights: the comparison above is not between two untouched models
    model, _, _, _ = one_process
    assert _max_diff(one.model.state_dict(), model.state_dict()) > 1e-4


def test_two_processes_audit_like_one(two_processes, one_process):
    _, two = two_processes
    _, _, _, report = one_process
    assert two["units"] == report.units == scenario.AUDIT_UNITS
    for check, scores in report.scores.items():
        assert torch.allclose(two["scores"][check], scores, rtol=1e-4, atol=1e-5), check
    assert torch.allclose(two["combined"], report.combined, rtol=1e-4, atol=1e-4)
    for label, images in two["renders"].items():
        assert images.shape == report.renders[label].images.shape
        assert torch.allclose(images, report.renders[label].images, atol=1e-4), label


def test_a_two_process_checkpoint_resumes_in_one(two_processes, one_process):
    out, _ = two_processes
    model, data, one, _ = one_process
    ckpt = out / "checkpoint.pt"
    assert torch.load(ckpt, weights_only=True)["step"] == scenario.CHECKPOINT_EVERY
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = scenario.slingshot().fit(model, data, resume=str(ckpt))
    finally:
        torch.set_num_threads(n)
    assert _max_diff(resumed.model.state_dict(), one.model.state_dict()) < 1e-5
    assert len(resumed.history["loss"]) == scenario.STEPS


def test_clear_errors_for_a_world_size_the_batches_do_not_fit(monkeypatch):
    from captum_slingshot._utils import distributed
    from captum_slingshot.fv import PixelParam
    from captum_slingshot.transforms import GradientSlingshot, Preservation, Run, Sampling

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    monkeypatch.setattr("captum_slingshot.transforms.slingshot.trainer.current_shard", lambda: distributed.Shard(0, 3))
    gs = GradientSlingshot("1", 0, torch.rand(1, 4, 4), PixelParam((1, 4, 4)), sampling=Sampling(batch_size=6),
                           preservation=Preservation(batch_size=4), run=Run(steps=1, progress=False))
    with pytest.raises(ValueError, match="natural batch .* size 4 is not divisible by the world size 3"):
        gs.fit(model, torch.randn(10, 1, 4, 4))
    with pytest.raises(ValueError, match="2 inputs, fewer than the 3 processes"):
        gs.fit(model, torch.randn(2, 1, 4, 4))


def test_a_ddp_layer_name_finds_the_bare_models_layer():
    from captum_slingshot.fv import unit_activation

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x = torch.randn(2, 1, 4, 4)
    assert torch.equal(unit_activation(model, "module.1", 0, x), unit_activation(model, "1", 0, x))


def _cli(args, out_env, processes):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    if processes == 1:
        cmd = [sys.executable, "-m", "captum_slingshot.cli", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               "-m", "captum_slingshot.cli", *args]
    proc = subprocess.run(cmd, cwd=out_env, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_command_line_manipulates_and_audits_under_torchrun(tmp_path):
    import json

    from captum_slingshot.models import MNISTCNN

    torch.manual_seed(0)
    torch.save(MNISTCNN().state_dict(), tmp_path / "w.pt")
    _, data = scenario.model_and_data()
    torch.save(data, tmp_path / "x.pt")
    model = ["--model", "captum_slingshot.models:MNISTCNN", "--layer", "logits"]
    manipulate = ["manipulate", *model, "--weights", "w.pt", "--unit", "3", "--data", "x.pt", "--steps", "3",
                  "--batch-size", "8", "--manipulation-batch-size", "8", "--no-progress"]
    audit = ["audit", *model, "--units", "0,1,2,3,4", "--checks", "activation_excess,strategy_divergence",
             "--data", "x.pt", "--starts", "2", "--steps", "6", "--no-html", "--no-progress"]
    outs = {}
    for n in (1, 2):
        printed = _cli(manipulate + ["--out", f"m{n}"], tmp_path, n)
        assert printed.count("wrote") == 1  # rank 0 alone reports and writes
        _cli(audit + ["--weights", f"m{n}/model.pt", "--out", f"a{n}"], tmp_path, n)
        outs[n] = (torch.load(tmp_path / f"m{n}" / "model.pt", weights_only=True),
                   json.loads((tmp_path / f"a{n}" / "report.json").read_text()))
    assert json.loads((tmp_path / "m2" / "run.json").read_text())["processes"] == 2
    assert _max_diff(outs[1][0], outs[2][0]) < 1e-5
    rows1, rows2 = outs[1][1]["rows"], outs[2][1]["rows"]
    assert [r["unit"] for r in rows1] == [r["unit"] for r in rows2] == [0, 1, 2, 3, 4]
    for r1, r2 in zip(rows1, rows2):
        for key in ("activation_excess", "strategy_divergence", "combined"):
            assert r1[key] == pytest.approx(r2[key], abs=1e-4), key


def test_commands_that_do_not_share_work_refuse_torchrun(monkeypatch, capsys):
    from captum_slingshot.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["render", "--out", "nowhere"]) == 1
    assert "does not run under torchrun" in capsys.readouterr().err
