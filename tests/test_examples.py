"""Every example runs (with small settings)."""

import importlib.util
import pathlib

import torch

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


def test_paper_mnist_reproduction_example(mnist_cnn, tmp_path, capsys):
    out = tmp_path / "run"
    summary = _load("paper_mnist_reproduction").main(
        ["--steps", "20", "--eval-every", "10", "--starts", "3", "--heldout", "300", "--no-lpips", "--out", str(out)])
    assert [row["step"] for row in summary["curve"]] == [0, 10, 20]
    assert summary["settings"]["trajectory_strategy"] == "gc" and summary["settings"]["loss"] == "direction"
    assert summary["before"]["accuracy_drop"] == 0.0 and summary["before"]["jaccard_top_k"] == 1.0
    for name in ("results.json", "curve.csv", "curve.png", "fv_before_after.png", "manipulated.pt"):
        assert (out / name).stat().st_size > 0
    state = torch.load(out / "manipulated.pt", weights_only=True)
    assert set(state) == set(mnist_cnn.state_dict())
    assert "wrote" in capsys.readouterr().out
