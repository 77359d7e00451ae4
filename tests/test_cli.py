import json
import os

import pytest

from captum_slingshot.cli import main


def test_demo_writes_report_and_metrics(tmp_path, capsys, mnist_cnn):
    # small settings: the full demo's verdict is checked by the reproduction test and by hand
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--starts", "2", "--steps", "30", "--manipulation-steps", "60",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'report.png'}" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    p = metrics["preservation"]
    assert p["accuracy_original"] > 0.95 and abs(p["accuracy"] - p["accuracy_original"]) < 0.02
    assert set(metrics["fv"]) == {"pixel + GC (paper)", "pixel + GC + TR", "pixel + Adam", "Fourier + Adam",
                                  "lucent render_vis"}
    assert len(metrics["audit"]["manipulated"]["combined_z"]) == 10
    assert os.path.getsize(out / "report.png") > 20_000
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_bad_demo_settings_fail_cleanly(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--starts", "0"]) == 1
    assert "n_starts, steps and manipulation_steps must be at least 1" in capsys.readouterr().err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "example: captum-slingshot demo" in capsys.readouterr().out
