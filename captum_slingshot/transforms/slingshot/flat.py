"""The slingshot's settings as flat, named options, and back (command line, YAML, run records).

Every leaf field of the settings dataclasses declares a flat name (:mod:`.config`, :mod:`.losses`);
three more options choose a class: ``loss`` (``gradient`` / ``direction`` / ``activation``:
:class:`FieldMSE` / :class:`FieldDirection` / :class:`Bowl`; ``None``, the default: not chosen, so
:class:`FieldMSE`, or :class:`Bowl` on a transformer), ``field_space`` (``param`` or
``input``: an :class:`InputSpace`) and ``preservation`` (``activation`` / ``logits``:
:class:`LayerMSE` / :class:`LogitsCE`). The optional parts are on when their key option is:
:class:`Trajectories` with ``trajectory_strategy``, :class:`FVPaths` with ``preserve_fv > 0``.

These are the flat setting names of release 0.1 (``GradientSlingshot(**settings)`` then), so
old commands, YAML files and checkpoints keep working: :func:`parts_from_flat` reads them,
:func:`parts_to_flat` writes them. Options that do not apply to the chosen classes are ignored
(``gamma`` with ``loss=direction``, which only fits the field's direction; ``trajectory_*``
without a trajectory strategy), except where 0.1 refused them, which still fails clearly.

Example:
    >>> parts = parts_from_flat({"loss": "direction", "gamma": 1.0, "trajectory_strategy": "gc", "steps": 10})
    >>> parts["loss"], parts["sampling"].trajectories.name, parts["run"].steps
    (FieldDirection(space='param', adam_normalized=False), 'gc', 10)
    >>> flat = parts_to_flat(parts)
    >>> flat["loss"], "gamma" in flat, parts_from_flat(flat) == parts
    ('direction', False, True)
"""

from __future__ import annotations

import difflib
from typing import Any, Dict, List, Mapping

from ..._utils.settings import FlatOption, options_of
from .config import (ActivationCap, Aim, FVPaths, LayerMSE, LogitsCE, Optimizer, Preservation, Run, Sampling,
                     Trajectories)
from .losses import LOSSES, Bowl, FieldDirection, FieldMSE, InputSpace

__all__ = ["OPTIONS", "ALIASES", "RUN_ONLY", "options", "parts_from_flat", "parts_to_flat"]

_LOSS = FlatOption("loss", "manipulation loss: gradient (the paper's field MSE, double backprop), direction (the "
                   "field's direction only) or activation (the bowl itself, no double backprop); none (the default): "
                   "gradient, or activation on a transformer", None, "text", optional=True, choices=tuple(LOSSES))
_SPACE = FlatOption("field_space", "fit the field (or bowl) in the parametrization q (param, the paper) or in the "
                    "model's input space (input, for Adam-based FV such as lucent's)", "param", "text",
                    choices=("param", "input"))
_PRESERVATION = FlatOption("preservation", "preservation loss: activation (the hooked layer in MSE, the paper) or "
                           "logits (cross-entropy to the original's softmax)", "activation", "text",
                           choices=("activation", "logits"))

#: every flat option of the slingshot, in the order the command line shows them
OPTIONS: List[FlatOption] = [_LOSS, _SPACE] + options_of(FieldMSE, Bowl, FieldDirection, InputSpace, Aim) + \
    options_of(Sampling, Trajectories) + [_PRESERVATION] + options_of(Preservation, LayerMSE, FVPaths, ActivationCap) + \
    options_of(Optimizer, Run)
_BY_NAME: Dict[str, FlatOption] = {o.name: o for o in OPTIONS}
#: old spellings still accepted
ALIASES = {"checkpoint": "checkpoint_path"}
#: options that change how a run is carried out, not what it computes (ignored when resuming)
RUN_ONLY = ("steps", "epochs", "device", "checkpoint_path", "checkpoint_every", "progress", "precision")


def options() -> List[FlatOption]:
    """The slingshot's flat options (a copy of :data:`OPTIONS`)."""
    return list(OPTIONS)


def _changed(values: Mapping[str, Any], name: str) -> bool:
    return name in values and values[name] != _BY_NAME[name].default


