"""Comparison studies: a grid of transforms × settings × checks over models, one row per cell.

A study file (YAML) names models, transforms with fixed ``settings`` and a ``grid`` of settings
to sweep (every combination), the audit ``checks`` and how to evaluate. For every model ×
transform × grid point (a *cell*) :func:`run_study` manipulates the model (the code path of
``captum-slingshot manipulate``) and measures

* **target similarity**: SSIM / MSE (optionally LPIPS) between the target and the unit's FV under
  the auditor's strategy (``evaluation.strategy``, ``evaluation.starts`` random starts);
* **preservation**: held-out accuracy and its drop, AUROC of the unit for its class (where the
  held-out data have labels and the unit is a class index) and the Jaccard overlap of the
  unit's top-k natural activating inputs before / after;
* **detection**: the audit of the unit's layer (``audit_layer`` with ``checks``): the unit's
  per-check robust z, combined z, rank in the layer (1 = most suspicious), flagged or not, and
  how many other units were flagged.

Cells of ``attribution_fooling`` also get attribution fooling's view (METHOD.md §5, by
:func:`~captum_slingshot.evaluation.evaluate_fooling` on the held-out inputs): ``fsr``, the Fooling
Success Rate of the interpreter trained against (the mean over several joined by ``+``);
``fsr_transfer``, the mean FSR of :data:`FOOLING_TRANSFER`'s interpreters not trained against;
``fsr_empty``, the share of the trained interpreter's maps without positive relevance. Their
accuracy drop is the ``accuracy_drop`` column every row has (a fraction, like the others). Active
fooling is measured on two-class composites of the held-out inputs (their labels, or the original
model's predictions when they have none). Other rows leave these columns empty, and studies
without attribution fooling do not have them.

Each model also gets unmanipulated baseline rows (transform ``none``): the original model,
evaluated and audited the same way, once per unit/target pair its cells manipulate. After
every cell ``study.csv`` and ``study.json`` are rewritten atomically, so a crash keeps the
finished rows; ``resume=True`` skips the cells whose row is already in ``study.csv`` (same cell
id: a hash of the model, the transform's settings, the evaluation and the audit). At the end
``study.png`` plots target similarity, accuracy and combined z against every swept setting.
With ``save_models: true`` every cell's model is kept as ``models/<cell id>.pt`` (column
``model_file``); those of ``fooling_circuit`` and ``silent_units`` (wrapped models) reload like any
weights file, with :func:`~.loading.load_model` or ``captum-slingshot audit --weights``, which rebuild
the circuits from the file's keys around the model entry's model.

Study file::

    models:                       # keys of `manipulate`: model, torchvision, weights, num_classes,
      - name: mnist               #   layer, data, data_limit, param, shape, mean, std, device;
        model: mnist_cnn          #   plus name and heldout (mnist or a .pt file of (inputs, labels);
                                  #   default mnist for MNIST, else the first natural inputs, unlabelled)
    transforms:
      - name: gradient_slingshot
        settings: {steps: 1000, trajectory_strategy: gc, aim_radius: 19.5, loss: direction, gamma: 1.0}
        grid: {alpha: [0.5, 0.8], unit: [0, 3]}   # every combination
    checks: [activation_excess, strategy_divergence]   # default: audit_layer's DEFAULT_CHECKS
    evaluation: {starts: 20, heldout: 2000, strategy: gc}
    audit: {threshold: 3.5}
    save_models: false            # true: keep each cell's model as models/<cell id>.pt

Example:
    >>> from captum_slingshot.experiments.study import study_cells, validate_study_spec
    >>> spec = validate_study_spec({
    ...     "models": [{"name": "mnist", "model": "mnist_cnn"}],
    ...     "transforms": [{"name": "gradient_slingshot", "settings": {"steps": 20},
    ...                     "grid": {"alpha": [0.5, 0.8], "unit": [0, 3]}}]})
    >>> for cell in study_cells(spec):
    ...     print(cell.label)
    mnist / none / unit=0
    mnist / none / unit=3
    mnist / gradient_slingshot / alpha=0.5 unit=0
    mnist / gradient_slingshot / alpha=0.5 unit=3
    mnist / gradient_slingshot / alpha=0.8 unit=0
    mnist / gradient_slingshot / alpha=0.8 unit=3
    >>> validate_study_spec({"models": [{}], "transforms": [{"name": "gradient_slingshot",
    ...                      "grid": {"alpah": [0.5]}}]})
    Traceback (most recent call last):
    ...
    captum_slingshot.experiments.errors.StudyError: unknown key 'alpah' in transforms[0].grid (did you mean 'alpha'?); valid keys: ...
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .._utils.settings import FlatOption
from ..paths import atomic_path, save_state_dict, write_text
from .errors import SettingsError, StudyError
from .loading import LoadedModel, check_file, load_data, resolve_preprocess, torch_load
from .options import (
    DATA_OPTIONS, MODEL_OPTIONS, PARAM_OPTIONS, coerce_settings, manipulate_options, merge_settings, read_yaml_mapping,
    transform_aliases, transform_options,
)

__all__ = ["load_study_spec", "validate_study_spec", "study_cells", "study_columns", "swept_keys", "run_study",
           "format_rows", "StudyCell", "study_transform_options", "FOOLING_TRANSFER"]

_TOP_KEYS = ("models", "transforms", "checks", "evaluation", "audit", "save_models")
_TRANSFORM_KEYS = ("name", "label", "settings", "grid")
#: options of a study's model entries (besides ``name`` and ``heldout``)
_MODEL_SETTING_OPTIONS = MODEL_OPTIONS + DATA_OPTIONS + PARAM_OPTIONS + [
    FlatOption("device", "torch device of the model and the manipulation, e.g. cuda (default: cpu)", None, "text",
               optional=True)]
_MODEL_SETTING_KEYS = tuple(o.name for o in _MODEL_SETTING_OPTIONS)
#: options a study sets itself for every cell, or that do not change a cell's result (left out of its id)
_RUN_KEYS = ("out", "resume", "progress", "checkpoint_path", "checkpoint_every")
#: the interpreters whose mean FSR is an attribution-fooled model's transfer (those not trained against)
FOOLING_TRANSFER = ("grad_cam", "lrp_epsilon", "saliency", "input_x_gradient")
#: the columns of attribution fooling's cells (only in studies that run it)
_FOOLING_COLUMNS = ["fsr", "fsr_transfer", "fsr_empty"]

_MODEL_OPTIONS = [
    FlatOption("name", "name of the model in the study's rows", None, "text", optional=True),
    FlatOption("heldout", "labelled held-out data: mnist, an image folder (read with the model's preprocessing) or "
               "a .pt file of (inputs, labels)", None, "text",
               optional=True),
] + _MODEL_SETTING_OPTIONS


def study_transform_options(name: str) -> List[FlatOption]:
    """The settings a study's transform entry takes (fixed under ``settings`` or swept under ``grid``):
    every option of the transform (its unit and target when it takes them), as on the command line,
    except the model's (they belong to the model entries)."""
    return [o for o in transform_options(name) if o.name not in _MODEL_SETTING_KEYS]


