import json
import os

import pytest

from captum_slingshot.cli import main


def test_demo_writes_figure_and_metrics(tmp_path, capsys, mnist_cnn):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--starts", "1", "--steps", "40", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'fv_mnist.png'}" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["heldout_accuracy"] > 0.95
    paper = metrics["strategies"]["pixel + GC (paper)"]
    assert paper["classified_as_digit"] >= 0.9
    assert paper["corr_own_class_mean"] > paper["corr_other_class_means"]
    assert os.path.getsize(out / "fv_mnist.png") > 10_000
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_bad_demo_settings_fail_cleanly(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--starts", "0"]) == 1
    assert "n_starts and steps must be at least 1" in capsys.readouterr().err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "example: captum-slingshot demo" in capsys.readouterr().out
