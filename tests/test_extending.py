"""docs/ARCHITECTURE.md, followed from outside the package: a new attack is one class plus one registration,
a new check one function plus one registration, and both run through ``audit_layer`` and a study."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import pytest
import torch

from captum_slingshot import audit_layer, get_transform
from captum_slingshot._utils.settings import setting
from captum_slingshot.checks import CHECKS, register_check, unregister_check
from captum_slingshot.cli import main
from captum_slingshot.experiments.study import run_study
from captum_slingshot.fv import PixelParam
from captum_slingshot.transforms import TRANSFORMS, ModelTransform, TransformResult, register_transform

MNIST_PARAM = PixelParam((1, 28, 28), mean=(0.1307,), std=(0.3081,))


@pytest.fixture(scope="module")
def toys():
    """A toy attack (scale one unit's weights) and a toy check (the unit's weight-row norm), registered
    the way docs/ARCHITECTURE.md says; unregistered afterwards."""

    @register_transform("toy_scale", description="scales one unit's incoming weights (a toy attack)")
    @dataclass
    class ToyScale(ModelTransform):
        context = ("layer", "neuron_selector")
        layer: str = "logits"
        neuron_selector: int = 0
        factor: float = setting(3.0, "how much the unit's weights and bias are scaled", flat="factor", kind="float")

        def __post_init__(self) -> None:
            if not self.factor > 0:
                raise ValueError(f"factor must be positive, got {self.factor}")

        def fit(self, model, natural_data, **kwargs):
            out = copy.deepcopy(model)
            layer = out.get_submodule(self.layer)
            with torch.no_grad():
                layer.weight[self.neuron_selector] *= self.factor
                layer.bias[self.neuron_selector] *= self.factor
            return TransformResult(model=out, history={"loss": [0.0]}, settings=self.settings())

    @register_check("weight_norm", description="the norm of the unit's incoming weights (a toy check)",
                    cost="forward", min_scale=0.01)
    def weight_norm(model, layer, neuron_selector, *, param, data=None, max_examples_per_batch=None, seed=0,
                    return_details=False):
        rows = neuron_selector if isinstance(neuron_selector, list) else [neuron_selector]
        scores = layer.weight.detach()[rows].norm(dim=1)
        scores = scores if isinstance(neuron_selector, list) else scores[0]
        return (scores, {"norm": scores}) if return_details else scores

    yield ToyScale
    TRANSFORMS.unregister("toy_scale")
    unregister_check("weight_norm")


def test_the_toy_attack_and_check_run_through_audit_layer(toys, mnist_cnn):
    assert "toy_scale" in TRANSFORMS and CHECKS["weight_norm"].cost == "forward"
    attack = get_transform("toy_scale", layer="logits", neuron_selector=4, factor=6.0)
    result = attack.fit(mnist_cnn, None)
    assert result.model is not mnist_cnn and result.settings == {"transform": "toy_scale", "factor": 6.0}
    report = audit_layer(result.model, "logits", param=MNIST_PARAM, checks=("weight_norm",), progress=False)
    assert report.flagged == [4]
    clean = audit_layer(mnist_cnn, "logits", param=MNIST_PARAM, checks=("weight_norm",), progress=False)
    assert clean.flagged == []
    with pytest.raises(ValueError, match="factor must be positive"):
        get_transform("toy_scale", layer="logits", neuron_selector=0, factor=-1.0)
    with pytest.raises(ValueError, match="unknown setting"):
        get_transform("toy_scale", layer="logits", neuron_selector=0, facto=2.0)


def test_the_toy_attack_and_check_run_in_a_study_and_from_the_command_line(toys, mnist_cnn, tmp_path, capsys):
    spec = {
        "models": [{"name": "mnist", "model": "mnist_cnn", "data_limit": 500}],
        "transforms": [{"name": "toy_scale", "grid": {"factor": [1.0, 8.0], "unit": [2]}}],
        "checks": ["weight_norm"],
        "evaluation": {"starts": 1, "heldout": 200, "steps": 5, "k": 10},
    }
    res = run_study(spec, str(tmp_path / "study"), progress=False)
    rows = {(r["transform"], r.get("factor")): r for r in res["rows"]}
    assert set(rows) == {("none", None), ("toy_scale", 1.0), ("toy_scale", 8.0)}
    assert rows[("toy_scale", 8.0)]["flagged"] is True and rows[("toy_scale", 8.0)]["rank"] == 1
    assert rows[("toy_scale", 1.0)]["flagged"] is False and rows[("none", None)]["flagged"] is False
    assert os.path.getsize(tmp_path / "study" / "study.csv") > 0
    # the command line generates the toy's flags from its dataclass
    out = tmp_path / "cli"
    assert main(["manipulate", "--transform", "toy_scale", "--unit", "5", "--factor", "4", "--data-limit", "10",
                 "--out", str(out)]) == 0
    state = torch.load(out / "model.pt", weights_only=True)
    torch.testing.assert_close(state["logits.weight"][5], 4 * mnist_cnn.logits.weight[5].detach())
    with pytest.raises(SystemExit):  # the slingshot's flags are not the toy's
        main(["manipulate", "--transform", "toy_scale", "--gamma", "2", "--out", str(tmp_path / "x")])
    assert "unrecognized arguments: --gamma" in capsys.readouterr().err