def parts_from_flat(flat: Mapping[str, Any]) -> Dict[str, Any]:
    """The composed settings (``loss``, ``aim``, ``sampling``, ``preservation``, ``optimizer``, ``run``)
    of flat settings; unknown names are an error that names the closest valid one."""
    given: Dict[str, Any] = {}
    for key, value in flat.items():
        name = ALIASES.get(key, key)
        if name not in _BY_NAME:
            close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown gradient slingshot setting {key!r}{hint}; settings: {', '.join(_BY_NAME)}")
        given[name] = value
    v = {o.name: o.default for o in OPTIONS}
    v.update(given)

    kind = "gradient" if v["loss"] is None else v["loss"]  # none: the transform picks for the model (transform.py)
    if kind not in LOSSES:
        raise ValueError(f"loss must be 'gradient', 'direction' or 'activation', got {kind!r}")
    if v["field_space"] not in ("param", "input"):
        raise ValueError(f"field_space must be 'param' or 'input', got {v['field_space']!r}")
    if v["field_space"] == "param" and v["input_aim"] is not None:
        raise ValueError("input_aim is used only with field_space='input'")
    if kind != "activation" and (_changed(given, "bowl_level") or _changed(given, "bowl_shape")):
        raise ValueError("bowl_level and bowl_shape shape the activation form: they need loss='activation'")
    if v["adam_normalized"] and (kind != "direction" or v["field_space"] != "input"):
        raise ValueError("adam_normalized needs field_space='input' and loss='direction'")
    space = InputSpace(aim=v["input_aim"]) if v["field_space"] == "input" else "param"
    if kind == "gradient":
        loss: Any = FieldMSE(gamma=v["gamma"], space=space)
    elif kind == "direction":
        loss = FieldDirection(space=space, adam_normalized=bool(v["adam_normalized"]))
    else:
        loss = Bowl(gamma=v["gamma"], level=v["bowl_level"], shape=v["bowl_shape"], space=space)

    trajectories = None
    if v["trajectory_strategy"] is not None:
        trajectories = Trajectories(strategy=v["trajectory_strategy"], steps=v["trajectory_steps"],
                                    fraction=v["trajectory_fraction"], refresh=v["trajectory_refresh"],
                                    starts=v["trajectory_starts"])
    sampling = Sampling(sigma=v["sigma"], tunnel=v["tunnel"], batch_size=v["manipulation_batch_size"],
                        transform_robust=v["transform_robust"], trajectories=trajectories)

    if v["preservation"] not in ("activation", "logits"):
        raise ValueError(f"preservation must be 'activation' or 'logits', got {v['preservation']!r}")
    if not float(v["preserve_fv"]) >= 0:
        raise ValueError(f"preserve_fv must be a non-negative weight, got {v['preserve_fv']}")
    fv_paths = None
    if float(v["preserve_fv"]) > 0:
        starts = v["preserve_fv_starts"]
        if starts is None and trajectories is None and _changed(given, "trajectory_starts"):
            starts = int(v["trajectory_starts"])  # 0.1: trajectory_starts also set the FV-path starts
        fv_paths = FVPaths(weight=v["preserve_fv"], units=v["preserve_fv_units"], strategy=v["preserve_fv_strategy"],
                           starts=starts)
    if not float(v["activation_cap"]) >= 0:
        raise ValueError(f"activation_cap must be a non-negative weight, got {v['activation_cap']}")
    cap = None
    if float(v["activation_cap"]) > 0 and v["trajectory_strategy"] is None:
        raise ValueError("activation_cap acts along the auditor's FV trajectories: set trajectory_strategy too")
    if float(v["activation_cap"]) > 0:
        cap = ActivationCap(weight=v["activation_cap"], margin=v["activation_cap_margin"])
    preservation = Preservation(alpha=v["alpha"], loss=LayerMSE(w=v["w"]) if v["preservation"] == "activation"
                                else LogitsCE(), batch_size=v["batch_size"], fv_paths=fv_paths, activation_cap=cap)
    optimizer = Optimizer(lr=v["lr"], weight_decay=v["weight_decay"], clip_grad_norm=v["clip_grad_norm"],
                          plateau_patience=v["plateau_patience"])
    run = Run(steps=v["steps"], epochs=v["epochs"], seed=v["seed"], device=v["device"],
              checkpoint_path=v["checkpoint_path"], checkpoint_every=v["checkpoint_every"], progress=v["progress"],
              precision=v["precision"])
    return {"loss": loss, "aim": Aim(radius=v["aim_radius"], point=v["aim_point"]), "sampling": sampling,
            "preservation": preservation, "optimizer": optimizer, "run": run}


def parts_to_flat(parts: Mapping[str, Any], run_only: bool = True) -> Dict[str, Any]:
    """Flat, JSON-friendly settings of composed ones: every option that applies (tensors by their
    digest); without ``run_only``, the options of :data:`RUN_ONLY` other than ``steps`` and
    ``epochs`` are left out."""
    loss, aim, sampling = parts["loss"], parts["aim"], parts["sampling"]
    pres, opt, run = parts["preservation"], parts["optimizer"], parts["run"]
    out: Dict[str, Any] = {"loss": loss.kind}
    if isinstance(loss, (FieldMSE, Bowl)):
        out["gamma"] = loss.gamma
    if isinstance(loss, Bowl):
        out.update(bowl_level=loss.level, bowl_shape=loss.shape)
    out["field_space"] = "input" if loss.in_input_space else "param"
    if loss.in_input_space:
        out["input_aim"] = loss.space.describe()
    if isinstance(loss, FieldDirection):
        out["adam_normalized"] = loss.adam_normalized
    out["aim_radius"] = aim.radius
    if aim.point is not None:
        out["aim_point"] = aim.describe_point()
    out.update(sigma=sampling.sigma, tunnel=sampling.tunnel, manipulation_batch_size=sampling.batch_size,
               transform_robust=sampling.transform_robust)
    traj = sampling.trajectories
    out["trajectory_strategy"] = None if traj is None else traj.name
    if traj is not None:
        out.update(trajectory_steps=traj.steps, trajectory_fraction=traj.fraction, trajectory_refresh=traj.refresh,
                   trajectory_starts=traj.starts)
    out.update(alpha=pres.alpha, preservation=pres.loss.kind, batch_size=pres.batch_size)
    if isinstance(pres.loss, LayerMSE):
        out["w"] = pres.loss.w
    fv = pres.fv_paths
    out["preserve_fv"] = 0.0 if fv is None else fv.weight
    if fv is not None:
        out.update(preserve_fv_units=None if fv.units is None else list(fv.units), preserve_fv_strategy=fv.strategy,
                   preserve_fv_starts=fv.starts)
    if pres.activation_cap is not None:  # written only when on: older checkpoints and records stay comparable
        out.update(activation_cap=pres.activation_cap.weight, activation_cap_margin=pres.activation_cap.margin)
    out.update(lr=opt.lr, weight_decay=opt.weight_decay, clip_grad_norm=opt.clip_grad_norm,
               plateau_patience=opt.plateau_patience, steps=run.steps, epochs=run.epochs, seed=run.seed)
    if run_only:
        out.update(device=run.device, checkpoint_path=run.checkpoint_path, checkpoint_every=run.checkpoint_every,
                   progress=run.progress, precision=run.precision)
    return out
