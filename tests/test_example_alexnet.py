"""The AlexNet Fourier-manipulation example runs end to end with small settings (real ImageNet weights, offline)."""

import json
import math

import torch

from ._examples import load_example

_load = load_example


def _finite(tree):
    if isinstance(tree, dict):
        return all(_finite(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return all(_finite(v) for v in tree)
    if isinstance(tree, float):
        return math.isfinite(tree)
    return True


def test_alexnet_fourier_manipulation_example_small(tmp_path, capsys):
    from captum_slingshot.fv import count_hooks
    from captum_slingshot.weights import alexnet_features

    example = _load("alexnet_fourier_manipulation")
    out = tmp_path / "alexnet"
    summary = example.main([
        "--steps", "3", "--size", "64", "--fv-steps", "5", "--starts", "2", "--traj-starts", "1",
        "--traj-refresh", "2", "--man-batch", "2", "--batch", "4", "--crops", "2", "--heldout", "2",
        "--k", "4", "--out", str(out),
    ])
    for name in ("fv.png", "results.json", "manipulated.pt"):
        assert (out / name).stat().st_size > 0, name
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["adam"]["after"]["ssim"] == summary["adam"]["after"]["ssim"]
    assert _finite(summary)

    s = summary["settings"]
    assert s["steps"] == 3 and s["param"] == "LucentFourierParam" and s["shape"] == [3, 64, 64]
    assert s["trajectory_strategy"] == "adam" and s["field_space"] == "input"
    assert s["auditor"]["lr"] == 0.01 and s["auditor"]["steps"] == 5
    assert s["n_natural"] == 16 and s["n_heldout"] == 16
    for check in ("adam", "adam_lucent_tr"):
        for when in ("before", "after"):
            r = summary[check][when]
            assert 0.0 <= r["lpips"] < 1.5 and -1.0 <= r["ssim"] <= 1.0 and 0.0 <= r["mse"] <= 1.0
    p = summary["preservation"]
    assert p["layer_relative_mse"] >= 0.0 and -1.0 <= p["unit_correlation"] <= 1.0
    assert 0.0 <= p["jaccard_top_k"] <= 1.0 and p["k"] == 4
    assert summary["training_seconds"] > 0

    # the original trunk is never modified; the manipulated weights load into it and differ
    assert summary["original_weights_unchanged"] is True
    original = alexnet_features()
    state = torch.load(out / "manipulated.pt", weights_only=True)
    assert set(state) == set(original.state_dict())
    assert not torch.equal(state["8.weight"], original.state_dict()["8.weight"])
    manipulated = alexnet_features()
    manipulated.load_state_dict(state)
    assert count_hooks(manipulated) == 0
    assert "AlexNet features[8] channel 0 -> fake" in capsys.readouterr().out
