"""What the whole-model fine-tunes share (attribution fooling, the peer attacks): keeping the classifier's
behaviour on natural data, resuming from / writing checkpoints of the shared format, and the training loop.

A run class mixes :class:`FinetuneRun` in and holds ``t`` (the transform: ``preserve``, ``settings()``,
``training``), ``student`` (the copy being trained), ``frozen`` (the original), ``batches`` (the
natural batches), ``optimizer``, ``device``, ``history``, ``start`` and ``callback``; it says how it
names itself (:meth:`FinetuneRun.texts`) and gives its attack's loss (:meth:`FinetuneRun.attack_loss`).
Per step of :meth:`FinetuneRun.train`: a natural batch, ``L = L_keep + weight * L_attack``, a NaN guard,
Adam, the history, the progress bar, checkpoints, the callback.

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
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._utils.devices import model_device
from .checkpoints import load_checkpoint, save_checkpoint

__all__ = ["keep_loss", "FinetuneRun", "RunTexts", "Callback"]

#: ``callback(step, record, model)`` after every step; return ``False`` to stop
Callback = Callable[[int, Dict[str, float], nn.Module], Any]


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


@dataclass(frozen=True)
class RunTexts:
    """How a fine-tune names itself and its attack's loss to the user.

    Attributes:
        name: the run in the non-finite-loss error (``"attribution fooling"``, the attack's name).
        bar: the progress bar's description.
        key: the attack loss's key in the records and the history (``"fooling"``, ``"manipulation"``).
        short: its name in the progress bar (``"fool"``, ``"attack"``).
        weight: the transform's field that weights it (``"fooling_weight"``, ``"manipulation_weight"``).
    """

    name: str
    bar: str
    key: str
    short: str
    weight: str


class FinetuneRun:
    """Preservation, resume, checkpoints and training loop of a whole-model fine-tune (see the module docstring)."""

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

    # -- what a run class gives ---------------------------------------------------------------
    def texts(self) -> RunTexts:  # pragma: no cover
        """How the run names itself and its attack's loss."""
        raise NotImplementedError

    def attack_loss(self, x: Tensor, step: int) -> Tuple[Tensor, Dict[str, float]]:  # pragma: no cover
        """The attack's loss at ``step`` (``x``: the step's natural inputs, on the device) and extra records."""
        raise NotImplementedError

    # -- the loop ---------------------------------------------------------------------------
    def train(self, resume: Optional[str] = None) -> Dict[str, Any]:
        """Run from the start (or from the checkpoint ``resume``) to the end; returns the result's fields."""
        run, texts = self.t.training, self.texts()
        weight = getattr(self.t, texts.weight)
        if resume is not None:
            self._resume(resume)
        bar = tqdm(total=run.steps, initial=self.start, disable=not run.progress, desc=texts.bar, unit="step")
        try:
            for step in range(self.start, run.steps):
                x, y = self.batches.get_labeled(step)
                x = x.to(self.device)
                y = None if y is None else y.to(self.device).long()
                l_p = self.preservation_loss(x, y)
                l_a, extra = self.attack_loss(x, step)
                loss = l_p + weight * l_a
                if not torch.isfinite(loss):
                    kept = f"; the last good checkpoint {run.checkpoint_path!r} is kept" if run.checkpoint_path else ""
                    raise FloatingPointError(
                        f"{texts.name} loss became {loss.item()} at step {step} (preservation {l_p.item():.4g}, "
                        f"{texts.key} {l_a.item():.4g}){kept}. Lower lr or {texts.weight}.")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                rec = {"loss": loss.item(), "preservation": l_p.item(), texts.key: l_a.item(),
                       "lr": self.optimizer.param_groups[0]["lr"], **extra}
                for k, v in rec.items():
                    self.history.setdefault(k, []).append(v)
                bar.update(1)
                bar.set_postfix(keep=f"{rec['preservation']:.3g}", **{texts.short: f"{rec[texts.key]:.3g}"},
                                refresh=False)
                if run.checkpoint_path and (step + 1) % run.checkpoint_every == 0 and step + 1 < run.steps:
                    self._checkpoint(step + 1)
                if self.callback is not None and self.callback(step, rec, self.student) is False:
                    break
        finally:
            bar.close()
        self.student.zero_grad(set_to_none=True)
        return {"model": self.student, "history": self.history}
