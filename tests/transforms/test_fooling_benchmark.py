"""The attribution-fooling benchmark's smoke run: every part runs end to end on real MNIST and photo
crops (5 steps per attack, so its numbers mean nothing) and prints the metric lines the issue names."""

import importlib.util
import json
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "attribution_fooling.py"


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("attribution_fooling_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_attribution_fooling_benchmark(bench, mnist_cnn, tmp_path, capsys):
    metrics = bench.main(["--smoke", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    for mode in ("location", "topk", "center_mass", "active"):
        for name in ("grad_cam", "lrp_epsilon"):
            for key in (f"fsr_{mode}_{name}_trained", f"fsr_{mode}_{name}_transfer", f"acc_drop_{mode}_{name}"):
                assert f"metric {key} " in printed and 0 <= metrics.get(key, 0) <= 1 or key.startswith("acc_drop")
    assert "metric attribution_check_auroc " in printed and 0 <= metrics["attribution_check_auroc"] <= 1
    assert "metric rgb_fsr_topk_lrp_epsilon_trained " in printed
    assert "metric rgb_attribution_check_auroc " in printed and 0 <= metrics["rgb_attribution_check_auroc"] <= 1
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["attacks"]) == 8 and len(results["clean"]) == 4 and "adaptive" in results
    assert set(results["active_originals"]) == {"grad_cam", "lrp_epsilon", "saliency", "input_x_gradient"}
    assert all(-1 <= v <= 1 for v in results["active_originals"].values())
    assert "metric adaptive_focus_fsr_stacked " in printed and "metric adaptive_focus_check_auroc " in printed
    assert "mosaic_focus" in results["adaptive_focus"]["audit"]["by_check"]
    raw = results["adaptive_focus"]["audit"]["scores"]["mosaic_focus"]  # the check's means, per interpreter
    assert len(raw["model"]) == len(raw["reference"]) == 3 and all(0 <= v <= 1 for v in raw["reference"])
    assert set(results["rgb/detection"]["by_check"]["active/grad_cam"]) >= {"mosaic_focus", "fixed_pattern"}
    for key in ("comparative_check_auroc", "rgb_comparative_check_auroc", "adaptive_comparative_auroc",
                "adaptive_focus_comparative_auroc", "adaptive_class_comparative_auroc", "adaptive_class_fsr",
                "adaptive_class_fsr_other_classes",  # round 4: against the model before the fine-tune
                "adaptive_hold_comparative_auroc", "adaptive_hold_fsr", "adaptive_hold_fsr_other_classes"):  # round 5
        assert f"metric {key} " in printed and 0 <= metrics[key] <= 1
    assert len(results["adaptive_hold"]["comparative_by_check"]) == 2
    assert all(set(v["comparative_by_check"]) == {"explanation_drift", "class_swap"} for v in results["attacks"].values())
    assert len(results["comparative_clean"]) == 6 and "base seed 0" not in results["comparative_clean"]
    assert len(results["rgb/comparative"]["fooled"]) == 8 and len(results["rgb/comparative"]["clean"]) == 6
    assert (tmp_path / "attribution_fooling.png").stat().st_size > 10_000
    assert (tmp_path / "rgb_attribution_fooling.png").stat().st_size > 10_000
    assert len(list((tmp_path / "rgb_models").glob("*.pt"))) == 8  # every RGB cell's fooled model, with its settings
    # the RGB audit alone, on the fooled models just saved, with the base models now cached: the same AUROC
    again = bench.main(["--smoke", "--rgb-audit-only", "--out", str(tmp_path)])
    assert again["rgb_attribution_check_auroc"] == metrics["rgb_attribution_check_auroc"]
    audit = json.loads((tmp_path / "results_rgb_audit.json").read_text())["rgb/detection"]
    assert audit["fooled"] == results["rgb/detection"]["fooled"] and audit["clean"] == results["rgb/detection"]["clean"]
    assert again["rgb_comparative_check_auroc"] == metrics["rgb_comparative_check_auroc"]


def test_rgb_tiles_are_a_latin_square_of_disjoint_splits(bench):
    g, tiles = bench.RGB_TILE_GRID, bench.RGB_TILES
    every = [t for split in ("train", "val", "test") for t in tiles[split]]
    assert sorted(every) == [(r, c) for r in range(g) for c in range(g)]  # each tile in exactly one split
    for split, per_line in (("train", 2), ("val", 1), ("test", 1)):
        for i in range(g):  # every row and every column of tiles gives each split the same share
            assert sum(r == i for r, _ in tiles[split]) == per_line and sum(c == i for _, c in tiles[split]) == per_line
    x, y = bench.rgb_tile_crops(4, "test", seed=0)
    assert x.shape == (4 * 8, 3, 64, 64) and y.bincount().tolist() == [4] * 8


def test_saved_rgb_models_match_settings_and_attack_seed(bench, tmp_path):
    import torch

    from captum_slingshot.models import SmallRGBCNN

    base = SmallRGBCNN(num_classes=3, width=4).eval()
    (tmp_path / "rgb_models").mkdir()
    key, settings = next(iter(bench.RGB_SETTINGS.items()))
    fooled = SmallRGBCNN(num_classes=3, width=4)
    torch.save({"settings": dict(settings), "seed": 1, "state_dict": fooled.state_dict()},
               tmp_path / "rgb_models" / f"{key[0]}_{key[1]}.pt")
    assert bench.saved_rgb_models(str(tmp_path), base, {}, smoke=False, seed=0) == {}  # another seed's model
    found = bench.saved_rgb_models(str(tmp_path), base, {}, smoke=False, seed=1)
    assert list(found) == [key] and found[key] is not base
    loaded, saved = found[key].state_dict(), fooled.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    torch.save({"settings": dict(settings, steps=settings["steps"] + 1), "seed": 1, "state_dict": fooled.state_dict()},
               tmp_path / "rgb_models" / f"{key[0]}_{key[1]}.pt")
    assert bench.saved_rgb_models(str(tmp_path), base, {}, smoke=False, seed=1) == {}  # stale settings


def test_stacked_composites_put_one_class_above_the_other(bench):
    import torch

    x = torch.zeros(4, 1, 8, 8)
    x[:2] = 1.0  # class 0 white, class 1 black
    comp = bench.stacked_composites(x, torch.tensor([0, 0, 1, 1]), (0, 1), n=6, seed=0, background=-1.0)
    assert comp.shape == (6, 1, 8, 8)
    top, bottom = comp[:, 0, :4, 2:6], comp[:, 0, 4:, 2:6]  # the images fill the halves' middle columns
    assert bool(((top == 1) & (bottom == 0)).flatten(1).all(1).logical_xor(
        ((top == 0) & (bottom == 1)).flatten(1).all(1)).all())  # one class above the other, never side by side
    assert bool((comp[:, 0, :, :2] == -1).all())  # the left and right margins are canvas


def test_rgb_audit_only_needs_the_saved_models(bench, tmp_path):
    with pytest.raises(SystemExit, match="lacks models .* run --rgb-only first"):
        bench.main(["--smoke", "--rgb-audit-only", "--out", str(tmp_path)])


def test_the_comparative_figure_pools_saved_runs_and_refuses_a_file_without_round_4(bench, tmp_path):
    import json

    mnist = tmp_path / "results.json"
    mnist.write_text(json.dumps({"attacks": {"topk/grad_cam/seed0": {"comparative_z": 5.0}},
                                 "comparative_clean": {"ce fine-tune of seed 0": {"comparative_z": 0.3}}}))
    runs = []
    for seed in (0, 1):
        (tmp_path / f"rgb_s{seed}").mkdir()
        runs.append(tmp_path / f"rgb_s{seed}" / "results_rgb_audit.json")
        runs[-1].write_text(json.dumps({"rgb/comparative": {"fooled": {"active/grad_cam": [4.0 + seed, {}]},
                                                            "clean": {"ce fine-tune of seed 0": [0.1, {}]}}}))
    panels = bench.comparative_panels([str(mnist)] + [str(r) for r in runs])
    assert panels["MNIST CNN"] == ({"topk/grad_cam s0": 5.0}, {"ce fine-tune of seed 0": 0.3})
    assert panels["RGB SmallRGBCNN"][0] == {"active/grad_cam (rgb_s0)": 4.0, "active/grad_cam (rgb_s1)": 5.0}
    assert panels["RGB SmallRGBCNN"][1] == {"ce fine-tune of seed 0": 0.1}  # one clean model, drawn once
    bench.main(["--comparative-figure", str(mnist), str(runs[0]), "--out", str(tmp_path / "fig")])
    assert (tmp_path / "fig" / "attribution_comparative_audit.png").stat().st_size > 10_000
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"attacks": {}}))
    with pytest.raises(SystemExit, match="holds no round-4 scores"):
        bench.comparative_panels([str(old)])
