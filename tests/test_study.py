"""captum_slingshot.experiments.study: a tiny real study on the cached MNIST CNN, crash-safe files, resume,
and the study file's validation."""

import copy
import csv
import functools
import json
import math
import os
import shutil

import pytest
import torch

from captum_slingshot.experiments.errors import StudyError
from captum_slingshot.experiments.study import (
    _detection, _load_heldout, load_study_spec, run_study, study_cells, study_columns, validate_study_spec,
)
from captum_slingshot.transforms.slingshot import GradientSlingshot

SPEC = {
    "models": [{"name": "mnist", "model": "mnist_cnn", "data_limit": 2000}],
    "transforms": [{"name": "gradient_slingshot",
                    "settings": {"steps": 20, "batch_size": 16, "manipulation_batch_size": 16, "gamma": 1.0,
                                 "loss": "direction"},
                    "grid": {"alpha": [0.5, 0.9]}}],
    "checks": ["activation_excess", "slingshot_field"],
    "evaluation": {"starts": 2, "heldout": 200, "steps": 30, "k": 20},
    "audit": {"starts": 1, "steps": 20, "samples": 8},
}

NUMERIC = ["fv_ssim", "fv_mse", "fv_activation", "accuracy", "accuracy_original", "accuracy_drop", "auroc",
           "jaccard_top_k", "z_activation_excess", "z_slingshot_field", "combined_z"]


_REAL_FIT = GradientSlingshot.fit


class _CountingFit:
    """Replaces GradientSlingshot.fit: counts the calls and can fail on the n-th."""

    def __init__(self, fail_on=None):
        self.calls, self.fail_on = 0, fail_on

    def __get__(self, gs, owner=None):  # a method: gs.fit(...) passes gs
        return functools.partial(self.__call__, gs)

    def __call__(self, gs, model, data, resume=None):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("simulated crash during the manipulation")
        return _REAL_FIT(gs, model, data, resume=resume)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def study(tmp_path_factory, mnist_cnn):
    """The tiny study, run as a user would live it: a crash in the second manipulation, a resume
    that runs only the missing cell, a resume with nothing left, and a grid grown by one value."""
    out = str(tmp_path_factory.mktemp("study") / "run")
    phases = {}
    with pytest.MonkeyPatch.context() as mp:
        counter = _CountingFit(fail_on=2)
        mp.setattr(GradientSlingshot, "fit", counter)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_study(SPEC, out, progress=False)
        phases["crash"] = {"fits": counter.calls, "csv": _read_csv(os.path.join(out, "study.csv")),
                           "files": sorted(os.listdir(out))}
        for name, spec in [("resume", SPEC), ("again", SPEC), ("grown", _grown())]:
            counter = _CountingFit()
            mp.setattr(GradientSlingshot, "fit", counter)
            res = run_study(spec, out, resume=True, progress=False)
            phases[name] = {"fits": counter.calls, "result": res, "csv": _read_csv(os.path.join(out, "study.csv"))}
    return {"out": out, **phases}


def _grown():
    spec = copy.deepcopy(SPEC)
    spec["transforms"][0]["grid"]["alpha"] = [0.5, 0.9, 0.7]
    return spec


