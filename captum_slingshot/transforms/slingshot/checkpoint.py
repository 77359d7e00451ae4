"""Slingshot checkpoints: the shared format (:mod:`captum_slingshot.transforms.checkpoints`) plus the
reading of release 0.1's checkpoints.

A schema-1 checkpoint (written by release 0.1, which had no schema field) resumes when its
settings, read with today's option names, agree with the run's on every setting it recorded (it
did not record the target, the input-space aim or the trajectory strategy's steps); anything
else is refused with a message that names the differing settings.

Example:
    >>> recorded = {"transform": "gradient_slingshot", "loss": "direction", "gamma": 1.0, "steps": 12}
    >>> upgraded, not_recorded = upgrade_settings(1, recorded)
    >>> upgraded["loss"], "gamma" in upgraded, "target" in not_recorded
    ('direction', False, True)
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from ..checkpoints import RUN_ONLY, SCHEMA, differing, load_checkpoint as _load, save_checkpoint as _save
from .flat import parts_from_flat, parts_to_flat

__all__ = ["SCHEMA", "save_checkpoint", "load_checkpoint", "differing", "upgrade_settings"]

#: settings that say what is manipulated, besides the options
_CONTEXT = ("transform", "layer", "neuron_selector", "param", "shape", "target")
#: what schema-1 checkpoints did not record
_NOT_IN_SCHEMA_1 = ("target", "input_aim", "trajectory_steps", "aim_point")


def upgrade_settings(schema: int, recorded: Mapping[str, Any]) -> Tuple[Dict[str, Any], Tuple[str, ...]]:
    """Schema-1 flat settings in today's form (read with today's option names and written back, so that
    settings which no longer appear, ``gamma`` with ``loss=direction``, drop out), and what schema 1
    did not record."""
    context = {k: v for k, v in recorded.items() if k in _CONTEXT}
    options = {k: v for k, v in recorded.items() if k not in _CONTEXT and k not in RUN_ONLY}
    try:
        upgraded = parts_to_flat(dict(parts_from_flat({**options, "steps": 1})), run_only=False)
    except (ValueError, TypeError) as err:
        raise ValueError(f"its settings (release 0.1, checkpoint schema {schema}) are not valid today: {err}") from err
    return {**context, **{k: v for k, v in upgraded.items() if k not in RUN_ONLY}}, _NOT_IN_SCHEMA_1


def save_checkpoint(path: str, *, step: int, epoch_loss: float, history: Dict[str, List[float]],
                    settings: Dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, buffer: Optional[Tensor]) -> None:
    """Write a slingshot checkpoint (with its on-policy trajectory buffer) atomically."""
    _save(path, step=step, epoch_loss=epoch_loss, history=history, settings=settings, model=model,
          optimizer=optimizer, scheduler=scheduler,
          extra={"trajectory_buffer": None if buffer is None else buffer.detach().cpu()})


def load_checkpoint(path: str, settings: Mapping[str, Any], device: torch.device) -> Tuple[int, Dict[str, Any]]:
    """Read a slingshot checkpoint (any schema this release reads) for a run with ``settings``."""
    try:
        return _load(path, settings, device, upgrade=upgrade_settings)
    except ValueError as err:
        text = str(err)
        if "not valid today" in text and not text.startswith("cannot resume"):
            raise ValueError(f"cannot resume from {path!r}: {text}") from err
        raise