_EVALUATION_OPTIONS = [
    FlatOption("strategy", "the auditor's AM strategy for the target similarity", "gc", "text"),
    FlatOption("starts", "FV random starts", 20, "int"),
    FlatOption("steps", "FV steps (default: the strategy's own)", None, "int", optional=True),
    FlatOption("heldout", "held-out inputs for preservation and the audit", 2000, "int"),
    FlatOption("k", "top-k natural activating inputs compared by Jaccard", 100, "int"),
    FlatOption("lpips", "also LPIPS to the target", False, "bool"),
    FlatOption("max_batch", "at most this many examples per batch", 1000, "int"),
    FlatOption("seed", "seed of the FV starts", 1000, "int"),
]


def _combine_rules() -> tuple:
    from ..checks import COMBINE_RULES

    return tuple(COMBINE_RULES)


_AUDIT_OPTIONS = [
    FlatOption("threshold", "flag units whose combined z exceeds this", 3.5, "float"),
    FlatOption("combine", "pool the per-check z (stouffer = sum/sqrt(K), mean, max)", "stouffer", "text",
               choices=_combine_rules()),
    FlatOption("starts", "FV starts per unit in the checks", None, "int", optional=True),
    FlatOption("steps", "FV steps in the checks", None, "int", optional=True),
    FlatOption("k", "top-k natural images for natural_gap", None, "int", optional=True),
    FlatOption("samples", "gradient samples per radius for slingshot_field", None, "int", optional=True),
    FlatOption("lpips", "natural_gap with LPIPS", False, "bool"),
    FlatOption("max_batch", "at most this many examples per batch", None, "int", optional=True),
    FlatOption("seed", "seed of the checks", 0, "int"),
]


# -- the study file -------------------------------------------------------------------------------
def _json_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _mapping(value: Any, where: str) -> Dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StudyError(f"{where} must be a mapping (key: value), got {type(value).__name__} {value!r}")
    return value


def _entries(value: Any, where: str) -> List[Any]:
    if not isinstance(value, list) or not value:
        raise StudyError(f"{where} must be a non-empty list")
    return value


def _check_keys(doc: Dict[Any, Any], allowed: Sequence[str], where: str) -> None:
    """An unknown key of ``doc`` is an error naming it, the closest allowed key and all of them."""
    coerce_settings({k: None for k in doc if str(k).replace("-", "_") not in allowed},
                    [FlatOption(k, "") for k in allowed], where)


def _unique(names: List[str]) -> List[str]:
    out: List[str] = []
    for name in names:
        n, i = name, 2
        while n in out:
            n, i = f"{name}-{i}", i + 1
        out.append(n)
    return out


def _validate_model(entry: Any, where: str) -> Dict[str, Any]:
    s = coerce_settings(_mapping(entry, where), _MODEL_OPTIONS, where)
    if s.get("model") is not None and s.get("torchvision") is not None:
        raise StudyError(f"{where}: give model or torchvision, not both")
    return s


def _validate_transform(entry: Any, where: str) -> Dict[str, Any]:
    from ..transforms import available_transforms

    entry = {str(k).replace("-", "_"): v for k, v in _mapping(entry, where).items()}
    _check_keys(entry, _TRANSFORM_KEYS, where)
    name = entry.get("name")
    known = available_transforms()
    if not isinstance(name, str) or not name:
        raise StudyError(f"{where} needs a name: one of {', '.join(known)}")
    if name not in known:
        raise StudyError(f"{where}: unknown transform {name!r}; registered transforms: {', '.join(known)}")
    options = study_transform_options(name)
    aliases = transform_aliases(name)
    settings = coerce_settings(_mapping(entry.get("settings"), f"{where}.settings"), options, f"{where}.settings",
                               aliases)
    raw_grid = {aliases.get(str(k).replace("-", "_"), k): v
                for k, v in _mapping(entry.get("grid"), f"{where}.grid").items()}
    _check_keys(raw_grid, [o.name for o in options], f"{where}.grid")
    grid: Dict[str, List[Any]] = {}
    for raw_key, values in raw_grid.items():
        key = str(raw_key).replace("-", "_")
        if not isinstance(values, list):
            raise StudyError(f"{where}.grid.{key} must be a list of values (a fixed value goes under settings), "
                           f"got {values!r}")
        if not values:
            raise StudyError(f"{where}.grid.{key} is an empty list: give at least one value")
        if key in settings:
            raise StudyError(f"{where}: {key!r} is both in settings and in grid; keep one")
        grid[key] = [coerce_settings({key: v}, options, f"{where}.grid")[key] for v in values]
    label = entry.get("label")
    return {"name": name, "label": None if label is None else str(label), "settings": settings, "grid": grid}


def _validate_checks(value: Any) -> List[str]:
    from ..checks import DEFAULT_CHECKS
    from .auditing import check_names

    if value is None:
        return list(DEFAULT_CHECKS)
    if not isinstance(value, (list, str)):
        raise StudyError(f"checks must be a list of check names, got {value!r}")
    checks = check_names(value, "checks")
    if len(set(checks)) != len(checks):
        raise StudyError(f"checks must not repeat, got {checks}")
    return checks