def test_tiny_study_rows_columns_and_files(study):
    res = study["resume"]["result"]
    rows = res["rows"]
    assert res["columns"] == study_columns(validate_study_spec(SPEC))
    assert [(r["transform"], r["alpha"]) for r in rows] == [("none", None), ("gradient_slingshot", 0.5),
                                                            ("gradient_slingshot", 0.9)]
    base, low, high = rows
    assert base["unit"] == 0 and base["target"] == "cross" and base["model"] == "mnist"
    assert base["accuracy_drop"] == 0.0 and base["jaccard_top_k"] == 1.0 and base["loss_first"] is None
    assert 0.95 < base["accuracy_original"] <= 1.0
    for r in rows:
        for key in NUMERIC:
            assert isinstance(r[key], float) and math.isfinite(r[key]), (key, r[key])
        assert 1 <= r["rank"] <= 10 and r["n_units"] == 10 and isinstance(r["flagged"], bool)
        assert 0 <= r["n_other_flagged"] <= 9 and r["seconds"] > 0
        assert r["accuracy_original"] == base["accuracy_original"]  # the same held-out data in every cell
    for r in (low, high):
        assert math.isfinite(r["loss_first"]) and r["loss_first"] != r["loss_last"]
        settings = json.loads(r["settings"])
        assert settings["alpha"] == r["alpha"] and settings["steps"] == 20 and settings["gamma"] == 1.0
    # the two cells trained different models: their held-out behaviour or FV differs
    assert (low["fv_mse"], low["accuracy"]) != (high["fv_mse"], high["accuracy"])
    assert len({r["cell"] for r in rows}) == 3

    out = study["out"]
    doc = json.loads(open(os.path.join(out, "study.json")).read())
    assert doc["command"] == "study" and doc["spec"]["checks"] == SPEC["checks"]
    assert [r["cell"] for r in doc["rows"]] == [r["cell"] for r in study["grown"]["result"]["rows"]]
    assert os.path.getsize(os.path.join(out, "study.png")) > 10_000
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_a_crash_keeps_the_finished_rows(study):
    crash = study["crash"]
    assert crash["fits"] == 2  # the second manipulation failed
    assert [r["transform"] for r in crash["csv"]] == ["none", "gradient_slingshot"]
    assert crash["csv"][1]["alpha"] == "0.5"
    assert "study.png" not in crash["files"] and "study.json" in crash["files"]


def test_resume_runs_only_the_missing_cells(study):
    crash, resume = study["crash"]["csv"], study["resume"]
    assert resume["fits"] == 1 and (resume["result"]["ran"], resume["result"]["resumed"]) == (1, 2)
    assert resume["csv"][:2] == crash  # finished rows kept exactly as written
    again = study["again"]
    assert again["fits"] == 0 and (again["result"]["ran"], again["result"]["resumed"]) == (0, 3)
    assert again["csv"] == resume["csv"]
    grown = study["grown"]
    assert grown["fits"] == 1 and (grown["result"]["ran"], grown["result"]["resumed"]) == (1, 3)
    assert [r["alpha"] for r in grown["csv"]] == ["", "0.5", "0.9", "0.7"]
    assert grown["csv"][:3] == resume["csv"]


def test_resume_drops_rows_of_other_settings(study, tmp_path, mnist_cnn):
    out = tmp_path / "run"
    shutil.copytree(study["out"], out)
    spec = copy.deepcopy(SPEC)
    spec["transforms"][0]["grid"]["alpha"] = [0.9]
    spec["transforms"][0]["settings"]["steps"] = 21  # other settings: other cells
    spec["save_models"] = True  # not part of a cell's id: the baseline row is kept
    cells = study_cells(validate_study_spec(spec))
    done = {r["cell"] for r in study["grown"]["csv"]}
    assert cells[0].key in done and cells[1].key not in done  # the baseline is the same cell
    notes = []
    with pytest.MonkeyPatch.context() as mp:
        counter = _CountingFit()
        mp.setattr(GradientSlingshot, "fit", counter)
        res = run_study(spec, str(out), resume=True, progress=False, warn=notes.append)
    assert counter.calls == 1 and res["resumed"] == 1
    assert notes == ["note: 3 rows of the earlier study.csv match no cell of this study; dropped"]
    rows = _read_csv(out / "study.csv")
    assert [r["transform"] for r in rows] == ["none", "gradient_slingshot"]
    assert rows[0]["model_file"] == "" and rows[1]["model_file"] == str(out / "models" / f"{cells[1].key}.pt")
    state = torch.load(rows[1]["model_file"], weights_only=True)
    assert state.keys() == mnist_cnn.state_dict().keys()
    assert not torch.equal(state["logits.weight"], mnist_cnn.state_dict()["logits.weight"])


