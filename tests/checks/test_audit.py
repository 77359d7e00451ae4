"""audit_layer: label-free flags on the manipulated toy, files, figures, side effects, errors."""

import json

import pytest
import torch
from PIL import Image
from torch import nn

from captum_slingshot.checks import AuditReport, audit_layer, read_table, robust_z
from captum_slingshot.fv import PixelParam, count_hooks

from .conftest import LAYER, MANIPULATED


def test_flags_the_manipulated_logit_and_nothing_in_the_clean_model(reports):
    man, clean = reports["manipulated"], reports["clean"]
    assert man.flagged == [MANIPULATED], man.summary()
    assert clean.flagged == [], clean.summary()
    # every check on its own puts the manipulated logit far above the rest of its layer
    for check in man.checks:
        z = man.z[check]
        assert z[MANIPULATED] > 3.5 and z[1:].max() < 3.0, (check, z)
        assert clean.z[check].max() < 3.0, (check, clean.z[check])
    assert man.combined[MANIPULATED] > 1.5 * man.threshold


def test_default_audit(toy):
    """The defaults (activation_excess + strategy_divergence, Stouffer) flag the slung logit only."""
    from captum_slingshot.checks import DEFAULT_CHECKS

    man = audit_layer(toy.manipulated, LAYER, param=toy.param, data=toy.data, progress=False)
    clean = audit_layer(toy.clean, LAYER, param=toy.param, data=toy.data, progress=False)
    assert man.checks == list(DEFAULT_CHECKS) and man.combine == "stouffer"
    assert man.flagged == [MANIPULATED] and clean.flagged == [], (man.summary(), clean.summary())
    z = torch.stack([man.z[c] for c in man.checks])
    torch.testing.assert_close(man.combined, z.sum(0) / len(man.checks) ** 0.5)
    # without natural_gap the figure still shows the top natural images (from activation_excess)
    assert list(man.figure_rows(MANIPULATED)) == ["FV gc", "FV tr", "FV adam", "FV gc@lucent_fourier", "top natural"]


def test_no_hooks_left_and_models_unchanged(reports, toy, toy_states):
    for name, model in (("clean", toy.clean), ("manipulated", toy.manipulated)):
        state, flags = toy_states[name]
        assert count_hooks(model) == 0
        after = model.state_dict()
        assert after.keys() == state.keys() and all(torch.equal(after[k], state[k]) for k in state)
        assert [m.training for m in model.modules()] == flags
        assert all(p.grad is None for p in model.parameters())


def test_training_flags_are_restored():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.Linear(8, 4)).train()
    rep = audit_layer(model, "3", param=PixelParam((1, 4, 4)), checks=("slingshot_field",), progress=False)
    assert len(rep.table) == 4 and all(m.training for m in model.modules())


def test_table_json_csv_round_trip(reports, tmp_path):
    rep = reports["manipulated"]
    rows = rep.table
    assert len(rows) == 10 and [r["unit"] for r in rows] == list(range(10))
    assert {"strategy_divergence", "natural_gap_z", "combined", "flagged", "slingshot_field.gamma",
            "natural_gap.feature", "strategy_divergence.gain"} <= set(rows[0])
    assert rows[MANIPULATED]["flagged"] is True and sum(r["flagged"] for r in rows) == 1
    j = rep.to_json(tmp_path / "audit.json")
    c = rep.to_csv(tmp_path / "audit.csv")
    assert read_table(j) == rows and read_table(c) == rows
    doc = json.loads(open(j).read())
    assert doc["layer"] == LAYER and doc["flagged"] == [MANIPULATED] and doc["threshold"] == 3.5
    assert doc["checks"]["natural_gap"]["higher_is_more_suspicious"] is True
    assert not list(tmp_path.glob("*.tmp"))


def test_figures_one_png_per_flagged_unit(reports, tmp_path):
    rep = reports["manipulated"]
    paths = rep.save_figures(tmp_path / "figs")
    assert [p.rsplit("/", 1)[1] for p in paths] == [f"unit_{MANIPULATED}.png"]
    with Image.open(paths[0]) as im:
        im.verify()
    with Image.open(paths[0]) as im:
        assert im.format == "PNG" and im.size[0] > 300
    rows = rep.figure_rows(MANIPULATED)
    assert list(rows) == ["FV gc", "FV tr", "FV adam", "FV gc@lucent_fourier", "top natural", "field q*"]
    assert reports["clean"].save_figures(tmp_path / "none") == []
    with pytest.raises(ValueError, match="unit 42 was not audited"):
        rep.save_figures(tmp_path, units=[42])


