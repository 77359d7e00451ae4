"""Slingshot checkpoints: written atomically, versioned, and checked before a run resumes from one.

A checkpoint holds the step, the loss history, the flat settings it was written with, the model,
optimizer and scheduler states and the on-policy trajectory buffer, so that a resumed run ends
with the same weights as an uninterrupted one. Since schema 2 it also says its ``schema`` and
``transform``. A schema-1 checkpoint (written by release 0.1, which had no schema field) resumes
when its settings, read with today's option names, agree with the run's on every setting it
recorded (it did not record the target, the input-space aim or the trajectory strategy's steps);
anything else is refused with a message that names the differing settings. A checkpoint from a
newer schema is refused.

Example:
    >>> differing({"gamma": 1.0, "steps": 10, "loss": "gradient"}, {"gamma": 2.0, "steps": 5, "loss": "gradient"})
    ['gamma']
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from ...paths import atomic_path
from .flat import RUN_ONLY, parts_from_flat, parts_to_flat

__all__ = ["SCHEMA", "save_checkpoint", "load_checkpoint", "differing", "upgrade_settings"]

#: the checkpoint format this release writes (1: release 0.1, no schema field)
SCHEMA = 2
#: settings that say what is manipulated, besides the options
_CONTEXT = ("transform", "layer", "neuron_selector", "param", "shape", "target")
#: what schema-1 checkpoints did not record
_NOT_IN_SCHEMA_1 = ("target", "input_aim", "trajectory_steps", "aim_point")


def save_checkpoint(path: str, *, step: int, epoch_loss: float, history: Dict[str, List[float]],
                    settings: Dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, buffer: Optional[Tensor]) -> None:
    """Write a checkpoint atomically (a crash never leaves a half-written file)."""
    state = {
        "schema": SCHEMA, "transform": settings.get("transform", "gradient_slingshot"),
        "step": step, "epoch_loss": epoch_loss, "history": history, "settings": settings,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "trajectory_buffer": None if buffer is None else buffer.detach().cpu(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def upgrade_settings(recorded: Mapping[str, Any]) -> Dict[str, Any]:
    """Schema-1 flat settings in today's form: read with today's option names and written back, so
    that settings which no longer appear (``gamma`` with ``loss=direction``) drop out."""
    context = {k: v for k, v in recorded.items() if k in _CONTEXT}
    options = {k: v for k, v in recorded.items() if k not in _CONTEXT and k not in RUN_ONLY}
    upgraded = parts_to_flat(dict(parts_from_flat({**options, "steps": 1})), run_only=False)
    return {**context, **{k: v for k, v in upgraded.items() if k not in RUN_ONLY}}


def differing(current: Mapping[str, Any], recorded: Mapping[str, Any], ignore: Tuple[str, ...] = ()) -> List[str]:
    """The settings that differ between a run and a checkpoint, ignoring :data:`RUN_ONLY` ones and ``ignore``."""
    keys = (set(current) | set(recorded)) - set(RUN_ONLY) - set(ignore)
    return sorted(k for k in keys if _norm(current.get(k)) != _norm(recorded.get(k)))


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def load_checkpoint(path: str, settings: Mapping[str, Any], device: torch.device) -> Tuple[int, Dict[str, Any]]:
    """Read a checkpoint for a run with ``settings``: ``(schema, state)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a slingshot checkpoint, a newer schema, another transform, or other settings.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or "step" not in state:
            raise ValueError("no model state and step in it")
    except Exception as err:
        raise ValueError(f"cannot resume from {path!r}: not a gradient slingshot checkpoint ({err})") from err
    schema = int(state.get("schema", 1))
    if schema > SCHEMA:
        raise ValueError(f"cannot resume from {path!r}: it was written by a newer captum_slingshot (checkpoint "
                         f"schema {schema}; this release reads 1 to {SCHEMA}); upgrade captum_slingshot")
    transform = state.get("transform", "gradient_slingshot")
    if transform != settings.get("transform", "gradient_slingshot"):
        raise ValueError(f"cannot resume from {path!r}: it is a checkpoint of {transform!r}, not of "
                         f"{settings.get('transform')!r}")
    recorded = state.get("settings") or {}
    if schema == 1:
        try:
            recorded = upgrade_settings(recorded)
        except (ValueError, TypeError) as err:
            raise ValueError(f"cannot resume from {path!r}: its settings (release 0.1, checkpoint schema 1) are "
                             f"not valid today: {err}") from err
    diff = differing(settings, recorded, ignore=_NOT_IN_SCHEMA_1 if schema == 1 else ())
    if diff:
        shown = ", ".join(f"{k}: {recorded.get(k)!r} there, {settings.get(k)!r} here" for k in diff[:4])
        raise ValueError(f"checkpoint {path!r} was written with other settings: {diff} ({shown}); resume with the "
                         "settings it was written with, or start a new run")
    return schema, state
