"""Every library option of the Gradient Slingshot is settable from the command line and from a study file.

The options are enumerated from the settings dataclasses themselves (every field of every part), so a
field added to a part without an option, or an option the command line or the study runner cannot
carry to the transform, fails here.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from captum_slingshot.cli import build_parser
from captum_slingshot.experiments.manipulation import build_transform
from captum_slingshot.experiments.options import manipulate_options, merge_settings
from captum_slingshot.experiments.study import study_cells, validate_study_spec
from captum_slingshot.fv import PixelParam
from captum_slingshot.transforms import GradientSlingshot
from captum_slingshot.transforms.slingshot import config, losses
from captum_slingshot.transforms.slingshot.flat import parts_to_flat

PARTS = (losses.FieldMSE, losses.FieldDirection, losses.Bowl, losses.InputSpace, config.Aim, config.Sampling,
         config.Trajectories, config.Preservation, config.LayerMSE, config.LogitsCE, config.FVPaths, config.ActivationCap,
         config.Optimizer, config.Run)
#: fields that hold another part: chosen by an option of their own (loss, field_space, preservation) or
#: switched on by one (trajectory_strategy, preserve_fv, activation_cap)
PART_FIELDS = {"space", "trajectories", "loss", "fv_paths", "activation_cap"}
PARAM = PixelParam((1, 28, 28))


def test_every_field_of_every_part_is_an_option():
    names = {o.name for o in GradientSlingshot.options()}
    for part in PARTS:
        for f in dataclasses.fields(part):
            if f.name in PART_FIELDS:
                continue
            assert "option" in f.metadata, f"{part.__name__}.{f.name} has no flat option"
            assert f.metadata["option"].name in names
    assert {"loss", "field_space", "preservation"} <= names


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("option_files")
    torch.save(torch.full((1, 28, 28), 0.25), d / "z.pt")
    torch.save(torch.full((1, 28, 28), 0.5), d / "q.pt")
    return d


def _cases(files):
    """option -> (a value other than the default, the options it needs alongside, what settings() shows)."""
    z, q = str(files / "z.pt"), str(files / "q.pt")
    from captum_slingshot.transforms.slingshot.losses import tensor_digest

    z_digest, q_digest = tensor_digest(torch.full((1, 28, 28), 0.25)), tensor_digest(torch.full((1, 28, 28), 0.5))
    traj = {"trajectory_strategy": "gc"}
    fv = {"preserve_fv": 2.0}
    return {
        "loss": ("activation", {}, "activation"), "field_space": ("input", {}, "input"), "gamma": (3.0, {}, 3.0),
        "bowl_level": ("free", {"loss": "activation"}, "free"), "bowl_shape": ("cone", {"loss": "activation"}, "cone"),
        "adam_normalized": (True, {"loss": "direction", "field_space": "input"}, True),
        "input_aim": (z, {"field_space": "input"}, z_digest), "aim_radius": (7.5, {}, 7.5), "aim_point": (q, {}, q_digest),
        "sigma": (0.3, {}, 0.3), "tunnel": (False, {}, False), "manipulation_batch_size": (6, {}, 6),
        "transform_robust": ("tr", {}, "tr"), "trajectory_strategy": ("adam", {}, "adam"),
        "trajectory_steps": (17, traj, 17), "trajectory_fraction": (0.25, traj, 0.25), "trajectory_refresh": (9, traj, 9),
        "trajectory_starts": (3, traj, 3), "preservation": ("logits", {}, "logits"), "alpha": (0.4, {}, 0.4),
        "batch_size": (12, {}, 12), "w": (0.3, {}, 0.3), "preserve_fv": (2.0, {}, 2.0),
        "preserve_fv_units": ((1, 2), fv, [1, 2]), "preserve_fv_strategy": ("adam", fv, "adam"),
        "preserve_fv_starts": (5, fv, 5), "lr": (0.01, {}, 0.01), "weight_decay": (0.1, {}, 0.1),
        "clip_grad_norm": (None, {}, None), "plateau_patience": (4, {}, 4), "steps": (7, {}, 7),
        "epochs": (2.5, {"steps": None}, 2.5), "seed": (11, {}, 11), "device": ("cpu", {}, "cpu"),
        "checkpoint_path": ("ck_{cell}.pt", {}, None), "checkpoint_every": (13, {}, 13), "progress": (False, {}, False),
        "precision": ("bf16", {}, "bf16"), "activation_cap": (2.0, traj, 2.0),
        "activation_cap_margin": (0.5, {**traj, "activation_cap": 1.0}, 0.5),
    }


def _flag_args(name, value, options):
    opt = {o.name: o for o in options}[name]
    if opt.kind == "bool":
        return [opt.flag] if value != opt.default else []
    text = "none" if value is None else ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return [opt.flag, text]


def test_the_cases_cover_every_option(files):
    assert set(_cases(files)) == {o.name for o in GradientSlingshot.options()}


@pytest.mark.parametrize("name", [o.name for o in GradientSlingshot.options()])
def test_each_option_from_the_command_line_and_from_a_study_file(name, files):
    value, companions, shown = _cases(files)[name]
    options = manipulate_options()
    # the command line: the flag (and its companions) parse, merge and reach the transform
    argv = ["manipulate"]
    for k, v in {**companions, name: value}.items():
        argv += _flag_args(k, v, options)
    args = build_parser(argv).parse_args(argv)
    s = merge_settings(options, {}, {k: v for k, v in vars(args).items() if k not in ("command", "config",
                                                                                     "transform")})
    from_cli, _ = build_transform("gradient_slingshot", s, "logits", PARAM)
    # a study file: the same settings under a transform's settings (and swept in a grid); the device belongs to
    # a study's model entries (the model, the manipulation and the evaluation all run there)
    model, grid = ({"model": "mnist_cnn", name: value}, {}) if name == "device" else ({"model": "mnist_cnn"},
                                                                                       {name: [value]})
    spec = validate_study_spec({"models": [model], "transforms": [
        {"name": "gradient_slingshot", "settings": dict(companions), "grid": grid}]})
    cell = [c for c in study_cells(spec) if not c.is_baseline][0]
    from_study, _ = build_transform("gradient_slingshot", cell.settings, "logits", PARAM)
    for gs in (from_cli, from_study):
        flat = parts_to_flat(gs.parts())  # settings() leaves out how a run is carried out (device, progress...)
        if name == "checkpoint_path":
            assert gs.run.checkpoint_path == "ck_{cell}.pt"  # a study replaces {cell} when it runs the cell
        else:
            assert flat[name] == shown, (name, flat.get(name))
