"""What the whole-model fine-tunes share (attribution fooling, the peer attacks): keeping the classifier's
behaviour on natural data, and resuming from / writing checkpoints of the shared format.

A run class mixes :class:`FinetuneRun` in and holds ``t`` (the transform: ``preserve``, ``settings()``,
``training.checkpoint_path``), ``student`` (the copy being trained), ``frozen`` (the original),
``optimizer``, ``device``, ``history`` and ``start``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Linear(3, 2)
    >>> x = torch.randn(4, 3)
    >>> float(keep_loss("distill", model, model, x, None))   # the original against itself: nothing to keep
    0.0
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._utils.devices import model_device
from .checkpoints import load_checkpoint, save_checkpoint

__all__ = ["keep_loss", "FinetuneRun"]


def keep_loss(preserve: str, student: nn.Module, frozen: nn.Module, x: Tensor, y: Optional[Tensor]) -> Tensor:
    """The preservation loss on a natural batch: ``"ce"`` (cross-entropy to the labels), ``"distill"``
    (KL divergence to the original's softmax) or ``"none"`` (zero)."""
    if preserve == "none":
        return torch.zeros((), device=x.device)
    logits = student(x)
    if preserve == "ce":
        return F.cross_entropy(logits, y)
    with torch.no_grad():
        ref = F.log_softmax(frozen(x), 1)
    return F.kl_div(F.log_softmax(logits, 1), ref, log_target=True, reduction="batchmean")


class FinetuneRun:
    """Preservation, resume and checkpoint of a whole-model fine-tune (see the module docstring)."""

    def copy_models(self, model: nn.Module, device: Optional[str]) -> None:
        """``student`` (trainable) and ``frozen`` copies of ``model`` on ``device`` (default: the model's), eval mode."""
        self.device = torch.device(device) if device is not None else model_device(model)
        self.student = copy.deepcopy(model).to(self.device).eval()
        self.frozen = copy.deepcopy(model).to(self.device).eval()
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        for p in self.student.parameters():
            p.requires_grad_(True)

    def preservation_loss(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        """``L_keep`` on a natural batch (zero with ``preserve="none"``)."""
        return keep_loss(self.t.preserve, self.student, self.frozen, x, y)

    def _resume(self, path: str) -> None:
        _, state = load_checkpoint(path, self.t.settings(), self.device)
        try:
            self.student.load_state_dict(state["model"])
        except Exception as err:
            raise ValueError(f"cannot resume from {path!r}: its model does not fit this one ({err})") from err
        self.optimizer.load_state_dict(state["optimizer"])
        self.start, self.history = int(state["step"]), state["history"]

    def _checkpoint(self, step: int) -> None:
        save_checkpoint(self.t.training.checkpoint_path, step=step, epoch_loss=0.0, history=self.history,
                        settings=self.t.settings(), model=self.student, optimizer=self.optimizer, scheduler=None)