def _with_defaults(doc: Any, options: Sequence[FlatOption], where: str) -> Dict[str, Any]:
    out = {o.name: o.default for o in options}
    out.update(coerce_settings(_mapping(doc, where), options, where))
    return out


def validate_study_spec(doc: Any, where: str = "") -> Dict[str, Any]:
    """Check a study (the mapping of a study file) and return it normalized.

    Unknown keys at any level, an empty ``grid`` list, an unknown transform or check name and
    values of the wrong type, and transform settings that do not go together in some cell, are
    :class:`~captum_slingshot.experiments.errors.StudyError` that say where (``where``: e.g. the
    file's name) and list the valid keys. Models are not loaded here (:func:`run_study` loads every
    model before the first cell). Validating a normalized study returns it unchanged.
    """
    prefix = f"{where}: " if where else ""
    try:
        doc = {str(k).replace("-", "_"): v for k, v in _mapping(doc, "the study").items()}
        _check_keys(doc, _TOP_KEYS, "the study")
        models = [_validate_model(m, f"models[{i}]") for i, m in enumerate(_entries(doc.get("models"), "models"))]
        for m, name in zip(models, _unique([m.get("name") or m.get("model") or m.get("torchvision") or "mnist_cnn"
                                            for m in models])):
            m["name"] = name
        transforms = [_validate_transform(t, f"transforms[{i}]")
                      for i, t in enumerate(_entries(doc.get("transforms"), "transforms"))]
        for t, label in zip(transforms, _unique([t["label"] or t["name"] for t in transforms])):
            t["label"] = label
        if any(t["label"] == "none" for t in transforms):
            raise StudyError("transform label 'none' is reserved for the unmanipulated baseline rows")
        spec = {
            "models": models,
            "transforms": transforms,
            "checks": _validate_checks(doc.get("checks")),
            "evaluation": _with_defaults(doc.get("evaluation"), _EVALUATION_OPTIONS, "evaluation"),
            "audit": _with_defaults(doc.get("audit"), _AUDIT_OPTIONS, "audit"),
            "save_models": False if doc.get("save_models") is None else _flag(doc["save_models"], "save_models"),
        }
    except SettingsError as err:
        raise StudyError(prefix + str(err)) from None
    _check_strategies(spec, prefix)
    for key in ("starts", "heldout", "k", "max_batch"):
        if spec["evaluation"][key] < 1:
            raise StudyError(f"{prefix}evaluation, key {key!r}: must be at least 1, got {spec['evaluation'][key]}")
    _check_cells(spec, prefix)
    return spec


def _check_cells(spec: Dict[str, Any], prefix: str) -> None:
    """Every cell's transform settings go together (checked before anything runs, not in the middle of a study)."""
    from ..transforms import TRANSFORMS

    for t_i, t in enumerate(spec["transforms"]):
        keys = list(t["grid"])
        names = {o.name for o in TRANSFORMS.get(t["name"]).options()}
        for values in itertools.product(*(t["grid"][k] for k in keys)):
            point = dict(zip(keys, values))
            s = merge_settings(manipulate_options(t["name"]), {**t["settings"], **point}, {})
            if s.get("checkpoint_path") and "{cell}" not in str(s["checkpoint_path"]):
                raise StudyError(f"{prefix}transforms[{t_i}]: checkpoint_path {s['checkpoint_path']!r} in a study must "
                                 "contain {cell} (replaced by each cell's id), so that cells do not overwrite each "
                                 "other's checkpoints")
            try:
                TRANSFORMS.get(t["name"]).check_settings(**{k: v for k, v in s.items() if k in names})
            except (ValueError, TypeError) as err:
                shown = " ".join(f"{k}={v}" for k, v in point.items())
                raise StudyError(f"{prefix}transforms[{t_i}]{' (' + shown + ')' if shown else ''}: {err}") from None


def _check_strategies(spec: Dict[str, Any], prefix: str) -> None:
    """AM strategy names fail here, not after the first manipulation."""
    from ..fv import get_strategy

    named = [("evaluation, key 'strategy'", spec["evaluation"]["strategy"])]
    for i, t in enumerate(spec["transforms"]):
        values = t["grid"].get("trajectory_strategy", [t["settings"].get("trajectory_strategy")])
        named += [(f"transforms[{i}], trajectory_strategy", v) for v in values if v is not None]
    for where, name in named:
        try:
            get_strategy(name)
        except ValueError as err:
            raise StudyError(f"{prefix}{where}: {err}") from None


def _flag(value: Any, key: str) -> bool:
    try:
        return FlatOption(key, "", False, "bool").convert(value)
    except ValueError as err:
        raise StudyError(f"{key}: {err}") from None


def load_study_spec(path: str) -> Dict[str, Any]:
    """Read and validate a study file (YAML); see :func:`validate_study_spec`."""
    path = os.path.expanduser(str(path))
    try:
        doc = read_yaml_mapping(path)
    except SettingsError as err:
        raise StudyError(str(err)) from None
    return validate_study_spec(doc, f"study file {path!r}")


# -- cells ------------------------------------------------------------------------------------------
@dataclass
class StudyCell:
    """One row of a study: a model, a transform (``"none"``: the baseline) and its settings.

    ``settings`` are the merged ``manipulate`` settings (defaults, model entry, transform
    settings, grid point); ``swept`` the grid point; ``key`` a hash of everything that decides
    the row (the cell id, for ``resume``).
    """

    model_index: int
    model: str
    transform: str
    transform_name: str
    settings: Dict[str, Any]
    swept: Dict[str, Any] = field(default_factory=dict)
    key: str = ""

    @property
    def unit(self) -> Any:
        return self.settings.get("unit", 0)

    @property
    def target(self) -> str:
        return self.settings.get("target") or "cross"

    @property
    def is_baseline(self) -> bool:
        return self.transform == "none"

    @property
    def label(self) -> str:
        shown = dict(self.swept)
        if self.is_baseline:
            shown = {"unit": self.unit} if self.target == "cross" else {"unit": self.unit, "target": self.target}
        text = " ".join(f"{k}={_show(v)}" for k, v in shown.items())
        return f"{self.model} / {self.transform}" + (f" / {text}" if text else "")