def test_summary_lists_units_by_suspicion(reports):
    text = reports["manipulated"].summary()
    lines = text.splitlines()
    assert "flagged (combined z > 3.5): [0]" in lines[0]
    assert lines[2].split()[0] == str(MANIPULATED) and lines[2].rstrip().endswith("*")
    assert len(lines) == 12 and "AuditReport(layer='5'" in repr(reports["manipulated"])


def test_units_of_a_conv_layer_are_its_channels_and_kwargs_are_routed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 6 * 6, 3))
    param = PixelParam((1, 8, 8))
    rep = audit_layer(model, model[0], param=param, checks=("slingshot_field", "strategy_divergence"),
                      n_starts=2, steps=10, radii=(1.0,), strategy_divergence={"strategies": ("gc", "adam")},
                      combine="max", progress=False)
    assert rep.units == list(range(6)) and rep.layer == "0" and rep.combine == "max"
    assert rep.details["strategy_divergence"]["labels"] == ["gc", "adam"]
    assert rep.details["slingshot_field"]["radii"] == [1.0]
    assert rep.details["strategy_divergence"]["images"]["gc"].shape == (6, 2, 1, 8, 8)
    sub = audit_layer(model, "0", param=param, units=[1, (2, 3, 3)], checks=("slingshot_field",), progress=False)
    assert [r["unit"] for r in sub.table] == [1, "(2, 3, 3)"]


def test_errors(toy):
    m, p = toy.clean, toy.param
    with pytest.raises(ValueError, match="neuron_selector 10 is out of range for layer '5'"):
        audit_layer(m, LAYER, param=p, units=[0, 10], checks=("slingshot_field",), progress=False)
    with pytest.raises(ValueError, match="check 'activation_excess' needs natural data"):
        audit_layer(m, LAYER, param=p, progress=False)
    with pytest.raises(ValueError, match="data yields no inputs"):
        audit_layer(m, LAYER, param=p, data=toy.data[:0], checks=("natural_gap",), progress=False)
    with pytest.raises(ValueError, match="k=100 is larger than the data \\(50 inputs\\)"):
        audit_layer(m, LAYER, param=p, data=toy.data[:50], checks=("natural_gap",), k=100, steps=1,
                    progress=False)
    with pytest.raises(ValueError, match="unknown check 'fancy'"):
        audit_layer(m, LAYER, param=p, checks=("fancy",), progress=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_start'"):
        audit_layer(m, LAYER, param=p, checks=("slingshot_field",), n_start=3, progress=False)
    with pytest.raises(TypeError, match="check 'slingshot_field' does not take \\['k'\\]"):
        audit_layer(m, LAYER, param=p, checks=("slingshot_field",), slingshot_field={"k": 3}, progress=False)
    with pytest.raises(ValueError, match="combine must be one of \\['max', 'mean', 'stouffer'\\]"):
        audit_layer(m, LAYER, param=p, checks=("slingshot_field",), combine="median", progress=False)
    with pytest.raises(ValueError, match="unknown layer"):
        audit_layer(m, "fc", param=p, checks=("slingshot_field",), progress=False)
    assert count_hooks(m) == 0


def test_robust_z_floor_and_direction():
    s = torch.tensor([0.20, 0.21, 0.19, 0.20, 0.22, 0.18, 0.20, 0.21])
    assert robust_z(s, min_scale=0.05).abs().max() < 1  # near-identical scores stay calm
    assert robust_z(s, min_scale=0.0).abs().max() > 1  # without the floor they would not
    low = robust_z(torch.tensor([1.0, 1.0, 1.1, 0.9, -5.0]), higher_is_more_suspicious=False, min_scale=0.1)
    assert low.argmax() == 4 and low[4] > 3.5
    rep = AuditReport("x", [0], ["c"], {"c": True}, {"c": torch.tensor([1.0])}, {"c": torch.tensor([0.0])},
                      torch.tensor([0.0]), 3.5)
    assert rep.flagged == [] and rep.table == [{"unit": 0, "c": 1.0, "c_z": 0.0, "combined": 0.0, "flagged": False}]
