"""The AlexNet image-folder example slings a conv channel through the command line, end to end with tiny
settings (real ImageNet weights, offline; natural data from a folder of scikit-image photo crops)."""

import json

import torch

from ._examples import load_example


def test_alexnet_image_folder_cli_example_small(tmp_path, capsys):
    from captum_slingshot.weights import alexnet_features

    example = load_example("alexnet_image_folder_cli")
    out = tmp_path / "run"
    summary = example.main([
        "--steps", "2", "--crops", "2", "--heldout", "1", "--traj-starts", "1", "--traj-refresh", "2",
        "--man-batch", "2", "--batch", "4", "--fv-steps", "3", "--starts", "1", "--audit-units", "0,1,2",
        "--out", str(out),
    ])
    printed = capsys.readouterr().out
    for name in ("manipulate/model.pt", "manipulate/run.json", "render_before/fv.png", "render_after/fv.png",
                 "audit/report.json", "commands.sh", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    assert sorted(p.name for p in (out / "photos").iterdir()) == sorted(
        ["astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
         "immunohistochemistry", "retina"])
    data = summary["data"]
    assert data["format"] == "image folder" and data["n"] == 16 and data["shape"] == [3, 64, 64]
    assert data["preprocess"]["resize"] == 72 and data["preprocess"]["crop"] == 64
    assert summary["param"]["name"] == "lucent_fourier" and summary["param"]["std"] == [0.229, 0.224, 0.225]
    assert summary["history"]["steps"] == 2
    assert "$ captum-slingshot manipulate --model captum_slingshot.weights:alexnet_features --layer 8" in printed
    assert (out / "commands.sh").read_text().count("captum-slingshot ") == 4
    assert sorted(r["unit"] for r in json.loads((out / "audit" / "report.json").read_text())["rows"]) == [0, 1, 2]

    state = torch.load(out / "manipulate" / "model.pt", weights_only=True)
    original = alexnet_features().state_dict()
    assert set(state) == set(original) and not torch.equal(state["8.weight"], original["8.weight"])