def _show(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)


def _cell_key(spec: Dict[str, Any], model: Dict[str, Any], transform: str, settings: Dict[str, Any]) -> str:
    keep = {k: _json_value(v) for k, v in settings.items() if k not in _RUN_KEYS}
    doc = {"model": {k: _json_value(v) for k, v in model.items()}, "transform": transform, "settings": keep,
           "checks": spec["checks"], "evaluation": spec["evaluation"], "audit": spec["audit"]}
    return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _merged(model: Dict[str, Any], transform: str, *parts: Dict[str, Any]) -> Dict[str, Any]:
    given: Dict[str, Any] = {k: v for k, v in model.items() if k not in ("name", "heldout")}
    for part in parts:
        given.update(part)
    s = merge_settings(manipulate_options(transform), {"progress": False, **given}, {})
    s.update(resume=None)
    return s


def study_cells(spec: Dict[str, Any]) -> List[StudyCell]:
    """The cells of a validated study, in run order: per model, its baselines (one per distinct
    unit/target pair of its cells), then every transform's grid points (``itertools.product``)."""
    cells: List[StudyCell] = []
    for i, model in enumerate(spec["models"]):
        manipulated = []
        for t in spec["transforms"]:
            keys = list(t["grid"])
            for values in itertools.product(*(t["grid"][k] for k in keys)):
                point = dict(zip(keys, values))
                s = _merged(model, t["name"], t["settings"], point)
                manipulated.append(StudyCell(i, model["name"], t["label"], t["name"], s, point,
                                             _cell_key(spec, model, t["name"], s)))
        pairs: List[Tuple[Any, str]] = []
        for c in manipulated:
            if (c.unit, c.target) not in pairs:
                pairs.append((c.unit, c.target))
        for unit, target in pairs:
            s = _merged(model, "gradient_slingshot", {"unit": unit, "target": target})
            cells.append(StudyCell(i, model["name"], "none", "none", s, {},
                                   _cell_key(spec, model, "none", {"unit": unit, "target": target})))
        cells.extend(manipulated)
    return cells


def swept_keys(spec: Dict[str, Any]) -> List[str]:
    """Every setting some transform of the study sweeps, in order of first appearance."""
    keys: List[str] = []
    for t in spec["transforms"]:
        keys += [k for k in t["grid"] if k not in keys]
    return keys


def study_columns(spec: Dict[str, Any]) -> List[str]:
    """The columns of ``study.csv`` for a validated study."""
    cols = ["cell", "model", "transform", "unit", "target"] + [k for k in swept_keys(spec) if k not in ("unit", "target")]
    cols += ["fv_ssim", "fv_ssim_std", "fv_mse", "fv_mse_std"]
    if spec["evaluation"]["lpips"]:
        cols += ["fv_lpips", "fv_lpips_std"]
    cols += ["fv_activation", "accuracy", "accuracy_original", "accuracy_drop", "auroc", "auroc_original",
             "auroc_drop", "jaccard_top_k"]
    if _fools(spec):
        cols += _FOOLING_COLUMNS
    cols += [f"z_{c}" for c in spec["checks"]]
    cols += ["combined_z", "rank", "n_units", "flagged", "n_other_flagged", "loss_first", "loss_last", "seconds"]
    if spec["save_models"]:
        cols.append("model_file")
    return cols + ["settings"]


def _fools(spec: Dict[str, Any]) -> bool:
    """Some transform of the study is attribution fooling (its rows get the FSR columns)."""
    return any(t["name"] == "attribution_fooling" for t in spec["transforms"])


# -- models and data --------------------------------------------------------------------------------
@dataclass
class _Prepared:
    """A study model, loaded once: the model, its layer, natural and held-out data, the param."""

    entry: Dict[str, Any]
    loaded: LoadedModel
    layer: str
    natural: Tensor
    param: Any
    heldout_x: Tensor
    heldout_y: Optional[Tensor]
    natural_labels: Optional[Tensor] = None
    baseline_audit: Any = None


def _load_heldout(spec: Optional[str], n: int, natural: Tensor, preprocess: Any = None) -> Tuple[Tensor, Optional[Tensor]]:
    """``mnist``: the paper's held-out split; an image folder: its images (``preprocess``ed, ``n``
    spread over the classes) and class labels; a file: ``(inputs, labels)`` or inputs; none: the
    first ``n`` natural inputs, unlabelled."""
    if spec is None:
        return natural[:n], None
    if spec == "mnist":
        from ..data import load_mnist, normalize_mnist

        held = load_mnist("heldout")
        return normalize_mnist(held.tensors[0][:n]), held.tensors[1][:n]
    if os.path.isdir(os.path.expanduser(spec)):
        try:
            (x, y), _ = load_data(spec, n, labels=True, preprocess=preprocess)
        except SettingsError as err:
            raise StudyError(f"held-out data: {err}") from None
        return x, y
    try:
        path = check_file(spec, "held-out data")
        obj = torch_load(path, "held-out data")
    except SettingsError as err:
        raise StudyError(str(err)) from None
    if isinstance(obj, Tensor):
        obj = (obj,)
    ok = isinstance(obj, (tuple, list)) and 1 <= len(obj) <= 2 and all(isinstance(t, Tensor) for t in obj)
    if not ok or not obj[0].is_floating_point() or obj[0].shape[0] == 0 or (len(obj) == 2 and len(obj[1]) != len(obj[0])):
        raise StudyError(f"held-out data file {path!r} must hold normalized inputs (N, C, H, W) or a tuple "
                       "(inputs, labels) of matching length, saved with torch.save")
    return obj[0].float()[:n], (obj[1][:n].long() if len(obj) == 2 else None)


