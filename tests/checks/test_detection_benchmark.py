"""The detection benchmark's short version: real MNIST, one short slingshot, one clean model."""

import importlib.util
import json
import pathlib

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "detection.py"


def test_quick_detection_benchmark(mnist_cnn, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("detection_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    metrics = bench.main(["--quick", "--no-progress", "--heldout", "1000", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "metric detection_auroc_combined" in printed
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    rows = (tmp_path / "units.csv").read_text().splitlines()
    assert len(rows) == 1 + 20  # header + 10 logits of the clean and of the manipulated model
    assert metrics["audit_flags_in_clean_models"] == 0
    # even a 300-step slingshot ranks above most clean units on the combined score
    assert metrics["detection_auroc_combined"] >= 0.75