# -- cells and validation (no model is loaded) --------------------------------------------------------
def test_cells_baselines_and_keys():
    spec = validate_study_spec({
        "models": [{"model": "mnist_cnn"}, {"model": "mnist_cnn", "weights": "other.pt"}],
        "transforms": [{"name": "gradient_slingshot", "settings": {"steps": 5},
                        "grid": {"unit": [0, 3], "target": ["cross", "fake"]}},
                       {"name": "gradient_slingshot", "settings": {"steps": 5, "alpha": 0.9}}],
    })
    assert [m["name"] for m in spec["models"]] == ["mnist_cnn", "mnist_cnn-2"]
    assert [t["label"] for t in spec["transforms"]] == ["gradient_slingshot", "gradient_slingshot-2"]
    cells = study_cells(spec)
    assert len(cells) == 2 * (4 + 4 + 1)  # per model: 4 baselines (unit x target), 4 grid points, 1 fixed
    first = cells[:9]
    assert [(c.transform, c.unit, c.target) for c in first[:4]] == [
        ("none", 0, "cross"), ("none", 0, "fake"), ("none", 3, "cross"), ("none", 3, "fake")]
    assert first[8].transform == "gradient_slingshot-2" and first[8].settings["alpha"] == 0.9
    assert first[8].unit == 0 and first[8].settings["steps"] == 5 and first[8].settings["progress"] is False
    assert len({c.key for c in cells}) == len(cells)
    assert validate_study_spec(spec) == spec  # normalized studies validate to themselves
    # a change in the evaluation changes every cell id (nothing is resumed); the same study does not
    other = validate_study_spec(dict(spec, evaluation={"starts": 5}))
    assert not {c.key for c in cells} & {c.key for c in study_cells(other)}
    assert [c.key for c in study_cells(validate_study_spec(spec))] == [c.key for c in cells]


def test_defaults():
    spec = validate_study_spec({"models": [{}], "transforms": [{"name": "gradient_slingshot"}]})
    assert spec["checks"] == ["activation_excess", "strategy_divergence"]  # the audit's DEFAULT_CHECKS
    assert spec["audit"]["combine"] == "stouffer"
    assert spec["evaluation"]["starts"] == 20 and spec["evaluation"]["strategy"] == "gc"
    assert spec["audit"]["threshold"] == 3.5 and spec["save_models"] is False
    (base, cell), = [study_cells(spec)]
    assert base.transform == "none" and cell.swept == {} and cell.settings["epochs"] == 1.0


def _write(tmp_path, text):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return str(path)


GOOD_TRANSFORM = "transforms:\n  - name: gradient_slingshot\n"


@pytest.mark.parametrize("text, message", [
    ("models: [{}]\n" + GOOD_TRANSFORM + "modles: 1\n",
     "unknown key 'modles' in the study (did you mean 'models'?); valid keys: audit, checks, evaluation, models"),
    ("models: [{modle: mnist_cnn}]\n" + GOOD_TRANSFORM, "unknown key 'modle' in models[0] (did you mean 'model'?)"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    sweep: {alpha: [1]}\n",
     "unknown key 'sweep' in transforms[0]; valid keys: grid, label, name, settings"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    settings: {gama: 2}\n",
     "unknown key 'gama' in transforms[0].settings (did you mean 'gamma'?)"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    grid: {alpah: [0.5]}\n",
     "unknown key 'alpah' in transforms[0].grid (did you mean 'alpha'?)"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    settings: {layer: fc}\n",
     "unknown key 'layer' in transforms[0].settings"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "evaluation: {stars: 3}\n",
     "unknown key 'stars' in evaluation (did you mean 'starts'?); valid keys: heldout, k, lpips"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "audit: {treshold: 3}\n",
     "unknown key 'treshold' in audit (did you mean 'threshold'?)"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    grid: {alpha: []}\n",
     "transforms[0].grid.alpha is an empty list: give at least one value"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    grid: {alpha: 0.5}\n",
     "transforms[0].grid.alpha must be a list of values (a fixed value goes under settings)"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    settings: {alpha: 0.5}\n    grid: {alpha: [0.9]}\n",
     "'alpha' is both in settings and in grid"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    grid: {alpha: [0.5, abc]}\n",
     "transforms[0].grid, key 'alpha': expected a number, got 'abc'"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    grid: {loss: [direction, sideways]}\n",
     "expected one of gradient, direction, activation, got 'sideways'"),
    ("models: [{}]\ntransforms:\n  - name: gradient_slinghsot\n",
     "transforms[0]: unknown transform 'gradient_slinghsot'; registered transforms: activation_max_attack, attribution_fooling, fooling_circuit, "
     "gradient_slingshot, proxpulse, silent_units"),
    ("models: [{}]\ntransforms:\n  - name: none\n", "unknown transform 'none'"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "checks: [activation_excess, natural_gapp]\n",
     "unknown check 'natural_gapp'; available checks: activation_excess, natural_gap"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "checks: []\n", "checks is empty"),
    ("models: []\n" + GOOD_TRANSFORM, "models must be a non-empty list"),
    ("models: [{}]\n", "transforms must be a non-empty list"),
    ("models: [mnist_cnn]\n" + GOOD_TRANSFORM, "models[0] must be a mapping (key: value), got str 'mnist_cnn'"),
    ("models: [{model: mnist_cnn, torchvision: resnet18}]\n" + GOOD_TRANSFORM,
     "models[0]: give model or torchvision, not both"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "evaluation: {starts: 0}\n", "evaluation, key 'starts': must be at least 1"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "evaluation: {strategy: gcc}\n",
     "evaluation, key 'strategy': unknown AM strategy 'gcc'"),
    ("models: [{}]\n" + GOOD_TRANSFORM + "    grid: {trajectory_strategy: [gc, nope]}\n",
     "transforms[0], trajectory_strategy: unknown AM strategy 'nope'"),
    ("- a list\n", "must hold a mapping"),
])
def test_study_file_errors(text, message, tmp_path):
    path = _write(tmp_path, text)
    with pytest.raises(StudyError) as err:
        load_study_spec(path)
    assert message in str(err.value)
    if "must hold a mapping" not in message:
        assert str(err.value).startswith(f"study file {path!r}: ")


