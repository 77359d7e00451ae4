"""The slingshot's training loop: one :class:`SlingshotRun` per fit, holding all run state.

The transform (:class:`~.transform.GradientSlingshot`) is settings only; a run owns the copies of
the model, the optimizer and scheduler, the on-policy buffer, the kept FV paths and the history.
Per step: the natural batch, the trajectory refresh, the manipulation batch and loss, the
preservation loss (plus FV paths), ``L = (1 - alpha) L_M + alpha L_P``, a NaN guard, AdamW with
gradient clipping, the plateau schedule per epoch, the progress bar, checkpoints and the callback.

In a process group (``torchrun``; see :mod:`captum_slingshot.distributed`) rank ``r`` of ``W``
computes the losses on its ``1/W`` of every global batch (natural, manipulation and FV-path rows;
the trajectory starts too when ``W`` divides them, gathered afterwards), the gradients are
averaged across processes before clipping and the step, the recorded losses are the processes'
mean, and only rank 0 shows progress and writes checkpoints. Every loss that is a mean over its
batch (all but ``Bowl(level="free")`` and ``FieldDirection(adam_normalized=True)``, which
normalize within each process's rows) gives the one-process result up to float rounding, so a
checkpoint resumes on any world size that divides the batch sizes.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..._utils.data import NaturalBatches
from ..._utils.devices import autocast, model_device
from ..._utils.distributed import (all_mean, any_true, average_gradients, barrier, broadcast_parameters,
                                   current_shard, gather_rows)
from ..._utils.hooks import LayerCapture, LayerNotReachedError
from ..._utils.layers import layer_name, resolve_layer
from ..._utils.seeding import generator
from ..._utils.selectors import check_selector, select_neuron
from ...fv.optimize import network_input
from .checkpoint import load_checkpoint, save_checkpoint
from .losses import LossInputs
from .preservation import fv_path_loss, fv_path_points, natural_loss
from .sampling import manipulation_batch, rollout, trajectory_auditors

__all__ = ["SlingshotRun", "Callback"]

#: ``callback(step, record, model)`` after every step; return ``False`` to stop
Callback = Callable[[int, Dict[str, float], nn.Module], Any]


class SlingshotRun:
    """One fit of a :class:`~.transform.GradientSlingshot` on one model.

    Args:
        transform: the settings.
        model: the trained network; never modified (it is the reference of the preservation loss).
        natural_data: natural inputs (a tensor, a ``TensorDataset`` or a map-style dataset).
        start_from: start the fine-tuning from this model's weights instead of ``model``'s.
        callback: ``callback(step, record, model)`` after every step; ``False`` stops.
    """

    def __init__(self, transform: Any, model: nn.Module, natural_data: Any, *,
                 start_from: Optional[nn.Module] = None, callback: Optional[Callback] = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if start_from is not None and not isinstance(start_from, nn.Module):
            raise TypeError(f"start_from must be an nn.Module, got {type(start_from).__name__}")
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module  # the run shards and averages itself; its copies are of the bare model
        if isinstance(start_from, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            start_from = start_from.module
        self.gs = transform
        run = transform.run
        self.shard = current_shard()
        self.batches = NaturalBatches(natural_data, transform.preservation.batch_size, run.seed)
        self._check_world_size()
        self.total = run.steps if run.steps is not None else max(1, int(math.ceil(run.epochs * self.batches.per_epoch)))
        self.device = torch.device(run.device) if run.device is not None else model_device(model)
        self.callback = callback
        self.student = copy.deepcopy(model if start_from is None else start_from).to(self.device)
        self.frozen = copy.deepcopy(model).to(self.device)
        self.student.eval()
        self.frozen.eval()
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        for p in self.student.parameters():
            p.requires_grad_(True)
        broadcast_parameters(self.student)
        self.layer_name = layer_name(model, resolve_layer(model, transform.layer))
        self.target = transform.target_image()
        self.aim_cpu = transform.aim_point(self.target)
        self.aim = self.aim_cpu.to(self.device)
        self.tr = transform.robust_transforms()
        self.input_aim = transform.input_aim_point(self.aim_cpu) if transform.loss.in_input_space else None
        traj = transform.sampling.trajectories
        self.auditors = [] if traj is None else trajectory_auditors(traj, transform.param)
        opt = transform.optimizer
        self.scaler = (torch.amp.GradScaler(self.device.type) if run.precision == "fp16" else None)
        self.optimizer = torch.optim.AdamW(self.student.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, "min", factor=0.5,
                                                                    patience=opt.plateau_patience)
        self.history: Dict[str, List[float]] = {"loss": [], "manipulation": [], "preservation": [], "lr": []}
        self.start, self.epoch_loss = 0, 0.0
        self.buffer: Optional[Tensor] = None
        self.fv_points: Optional[Tensor] = None
        self.cap: Optional[Tuple[float, float]] = None  # (cap, scale) of the ActivationCap
        if transform.preservation.activation_cap is not None and traj is None:
            raise ValueError("activation_cap keeps the unit's activation low along the auditor's FV trajectories: "
                             "set a trajectory strategy (Sampling(trajectories=Trajectories(...)), "
                             "--trajectory-strategy gc)")

    def _check_world_size(self) -> None:
        """Clear errors before any work: every process must get the same number of rows of each batch."""
        w = self.shard.world_size
        if w == 1:
            return
        if self.batches.n < w:
            raise ValueError(f"the natural data has {self.batches.n} inputs, fewer than the {w} processes: give "
                             "more natural data or run with fewer processes")
        # a checkpoint holds no per-process state: it resumes on any world size these checks accept
        self.shard.rows(self.batches.batch_size, "natural batch (batch_size)")
        self.shard.rows(self.gs.sampling.batch_size, "manipulation batch (manipulation_batch_size)")

    # -- pieces of a step ----------------------------------------------------------------------
    def inputs(self, q: Tensor, tr_u: Optional[Tensor]) -> Tensor:
        """What the model sees of ``q`` under the manipulation's random transforms ``tr_u``."""
        return network_input(self.gs.param, q, self.tr, tr_u)

    def manipulation_loss(self, cap: LayerCapture, step: int) -> Tensor:
        gs = self.gs
        q, tr_u = manipulation_batch(gs.sampling, self.aim, step, gs.run.seed, self.tr, self.buffer, self.device)
        rows = self.shard.rows(len(q))
        q, tr_u = q[rows], (None if tr_u is None else tr_u[rows])
        unit = lambda z: select_neuron(cap.run(z), gs.neuron_selector)
        return gs.loss(LossInputs(q=q, tr_u=tr_u, aim=self.aim, input_aim=self.input_aim,
                                  network_input=self.inputs, unit=unit))

    def _probe(self, cap: LayerCapture, frozen_cap: LayerCapture) -> None:
        """One forward of each kind: clear errors for a unit the layer does not have or inputs the model cannot take."""
        gs = self.gs
        with torch.no_grad():
            u_mid = None if self.tr is None else torch.full((1, self.tr.n_random), 0.5, device=self.device)
            try:
                probe = cap.run(self.inputs(self.aim[None], u_mid))
            except LayerNotReachedError:
                raise
            except RuntimeError as err:
                raise ValueError(f"the model cannot take inputs from parametrization {gs.param!r}: {err}") from err
        check_selector(gs.neuron_selector, probe.shape[1:], f"layer {self.layer_name!r}")
        fv_paths = gs.preservation.fv_paths
        if fv_paths is not None:
            if probe.dim() < 2:
                raise ValueError("preserve_fv needs a layer with channels (outputs of shape (N, C, ...))")
            self.fv_points = fv_path_points(fv_paths, gs.sampling.trajectories, frozen_cap, gs.param,
                                            gs.neuron_selector, int(probe.shape[1]), gs.run.seed, self.device)
        if gs.preservation.activation_cap is not None:
            self.cap = self._natural_cap(frozen_cap)
        x_probe = self.batches.get(0)[:1].to(self.device)
        with torch.no_grad():
            try:
                frozen_cap.run_full(x_probe)
            except RuntimeError as err:
                raise ValueError(f"the model cannot take the natural inputs (shape {tuple(x_probe.shape)}): {err}") from err

    def _resume(self, path: str) -> None:
        _, state = load_checkpoint(path, self.gs.settings(), self.device)
        try:
            self.student.load_state_dict(state["model"])
        except Exception as err:
            raise ValueError(f"cannot resume from {path!r}: its model does not fit this one ({err})") from err
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        buf = state.get("trajectory_buffer")
        self.buffer = None if buf is None else buf.to(self.device)
        self.start, self.epoch_loss, self.history = int(state["step"]), float(state["epoch_loss"]), state["history"]

    def _natural_cap(self, frozen_cap: LayerCapture, n: int = 1024) -> Tuple[float, float]:
        """``(cap, scale)``: the unit's natural range under the original model (first ``n`` natural inputs)."""
        margin = self.gs.preservation.activation_cap.margin
        acts = []
        with torch.no_grad():
            for k in range(max(1, min(n, self.batches.n) // self.batches.batch_size)):
                x = self.batches.get(k).to(self.device)
                acts.append(select_neuron(frozen_cap.run(x), self.gs.neuron_selector).float().cpu())
        a = torch.cat(acts)
        top, median = float(a.max()), float(a.median())
        scale = max(top - median, 1e-6)
        return top + (margin - 1.0) * scale, scale

    def activation_cap_loss(self, cap: LayerCapture, step: int) -> Tensor:
        """``weight * mean(relu((a - cap) / scale)^2)`` over trajectory points of this step (this process's rows)."""
        gs = self.gs
        g = generator(gs.run.seed, "activation_cap", step, self.device)
        idx = torch.randint(len(self.buffer), (gs.sampling.batch_size,), generator=g, device=self.device)
        idx = idx[self.shard.rows(len(idx))]
        a = select_neuron(cap.run(gs.param.network_input(self.buffer[idx])), gs.neuron_selector).float()
        limit, scale = self.cap
        return gs.preservation.activation_cap.weight * torch.relu((a - limit) / scale).pow(2).mean()

    def _rollout(self, cap: LayerCapture, step: int) -> Tensor:
        """The trajectory buffer of ``step``: each process rolls out its share of the starts when the
        world size divides them (then the shares are gathered), else every process all of them."""
        gs, traj = self.gs, self.gs.sampling.trajectories
        split = self.shard.world_size > 1 and traj.starts % self.shard.world_size == 0
        rows = self.shard.rows(traj.starts) if split else slice(None)
        bufs = []
        for i, (strategy, param, tr) in enumerate(self.auditors):
            # the first strategy keeps the stream of one-strategy runs, so their results are unchanged
            buf = rollout(cap, param or gs.param, gs.neuron_selector, strategy, tr, traj.starts, gs.run.seed,
                          step, self.device, rows=rows, stream="rollout" if i == 0 else f"rollout{i}")
            if param is not None:  # another parametrization: its points as the images the model sees (= pixel q)
                with torch.no_grad():
                    buf = param.network_input(buf)
            bufs.append(gather_rows(buf) if split else buf)
        return torch.cat(bufs)

    def _backward_and_step(self, loss: Tensor) -> None:
        """Gradients (averaged across processes), clipping and the optimizer step; fp16 scales the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            average_gradients(self.student.parameters())
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
            average_gradients(self.student.parameters())
        if self.gs.optimizer.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.gs.optimizer.clip_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def _checkpoint(self, step: int) -> None:
        if not self.shard.is_main:
            barrier()
            return
        save_checkpoint(self.gs.run.checkpoint_path, step=step, epoch_loss=self.epoch_loss, history=self.history,
                        settings=self.gs.settings(), model=self.student, optimizer=self.optimizer,
                        scheduler=self.scheduler, buffer=self.buffer)
        barrier()

    # -- the loop ---------------------------------------------------------------------------
    def train(self, resume: Optional[str] = None) -> Dict[str, Any]:
        """Run from the start (or from the checkpoint ``resume``) to the end; returns the result's fields."""
        gs, run = self.gs, self.gs.run
        if resume is not None:
            self._resume(resume)
        alpha, fv_paths = gs.preservation.alpha, gs.preservation.fv_paths
        traj = gs.sampling.trajectories
        layer = self.student.get_submodule(self.layer_name)
        frozen_layer = self.frozen.get_submodule(self.layer_name)
        with LayerCapture(self.student, layer, stop=True) as cap, \
                LayerCapture(self.frozen, frozen_layer, stop=True) as frozen_cap:
            self._probe(cap, frozen_cap)
            bar = tqdm(total=self.total, initial=self.start, disable=not (run.progress and self.shard.is_main),
                       desc="gradient slingshot" + (f" ({self.shard.world_size} processes)"
                                                    if self.shard.world_size > 1 else ""), unit="step")
            nat_rows = self.shard.rows(self.batches.batch_size)
            fv_rows = self.shard.rows(gs.sampling.batch_size)
            try:
                for step in range(self.start, self.total):
                    x = self.batches.get(step, nat_rows).to(self.device)
                    if traj is not None and step % traj.refresh == 0:
                        self.buffer = self._rollout(cap, step)
                    with autocast(run.precision, self.device):
                        l_m = self.manipulation_loss(cap, step).float()
                        l_p = natural_loss(gs.preservation.loss, cap, frozen_cap, x, gs.neuron_selector).float()
                        if self.fv_points is not None:
                            l_p = l_p + fv_paths.weight * fv_path_loss(
                                self.fv_points, cap, frozen_cap, gs.param, gs.neuron_selector, gs.sampling.batch_size,
                                run.seed, step, self.device, rows=fv_rows).float()
                        if self.cap is not None:
                            l_p = l_p + self.activation_cap_loss(cap, step)
                    loss = (1 - alpha) * l_m + alpha * l_p
                    v_loss, v_m, v_p = all_mean([loss.item(), l_m.item(), l_p.item()])
                    if not math.isfinite(v_loss):
                        kept = (f"; the last good checkpoint {run.checkpoint_path!r} is kept"
                                if run.checkpoint_path else "")
                        raise FloatingPointError(
                            f"gradient slingshot loss became {v_loss} at step {step} (manipulation "
                            f"{v_m:.4g}, preservation {v_p:.4g}){kept}. Lower lr or gamma."
                        )
                    self._backward_and_step(loss)
                    rec = {"loss": v_loss, "manipulation": v_m, "preservation": v_p,
                           "lr": self.optimizer.param_groups[0]["lr"]}
                    for k, v in rec.items():
                        self.history[k].append(v)
                    self.epoch_loss += rec["loss"]
                    if (step + 1) % self.batches.per_epoch == 0:
                        self.scheduler.step(self.epoch_loss)
                        self.epoch_loss = 0.0
                    bar.update(1)
                    bar.set_postfix(M=f"{rec['manipulation']:.3g}", P=f"{rec['preservation']:.3g}", refresh=False)
                    if run.checkpoint_path and (step + 1) % run.checkpoint_every == 0 and step + 1 < self.total:
                        self._checkpoint(step + 1)
                    if self.callback is not None and any_true(self.callback(step, rec, self.student) is False):
                        break
            finally:
                bar.close()
        for p in self.student.parameters():
            p.requires_grad_(True)
        return {"model": self.student, "history": self.history, "target": self.target.clone(),
                "aim": self.aim_cpu.clone()}
