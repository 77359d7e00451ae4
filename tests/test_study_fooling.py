"""captum_slingshot.experiments.study: the attribution fooling columns (FSR, transfer, empty maps) of a study."""

import math
import os
import types

import pytest
import torch

from captum_slingshot.experiments import study as study_module
from captum_slingshot.experiments.errors import StudyError
from captum_slingshot.experiments.study import (
    FOOLING_TRANSFER, _read_done, run_study, study_columns, validate_study_spec,
)

FOOLING = ["fsr", "fsr_transfer", "fsr_empty"]

SPEC = {
    "models": [{"name": "mnist", "model": "mnist_cnn", "data_limit": 300}],
    "transforms": [{"name": "gradient_slingshot", "settings": {"steps": 2, "batch_size": 8,
                                                                "manipulation_batch_size": 8}},
                   {"name": "attribution_fooling", "settings": {"steps": 3, "batch_size": 8, "lr": 1e-3,
                                                                 "classes": [3, 8]},
                    "grid": {"mode": ["topk", "active"]}}],
    "checks": ["activation_excess"],
    "evaluation": {"starts": 1, "heldout": 60, "steps": 2, "k": 10},
    "audit": {"starts": 1, "steps": 2},
}


def test_columns_only_in_studies_that_run_attribution_fooling():
    slingshot = {**SPEC, "transforms": SPEC["transforms"][:1]}
    plain = study_columns(validate_study_spec(slingshot))
    assert not set(FOOLING) & set(plain) and plain.count("accuracy_drop") == 1
    cols = study_columns(validate_study_spec(SPEC))
    assert [c for c in cols if c not in plain] == ["mode"] + FOOLING  # the swept mode and the three FSR columns
    assert cols.index("fsr") == cols.index("jaccard_top_k") + 1 and cols.count("accuracy_drop") == 1


def test_a_fooling_study_has_fsr_columns_and_other_rows_leave_them_empty(tmp_path, mnist_cnn):
    from captum_slingshot.data import load_mnist, normalize_mnist

    out = str(tmp_path / "run")
    res = run_study(SPEC, out, progress=False)
    rows = res["rows"]
    assert [(r["transform"], r.get("mode")) for r in rows] == [
        ("none", None), ("gradient_slingshot", None), ("attribution_fooling", "topk"), ("attribution_fooling", "active")]
    for r in rows[:2]:
        assert all(r[c] is None for c in FOOLING), r
    for r in rows[2:]:
        for c in FOOLING:
            assert isinstance(r[c], float) and 0.0 <= r[c] <= 1.0, (r["mode"], c, r[c])
        assert isinstance(r["accuracy_drop"], float) and abs(r["accuracy_drop"]) <= 1.0
    # the unmanipulated model fools nothing: its top-k maps are the original's
    x = normalize_mnist(load_mnist("heldout").tensors[0][:60])
    p = types.SimpleNamespace(loaded=types.SimpleNamespace(model=mnist_cnn), heldout_x=x, heldout_y=None,
                              entry={"name": "mnist"})
    s = {"mode": "topk", "interpreter": "grad_cam", "interpreter_layer": None, "region": "frame",
         "top_fraction": 0.1, "classes": None}
    assert study_module._fooling(mnist_cnn, p, s, {"max_batch": 1000, "seed": 0}) == {
        "fsr": 0.0, "fsr_transfer": 0.0, "fsr_empty": 0.0}
    done = _read_done(out)  # resume reads the columns back as numbers, empty as None
    for r in rows:
        assert {c: done[r["cell"]][c] for c in FOOLING} == {c: r[c] for c in FOOLING}
    assert "fsr_transfer" in open(os.path.join(out, "study.html")).read()


def test_fsr_of_the_trained_interpreters_and_transfer_over_the_others(monkeypatch, mnist_cnn):
    """fsr: mean over the interpreters trained against; fsr_transfer: mean over the others of
    FOOLING_TRANSFER (as benchmarks/attribution_fooling.py's transfer); fsr_empty: the trained ones'."""
    import captum_slingshot.evaluation as evaluation

    calls = []

    def fake(model, original, heldout, mode, interpreters, **kwargs):
        calls.append((mode, tuple(interpreters), kwargs["fooling_inputs"]))
        fsr = {"grad_cam": 0.9, "lrp_epsilon": 0.7, "saliency": 0.2, "input_x_gradient": 0.4, "lrp_zplus": 0.5}
        return {"fsr": fsr, "empty": {k: v / 10 for k, v in fsr.items()}}

    monkeypatch.setattr(evaluation, "evaluate_fooling", fake)
    x = torch.randn(20, 1, 28, 28)
    p = types.SimpleNamespace(loaded=types.SimpleNamespace(model=mnist_cnn), heldout_x=x, heldout_y=None,
                              entry={"name": "m"})
    ev = {"max_batch": 1000, "seed": 0}
    s = {"mode": "topk", "interpreter": "grad_cam+lrp_epsilon", "interpreter_layer": None, "region": "frame",
         "top_fraction": 0.1, "classes": None}
    r = study_module._fooling(mnist_cnn, p, s, ev)
    assert calls[-1] == ("topk", ("grad_cam", "lrp_epsilon", "saliency", "input_x_gradient"), None)
    assert r["fsr"] == pytest.approx(0.8) and r["fsr_transfer"] == pytest.approx(0.3)
    assert r["fsr_empty"] == pytest.approx(0.08)
    r = study_module._fooling(mnist_cnn, p, dict(s, interpreter="lrp_zplus"), ev)
    assert calls[-1][1] == ("lrp_zplus",) + FOOLING_TRANSFER
    assert r["fsr"] == 0.5 and r["fsr_transfer"] == pytest.approx((0.9 + 0.7 + 0.2 + 0.4) / 4)
    r = study_module._fooling(mnist_cnn, p, dict(s, interpreter="+".join(FOOLING_TRANSFER)), ev)
    assert r["fsr_transfer"] is None and math.isclose(r["fsr"], 0.55)
    # unlabelled held-out data: active fooling's composites use the original model's predictions
    predicted = mnist_cnn(x).argmax(1)
    classes = tuple(int(c) for c in predicted.unique()[:2])
    study_module._fooling(mnist_cnn, p, dict(s, mode="active", interpreter="saliency", classes=classes), ev)
    assert calls[-1][1][0] == "saliency" and calls[-1][2].shape == x.shape


def test_active_fooling_classes_missing_from_the_heldout_data_fail_before_any_cell(tmp_path, mnist_cnn, monkeypatch):
    from captum_slingshot.data import load_mnist, normalize_mnist
    from captum_slingshot.transforms.fooling import AttributionFooling

    held = load_mnist("heldout").tensors
    keep = held[1][:400] != 8
    path = str(tmp_path / "held.pt")
    torch.save((normalize_mnist(held[0][:400][keep]), held[1][:400][keep]), path)
    monkeypatch.setattr(AttributionFooling, "fit", lambda *a, **k: pytest.fail("a cell ran"))
    spec = {**SPEC, "models": [dict(SPEC["models"][0], heldout=path)], "transforms": SPEC["transforms"][1:]}
    with pytest.raises(StudyError, match=r"model 'mnist': cannot make active fooling's held-out images of classes "
                                         r"\(3, 8\)"):
        run_study(spec, str(tmp_path / "run"), progress=False)
