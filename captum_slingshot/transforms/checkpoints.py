"""Checkpoints of any transform's fit: written atomically, versioned, checked before a run resumes from one.

A checkpoint holds ``schema`` (the format version), ``transform`` (its registry name), the step, the
loss history, the flat settings it was written with, the model, optimizer and scheduler states, and
whatever else a transform needs to continue exactly (``extra``: e.g. the slingshot's on-policy
buffer). :func:`load_checkpoint` refuses a checkpoint of another transform, of a newer schema, or
written with other settings (naming them); a transform with an older format passes ``upgrade`` to
read it.

Example:
    >>> differing({"gamma": 1.0, "steps": 10, "loss": "gradient"}, {"gamma": 2.0, "steps": 5, "loss": "gradient"})
    ['gamma']
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..paths import atomic_path

__all__ = ["SCHEMA", "RUN_ONLY", "save_checkpoint", "load_checkpoint", "differing"]

#: the checkpoint format this release writes (1: release 0.1's slingshot, no schema field)
SCHEMA = 2
#: settings that change how a run is carried out, not what it computes (ignored when resuming)
RUN_ONLY = ("steps", "epochs", "device", "checkpoint_path", "checkpoint_every", "progress", "precision")


def save_checkpoint(path: str, *, step: int, epoch_loss: float, history: Dict[str, List[float]],
                    settings: Dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    extra: Optional[Dict[str, Any]] = None) -> None:
    """Write a checkpoint atomically (a crash never leaves a half-written file)."""
    state = {
        "schema": SCHEMA, "transform": settings.get("transform"), "step": step, "epoch_loss": epoch_loss,
        "history": history, "settings": settings,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(), "scheduler": None if scheduler is None else scheduler.state_dict(),
    }
    state.update(extra or {})
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def differing(current: Mapping[str, Any], recorded: Mapping[str, Any], ignore: Sequence[str] = ()) -> List[str]:
    """The settings that differ between a run and a checkpoint, ignoring :data:`RUN_ONLY` ones and ``ignore``."""
    keys = (set(current) | set(recorded)) - set(RUN_ONLY) - set(ignore)
    return sorted(k for k in keys if _norm(current.get(k)) != _norm(recorded.get(k)))


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def load_checkpoint(path: str, settings: Mapping[str, Any], device: torch.device,
                    upgrade: Optional[Callable[[int, Mapping[str, Any]], Tuple[Dict[str, Any], Sequence[str]]]] = None
                    ) -> Tuple[int, Dict[str, Any]]:
    """Read a checkpoint for a run with ``settings``: ``(schema, state)``.

    ``upgrade(schema, recorded_settings) -> (settings in today's form, keys that schema did not
    record)`` reads older formats; without it only the current schema is read.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a checkpoint, a newer or unreadable schema, another transform, or other settings.
    """
    name = settings.get("transform")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or "step" not in state:
            raise ValueError("no model state and step in it")
    except Exception as err:
        raise ValueError(f"cannot resume from {path!r}: not a {name} checkpoint ({err})") from err
    schema = int(state.get("schema", 1))
    if schema > SCHEMA:
        raise ValueError(f"cannot resume from {path!r}: it was written by a newer captum_slingshot (checkpoint "
                         f"schema {schema}; this release reads 1 to {SCHEMA}); upgrade captum_slingshot")
    transform = state.get("transform") or "gradient_slingshot"
    if transform != name:
        raise ValueError(f"cannot resume from {path!r}: it is a checkpoint of {transform!r}, not of {name!r}")
    recorded = state.get("settings") or {}
    ignore: Sequence[str] = ()
    if schema < SCHEMA:
        if upgrade is None:
            raise ValueError(f"cannot resume from {path!r}: {name} cannot read checkpoint schema {schema}")
        recorded, ignore = upgrade(schema, recorded)
    diff = differing(settings, recorded, ignore=ignore)
    if diff:
        shown = ", ".join(f"{k}: {recorded.get(k)!r} there, {settings.get(k)!r} here" for k in diff[:4])
        raise ValueError(f"checkpoint {path!r} was written with other settings: {diff} ({shown}); resume with the "
                         "settings it was written with, or start a new run")
    return schema, state
