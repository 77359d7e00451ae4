"""Real data folders and torchvision models through the command line: ``--data DIR`` with the model's
preprocessing given once (``--resize/--crop/--mean/--std``) for attack, render and audit alike;
``--torchvision NAME --weights default|FILE``; and the errors a user can cause, each saying what to do."""

import json
import re
import shutil
import urllib.error

import pytest
import torch
from torch import nn

from captum_slingshot.cli import main
from captum_slingshot.data import Preprocess, write_photo_folder
from captum_slingshot.experiments.errors import SettingsError
from captum_slingshot.experiments.loading import LoadedModel, load_data, load_model, resolve_preprocess

ALEXNET = ["--model", "captum_slingshot.weights:alexnet_features", "--layer", "8"]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """An image folder: 4 classes x 3 crops of their own sizes; plus broken variants."""
    d = tmp_path_factory.mktemp("cli_data")
    root = write_photo_folder(d / "photos", 3, photos=PHOTOS)
    (d / "empty").mkdir()
    (d / "loose").mkdir()
    shutil.copy(root / "rocket" / "train_0000.png", d / "loose" / "a.png")
    shutil.copytree(root, d / "broken")
    (d / "broken" / "coffee" / "zz.png").write_bytes(b"not an image")
    return d


def _error(capsys, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if "error:" in l]
    assert len(lines) == 1, err
    return lines[0]