def test_missing_study_file(tmp_path):
    with pytest.raises(StudyError, match="config file .*nope.yaml' does not exist"):
        load_study_spec(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("model, message", [
    ({"model": "no_such_package.nets:make"}, "cannot import 'no_such_package.nets'"),
    ({"torchvision": "resnet81", "weights": "w.pt", "layer": "fc"}, "unknown torchvision model 'resnet81'"),
    ({"model": "mnist_cnn", "weights": "missing.pt"}, "weights file 'missing.pt' does not exist"),
])
def test_a_bad_model_fails_before_any_cell(model, message, tmp_path):
    spec = {"models": [{"model": "mnist_cnn"}, model], "transforms": [{"name": "gradient_slingshot"}]}
    with pytest.MonkeyPatch.context() as mp:
        counter = _CountingFit()
        mp.setattr(GradientSlingshot, "fit", counter)
        with pytest.raises(StudyError, match=message):
            run_study(spec, str(tmp_path / "out"), progress=False)
    assert counter.calls == 0 and not (tmp_path / "out").exists()


def test_heldout_files(tmp_path):
    x, y = torch.randn(30, 1, 28, 28), torch.randint(0, 10, (30,))
    torch.save((x, y), tmp_path / "xy.pt")
    torch.save(x, tmp_path / "x.pt")
    torch.save({"x": x}, tmp_path / "bad.pt")
    natural = torch.randn(50, 1, 28, 28)
    hx, hy = _load_heldout(str(tmp_path / "xy.pt"), 20, natural)
    assert torch.equal(hx, x[:20]) and torch.equal(hy, y[:20])
    hx, hy = _load_heldout(str(tmp_path / "x.pt"), 100, natural)
    assert torch.equal(hx, x) and hy is None
    hx, hy = _load_heldout(None, 10, natural)
    assert torch.equal(hx, natural[:10]) and hy is None
    with pytest.raises(StudyError, match="must hold normalized inputs"):
        _load_heldout(str(tmp_path / "bad.pt"), 10, natural)
    with pytest.raises(StudyError, match="does not exist"):
        _load_heldout(str(tmp_path / "none.pt"), 10, natural)


def test_heldout_image_folder_read_with_the_models_preprocessing(tmp_path):
    from captum_slingshot.data import Preprocess, write_photo_folder

    root = write_photo_folder(tmp_path / "held", 2, "heldout", photos=("astronaut", "coffee"))
    hx, hy = _load_heldout(str(root), 3, torch.zeros(1), Preprocess(resize=40, crop=32))
    assert hx.shape == (3, 3, 32, 32) and hy.tolist() == [0, 1, 0]
    (tmp_path / "flat").mkdir()
    with pytest.raises(StudyError, match="held-out data: .*flat has no class subfolders and no images"):
        _load_heldout(str(tmp_path / "flat"), 3, torch.zeros(1))


def test_detection_of_a_unit():
    from captum_slingshot.checks.report import AuditReport

    z = torch.tensor([0.0, 5.0, 4.0, -1.0])
    rep = AuditReport("fc", [0, 1, 2, 3], ["c"], {"c": True}, {"c": z}, {"c": z}, z, 3.5)
    assert _detection(rep, 2, ["c"]) == {"z_c": 4.0, "combined_z": 4.0, "rank": 2, "n_units": 4, "flagged": True,
                                         "n_other_flagged": 1}
    assert _detection(rep, 3, ["c"])["n_other_flagged"] == 2 and _detection(rep, 3, ["c"])["rank"] == 4
    assert _detection(rep, (0, 1, 1), ["c"]) == {}  # a position of a channel-audited layer: no audit line


def test_the_example_study_file_is_valid():
    """examples/study_alpha_units.yaml loads and expands to its 4 cells plus the baseline."""
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "study_alpha_units.yaml"
    spec = load_study_spec(str(path))
    cells = study_cells(spec)
    manipulated = [c for c in cells if c.transform != "none"]
    assert len(manipulated) == 4 and len(cells) == 5
    assert sorted((c.settings["alpha"], c.settings["preserve_fv"]) for c in manipulated) == [
        (0.5, 0.0), (0.5, 1.0), (0.8, 0.0), (0.8, 1.0)]


def test_cell_checkpoints_are_per_cell_and_an_interrupted_cell_resumes_from_its_own(tmp_path, mnist_cnn, monkeypatch):
    from captum_slingshot.experiments import study as study_module

    spec = copy.deepcopy(SPEC)
    spec["transforms"][0]["settings"].update(steps=12, checkpoint_path="ck/{cell}.pt", checkpoint_every=5)
    spec["transforms"][0]["grid"] = {"alpha": [0.5]}
    resumes, real_fit, real_evaluate = [], GradientSlingshot.fit, study_module._evaluate

    def spy(gs, model, data, resume=None, **kw):
        resumes.append(resume)
        return real_fit(gs, model, data, resume=resume, **kw)

    def crash_after_the_manipulation(model, p, *args):
        if model is not p.loaded.model:
            raise RuntimeError("simulated crash after the manipulation")
        return real_evaluate(model, p, *args)

    monkeypatch.setattr(GradientSlingshot, "fit", spy)
    monkeypatch.setattr(study_module, "_evaluate", crash_after_the_manipulation)
    out = str(tmp_path / "run")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_study(spec, out, progress=False)
    cell = [c for c in study_cells(validate_study_spec(spec)) if not c.is_baseline][0]
    ckpt = os.path.join(out, "ck", f"{cell.key}.pt")
    assert resumes == [None] and os.path.isfile(ckpt) and torch.load(ckpt, weights_only=True)["step"] == 10
    monkeypatch.setattr(study_module, "_evaluate", real_evaluate)
    res = run_study(spec, out, resume=True, progress=False)
    assert resumes == [None, ckpt]  # the cell went on from step 10, not from the start
    plain = copy.deepcopy(spec)
    del plain["transforms"][0]["settings"]["checkpoint_path"]
    fresh = run_study(plain, str(tmp_path / "fresh"), progress=False)
    assert res["rows"][-1]["loss_last"] == fresh["rows"][-1]["loss_last"]  # exact resume
    spec["transforms"][0]["settings"]["checkpoint_path"] = "ck.pt"
    with pytest.raises(StudyError, match="checkpoint_path 'ck.pt' in a study must contain \\{cell\\}"):
        validate_study_spec(spec)


def test_a_study_runs_attribution_fooling_by_name_with_the_mnist_labels(tmp_path, mnist_cnn, monkeypatch):
    """The study gives a transform that reads labels the (inputs, labels) pair, runs its grid, and
    scores the fooled model like any other cell (the FV columns: the FV audit's view of it)."""
    from captum_slingshot.transforms.fooling import AttributionFooling

    seen = []
    real_fit = AttributionFooling.fit

    def fit(self, model, natural_data, **kwargs):
        seen.append((self.mode, self.fooling_weight, type(natural_data).__name__, len(natural_data)))
        return real_fit(self, model, natural_data, **kwargs)

    monkeypatch.setattr(AttributionFooling, "fit", fit)
    spec = {
        "models": [{"name": "mnist", "model": "mnist_cnn", "data_limit": 300}],
        "transforms": [{"name": "attribution_fooling", "settings": {"mode": "topk", "steps": 3, "batch_size": 8},
                        "grid": {"fooling_weight": [1.0, 5.0]}}],
        "checks": ["activation_excess"],
        "evaluation": {"starts": 1, "heldout": 100, "steps": 5, "k": 10},
        "audit": {"starts": 1, "steps": 5, "samples": 4},
    }
    res = run_study(spec, str(tmp_path / "run"), progress=False)
    assert sorted(seen) == [("topk", 1.0, "tuple", 2), ("topk", 5.0, "tuple", 2)]
    rows = [r for r in _read_csv(str(tmp_path / "run" / "study.csv")) if r["transform"] == "attribution_fooling"]
    assert len(rows) == 2 and all(r["accuracy"] for r in rows)
    assert res is not None


def test_a_study_runs_the_circuits_by_name_and_their_saved_models_reload(tmp_path, mnist_cnn, monkeypatch):
    """fooling_circuit and silent_units run as study cells, are audited, and their saved models (wrapped
    models) reload with load_model, outputs identical to the study's in-memory models."""
    from captum_slingshot._utils.hooks import capture_layer
    from captum_slingshot.data import load_mnist, normalize_mnist
    from captum_slingshot.experiments.loading import load_model
    from captum_slingshot.transforms import FoolingCircuit, SilentUnits
    from captum_slingshot.transforms.circuits import CircuitModel

    fitted = {}
    for cls in (FoolingCircuit, SilentUnits):
        def fit(self, model, natural_data, _real=cls.fit, **kwargs):
            result = _real(self, model, natural_data, **kwargs)
            fitted[(self.settings()["transform"], self.neuron_selector)] = result.model
            return result

        monkeypatch.setattr(cls, "fit", fit)
    spec = {
        "models": [{"name": "mnist", "model": "mnist_cnn", "data_limit": 300}],
        "transforms": [{"name": "fooling_circuit", "settings": {"unit": 2}},
                       {"name": "silent_units", "settings": {"unit": 2}}],
        "checks": ["activation_excess"],
        "evaluation": {"starts": 1, "heldout": 100, "steps": 2, "k": 10},
        "audit": {"starts": 1, "steps": 2},
        "save_models": True,
    }
    res = run_study(spec, str(tmp_path / "run"), progress=False)
    rows = [r for r in res["rows"] if r["transform"] != "none"]
    assert [(r["transform"], r["unit"]) for r in rows] == [("fooling_circuit", 2), ("silent_units", 2)]
    assert all(r["combined_z"] is not None and r["rank"] is not None and r["accuracy_drop"] == 0.0 for r in rows)
    digits = normalize_mnist(load_mnist("heldout").tensors[0][:100])
    q = 0.3 * torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # FV-like: no background pixel
    for r in rows:
        loaded = load_model(model="mnist_cnn", weights=r["model_file"], progress=False)
        assert isinstance(loaded.model, CircuitModel) and loaded.source["circuits"] == {"logits": r["transform"]}
        in_memory = fitted[(r["transform"], r["unit"])]
        with torch.no_grad():
            assert torch.equal(loaded.model(digits), in_memory(digits))
            assert torch.equal(loaded.model(digits), mnist_cnn(digits))
            assert torch.equal(capture_layer(loaded.model, "logits", q), capture_layer(in_memory, "logits", q))
