"""`captum-slingshot study`: a tiny real study from a YAML file, --resume, and clean user errors."""

import csv
import json

import pytest

from captum_slingshot.cli import main
from captum_slingshot.transforms.slingshot import GradientSlingshot

TINY = """\
models:
  - {name: mnist, model: mnist_cnn, data_limit: 1000}
transforms:
  - name: gradient_slingshot
    settings: {steps: 10, batch_size: 16, manipulation_batch_size: 16, gamma: 1.0, loss: direction}
    grid: {unit: [0, 3]}
checks: [activation_excess]
evaluation: {starts: 2, heldout: 200, steps: 20, k: 20}
audit: {steps: 10, starts: 1}
"""


def _error(capsys, argv, code=1):
    """Run main(argv), expect a clean failure; return the one error line."""
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_study_from_yaml_then_resume(tmp_path, capsys, monkeypatch, mnist_cnn):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(TINY)
    out = tmp_path / "study"
    fits = []
    real_fit = GradientSlingshot.fit
    monkeypatch.setattr(GradientSlingshot, "fit", lambda gs, *a, **kw: fits.append(gs.neuron_selector)
                        or real_fit(gs, *a, **kw))
    assert main(["study", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert fits == [0, 3]
    assert f"wrote {out / 'study.html'}, {out / 'study.csv'}, {out / 'study.json'} and {out / 'study.png'}" in printed
    page = (out / "study.html").read_text()
    assert page.count("<tr") == 1 + 4 and "data:image/png;base64," in page  # the header, 4 cells, the plot
    assert "4 rows (4 run, 0 kept from an earlier run)" in printed
    table = printed.splitlines()
    assert table[0].split()[:3] == ["model", "transform", "unit"] and "z" in table[0].split()
    assert [line.split()[1:3] for line in table[1:5]] == [["none", "0"], ["none", "3"],
                                                         ["gradient_slingshot", "0"], ["gradient_slingshot", "3"]]

    with open(out / "study.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["transform"], r["unit"]) for r in rows] == [("none", "0"), ("none", "3"),
                                                          ("gradient_slingshot", "0"), ("gradient_slingshot", "3")]
    assert {"fv_ssim", "accuracy_drop", "z_activation_excess", "combined_z", "rank", "flagged"} <= set(rows[0])
    # the baselines share one audit of the clean layer: same combined z list, different units
    assert rows[0]["n_units"] == rows[1]["n_units"] == "10" and rows[0]["combined_z"] != rows[1]["combined_z"]
    assert json.loads((out / "study.json").read_text())["rows"][2]["unit"] == 0

    assert main(["study", "--config", str(cfg), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "4 rows (0 run, 4 kept from an earlier run)" in capsys.readouterr().out
    assert fits == [0, 3]  # nothing manipulated again
    with open(out / "study.csv", newline="") as f:
        assert list(csv.DictReader(f)) == rows


@pytest.mark.parametrize("text, message", [
    (TINY.replace("checks:", "checkz:"), "unknown key 'checkz' in the study (did you mean 'checks'?); valid keys: "
     "audit, checks, evaluation, models, save_models, transforms"),
    (TINY.replace("{unit: [0, 3]}", "{unit: [0, 3], gama: [1]}"),
     "unknown key 'gama' in transforms[0].grid (did you mean 'gamma'?); valid keys: activation_cap, activation_cap_margin, adam_normalized, aim_point"),
    (TINY.replace("{unit: [0, 3]}", "{unit: []}"), "transforms[0].grid.unit is an empty list"),
    (TINY.replace("name: gradient_slingshot", "name: slingshot"), "unknown transform 'slingshot'"),
    (TINY.replace("[activation_excess]", "[activation_excess, field]"), "unknown check 'field'; available checks"),
    (TINY.replace("model: mnist_cnn", "model: nosuchpkg.nets:make"), "cannot import 'nosuchpkg.nets'"),
    (TINY.replace("model: mnist_cnn", "torchvision: resnet81, weights: w.pt"), "unknown torchvision model 'resnet81'"),
    (TINY.replace("heldout: 200", "heldout: two hundred"), "evaluation, key 'heldout': expected an integer"),
])
def test_study_user_errors(text, message, tmp_path, capsys):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(text)
    line = _error(capsys, ["study", "--config", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"])
    assert line.startswith("captum-slingshot study: error: ") and message in line
    assert not (tmp_path / "out").exists()  # nothing written before the study is known to be runnable


def test_missing_study_file_and_flag(tmp_path, capsys):
    line = _error(capsys, ["study", "--config", str(tmp_path / "nope.yaml")])
    assert "config file" in line and "nope.yaml' does not exist" in line
    with pytest.raises(SystemExit) as exc:
        main(["study", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--config" in capsys.readouterr().err


def test_study_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["study", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "captum-slingshot study --config study.yaml --out out/study" in out
    assert "study.yaml:" in out and "grid:" in out and "--resume" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "study" in capsys.readouterr().out


def test_docstring_examples():
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("captum_slingshot.experiments.study"),
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
