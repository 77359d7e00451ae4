"""Every example runs (with small settings)."""

import os

import torch

from ._examples import EXAMPLES, load_example

_load = load_example


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


def test_lucent_hit_example_small(tmp_path, capsys):
    import json

    import torch

    from captum_slingshot.fv import count_hooks

    example = _load("lucent_hit")
    out = tmp_path / "lucent_hit"
    summary = example.main([
        "--steps", "2", "--train-epochs", "1", "--crops", "12", "--heldout", "4", "--seeds", "1",
        "--fv-steps", "4", "--traj-steps", "4", "--traj-starts", "1", "--traj-refresh", "1",
        "--man-batch", "2", "--out", str(out),
    ])
    for name in ("lucent_fv.png", "results.json", "manipulated.pt", "grid_cnn.pt"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "results.json").read_text())["after"]["lpips"] == summary["after"]["lpips"]
    for key in ("before", "after"):
        assert 0.0 < summary[key]["lpips"] < 1.5 and -1.0 <= summary[key]["ssim"] <= 1.0
        assert 0.0 <= summary[key]["accuracy"] <= 1.0 and len(summary[key]["lpips_each"]) == 1
    s = summary["settings"]
    assert s["transform_robust"] == "lucent" and s["trajectory_strategy"] == "lucent" and s["steps"] == 2
    assert s["param"] == "LucentFourierParam" and s["shape"] == [3, 128, 128]
    assert s["field_space"] == "input" and s["preservation"] == "activation"
    assert s["loss"] == "activation" and s["bowl_level"] == "free" and s["bowl_shape"] == "quadratic"
    assert s["trajectory_steps"] == 4 and s["input_aim"].startswith("tensor:")  # z*: lucent_centre_input(target)
    # the manipulated weights load into the example's model and changed; render_vis leaked no hooks
    model = example.GridCNN()
    model.load_state_dict(torch.load(out / "manipulated.pt", weights_only=True))
    original = example.GridCNN()
    original.load_state_dict(torch.load(out / "grid_cnn.pt", weights_only=True))
    assert not torch.equal(model.logits.weight, original.logits.weight)
    assert count_hooks(model) == 0
    assert "lucent render_vis of logits:1 (chelsea)" in capsys.readouterr().out


def test_transform_robust_mnist_example_small(mnist_cnn, tmp_path, capsys):
    import json

    out = tmp_path / "tr_mnist"
    summary = _load("transform_robust_mnist").main([
        "--steps", "3", "--starts", "2", "--heldout", "200", "--variants", "plain,transform_robust",
        "--no-lpips", "--out", str(out),
    ])
    assert (out / "fv_grid.png").stat().st_size > 0
    assert json.loads((out / "results.json").read_text())["settings"]["steps"] == 3
    assert set(summary) == {"settings", "original", "plain", "transform_robust"}
    for name in ("original", "plain", "transform_robust"):
        for protocol in ("gc_tr", "gc"):
            ev = summary[name][protocol]
            assert -1.0 <= ev["ssim"] <= 1.0 and 0.0 <= ev["mse"] <= 1.0 and ev["accuracy"] > 0.9
            assert "lpips" not in ev
    assert summary["settings"]["variants"]["transform_robust"]["transform_robust"] == "paper_mnist"
    assert "transform_robust" in capsys.readouterr().out


def test_captum_interop_example(mnist_cnn, capsys):
    out = _load("captum_interop").main(["--steps", "30", "--heldout", "400"])
    assert 0.0 <= out["jaccard_top100"] <= 1.0
    for name in ("clean", "manipulated"):
        assert len(out[name]["activation_excess"]) == 10
        assert out[name]["sensitivity_max_logit0_on_zeros"] > 0
    assert "Captum LayerActivation matches" in capsys.readouterr().out


def test_alpha_sweep_study_example(mnist_cnn, tmp_path, capsys):
    rows = _load("alpha_sweep_study").main(["--alphas", "0.5,0.9", "--steps", "15", "--starts", "2",
                                            "--heldout", "300", "--out", str(tmp_path)])
    assert [r["alpha"] for r in rows] == [0.5, 0.9]
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and 1 <= r["rank"] <= 10 and r["flagged"] in (0, 1)
    assert (tmp_path / "study.csv").read_text().splitlines()[0].startswith("alpha,ssim")
    assert (tmp_path / "study.png").stat().st_size > 0
    assert "alpha 0.5:" in capsys.readouterr().out


def test_the_readme_lucent_command_line_is_the_examples_attack(tmp_path, monkeypatch):
    """README: ``lucent_hit.py --cli-inputs`` then ``captum-slingshot manipulate ...`` runs the example's
    recipe (field_space=input, free-level activation bowl, lucent trajectories): the same weights."""
    import argparse

    import torch

    from captum_slingshot.cli import main
    from captum_slingshot.fv import IMAGENET_MEAN, IMAGENET_STD, LucentFourierParam
    from captum_slingshot.transforms import load_target, packaged_target

    example = _load("lucent_hit")
    out = tmp_path / "lucent"
    small = ["--train-epochs", "1", "--crops", "12", "--out", str(out)]
    files = example.main(["--cli-inputs", *small])["cli_inputs"]
    assert sorted(os.path.basename(f) for f in files.values()) == ["grid_cnn.pt", "natural.pt", "z_star.pt"]
    monkeypatch.chdir(EXAMPLES.parent)  # the README runs from the repository root: examples.lucent_hit imports
    # the README's command, with fewer steps
    argv = ["manipulate", "--model", "examples.lucent_hit:GridCNN", "--weights", files["weights"],
            "--data", files["natural"], "--layer", "logits", "--unit", "1", "--target", "fake",
            "--param", "lucent_fourier", "--shape", "3,128,128", "--loss", "activation", "--bowl-level", "free",
            "--gamma", "100", "--field-space", "input", "--input-aim", files["z_star"], "--transform-robust", "lucent",
            "--trajectory-strategy", "lucent", "--trajectory-steps", "4", "--trajectory-starts", "1",
            "--trajectory-refresh", "2", "--alpha", "0.5", "--lr", "2e-3", "--manipulation-batch-size", "4",
            "--steps", "3", "--out", str(out / "attack"), "--no-progress"]
    assert main(argv) == 0
    # the example's own attack with the same settings
    args = argparse.Namespace(field_space="input", loss="activation", gamma=100.0, bowl_level="free",
                              bowl_shape="quadratic", adam_normalized=True, aim_lowpass=0.08, traj_steps=4,
                              traj_starts=1, traj_refresh=2, sigma=0.1, man_batch=4, no_transform_robust=False,
                              preservation="activation", lr=2e-3, seed=0)
    param = LucentFourierParam((3, 128, 128), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    target = load_target(packaged_target("fake"), param.shape)
    model = example.GridCNN()
    model.load_state_dict(torch.load(files["weights"], weights_only=True))
    expected = example.slingshot(args, 1, target, param, 0.5, 3).fit(model.eval(), torch.load(files["natural"]))
    state = torch.load(out / "attack" / "model.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in expected.model.state_dict().items())
