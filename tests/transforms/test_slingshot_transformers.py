"""The slingshot on transformers (a tiny torchvision ViT): Token units, the activation form by default,
the gradient form through the math attention kernel, and FV-path preservation over the token width."""

import logging

import pytest
import torch
import torchvision

from captum_slingshot.fv import Direction, PixelParam, Token, count_hooks
from captum_slingshot.transforms import (
    Bowl, FieldDirection, FieldMSE, FVPaths, GradientSlingshot, Preservation, Run, Sampling,
)
from captum_slingshot.transforms.slingshot.preservation import fv_path_loss, other_units

PARAM = PixelParam((3, 16, 16))
DATA = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
TARGET = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
LAYER = "encoder.layers.encoder_layer_0"


def _vit(seed=0):
    torch.manual_seed(seed)
    return torchvision.models.VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2,
                                                hidden_dim=8, mlp_dim=16, num_classes=3).eval()


def _gs(unit=Token(3), **parts):
    return GradientSlingshot(LAYER, unit, TARGET, PARAM, sampling=Sampling(batch_size=4),
                             **{"preservation": Preservation(batch_size=4), "run": Run(steps=2, progress=False),
                                **parts})


def test_no_loss_chosen_means_the_activation_form_on_transformers(caplog):
    model = _vit()
    gs = _gs()
    with caplog.at_level(logging.INFO, logger="captum_slingshot"):
        result = gs.fit(model, DATA)
    assert result.settings["loss"] == "activation" and "activation form" in caplog.text
    assert isinstance(gs.for_model(model).loss, Bowl) and gs.for_model(model).loss.gamma == gs.loss.gamma
    assert all(torch.isfinite(torch.tensor(result.history["loss"])))
    # a loss the caller chose is kept, here and through replace / from_settings
    assert gs.replace(loss=FieldMSE(gamma=2.0)).for_model(model).loss == FieldMSE(gamma=2.0)
    assert not gs.replace(run=Run(steps=1)).loss_chosen
    flat = GradientSlingshot.from_settings(LAYER, Token(3), TARGET, PARAM, gamma=3.0, steps=1)
    assert flat.for_model(model).loss == Bowl(gamma=3.0)
    unset = GradientSlingshot.from_settings(LAYER, Token(3), TARGET, PARAM, loss=None, steps=1)  # the flat default
    assert unset.for_model(model).loss == Bowl()
    chosen = GradientSlingshot.from_settings(LAYER, Token(3), TARGET, PARAM, loss="gradient", steps=1)
    assert chosen.for_model(model).loss == FieldMSE()
    # a CNN keeps the paper's gradient form
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert gs.for_model(cnn) is gs and gs.settings()["loss"] == "gradient"


@pytest.mark.parametrize("loss", [FieldMSE(), FieldDirection(), FieldDirection(space="input", adam_normalized=True)])
def test_gradient_forms_run_on_attention_through_the_math_kernel(loss):
    model = _vit()
    result = _gs(Token(Direction(torch.randn(8))), loss=loss).fit(model, DATA)  # a residual-stream direction
    assert result.settings["loss"] == loss.kind
    assert all(torch.isfinite(torch.tensor(result.history["loss"]))) and count_hooks(model) == 0
    changed = any(not torch.equal(a, b) for a, b in zip(model.parameters(), result.model.parameters()))
    assert changed


def test_fv_paths_are_kept_for_the_other_features_of_the_token():
    assert other_units(FVPaths(), Token(2, token=None), 4) == [Token(c, token=None) for c in (0, 1, 3)]
    assert other_units(FVPaths(units=(1,)), Token(2), 8) == [Token(1)]
    with pytest.raises(ValueError, match="out of range for a layer of 8 features"):
        other_units(FVPaths(units=(9,)), Token(2), 8)
    model = _vit()
    gs = _gs(Token(2), preservation=Preservation(batch_size=4, fv_paths=FVPaths(starts=1, units=(0, 1))))
    result = gs.fit(model, DATA)
    assert all(torch.isfinite(torch.tensor(result.history["preservation"])))


def test_fv_path_loss_leaves_out_the_manipulated_token_feature():
    from captum_slingshot.fv import LayerCapture

    model, other = _vit(0), _vit(0)
    with torch.no_grad():  # change only feature 2 of the CLS token in the copy: the class token itself
        other.class_token[0, 0, 2] += 5.0
    points = torch.zeros(4, *PARAM.param_shape)
    with LayerCapture(other, "encoder.dropout") as cap, LayerCapture(model, "encoder.dropout") as cap0:
        kept = fv_path_loss(points, cap, cap0, PARAM, Token(2), 4, 0, 0, torch.device("cpu"))
        seen = fv_path_loss(points, cap, cap0, PARAM, Token(1), 4, 0, 0, torch.device("cpu"))
    assert float(kept.detach()) == 0.0 and float(seen.detach()) > 0.0


def tiny_vit():
    """A factory for the command line (``--model tests.transforms.test_slingshot_transformers:tiny_vit``)."""
    return _vit()


def test_the_command_line_takes_a_transformer_unit_as_a_cls_feature(tmp_path, monkeypatch):
    import json
    from pathlib import Path

    from captum_slingshot.cli import main

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    torch.save(DATA, tmp_path / "x.pt")
    model = ["--model", "tests.transforms.test_slingshot_transformers:tiny_vit", "--layer", LAYER]
    assert main(["manipulate", *model, "--unit", "3", "--data", str(tmp_path / "x.pt"), "--steps", "2",
                 "--batch-size", "4", "--manipulation-batch-size", "4", "--no-progress",
                 "--out", str(tmp_path / "m")]) == 0
    run = json.loads((tmp_path / "m" / "run.json").read_text())
    assert run["settings"]["neuron_selector"] == repr(Token(3)) and run["settings"]["loss"] == "activation"
    assert main(["render", *model, "--units", "0,5", "--strategies", "gc", "--steps", "3", "--starts", "1",
                 "--shape", "3,16,16", "--no-progress", "--out", str(tmp_path / "fv")]) == 0
    fv = json.loads((tmp_path / "fv" / "fv.json").read_text())
    assert [str(u) for u in fv["units"]] == [repr(Token(0)), repr(Token(5))]
