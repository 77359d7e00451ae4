"""``manipulate --transform fooling_circuit|silent_units`` writes a model.pt that audit and render reload."""

import json

import pytest
import torch

from captum_slingshot._utils.hooks import capture_layer
from captum_slingshot.cli import main
from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.experiments.loading import load_model
from captum_slingshot.transforms import FoolingCircuit, SilentUnits
from captum_slingshot.transforms.circuits import CircuitModel

FLAGS = {"fooling_circuit": ["--unit", "2", "--target", "fake"], "silent_units": ["--unit", "4"]}


@pytest.fixture(scope="module")
def natural_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("circuit_cli") / "natural.pt"
    torch.save(normalize_mnist(load_mnist("heldout").tensors[0][:300]), path)
    return path


@pytest.mark.parametrize("name", ["fooling_circuit", "silent_units"])
def test_manipulate_then_reload_in_audit_and_render(name, tmp_path, capsys, monkeypatch, natural_file, mnist_cnn):
    fitted = []
    cls = {"fooling_circuit": FoolingCircuit, "silent_units": SilentUnits}[name]
    real_fit = cls.fit
    monkeypatch.setattr(cls, "fit", lambda self, *a, **k: fitted.append(real_fit(self, *a, **k)) or fitted[-1])
    out = tmp_path / "attack"
    assert main(["manipulate", "--transform", name, *FLAGS[name], "--data", str(natural_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{name}: logits[" in printed and "architecture changed" in printed and "nan" not in printed
    run = json.loads((out / "run.json").read_text())
    assert run["architecture"]["changed"] and run["architecture"]["layer"] == "logits"
    assert "audit --weights" in run["architecture"]["reload"]

    loaded = load_model(weights=str(out / "model.pt"), progress=False)
    assert isinstance(loaded.model, CircuitModel) and loaded.kind == "mnist_cnn" and not loaded.model.training
    assert loaded.source["circuits"] == {"logits": name}
    in_memory = fitted[0].model
    x = torch.load(natural_file, weights_only=True)
    q = 0.3 * torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # FV-like: no background pixel
    with torch.no_grad():
        assert torch.equal(loaded.model(x), in_memory(x)) and torch.equal(loaded.model(x), mnist_cnn(x))
        assert torch.equal(capture_layer(loaded.model, "logits", q), capture_layer(in_memory, "logits", q))
        assert not torch.equal(capture_layer(loaded.model, "logits", q), capture_layer(mnist_cnn, "logits", q))

    assert main(["render", "--weights", str(out / "model.pt"), "--units", "0", "--strategies", "gc", "--steps", "3",
                 "--out", str(tmp_path / "fv"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "fv" / "fv.json").read_text())["model_source"]["circuits"] == {"logits": name}
    assert main(["audit", "--weights", str(out / "model.pt"), "--data", str(natural_file), "--checks",
                 "activation_excess", "--starts", "1", "--steps", "3", "--no-html", "--out", str(tmp_path / "audit"),
                 "--no-progress"]) == 0
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert len(report["rows"]) == 10 and report["layer"] == "logits"


def test_a_circuit_model_pt_that_does_not_fit_the_model_is_a_clean_error(tmp_path, capsys, monkeypatch, natural_file):
    out = tmp_path / "attack"
    assert main(["manipulate", "--transform", "silent_units", "--data", str(natural_file), "--out", str(out)]) == 0
    (tmp_path / "other_net.py").write_text("from torch import nn\n"
                                           "def make():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["audit", "--model", "other_net:make", "--weights", str(out / "model.pt"), "--layer", "1",
                 "--checks", "activation_excess", "--shape", "1,28,28", "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "holds a circuit model (silent_units at 'logits') that cannot be rebuilt around the model from " \
           "other_net:make: the state dict holds a silent_units layer at 'logits', but the model has no layer " \
           "'logits'" in err and "the same --model/--torchvision as for manipulate" in err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("command", ["audit", "render", "manipulate"])
def test_help_says_how_circuit_models_reload(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "fooling_circuit|silent_units" in text and "rebuil" in text
