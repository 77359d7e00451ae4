"""Every example runs (with small settings)."""

import importlib.util
import pathlib

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fv_mnist_logits_example(mnist_cnn, capsys):
    summary = _load("fv_mnist_logits").main(["--starts", "2", "--steps", "100"])
    assert set(summary) == set(range(10))
    assert sum(s["classified"] for s in summary.values()) >= 9
    assert sum(s["own"] > s["best_other"] for s in summary.values()) >= 8
    assert "mean over digits" in capsys.readouterr().out
