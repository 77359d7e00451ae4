"""The manipulate / render / audit subcommands: files written, settings merged, user errors."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from captum_slingshot.cli import main
from captum_slingshot.experiments.errors import SettingsError
from captum_slingshot.experiments.loading import load_model
from captum_slingshot.experiments.options import manipulate_options, merge_settings
from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.models import MNISTCNN

from ._hashes import state_hash

TINY = ["--steps", "2", "--batch-size", "8", "--manipulation-batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small natural-data file and a few bad weights files."""
    d = tmp_path_factory.mktemp("cli_files")
    torch.save(normalize_mnist(load_mnist("heldout").tensors[0][:300]), d / "natural.pt")
    torch.save(MNISTCNN(), d / "whole_model.pt")
    torch.save(torch.zeros(3, 4), d / "tensor.pt")
    (d / "garbage.pt").write_bytes(b"these are not the weights you are looking for" * 20)
    torch.save(torch.nn.Linear(3, 2).state_dict(), d / "other_model.pt")
    torch.save({"lr": 0.1}, d / "not_a_state_dict.pt")
    return d


def _error(capsys, argv, code=1):
    """Run main(argv), expect a clean failure; return the one-line message."""
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if "error:" in l]
    assert len(lines) == 1, err
    return lines[0]