def _prepare(entry: Dict[str, Any], evaluation: Dict[str, Any]) -> _Prepared:
    from .manipulation import load_for_manipulation

    s = _merged(entry, "gradient_slingshot")
    try:
        loaded, layer, natural, _, param = load_for_manipulation(s, labels=True)
    except SettingsError as err:
        raise StudyError(f"model {entry.get('name')!r}: {err}") from None
    heldout = entry.get("heldout")
    if heldout is None and (s.get("data") == "mnist" or loaded.kind == "mnist_cnn"):
        heldout = "mnist"
    natural, labels = natural if isinstance(natural, tuple) else (natural, None)
    preprocess = resolve_preprocess(loaded, s.get("data") or "mnist", s.get("resize"), s.get("crop"), s.get("mean"),
                                    s.get("std"))
    x, y = _load_heldout(heldout, int(evaluation["heldout"]), natural, preprocess)
    return _Prepared(entry, loaded, layer, natural, param, x, y, natural_labels=labels)


# -- one cell ---------------------------------------------------------------------------------------
def _evaluate(model, p: _Prepared, unit: Any, target: Tensor, ev: Dict[str, Any]) -> Dict[str, Any]:
    """Target similarity of the unit's FV and preservation (see the module docstring)."""
    from ..evaluation import evaluate_manipulation, fv_similarity
    from ..fv import render
    from ..metrics import accuracy, jaccard, unit_activations

    overrides = {} if ev["steps"] is None else {"steps": int(ev["steps"])}
    fv = render(model, p.layer, unit, p.param, ev["strategy"], n_starts=int(ev["starts"]), seed=int(ev["seed"]),
                **overrides)
    x, y, batch = p.heldout_x, p.heldout_y, int(ev["max_batch"])
    k = min(int(ev["k"]), len(x))
    if y is not None and isinstance(unit, int) and bool((y == unit).any()):
        return evaluate_manipulation(model, p.loaded.model, p.layer, unit, target, p.param, (x, y), k=k,
                                     lpips=bool(ev["lpips"]), max_examples_per_batch=batch, fv=fv)
    out: Dict[str, Any] = fv_similarity(fv.images, target.to(fv.images.device), lpips=bool(ev["lpips"]))
    out["activation"] = float(fv.activations.mean())
    if y is not None:
        out["accuracy"] = accuracy(model, (x, y), batch)
        out["accuracy_original"] = accuracy(p.loaded.model, (x, y), batch)
        out["accuracy_drop"] = out["accuracy_original"] - out["accuracy"]
    top = [torch.sort(unit_activations(m, p.layer, unit, x, batch), descending=True, stable=True).indices[:k]
           for m in (model, p.loaded.model)]
    out["jaccard_top_k"] = jaccard(top[0], top[1])
    return out


def _heldout_labels(p: _Prepared, batch: int) -> Tensor:
    """The held-out labels, or the original model's predictions when the held-out data have none."""
    if p.heldout_y is not None:
        return p.heldout_y
    model, x = p.loaded.model, p.heldout_x
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model(x[s:s + batch].to(device)).argmax(1).cpu() for s in range(0, len(x), batch)])


def _fooling_inputs(p: _Prepared, classes: Sequence[int], ev: Dict[str, Any]) -> Tensor:
    """Active fooling's held-out images that contain both ``classes``: as many two-class composites
    of the held-out inputs as there are held-out inputs (as the transform makes its fooling set)."""
    from ..data import two_class_composites

    x = p.heldout_x
    try:
        composites, _ = two_class_composites(x, _heldout_labels(p, int(ev["max_batch"])), tuple(classes), len(x),
                                             seed=int(ev["seed"]), background=float(x.min()))
    except ValueError as err:
        raise StudyError(f"model {p.entry.get('name')!r}: cannot make active fooling's held-out images of classes "
                         f"{tuple(classes)}: {err}") from None
    return composites


def _applies(interpreter: str, model, layer: Optional[str]) -> bool:
    """``interpreter`` can explain ``model`` (Grad-CAM needs a convolution or a given layer)."""
    from ..attributions.interpreters import INTERPRETERS, make_interpreter

    try:
        make_interpreter(interpreter, model, layer if INTERPRETERS.get(interpreter).layer_method else None)
    except (ValueError, TypeError, KeyError, AttributeError):
        return False
    return True


def _fooling(model, p: _Prepared, s: Dict[str, Any], ev: Dict[str, Any]) -> Dict[str, Any]:
    """The FSR columns of an attribution fooling cell (settings ``s``; see the module docstring)."""
    from ..evaluation import evaluate_fooling
    from ..transforms.fooling.trainer import read_mask

    trained = [n.strip() for n in str(s["interpreter"]).split("+") if n.strip()]
    layer = s.get("interpreter_layer")
    others = [n for n in FOOLING_TRANSFER if n not in trained and _applies(n, p.loaded.model, layer)]
    region = s.get("region") or "frame"
    if isinstance(region, str) and os.path.isfile(region):
        region = read_mask(region)
    batch = min(int(ev["max_batch"]), 128)  # maps keep a graph: evaluate_fooling's default batch at most
    active = s["mode"] == "active"
    r = evaluate_fooling(model, p.loaded.model, (p.heldout_x, _heldout_labels(p, batch)), s["mode"], trained + others,
                         layer=layer, region=region, classes=s.get("classes"),
                         fooling_inputs=_fooling_inputs(p, s["classes"], ev) if active else None,
                         top_fraction=float(s["top_fraction"]), max_examples_per_batch=batch)

    def mean(values: Dict[str, float], names: Sequence[str]) -> Optional[float]:
        return sum(values[n] for n in names) / len(names) if names else None

    return {"fsr": mean(r["fsr"], trained), "fsr_transfer": mean(r["fsr"], others),
            "fsr_empty": mean(r["empty"], trained)}


def _check_fooling_data(cells: Sequence[StudyCell], prepared: Sequence[_Prepared], ev: Dict[str, Any]) -> None:
    """Active fooling cells can be measured: their classes are in the held-out data (fails before any cell)."""
    seen = set()
    for c in cells:
        if c.transform_name == "attribution_fooling" and c.settings.get("mode") == "active":
            key = (c.model_index, tuple(c.settings["classes"]))
            if key not in seen:
                seen.add(key)
                _fooling_inputs(prepared[c.model_index], key[1], ev)