def test_manipulate_render_and_audit_share_the_folder_and_its_preprocessing(photos, tmp_path, capsys):
    pre = ["--resize", "72", "--crop", "64", "--param", "lucent_fourier"]
    out = tmp_path / "attack"
    assert main(["manipulate", *ALEXNET, "--unit", "3", "--data", str(photos / "photos"), *pre, "--data-limit", "6",
                 "--trajectory-strategy", "adam", "--trajectory-starts", "1", "--trajectory-steps", "3",
                 "--steps", "2", "--batch-size", "4", "--manipulation-batch-size", "2", "--no-progress",
                 "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    data = run["data"]
    assert data["format"] == "image folder" and data["classes"] == sorted(PHOTOS)
    assert data["n"] == 6 and data["shape"] == [3, 64, 64]
    assert data["preprocess"] == {"resize": 72, "crop": 64, "mean": [0.485, 0.456, 0.406],
                                  "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}
    assert run["param"] == {"name": "lucent_fourier", "shape": [3, 64, 64], "mean": [0.485, 0.456, 0.406],
                            "std": [0.229, 0.224, 0.225]}
    weights = str(out / "model.pt")
    assert main(["render", *ALEXNET, "--weights", weights, *pre, "--units", "3", "--strategies", "adam",
                 "--steps", "2", "--no-progress", "--out", str(tmp_path / "fv")]) == 0
    assert json.loads((tmp_path / "fv" / "fv.json").read_text())["param"]["shape"] == [3, 64, 64]
    assert main(["audit", *ALEXNET, "--weights", weights, *pre, "--data", str(photos / "photos"), "--units", "0,1,2,3",
                 "--checks", "natural_gap", "--no-lpips", "--starts", "1", "--steps", "2", "--k", "2", "--no-progress",
                 "--no-html", "--out", str(tmp_path / "audit")]) == 0
    assert "audit of layer '8': 4 units" in capsys.readouterr().out


@pytest.mark.parametrize("data,extra,message", [
    ("empty", ["--crop", "64"], "error: .*empty has no class subfolders and no images: an image folder is "
     "laid out as .*/<class>/<image>.png"),
    ("loose", ["--crop", "64"], "holds 1 image\\(s\\) \\(a.png\\) but no class subfolders: .*move the images into a "
     "subfolder"),
    ("broken", ["--crop", "64"], "cannot read the image .*coffee/zz.png \\(UnidentifiedImageError: .*\\): replace or "
     "delete the file"),
    ("photos", [], "images of different sizes after the preprocessing: .*give a crop \\(--crop N\\)"),
    ("photos", ["--crop", "16"], "the model cannot take the natural inputs \\(shape \\(3, 16, 16\\); preprocessing: "
     "--crop 16\\): RuntimeError: .*Output size is too small; give the preprocessing the model was trained with"),
    ("photos", ["--crop", "64", "--mean", "0.5", "--std", "0.5"], "the model cannot take the natural inputs \\(shape "
     "\\(1, 64, 64\\); .*--mean/--std of 1 channel\\(s\\)\\): .*to have 3 channels"),
    ("photos", ["--crop", "64", "--mean", "0.5,0.5", "--std", "0.5"], "preprocessing: mean has 2 entries but std has 1"),
])
def test_data_folder_and_preprocessing_errors(data, extra, message, photos, tmp_path, capsys):
    line = _error(capsys, ["manipulate", *ALEXNET, "--data", str(photos / data), *extra, "--steps", "1",
                           "--out", str(tmp_path / "o")])
    assert re.search(message, line), line
    assert not (tmp_path / "o").exists()


def test_a_data_file_that_does_not_fit_the_preprocessing(tmp_path, capsys):
    torch.save(torch.zeros(4, 3, 32, 32), tmp_path / "x.pt")
    line = _error(capsys, ["manipulate", *ALEXNET, "--data", str(tmp_path / "x.pt"), "--crop", "64", "--steps", "1",
                           "--out", str(tmp_path / "o")])
    assert "holds inputs of 32x32 px but the preprocessing crops to 64x64" in line


def test_resolve_preprocess_defaults_and_load_data_from_python(photos):
    tv = LoadedModel(nn.Identity(), "torchvision", {"torchvision": "efficientnet_b3"})
    assert resolve_preprocess(tv) == Preprocess.from_torchvision_weights("efficientnet_b3")
    assert resolve_preprocess(tv, crop=64) == Preprocess(crop=64, mean=(0.485, 0.456, 0.406),
                                                         std=(0.229, 0.224, 0.225), interpolation="bicubic")
    assert resolve_preprocess(LoadedModel(nn.Identity(), "mnist_cnn")) == Preprocess.mnist()
    assert resolve_preprocess(LoadedModel(nn.Identity(), "import"), "photos") == Preprocess()
    with pytest.raises(SettingsError, match="give both --mean and --std"):
        resolve_preprocess(tv, mean=(0.5,))
    (x, y), source = load_data(str(photos / "photos"), limit=5, labels=True, preprocess=Preprocess(crop=48))
    assert x.shape == (5, 3, 48, 48) and y.tolist() == [0, 1, 2, 3, 0] and source["labels"] is True
    again, source = load_data(torch.utils.data.TensorDataset(x, y), limit=3)  # any Dataset from Python
    assert torch.equal(again, x[:3]) and source["n"] == 3


def _fake_download(monkeypatch, result):
    import torchvision.models._api as api

    def fake(url, *args, **kwargs):
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(api, "load_state_dict_from_url", fake)


def test_torchvision_pretrained_weights_by_name(monkeypatch):
    import torchvision

    reference = torchvision.models.squeezenet1_1(weights=None)
    _fake_download(monkeypatch, reference.state_dict())  # what torchvision would download
    loaded = load_model(torchvision="squeezenet1_1", weights="default")
    assert loaded.source == {"torchvision": "squeezenet1_1", "weights": "SqueezeNet1_1_Weights.IMAGENET1K_V1"}
    assert torch.equal(loaded.model.features[0].weight, reference.features[0].weight)
    assert load_model(torchvision="squeezenet1_1", weights="IMAGENET1K_V1").source["weights"] == \
        "SqueezeNet1_1_Weights.IMAGENET1K_V1"


def test_torchvision_weights_offline_say_to_pass_a_file(monkeypatch, tmp_path, capsys):
    _fake_download(monkeypatch, urllib.error.URLError("[Errno -2] Name or service not known"))
    line = _error(capsys, ["render", "--torchvision", "squeezenet1_1", "--weights", "default", "--layer", "features.3",
                           "--out", str(tmp_path / "o")])
    assert re.search("downloading torchvision's SqueezeNet1_1_Weights.IMAGENET1K_V1 weights for squeezenet1_1 failed "
                     "\\(URLError: .*Name or service not known.*\\); offline\\? pass a state-dict file with --weights "
                     "FILE instead", line), line
    line = _error(capsys, ["render", "--torchvision", "resnet81", "--weights", "default", "--out", str(tmp_path / "o")])
    assert "unknown torchvision model 'resnet81'; close matches: resnet18" in line