def test_manipulate_then_audit_round_trip(tmp_path, capsys, files, mnist_cnn):
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("steps: 50\ngamma: 5.0\nalpha: 0.7\ntarget: fake\nbatch-size: 16\n")
    man = tmp_path / "attack"
    assert main(["manipulate", "--config", str(cfg), "--data", str(files / "natural.pt"), "--gamma", "20",
                 "--out", str(man), *TINY]) == 0
    assert f"wrote {man / 'model.pt'}" in capsys.readouterr().out
    assert sorted(os.listdir(man)) == ["model.pt", "run.json"]  # no temporary files left

    state = torch.load(man / "model.pt", weights_only=True)
    assert state.keys() == mnist_cnn.state_dict().keys()
    assert not torch.equal(state["logits.weight"], mnist_cnn.state_dict()["logits.weight"])
    run = json.loads((man / "run.json").read_text())
    s = run["settings"]
    # flags win over the YAML file, which wins over the defaults
    assert (s["gamma"], s["steps"], s["alpha"], s["batch_size"], s["sigma"]) == (20.0, 2, 0.7, 8, 0.1)
    assert s["layer"] == "logits" and s["neuron_selector"] == 0 and s["shape"] == [1, 28, 28]
    assert run["target"].endswith("fake.jpg") and run["data"]["n"] == 300
    assert run["model_source"] == {"model": "captum_slingshot.models:MNISTCNN", "weights": "pretrained_mnist_cnn()"}
    assert run["history"]["steps"] == 2 and {"first", "last", "min"} <= set(run["history"]["loss"])
    assert run["command_line"].startswith("captum-slingshot manipulate --config")
    assert {"torch", "captum", "captum_slingshot", "python"} <= set(run["versions"])
    assert run["param"]["mean"] == [0.1307]

    aud = tmp_path / "audit"
    assert main(["audit", "--weights", str(man / "model.pt"), "--data", str(files / "natural.pt"),
                 "--checks", "slingshot_field,natural_gap", "--no-lpips", "--starts", "1", "--steps", "5",
                 "--k", "4", "--samples", "8", "--threshold", "0.4", "--out", str(aud), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((aud / "report.json").read_text())
    assert len(report["rows"]) == 10 and [r["unit"] for r in report["rows"]] == list(range(10))
    assert report["layer"] == "logits" and set(report["checks"]) == {"slingshot_field", "natural_gap"}
    assert len((aud / "report.csv").read_text().strip().splitlines()) == 11
    assert (aud / "summary.txt").read_text().startswith("audit of layer 'logits': 10 units")
    assert f"flagged units: {report['flagged']}" in printed and "audit of layer 'logits'" in printed
    assert report["flagged"], "threshold 0.4 should flag a few units of 10"
    figures = sorted(os.listdir(aud / "figures"))
    assert figures == sorted(f"unit_{u}.png" for u in report["flagged"])


def test_manipulate_reproduces_the_demo_model_bit_for_bit_as_before_the_redesign(tmp_path, mnist_cnn):
    """The README's manipulate command is the demo's attack: same settings, bit-identical weights; and those
    weights are the ones the code before the redesign (0.1) wrote, whose SHA-256 is stored in the assets."""
    from pathlib import Path

    from captum_slingshot.experiments.demo import demo_slingshot

    stored = json.loads((Path(__file__).parent / "assets" / "pre_redesign" / "demo_hashes.json").read_text())
    if state_hash(mnist_cnn.state_dict()) != stored["base"]:
        pytest.skip("the cached MNIST CNN differs from the one the stored hashes start from (another torch or CPU)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the stored hashes are for one thread: sums are ordered differently with two
    try:
        out = tmp_path / "attack"
        assert main(["manipulate", "--steps", "12", "--gamma", "1", "--loss", "direction", "--lr", "1e-3",
                     "--trajectory-strategy", "gc", "--aim-radius", "19.5", "--preserve-fv", "1", "--out", str(out),
                     "--no-progress"]) == 0
        gs = demo_slingshot(steps=12, progress=False)
        run = json.loads((out / "run.json").read_text())
        assert run["settings"] == json.loads(json.dumps(gs.settings()))
        expected = gs.fit(mnist_cnn, normalize_mnist(load_mnist("train").tensors[0])).model.state_dict()
    finally:
        torch.set_num_threads(threads)
    state = torch.load(out / "model.pt", weights_only=True)
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    assert state_hash(state) == stored["threads_1"]["12"]


def test_render_writes_grid_and_json(tmp_path, capsys, mnist_cnn):
    out = tmp_path / "fv"
    assert main(["render", "--units", "0,3,7", "--strategies", "gc,adam", "--starts", "2", "--steps", "5",
                 "--out", str(out), "--no-progress"]) == 0
    assert f"wrote {out / 'fv.png'}" in capsys.readouterr().out
    doc = json.loads((out / "fv.json").read_text())
    assert doc["units"] == [0, 3, 7] and list(doc["strategies"]) == ["gc", "adam"]
    gc = doc["strategies"]["gc"]
    assert gc["steps"] == 5 and len(gc["activations"]) == 3 and len(gc["activations"][0]) == 2
    assert gc["best_activation"] == [max(a) for a in gc["activations"]]
    assert os.path.getsize(out / "fv.png") > 5_000
    assert sorted(os.listdir(out)) == ["fv.json", "fv.png"]


def test_import_path_models_and_cwd_modules(tmp_path, monkeypatch, mnist_cnn):
    weights = tmp_path / "w.pt"
    torch.save(mnist_cnn.state_dict(), weights)
    # the built-in CNN's full import path means --model mnist_cnn
    loaded = load_model(model="captum_slingshot.models:MNISTCNN", weights=str(weights))
    assert loaded.kind == "mnist_cnn" and not loaded.model.training
    assert torch.equal(loaded.model.logits.weight, mnist_cnn.logits.weight)
    # a factory in a module of the working directory, plus a state dict
    (tmp_path / "my_nets.py").write_text("from captum_slingshot.models import MNISTCNN\n"
                                         "def make():\n    return MNISTCNN().train()\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_model(model="my_nets:make", weights=str(weights))
    assert loaded.kind == "import" and not loaded.model.training
    assert loaded.source == {"model": "my_nets:make", "weights": str(weights)}
    assert torch.equal(loaded.model.logits.weight, mnist_cnn.logits.weight)
    assert str(tmp_path) not in sys.path


def test_torchvision_model_from_a_weights_file(tmp_path):
    import torchvision

    ref = torchvision.models.squeezenet1_1(weights=None, num_classes=7)
    torch.save(ref.state_dict(), tmp_path / "sq.pt")
    loaded = load_model(torchvision="squeezenet1_1", weights=str(tmp_path / "sq.pt"), num_classes=7)
    assert loaded.kind == "torchvision" and loaded.source["torchvision"] == "squeezenet1_1"
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), ref.state_dict().values()))
    with pytest.raises(SettingsError, match="does not fit torchvision squeezenet1_1: shape mismatch"):
        load_model(torchvision="squeezenet1_1", weights=str(tmp_path / "sq.pt"))


BAD_WEIGHTS = [
    ("missing.pt", "weights file .*missing.pt' does not exist"),
    ("garbage.pt", "garbage.pt' is not a readable PyTorch file"),
    ("whole_model.pt", "holds pickled Python objects, not tensors .*save model.state_dict\\(\\) instead"),
    ("tensor.pt", "holds a single tensor of shape \\(3, 4\\), not a state dict"),
    ("not_a_state_dict.pt", "holds a dict that is not a state dict"),
    ("other_model.pt", "does not fit the MNIST CNN \\(mnist_cnn\\): missing 12 keys .*unexpected 2 keys \\(weight, bias\\)"),
]


@pytest.mark.parametrize("command", ["manipulate", "render", "audit"])
@pytest.mark.parametrize("name,message", BAD_WEIGHTS, ids=[b[0] for b in BAD_WEIGHTS])
def test_bad_weights_fail_cleanly(command, name, message, files, tmp_path, capsys):
    import re

    line = _error(capsys, [command, "--weights", str(files / name), "--out", str(tmp_path / "o")])
    assert line.startswith(f"captum-slingshot {command}: error: ") and re.search(message, line), line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,message", [
    (["--torchvision", "resnet81", "--weights", "{files}/tensor.pt"],
     "unknown torchvision model 'resnet81'; close matches: resnet18"),
    (["--torchvision", "resnet18"], "needs --weights: 'default' for torchvision's pretrained weights \\(downloaded\\) "
     "or FILE, a state dict"),
    (["--torchvision", "squeezenet1_1", "--weights", "IMAGENET1K_V9"],
     "weights file 'IMAGENET1K_V9' does not exist; for torchvision's pretrained weights give --weights default "
     "\\(or IMAGENET1K_V1\\)"),
    (["--weights", "default"], "--weights default \\(pretrained weights, downloaded\\) applies to --torchvision models only"),
    (["--model", "mnist_cnn", "--torchvision", "resnet18"], "give --model or --torchvision, not both"),
    (["--model", "{files}/natural.pt"], "takes a registered model name \\(mnist_cnn, .*\\) or an import path 'package.module:factory'"),
    (["--model", "no_such_pkg.nets:make"], "cannot import 'no_such_pkg.nets'"),
    (["--model", "captum_slingshot.models:MNISTNN"], "has no attribute 'MNISTNN' .*did you mean MNISTCNN"),
    (["--model", "captum_slingshot.models:train_classifier"],
     "calling captum_slingshot.models:train_classifier\\(\\) failed: TypeError"),
    (["--model", "captum_slingshot.paths:ENV_VAR"], "not a callable returning a model"),
    (["--data", "{files}/missing.pt"], "data file .* does not exist"),
    (["--data", "{files}/not_a_state_dict.pt"], "data file .* holds a dict; expected a tensor"),
    (["--target", "round"], "target 'round' is neither a packaged target \\(cross, fake\\)"),
    (["--layer", "fc9"], "unknown layer 'fc9'"),
    (["--unit", "12"], "out of range"),
    (["--alpha", "2"], "alpha must lie in \\[0, 1\\]"),
    (["--bowl-level", "free"], "bowl_level and bowl_shape shape the activation form: they need loss='activation'"),
    (["--resume", "{files}/missing.pt"], "does not exist"),
    (["--shape", "1,28"], "--shape must be three positive integers"),
    (["--mean", "0.5"], "give both --mean and --std"),
])
def test_manipulate_user_errors(argv, message, files, tmp_path, capsys, mnist_cnn):
    import re

    argv = [a.format(files=files) for a in argv]
    line = _error(capsys, ["manipulate", *argv, "--data-limit", "50", "--out", str(tmp_path / "o"), *TINY])
    assert re.search(message, line), line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("yaml_text,message", [
    ("steps: 5\ngama: 3\n", "unknown key 'gama' in config file .*settings.yaml' "
     "\\(did you mean 'gamma'\\?\\); valid keys: activation_cap, activation_cap_margin, adam_normalized, aim_point, aim_radius, alpha, batch_size, .*trajectory_strategy"),
    ("bogus: 1\n", "unknown key 'bogus'.*valid keys: activation_cap, activation_cap_margin, adam_normalized, aim_point"),
    ("gamma: steep\n", "key 'gamma': expected a number, got 'steep'"),
    ("loss: mse\n", "key 'loss': expected one of gradient, direction, activation, got 'mse'"),
    ("tunnel: maybe\n", "key 'tunnel': expected true or false"),
    ("- 1\n- 2\n", "must hold a mapping of settings"),
    ("gamma: [1\n", "is not valid YAML"),
])
def test_config_errors(yaml_text, message, tmp_path, capsys):
    import re

    cfg = tmp_path / "settings.yaml"
    cfg.write_text(yaml_text)
    line = _error(capsys, ["manipulate", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert re.search(message, line), line


def test_missing_config_file(tmp_path, capsys):
    line = _error(capsys, ["manipulate", "--config", str(tmp_path / "nope.yaml")])
    assert "config file" in line and "nope.yaml' does not exist" in line


def test_flag_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["manipulate", "--gamma", "steep"])
    assert exc.value.code == 2
    assert "argument --gamma: expected a number, got 'steep'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["render", "--param", "fourier"])
    assert exc.value.code == 2


def test_yaml_and_flags_merge_rules():
    options = manipulate_options()
    both = merge_settings(options, {"steps": 100, "model": "pkg.m:f"}, {"epochs": 2.0, "torchvision": "resnet18"})
    # a flag replaces its alternative from the file: --epochs drops steps, --torchvision drops model
    assert (both["steps"], both["epochs"], both["model"], both["torchvision"]) == (None, 2.0, None, "resnet18")
    assert merge_settings(options, {}, {})["epochs"] == 1.0  # neither: one epoch
    keys = {o.name for o in options}
    assert {"gamma", "alpha", "sigma", "w", "loss", "lr", "steps", "epochs", "batch_size",
            "manipulation_batch_size", "aim_radius", "trajectory_strategy", "transform_robust", "seed",
            "device", "checkpoint_path", "bowl_level", "bowl_shape"} <= keys


def test_render_and_audit_user_errors(tmp_path, capsys, mnist_cnn):
    line = _error(capsys, ["render", "--strategies", "gc,fancy", "--out", str(tmp_path)])
    assert "unknown AM strategy 'fancy'" in line
    line = _error(capsys, ["audit", "--checks", "slingshot_field,vibes", "--out", str(tmp_path)])
    assert "unknown check 'vibes'; available checks: activation_excess, natural_gap" in line
    line = _error(capsys, ["render", "--model", "torchvision.models:squeezenet1_1", "--out", str(tmp_path)])
    assert "give --layer NAME" in line and "classifier.3" in line
    line = _error(capsys, ["audit", "--model", "torchvision.models:squeezenet1_1", "--layer", "classifier.1",
                           "--checks", "natural_gap", "--out", str(tmp_path)])
    assert "check natural_gap needs natural data: give --data" in line


@pytest.mark.parametrize("command", ["manipulate", "render", "audit", "demo"])
def test_every_subcommand_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"captum-slingshot {command} --" in out


def test_console_script_help():
    script = os.path.join(os.path.dirname(sys.executable), "captum-slingshot")
    if not os.path.exists(script):
        script = shutil.which("captum-slingshot")
    if not script:
        pytest.skip("the captum-slingshot console script is not installed")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    for command in ("demo", "manipulate", "render", "audit"):
        assert command in proc.stdout


@pytest.mark.parametrize("name", ["captum_slingshot.experiments.loading", "captum_slingshot.experiments.options",
                                  "captum_slingshot.experiments.records", "captum_slingshot.cli.options"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_manipulate_runs_attribution_fooling_with_labels_from_mnist(tmp_path, capsys, mnist_cnn):
    """``--transform attribution_fooling`` gets the transform's own flags, MNIST labels for its cross-entropy,
    and writes the same two files."""
    out = tmp_path / "fooled"
    assert main(["manipulate", "--transform", "attribution_fooling", "--mode", "active", "--classes", "3,8",
                 "--fooling-size", "40", "--interpreter", "lrp_epsilon", "--steps", "3", "--batch-size", "8",
                 "--data-limit", "200", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "attribution_fooling: mode active, interpreter lrp_epsilon in 3 steps" in printed
    run = json.loads((out / "run.json").read_text())
    s = run["settings"]
    assert (s["transform"], s["mode"], s["classes"], s["interpreter"], s["steps"]) == \
        ("attribution_fooling", "active", [3, 8], "lrp_epsilon", 3)
    assert run["history"]["steps"] == 3 and {"preservation", "fooling"} <= set(run["history"])
    state = torch.load(out / "model.pt", weights_only=True)
    assert state.keys() == mnist_cnn.state_dict().keys()
    assert not torch.equal(state["logits.weight"], mnist_cnn.state_dict()["logits.weight"])


def test_manipulate_attribution_fooling_errors_name_the_flag(tmp_path, capsys):
    line = _error(capsys, ["manipulate", "--transform", "attribution_fooling", "--mode", "active", "--steps", "2",
                           "--data-limit", "50", "--no-progress", "--out", str(tmp_path / "o")])
    assert "active fooling swaps two different classes" in line
    line = _error(capsys, ["manipulate", "--transform", "attribution_fooling", "--fooling-weight", "0",
                           "--steps", "2", "--data-limit", "50", "--no-progress", "--out", str(tmp_path / "o")])
    assert "fooling_weight (Heo et al.'s lambda) must be > 0" in line
    assert not (tmp_path / "o").exists()
