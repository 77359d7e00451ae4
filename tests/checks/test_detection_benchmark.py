"""The detection matrix's smoke version: real MNIST and photo crops, tiny attacks, every output written."""

import csv
import importlib.util
import json
import pathlib
import sys

import pytest
import torch

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "detection.py"


def _bench():
    spec = importlib.util.spec_from_file_location("detection_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    return bench


def test_the_threshold_lets_through_at_most_the_asked_share_of_negatives():
    bench = _bench()
    neg = torch.arange(200, dtype=torch.float64)  # 0 .. 199
    t = bench.threshold_at_fpr(neg, 0.01)  # 2 of 200 may pass: 198 and 199
    assert t == 197.0 and int((neg > t).sum()) == 2
    assert bench.threshold_at_fpr(torch.arange(50.0), 0.01) == 49.0  # fewer than 100: none may pass
    assert bench.tpr(torch.tensor([1.0, 5.0, 9.0]), 4.0) == pytest.approx(2 / 3)


def test_every_family_has_a_group_fixed_in_advance_and_the_quick_suite_covers_them():
    bench = _bench()
    assert {g for g, _ in bench.FAMILIES.values()} == {"tuned", "heldout", "adaptive"}
    quick = {a.family for a in bench.SUITE if a.name in bench.QUICK}
    assert quick == set(bench.FAMILIES)
    assert len({a.name for a in bench.SUITE}) == len(bench.SUITE)
    assert any(a.dataset == "rgb" for a in bench.SUITE if a.name in bench.QUICK)


def test_smoke_matrix(mnist_cnn, tmp_path, capsys):
    bench = _bench()
    metrics = bench.main(["--smoke", "--no-progress", "--heldout", "300", "--out", str(tmp_path),
                          "--families", "slingshot_gc,silent_units"])
    printed = capsys.readouterr().out
    for name in ("matrix_tpr_at_fpr01", "matrix_tpr_at_fpr01_heldout", "tpr_at_fpr01_slingshot_gc",
                 "tpr_at_fpr01_silent_units", "detection_auroc_combined"):
        assert f"metric {name} " in printed
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    matrix = list(csv.DictReader((tmp_path / "matrix.csv").open()))
    assert [(r["family"], r["dataset"]) for r in matrix] == [("slingshot_gc", "mnist"), ("slingshot_gc", "rgb"),
                                                             ("silent_units", "mnist")]
    assert (tmp_path / "matrix.png").read_bytes()[:4] == b"\x89PNG"
    units = list(csv.DictReader((tmp_path / "units.csv").open()))
    assert sum(int(r["manipulated"]) for r in units) == 3  # the MNIST and RGB slingshots, the silent unit
    assert {r["dataset"] for r in units} == {"mnist", "rgb"}
    # the silent unit climbs thousands of times above anything natural: flagged even by this tiny audit
    silent = next(r for r in matrix if r["family"] == "silent_units")
    assert silent["worked"] == "1" and float(silent["audit (worked)"]) == 1.0
    assert metrics["matrix_tpr_at_fpr01_heldout"] == 1.0
    assert metrics["clean_units"] == sum(1 - int(r["manipulated"]) for r in units)
