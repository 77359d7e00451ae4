import json
import os

import pytest

from captum_slingshot.cli import main


def test_demo_writes_report_and_metrics(demo_run):
    # small FV settings; 500 manipulation steps so that the audit has something to find
    out, printed = demo_run
    assert f"wrote {out / 'report.png'}, {out / 'report.html'} and {out / 'metrics.json'}" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    p = metrics["preservation"]
    assert p["accuracy_original"] > 0.95 and abs(p["accuracy"] - p["accuracy_original"]) < 0.02
    assert set(metrics["fv"]) == {"pixel + GC (paper)", "pixel + GC + TR", "pixel + Adam", "Fourier + Adam",
                                  "lucent render_vis"}
    assert len(metrics["audit"]["manipulated"]["combined_z"]) == 10
    assert metrics["audit"]["manipulated"]["flagged"] == [0] and metrics["audit"]["original"]["flagged"] == []
    assert os.path.getsize(out / "report.html") > 20_000
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