def _audit(model, p: _Prepared, spec: Dict[str, Any], check_kwargs: Dict[str, Any]):
    from ..checks import audit_layer

    a = spec["audit"]
    return audit_layer(model, p.layer, param=p.param, data=p.heldout_x, checks=spec["checks"],
                       threshold=float(a["threshold"]), combine=a["combine"], max_examples_per_batch=a["max_batch"],
                       seed=int(a["seed"]), progress=False, **check_kwargs)


def _check_kwargs(spec: Dict[str, Any], warn: Callable[[str], None]) -> Dict[str, Any]:
    """The checks' keyword arguments of the study's audit settings (as ``audit`` routes its flags);
    ``lpips: false`` (the default) goes only to checks that take it, without a note."""
    from ..checks import get_check
    from .auditing import audit_check_kwargs

    a = spec["audit"]
    takes_lpips = any("lpips" in get_check(c).parameters() for c in spec["checks"])
    given = {"starts": a["starts"], "steps": a["steps"], "k": a["k"], "samples": a["samples"],
             "no_lpips": not a["lpips"] and takes_lpips}
    return audit_check_kwargs(spec["checks"], given, warn)


def _detection(report, unit: Any, checks: Sequence[str]) -> Dict[str, Any]:
    """The unit's line of the audit: per-check z, combined z, rank, flags."""
    if unit not in report.units:  # e.g. one position (c, h, w) of a conv layer audited per channel
        return {}
    i = report.units.index(unit)
    z = report.combined
    flagged = bool(report.flagged_mask[i])
    out = {f"z_{c}": float(report.z[c][i]) for c in checks}
    out.update(combined_z=float(z[i]), rank=int((z > z[i]).sum()) + 1, n_units=len(report.units),
               flagged=flagged, n_other_flagged=len(report.flagged) - int(flagged))
    return out


def _row(cell: StudyCell, ev: Dict[str, Any], det: Dict[str, Any], columns: Sequence[str]) -> Dict[str, Any]:
    row: Dict[str, Any] = {"cell": cell.key, "model": cell.model, "transform": cell.transform,
                           "unit": _json_value(cell.unit), "target": cell.target}
    row.update({k: _json_value(v) for k, v in cell.swept.items()})
    row.update({f"fv_{k}": ev.get(k) for k in ("ssim", "ssim_std", "mse", "mse_std", "lpips", "lpips_std", "activation")})
    row.update({k: ev.get(k) for k in ("accuracy", "accuracy_original", "accuracy_drop", "auroc", "auroc_original",
                                       "auroc_drop", "jaccard_top_k")})
    row.update(det)
    shown = {k: _json_value(v) for k, v in cell.settings.items()
             if k not in _RUN_KEYS and k not in _MODEL_SETTING_KEYS}
    row["settings"] = json.dumps(shown if not cell.is_baseline else {"unit": row["unit"], "target": cell.target},
                                 sort_keys=True)
    return {c: row.get(c) for c in columns}


def _cell_checkpoint(cell: StudyCell, out: str, resume: bool) -> Tuple[Dict[str, Any], Optional[str]]:
    """The cell's settings with its own checkpoint file, and the checkpoint to resume from.

    A study's ``checkpoint_path`` must contain ``{cell}`` (replaced by the cell id; relative paths
    lie in the output folder), so that cells do not overwrite each other's checkpoints. With
    ``resume``, a cell whose checkpoint exists continues from it.
    """
    template = cell.settings.get("checkpoint_path")
    if not template:
        return cell.settings, None
    path = str(template).replace("{cell}", cell.key)
    path = path if os.path.isabs(path) else os.path.join(out, path)
    return {**cell.settings, "checkpoint_path": path}, (path if resume and os.path.isfile(path) else None)


def _run_cell(cell: StudyCell, p: _Prepared, spec: Dict[str, Any], check_kwargs: Dict[str, Any],
              columns: Sequence[str], out: str, status: Callable[[str], None],
              resume_cells: bool = False) -> Dict[str, Any]:
    from ..transforms import load_target
    from .loading import resolve_target
    from .manipulation import fit_manipulation, uses_labels

    t0 = time.perf_counter()
    history: Dict[str, List[float]] = {}
    model, model_file = p.loaded.model, None
    if not cell.is_baseline:
        status("manipulating")
        settings, resume = _cell_checkpoint(cell, out, resume_cells)
        natural = (p.natural, p.natural_labels) if p.natural_labels is not None and uses_labels(
            cell.transform_name) else p.natural
        result, _ = fit_manipulation(settings, p.loaded, p.layer, natural, p.param, resume=resume,
                                     transform=cell.transform_name)
        model, history = result.model.eval(), result.history
        if spec["save_models"]:
            model_file = save_state_dict(model, os.path.join(out, "models", f"{cell.key}.pt"))
    target = load_target(resolve_target(cell.target), p.param.shape)
    status("evaluating")
    ev = _evaluate(model, p, cell.unit, target, spec["evaluation"])
    status("auditing")
    if cell.is_baseline:
        if p.baseline_audit is None:
            p.baseline_audit = _audit(model, p, spec, check_kwargs)
        report = p.baseline_audit
    else:
        report = _audit(model, p, spec, check_kwargs)
    row = _row(cell, ev, _detection(report, cell.unit, spec["checks"]), columns)
    if cell.transform_name == "attribution_fooling":
        status("scoring the fooling")
        row.update(_fooling(model, p, cell.settings, spec["evaluation"]))
    losses = history.get("loss") or []
    row.update(loss_first=losses[0] if losses else None, loss_last=losses[-1] if losses else None,
               seconds=round(time.perf_counter() - t0, 2))
    if "model_file" in row:
        row["model_file"] = model_file
    return row


# -- files ------------------------------------------------------------------------------------------
def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v


