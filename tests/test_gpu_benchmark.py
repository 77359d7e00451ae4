"""``benchmarks/gpu.py --small``: the GPU benchmark's CPU-sized run, so that it cannot rot (its numbers
mean nothing here). ResNet-50 and ViT-B/16 at 32 px with random weights; about 15 s on one thread."""

import importlib.util
import pathlib

import pytest
import torch

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"

pytestmark = pytest.mark.slow


def test_small_gpu_benchmark_runs_on_cpu(capsys):
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    metrics = bench.main(["--small", "--device", "cpu", "--threads", "1"])
    assert torch.get_num_threads() == threads  # restored
    printed = capsys.readouterr().out
    for key in ("fv_resnet50_starts_per_s", "fv_resnet50_lucent_starts_per_s", "fv_resnet50_speedup",
                "slingshot_resnet50_s_per_step", "slingshot_resnet50_peak_mem_mb", "slingshot_resnet50_step_ratio",
                "slingshot_vit_b_16_s_per_step", "slingshot_vit_b_16_peak_mem_mb", "slingshot_vit_b_16_step_ratio",
                "audit_resnet50_layer2_s", "audit_resnet50_layer2_ratio"):
        assert f"metric {key} " in printed and metrics[key] > 0, key
    assert printed.rstrip().splitlines()[-1].startswith("metric ")
    assert "gradient loss" in printed and "activation loss" in printed  # the ViT got the activation form
    with pytest.raises(SystemExit):
        bench.main(["--small", "--parts", "fv,nothing"])