def _write_tables(out: str, rows: List[Dict[str, Any]], columns: Sequence[str], doc: Dict[str, Any]) -> None:
    with atomic_path(os.path.join(out, "study.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(columns))
            w.writeheader()
            for row in rows:
                w.writerow({c: _csv_cell(row.get(c)) for c in columns})
    text = json.dumps(dict(doc, columns=list(columns), rows=rows), indent=2, default=str)
    with atomic_path(os.path.join(out, "study.json")) as tmp:
        with open(tmp, "w") as f:
            f.write(text + "\n")


#: columns read back as text on resume (a cell id such as ``1234e5678901`` is not a number)
_TEXT_COLUMNS = ("cell", "model", "transform", "target", "settings", "model_file")


def _read_done(out: str) -> Dict[str, Dict[str, Any]]:
    """Rows of an earlier run's ``study.csv`` by cell id, values parsed back (empty -> ``None``)."""
    path = os.path.join(out, "study.csv")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise StudyError(f"cannot resume from {path!r}: {err}") from None
    if rows and "cell" not in rows[0]:
        raise StudyError(f"cannot resume from {path!r}: it has no 'cell' column (not a study table?)")
    return {r["cell"]: {k: (v if k in _TEXT_COLUMNS and v else _csv_value(v)) for k, v in r.items()} for r in rows}


def _csv_value(v: Optional[str]) -> Any:
    """A CSV cell back to what was written: empty -> None, ``[...]`` -> a list, numbers, booleans."""
    from ..checks import parse_cell

    if v is None or v == "":
        return None
    if v.startswith("["):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return parse_cell(v)


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _number_or_nan(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _plot(rows: List[Dict[str, Any]], keys: Sequence[str], threshold: float, path: str) -> Optional[str]:
    """One row of panels per swept setting: target similarity, accuracy (or Jaccard) and combined z
    against the setting; one line per model, transform and other swept values; the unmanipulated
    baselines as dashed lines."""
    from ..figures import plt, save_png

    manipulated = [r for r in rows if r["transform"] != "none"]
    if not manipulated:
        return None
    has_acc = any(isinstance(r.get("accuracy"), (int, float)) for r in rows)
    metrics = [("fv_ssim", "FV SSIM to target"),
               ("accuracy", "held-out accuracy") if has_acc else ("jaccard_top_k", "Jaccard of top-k inputs"),
               ("combined_z", "audit combined z of the unit")]
    keys = list(keys) or ["transform"]
    fig, axes = plt.subplots(len(keys), 3, figsize=(12, 3.2 * len(keys)), squeeze=False)
    for r_i, key in enumerate(keys):
        # baselines have a unit and a target: against those they are a series of their own
        pool = manipulated + ([r for r in rows if r["transform"] == "none"] if key in ("unit", "target") else [])
        xs = [_json_key(r.get(key)) for r in pool]
        numeric = _numeric(xs) and key not in ("unit", "target")  # units are names, not quantities
        order = sorted(set(xs)) if numeric else list(dict.fromkeys(xs))
        pos = (lambda v: v) if numeric else order.index
        groups: Dict[Tuple[Any, ...], List[Dict[str, Any]]] = {}
        for r in pool:
            rest = tuple((k, _json_key(r.get(k))) for k in keys if k != key and r.get(k) is not None)
            groups.setdefault((r["model"], r["transform"]) + rest, []).append(r)
        for c_i, (metric, title) in enumerate(metrics):
            ax = axes[r_i][c_i]
            for group, members in groups.items():
                members = sorted(members, key=lambda r: order.index(_json_key(r.get(key))))
                label = " ".join(map(str, group[:2])) + "".join(f" {k}={v}" for k, v in group[2:])
                line, = ax.plot([pos(_json_key(r.get(key))) for r in members],
                                [_number_or_nan(r.get(metric)) for r in members],
                                "o--" if group[1] == "none" else "o-", label=label)
                base = None if group[1] == "none" else _baseline(rows, group[0], members)
                if base is not None and not math.isnan(_number_or_nan(base.get(metric))):
                    ax.axhline(_number_or_nan(base.get(metric)), color=line.get_color(), linestyle="--", linewidth=1)
            if metric == "combined_z":
                ax.axhline(threshold, color="tab:red", linestyle=":", linewidth=1)
            if not numeric:
                ax.set_xticks(range(len(order)))
                ax.set_xticklabels([str(v) for v in order], fontsize=7, rotation=20)
            ax.set_xlabel(key)
            ax.set_title(title, fontsize=9)
        axes[r_i][0].legend(fontsize=6)
    fig.suptitle("study (dashed: unmanipulated model; dotted: flag threshold)", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def _json_key(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _baseline(rows, model: str, members) -> Optional[Dict[str, Any]]:
    """The baseline row of ``model`` for the group's unit and target (when all members share them)."""
    units = {_json_key(m.get("unit")) for m in members}
    targets = {m.get("target") for m in members}
    if len(units) != 1 or len(targets) != 1:
        return None
    for r in rows:
        if r["transform"] == "none" and r["model"] == model and _json_key(r.get("unit")) in units \
                and r.get("target") in targets:
            return r
    return None


def _write_html(path: str, rows: List[Dict[str, Any]], spec: Dict[str, Any], figure: Optional[str]) -> str:
    """``study.html``: what the study ran, the grid of cells with their numbers (sortable) and the plot."""
    import base64
    import html as html_module

    from ..checks.html import html_page, sortable_table

    keys = [k for k in swept_keys(spec) if k not in ("unit", "target")]
    cols = (["model", "transform", "unit", "target"] + keys +
            ["fv_ssim", "fv_mse", "accuracy", "accuracy_drop", "auroc", "jaccard_top_k"] +
            (_FOOLING_COLUMNS if _fools(spec) else []) + ["combined_z", "rank", "flagged"])
    table_rows, flags = [], []
    for r in rows:
        cells: List[Any] = []
        for c in cols:
            v = r.get(c)
            if c == "flagged":
                cells.append(("<span class=\"flag\">&#9873; flagged</span>" if v else ("&ndash;" if v is False else "n/a"),
                              "" if v is None else int(bool(v))))
            elif c in ("unit",) or isinstance(v, (list, dict)):
                cells.append(_show(v) if v is not None else None)
            else:
                cells.append(v)
        table_rows.append(cells)
        flags.append(bool(r.get("flagged")) and r.get("transform") != "none")
    n_cells = len([r for r in rows if r.get("transform") != "none"])
    caught = sum(1 for r in rows if r.get("transform") != "none" and r.get("flagged"))
    esc = html_module.escape
    transforms = "; ".join(f"{t['label']}: {t['name']} with {json.dumps(t['settings'], default=str)}, grid "
                           f"{json.dumps(t['grid'], default=str)}" for t in spec["transforms"])
    settings = [("models", ", ".join(m["name"] for m in spec["models"])), ("transforms", transforms),
                ("checks", ", ".join(spec["checks"])), ("evaluation", json.dumps(spec["evaluation"], default=str)),
                ("audit", json.dumps(spec["audit"], default=str))]
    header = (f'<p class="verdict{" flagged" if caught else ""}">The audit flagged the manipulated unit in '
              f'<strong>{caught} of {n_cells}</strong> manipulated cells.</p><details><summary>What the study ran'
              f'</summary><dl class="settings">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in settings)
              + "</dl></details>")
    main = "<h2>Cells</h2>" + sortable_table("cells-table", cols, table_rows, flags)
    if figure and os.path.isfile(figure):
        with open(figure, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        main += (f'<h2>Against each swept setting</h2><figure><img class="plot" src="data:image/png;base64,{data}" '
                 f'alt="FV similarity to the target, accuracy and the audit\'s pooled z of the manipulated unit against '
                 f'each swept setting"><figcaption>dashed: the unmanipulated model; dotted: the flag threshold'
                 f'</figcaption></figure>')
    return write_text(path, html_page(f"Study: {n_cells} manipulated cells", header, main))


# -- the study --------------------------------------------------------------------------------------
def run_study(spec: Dict[str, Any], out: str, resume: bool = False, progress: bool = True,
              warn: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run every cell of a study (a study file's mapping, see the module docstring).

    Every model is loaded first (so a bad model fails before any work); then each cell is
    manipulated, evaluated and audited, and ``study.csv`` / ``study.json`` are rewritten after
    it. ``resume``: keep the rows of an earlier ``study.csv`` in ``out`` whose cell id matches a
    cell of this study and run only the others (rows of cells no longer in the study are
    dropped, with a note). Returns ``{"rows", "columns", "ran", "resumed", "files", "seconds"}``.
    """
    from tqdm.auto import tqdm

    from .records import versions

    t0 = time.perf_counter()
    spec = validate_study_spec(spec)
    cells = study_cells(spec)
    columns = study_columns(spec)
    check_kwargs = _check_kwargs(spec, warn)
    prepared = [_prepare(m, spec["evaluation"]) for m in spec["models"]]
    _check_fooling_data(cells, prepared, spec["evaluation"])
    os.makedirs(out, exist_ok=True)
    earlier = _read_done(out) if resume else {}
    done = {c.key: earlier[c.key] for c in cells if c.key in earlier}
    if len(earlier) > len(done):
        warn(f"note: {len(earlier) - len(done)} rows of the earlier study.csv match no cell of this study; dropped")
    doc = {"command": "study", "spec": spec, "versions": versions()}
    finished = dict(done)

    def ordered() -> List[Dict[str, Any]]:
        return [{c: finished[cell.key].get(c) for c in columns} for cell in cells if cell.key in finished]

    _write_tables(out, ordered(), columns, doc)
    bar = tqdm(cells, disable=not progress, desc="study", unit="cell")
    try:
        for cell in bar:
            if cell.key in done:
                bar.set_postfix_str(f"{cell.label}: done earlier")
                continue
            status = lambda phase, c=cell: bar.set_postfix_str(f"{c.label}: {phase}")
            finished[cell.key] = _run_cell(cell, prepared[cell.model_index], spec, check_kwargs, columns, out, status,
                                           resume_cells=resume)
            _write_tables(out, ordered(), columns, doc)
    finally:
        bar.close()
    rows = ordered()
    files = {"csv": os.path.join(out, "study.csv"), "json": os.path.join(out, "study.json")}
    figure = _plot(rows, swept_keys(spec), float(spec["audit"]["threshold"]), os.path.join(out, "study.png"))
    if figure:
        files["figure"] = figure
    files["html"] = _write_html(os.path.join(out, "study.html"), rows, spec, figure)
    return {"rows": rows, "columns": columns, "ran": len(cells) - len(done), "resumed": len(done),
            "files": files, "seconds": round(time.perf_counter() - t0, 1)}


def format_rows(rows: Sequence[Dict[str, Any]], keys: Sequence[str] = ()) -> str:
    """A short plain-text table of study rows: the cell, target similarity, accuracy, detection.

    Example:
        >>> print(format_rows([{"model": "m", "transform": "none", "unit": 0, "fv_ssim": 0.1, "fv_mse": 0.2,
        ...                     "accuracy": 0.98, "accuracy_drop": 0.0, "combined_z": 0.5, "rank": 4,
        ...                     "n_units": 10, "flagged": False}]))  # doctest: +NORMALIZE_WHITESPACE
        model  transform  unit  ssim   mse     acc %  drop  z    rank  flagged
        m      none       0     0.100  0.2000  98.00  0.00  0.5  4/10  no
    """
    def num(v: Any, fmt: str, scale: float = 1.0) -> str:
        return format(float(v) * scale, fmt) if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"

    header = ["model", "transform", "unit"] + [k for k in keys if k not in ("unit",)] + \
        ["ssim", "mse", "acc %", "drop", "z", "rank", "flagged"]
    body = []
    for r in rows:
        cells = [str(r.get("model")), str(r.get("transform")), _show(r.get("unit"))]
        cells += ["" if r.get(k) is None else _show(r.get(k)) for k in keys if k not in ("unit",)]
        rank = f"{r['rank']}/{r['n_units']}" if r.get("rank") is not None else "-"
        flagged = "-" if r.get("flagged") is None else ("yes" if r["flagged"] else "no")
        cells += [num(r.get("fv_ssim"), ".3f"), num(r.get("fv_mse"), ".4f"), num(r.get("accuracy"), ".2f", 100),
                  num(r.get("accuracy_drop"), ".2f", 100), num(r.get("combined_z"), ".1f"), rank, flagged]
        body.append(cells)
    widths = [max(len(row[j]) for row in [header] + body) for j in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + body)
