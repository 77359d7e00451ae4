"""The Gradient Slingshot (Bareeva et al., NeurIPS 2025) as a model transform.

Fine-tune all weights of a copy of a trained model so that feature
visualization (FV) of one unit is "slung" to a chosen target image, while the
model behaves as before on natural data (METHOD.md §2):

* points ``q = p·q* + u`` (``p ~ U[0, 1]``, ``u ~ U[-sigma, sigma]``; without the
  tunnel half at ``p = 0`` and half at ``p = 1``) between the FV start region
  and the aim point ``q*`` are drawn on the model's device each step;
* the manipulation loss (gradient form) makes the unit's input gradient the
  field of a bowl centred at ``q*``: ``mse(grad_q a(q), gamma (q* - q))`` (one
  double-backward pass); the activation form matches ``a(q)`` to
  ``gamma (1 - ||q - q*||^2 / D)`` instead;
* the preservation loss keeps the hooked layer (unit weighted by ``w``, whole
  layer by ``1 - w``) close to a frozen copy of the original on natural data,
  or the logits close in cross-entropy;
* ``L = (1 - alpha) L_M + alpha L_P``, AdamW, gradient norm clipped, learning
  rate halved on plateau, model in ``eval()`` mode throughout.

Beyond the paper: ``transform_robust`` applies the auditor's random FV
transforms inside the manipulation loss, so the manipulation survives
transformation robustness; ``aim_radius`` aims the bowl at the point within
reach of the auditor's optimizer that looks most like the target;
``trajectory_strategy`` replaces part of every manipulation batch with points
the auditor's own optimizer visits under the model being manipulated
(on-policy samples, refreshed every ``trajectory_refresh`` steps), which trains
the field where FV actually goes rather than only inside the thin tunnel. On
real MNIST this is what makes the paper's settings converge within an epoch
(see the README); without it FV leaves the tunnel within a few steps.
``loss="direction"`` fits only the field's direction (cosine to
``q* - q``, plus a floor ``|grad| >= 1`` so clipped SGD takes full steps).
``field_space="input"`` fits the field (or the activation bowl) in the
network's input space instead of in ``q``: ``grad_z a(z) -> gamma (z* - z)``
for the input ``z`` the model sees (after the transforms and normalization)
and a fixed input ``z*`` (``input_aim``). Adam-based FV (lucent) moves every
Fourier coefficient by about ``lr`` per step whatever its gradient's size, so
it needs the sign of the gradient to point at the target in every
coefficient; the gradient of a bowl in input space does that (it is Adam
minimizing ``||z - z*||^2``), while a field fitted in ``q`` only gets the
largest coefficients right.
The activation form with ``bowl_level="free"`` fits only the differences
between the batch's activations to those of the bowl, not its level: the unit
keeps the activation it has near the FV start, so the natural activations need
not rise to meet the bowl's top. In input space (with on-policy samples) this
is the form that makes lucent's unmodified ``render_vis`` land on the target
for a trained RGB CNN (``examples/lucent_hit.py``); the field-fitting forms did
not get there.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.transforms import GradientSlingshot
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))
    >>> gs = GradientSlingshot(layer="3", neuron_selector=0, target=torch.rand(1, 4, 4),
    ...                        param=PixelParam((1, 4, 4)), steps=5, batch_size=4, progress=False)
    >>> result = gs.fit(model, torch.randn(20, 1, 4, 4))
    >>> result.model is model, len(result.history["loss"])
    (False, 5)
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset
from tqdm.auto import tqdm

from ..fv.param import Parametrization, PixelParam
from ..fv.render import _optimize, model_device, network_input
from ..fv.strategies import AMStrategy, get_strategy
from ..fv.transforms import Compose, make_transforms
from ..fv.units import LayerCapture, check_selector, layer_name, resolve_layer, select_neuron
from ..paths import atomic_path
from .base import ModelTransform, register_transform
from .target import TargetLike, load_target

__all__ = ["GradientSlingshot", "SlingshotResult", "reachable_aim"]


@dataclass
class SlingshotResult:
    """What :meth:`GradientSlingshot.fit` returns.

    Attributes:
        model: the manipulated model (a new object; same architecture).
        history: per step ``loss``, ``manipulation``, ``preservation``, ``lr``.
        settings: the transform's settings (JSON-friendly).
        target: the target image ``(C, H, W)``; aim: the aim point ``q*``.
    """

    model: nn.Module
    history: Dict[str, List[float]]
    settings: Dict[str, Any]
    target: Tensor
    aim: Tensor


def reachable_aim(param: Parametrization, target: Tensor, radius: float, steps: int = 1000) -> Tensor:
    """The point within ``radius`` of the origin whose image is closest to ``target``.

    Projected Adam on ``||image(q) - target||^2`` with a cosine-decaying step,
    started from the projection of ``inverse(target)`` onto the ball; the best
    feasible point seen is returned.
    """
    q_t = param.inverse(_shrink(param, target)[None])[0]
    q = q_t * min(1.0, radius / max(float(q_t.norm()), 1e-12))
    err = lambda v: (param.image(v[None])[0] - target).pow(2).sum()
    best, best_err = q.clone(), float(err(q))
    q = q.clone().requires_grad_(True)
    opt = torch.optim.Adam([q], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-4)
    for _ in range(steps):
        loss = err(q)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            n = q.norm()
            if n > radius:
                q.mul_(radius / n)
            e = float(err(q))
            if e < best_err:
                best, best_err = q.detach().clone(), e
    return best


def _shrink(param: Parametrization, x: Tensor) -> Tensor:
    # sigmoid parametrizations never reach 0 or 1: shrink towards 0.5 as the paper does
    return x if isinstance(param, PixelParam) else 0.5 + (x - 0.5) / 1.01


class _NaturalBatches:
    """Seeded, resumable batches of natural inputs: batch ``k`` depends only on ``(seed, k)``."""

    def __init__(self, data: Any, batch_size: int, seed: int) -> None:
        if isinstance(data, Tensor):
            data = TensorDataset(data)
        if isinstance(data, torch.utils.data.DataLoader):
            data = data.dataset
        if not isinstance(data, Dataset) or not hasattr(data, "__len__"):
            raise TypeError("natural_data must be a tensor of inputs, a TensorDataset or a map-style Dataset")
        n = len(data)
        if n == 0:
            raise ValueError("natural_data is empty: the preservation loss needs natural inputs")
        self.data, self.n, self.seed = data, n, seed
        self.batch_size = min(batch_size, n)
        self.per_epoch = max(1, n // self.batch_size)
        self._perm_epoch, self._perm = -1, None

    def get(self, k: int) -> Tensor:
        epoch, b = divmod(k, self.per_epoch)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g), epoch
        idx = self._perm[b * self.batch_size : (b + 1) * self.batch_size]
        if isinstance(self.data, TensorDataset):
            return self.data.tensors[0][idx]
        items = [self.data[int(i)] for i in idx]
        return torch.stack([it[0] if isinstance(it, (tuple, list)) else it for it in items])


@register_transform("gradient_slingshot")
class GradientSlingshot(ModelTransform):
    """Make FV of ``(layer, neuron_selector)`` converge to ``target``.

    Args:
        layer: module of the model (or dotted name) holding the unit.
        neuron_selector: Captum-style selector of the unit (int, tuple, callable).
        target: image path, PIL image or ``(C, H, W)`` tensor in ``[0, 1]``.
        param: the parametrization the auditor will use (from :mod:`captum_slingshot.fv`).
        sigma: half-width of the uniform noise around the tunnel.
        tunnel: sample along the whole segment (True) or only its two ends.
        gamma: slope of the bowl (the field is ``gamma (q* - q)``).
        alpha: weight of the preservation loss, in ``[0, 1]``.
        w: weight of the unit itself inside the layer preservation loss.
        loss: ``"gradient"`` (double backprop, default), ``"direction"`` (double
            backprop, cosine to the field, scale-free) or ``"activation"``.
        preservation: ``"activation"`` (hooked layer MSE) or ``"logits"`` (CE to the original's softmax).
        lr, weight_decay, clip_grad_norm: AdamW settings and gradient clipping.
        plateau_patience: epochs without improvement before the LR is halved.
        steps / epochs: training length (steps wins if both are given; one epoch =
            one pass over ``natural_data`` in batches of ``batch_size``).
        batch_size, manipulation_batch_size: natural and synthetic batch sizes.
        transform_robust: name of an AM strategy or transform set (``"tr"``,
            ``"lucent"``, ``"paper_mnist"``, ``"lucent_standard"``...) whose random
            transforms are applied inside the manipulation loss.
        aim_radius: if set, aim at :func:`reachable_aim` within this radius
            (e.g. ``lr * steps`` of the auditor's clipped SGD) instead of ``inverse(target)``.
        trajectory_strategy: the auditor's AM strategy (name or :class:`AMStrategy`,
            e.g. ``"gc"``, ``"lucent"``); if set, ``trajectory_fraction`` of each
            manipulation batch is drawn from FV trajectories of the model being
            manipulated, re-run every ``trajectory_refresh`` steps from
            ``trajectory_starts`` random starts (``None``: the paper's tunnel only).
        field_space: ``"param"`` (default, the paper: field ``gamma (q* - q)`` in the
            parametrization) or ``"input"`` (field ``gamma (z* - z)`` in the model's input
            space, for Adam-based FV; the activation form then uses ``||z - z*||^2``).
        input_aim: ``z*`` for ``field_space="input"``, shape of one model input; default:
            the network input of the aim point with every random transform at its middle
            value (``u = 0.5``).
        adam_normalized: with ``field_space="input"`` and ``loss="direction"``: compare
            the two fields where the auditor's Adam sees them, as gradients on ``q``
            (pulled back through the transforms and the parametrization), each coordinate
            divided by the batch RMS of the target field there (Adam's per-coordinate
            normalization), so that faint (high-frequency) coefficients count as much as
            strong ones.
        bowl_level: activation form only. ``"fixed"`` (the paper): the unit's activation is
            fitted to ``gamma (1 - d^2)`` itself; ``"free"``: only the differences between the
            batch's samples are fitted (``act - mean(act)`` to ``bowl - mean(bowl)``), so the unit
            keeps whatever level it has near the FV start and its natural activations need not
            move to meet the bowl's top ``gamma``.
        bowl_shape: activation form only. ``"quadratic"`` (the paper, ``d^2``, the mean squared
            distance to the aim) or ``"cone"`` (``d``): the cone's values grow linearly, so far
            on-policy samples do not swamp the loss and the slope stays the same near the aim.
        preserve_fv: weight of the *FV-path preservation* term (0: off, the paper). With
            ``preserve_fv > 0`` the other units' FVs are kept as they were: before training,
            the auditor's optimizer (``trajectory_strategy``, else GC) is run on the original
            model for ``preserve_fv_units`` from ``trajectory_starts`` random starts, and the
            points of those paths (8 per start) join the preservation loss: the layer's other
            units must keep their original activations there (MSE, weight ``preserve_fv``
            inside the preservation term). Without it the slingshot can bend the landscape near
            the FV start for neighbouring units too (on the MNIST CNN logit 1's GC FV fell from
            activation 11 to 3), which an audit sees.
        preserve_fv_units: int selectors (channels of the layer) whose FV paths are kept;
            default every other channel of the layer (at most 64, evenly spread).
        device: where to train (default: the model's device).
        seed: seeds the manipulation batches, natural batch order and transforms.
        checkpoint_path, checkpoint_every: periodic atomic checkpoints.
        callback: ``callback(step, record, model)`` after every step (``model`` is the
            model being manipulated, usable for evaluation: it is in ``eval()`` mode,
            wrap evaluations in ``torch.no_grad()``); return ``False`` to stop.
        progress: show a tqdm bar with both loss terms.
    """

    def __init__(
        self,
        layer: Union[nn.Module, str],
        neuron_selector: Any,
        target: TargetLike,
        param: Parametrization,
        sigma: float = 0.1,
        tunnel: bool = True,
        gamma: float = 10.0,
        alpha: float = 0.8,
        w: float = 0.0,
        loss: str = "gradient",
        preservation: str = "activation",
        lr: float = 1e-3,
        weight_decay: float = 1e-3,
        clip_grad_norm: Optional[float] = 1.0,
        plateau_patience: int = 2,
        steps: Optional[int] = None,
        epochs: Optional[float] = None,
        batch_size: int = 32,
        manipulation_batch_size: int = 32,
        transform_robust: Optional[str] = None,
        aim_radius: Optional[float] = None,
        trajectory_strategy: Union[None, str, AMStrategy] = None,
        trajectory_fraction: float = 0.5,
        trajectory_refresh: int = 50,
        trajectory_starts: int = 8,
        field_space: str = "param",
        input_aim: Optional[Tensor] = None,
        adam_normalized: bool = False,
        bowl_level: str = "fixed",
        bowl_shape: str = "quadratic",
        preserve_fv: float = 0.0,
        preserve_fv_units: Optional[Sequence[int]] = None,
        device: Union[None, str, torch.device] = None,
        seed: int = 0,
        checkpoint_path: Optional[str] = None,
        checkpoint_every: int = 500,
        callback: Optional[Callable[[int, Dict[str, float], nn.Module], Any]] = None,
        progress: bool = True,
    ) -> None:
        if not isinstance(param, Parametrization):
            raise TypeError(f"param must be a Parametrization from captum_slingshot.fv, got {type(param).__name__}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"w must lie in [0, 1], got {w}")
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        if not sigma >= 0:
            raise ValueError(f"sigma must be non-negative, got {sigma}")
        if loss not in ("gradient", "direction", "activation"):
            raise ValueError(f"loss must be 'gradient', 'direction' or 'activation', got {loss!r}")
        if preservation not in ("activation", "logits"):
            raise ValueError(f"preservation must be 'activation' or 'logits', got {preservation!r}")
        if steps is None and epochs is None:
            raise ValueError("give the training length: steps=... or epochs=...")
        if steps is not None and int(steps) < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if epochs is not None and not epochs > 0:
            raise ValueError(f"epochs must be positive, got {epochs}")
        if batch_size < 1 or manipulation_batch_size < 1:
            raise ValueError("batch sizes must be at least 1")
        if aim_radius is not None and not aim_radius > 0:
            raise ValueError(f"aim_radius must be positive, got {aim_radius}")
        if not 0.0 <= trajectory_fraction <= 1.0:
            raise ValueError(f"trajectory_fraction must lie in [0, 1], got {trajectory_fraction}")
        if int(trajectory_refresh) < 1 or int(trajectory_starts) < 1:
            raise ValueError("trajectory_refresh and trajectory_starts must be at least 1")
        if field_space not in ("param", "input"):
            raise ValueError(f"field_space must be 'param' or 'input', got {field_space!r}")
        if input_aim is not None and field_space != "input":
            raise ValueError("input_aim is used only with field_space='input'")
        if adam_normalized and (field_space != "input" or loss != "direction"):
            raise ValueError("adam_normalized needs field_space='input' and loss='direction'")
        self.adam_normalized = bool(adam_normalized)
        if bowl_level not in ("fixed", "free"):
            raise ValueError(f"bowl_level must be 'fixed' or 'free', got {bowl_level!r}")
        if bowl_shape not in ("quadratic", "cone"):
            raise ValueError(f"bowl_shape must be 'quadratic' or 'cone', got {bowl_shape!r}")
        if (bowl_level, bowl_shape) != ("fixed", "quadratic") and loss != "activation":
            raise ValueError("bowl_level and bowl_shape shape the activation form: they need loss='activation'")
        if bowl_level == "free" and int(manipulation_batch_size) < 2:
            raise ValueError("bowl_level='free' fits differences between samples: manipulation_batch_size must be >= 2")
        self.bowl_level, self.bowl_shape = bowl_level, bowl_shape
        if not float(preserve_fv) >= 0:
            raise ValueError(f"preserve_fv must be a non-negative weight, got {preserve_fv}")
        if preserve_fv_units is not None:
            preserve_fv_units = [int(u) for u in preserve_fv_units]
            if not preserve_fv_units:
                raise ValueError("preserve_fv_units is empty: leave it None to keep every other unit's FV")
        self.preserve_fv, self.preserve_fv_units = float(preserve_fv), preserve_fv_units
        self._fv_points: Optional[Tensor] = None
        self.layer, self.neuron_selector, self.param = layer, neuron_selector, param
        self.target = load_target(target, param.shape)
        self.sigma, self.tunnel, self.gamma, self.alpha, self.w = float(sigma), bool(tunnel), float(gamma), float(alpha), float(w)
        self.loss, self.preservation = loss, preservation
        self.lr, self.weight_decay, self.clip_grad_norm = float(lr), float(weight_decay), clip_grad_norm
        self.plateau_patience = int(plateau_patience)
        self.steps, self.epochs = steps, epochs
        self.batch_size, self.manipulation_batch_size = int(batch_size), int(manipulation_batch_size)
        self.transform_robust = transform_robust
        self._tr = self._build_tr(transform_robust)
        self.aim_radius = aim_radius
        self.trajectory_strategy = None if trajectory_strategy is None else get_strategy(trajectory_strategy)
        self._traj_tr = (None if self.trajectory_strategy is None
                         else self.trajectory_strategy.build_transforms((param.height, param.width)))
        self.trajectory_fraction, self.trajectory_refresh = float(trajectory_fraction), int(trajectory_refresh)
        self.trajectory_starts = int(trajectory_starts)
        self._buffer: Optional[Tensor] = None
        self.device, self.seed = device, int(seed)
        self.checkpoint_path, self.checkpoint_every = checkpoint_path, int(checkpoint_every)
        self.callback, self.progress = callback, progress
        self.aim = (
            reachable_aim(param, self.target, aim_radius) if aim_radius is not None
            else param.inverse(_shrink(param, self.target)[None])[0]
        )
        self.field_space = field_space
        self.input_aim: Optional[Tensor] = None
        if field_space == "input":
            if input_aim is None:
                u_mid = None if self._tr is None else torch.full((1, self._tr.n_random), 0.5)
                with torch.no_grad():
                    input_aim = network_input(param, self.aim[None], self._tr, u_mid)[0]
            self.input_aim = torch.as_tensor(input_aim).detach().float().clone()

    # -- settings ------------------------------------------------------------------
    def _build_tr(self, name: Optional[str]) -> Optional[Compose]:
        if name is None:
            return None
        size = (self.param.height, self.param.width)
        try:
            strategy = get_strategy(name)
        except ValueError:
            return make_transforms(name, size)
        built = strategy.build_transforms(size)
        if built is None:
            raise ValueError(f"strategy {name!r} has no transforms; name a TR strategy or a transform set")
        return built

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly settings (for run records and checkpoints)."""
        sel = self.neuron_selector
        return {
            "transform": self.name,
            "layer": self.layer if isinstance(self.layer, str) else type(self.layer).__name__,
            "neuron_selector": sel if isinstance(sel, (int, tuple)) else repr(sel),
            "param": type(self.param).__name__, "shape": list(self.param.shape),
            "sigma": self.sigma, "tunnel": self.tunnel, "gamma": self.gamma, "alpha": self.alpha, "w": self.w,
            "loss": self.loss, "preservation": self.preservation, "lr": self.lr,
            "weight_decay": self.weight_decay, "clip_grad_norm": self.clip_grad_norm,
            "plateau_patience": self.plateau_patience, "steps": self.steps, "epochs": self.epochs,
            "batch_size": self.batch_size, "manipulation_batch_size": self.manipulation_batch_size,
            "transform_robust": self.transform_robust, "aim_radius": self.aim_radius,
            "trajectory_strategy": None if self.trajectory_strategy is None else self.trajectory_strategy.name,
            "trajectory_fraction": self.trajectory_fraction, "trajectory_refresh": self.trajectory_refresh,
            "trajectory_starts": self.trajectory_starts, "seed": self.seed,
            # only when not the default, so that older checkpoints still resume
            **({"field_space": self.field_space} if self.field_space != "param" else {}),
            **({"adam_normalized": True} if self.adam_normalized else {}),
            **({"bowl_level": self.bowl_level} if self.bowl_level != "fixed" else {}),
            **({"bowl_shape": self.bowl_shape} if self.bowl_shape != "quadratic" else {}),
            **({"preserve_fv": self.preserve_fv, "preserve_fv_units": self.preserve_fv_units}
               if self.preserve_fv > 0 else {}),
        }

    # -- sampling and losses -----------------------------------------------------------
    def _sample(self, step: int, aim: Tensor, device: torch.device):
        g = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + step)
        b = self.manipulation_batch_size
        shape = (b,) + (1,) * aim.dim()
        if self.tunnel:
            p = torch.rand(shape, generator=g, device=device)
        else:
            p = (torch.arange(b, device=device) % 2).float().view(shape)
        u = (torch.rand((b,) + tuple(aim.shape), generator=g, device=device) * 2 - 1) * self.sigma
        q = p * aim + u
        tr_u = torch.rand(b, self._tr.n_random, generator=g, device=device) if self._tr is not None else None
        k = int(round(self.trajectory_fraction * b)) if self._buffer is not None else 0
        if k:
            idx = torch.randint(len(self._buffer), (k,), generator=g, device=device)
            q = torch.cat([q[: b - k], self._buffer[idx]])
        return q, tr_u

    def _rollout(self, cap: LayerCapture, step: int, device: torch.device) -> Tensor:
        """Points visited by the auditor's FV optimizer under the current model."""
        strat, n = self.trajectory_strategy, self.trajectory_starts
        g = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + 500_009 + step)
        q0 = torch.randn((n,) + tuple(self.param.param_shape), generator=g, device=device) * 0.01
        n_random = self._traj_tr.n_random if self._traj_tr is not None else 0
        u = torch.rand(n, strat.steps, n_random, generator=g, device=device)
        every = max(1, strat.steps // 25)
        with tqdm(disable=True) as quiet:
            _, _, _, snaps = _optimize(cap, self.param, [self.neuron_selector], [(0, 0, n)], q0, u,
                                       strat, self._traj_tr, quiet, record_every=every)
        return snaps.flatten(0, 1)

    def _inputs(self, q: Tensor, tr_u: Optional[Tensor]) -> Tensor:
        return network_input(self.param, q, self._tr, tr_u)

    def _manipulation_loss(self, cap: LayerCapture, step: int, aim: Tensor, device: torch.device) -> Tensor:
        q, tr_u = self._sample(step, aim, device)
        if self.field_space == "input":
            return self._input_space_loss(cap, q, tr_u, device)
        q.requires_grad_(True)
        act = select_neuron(cap.run(self._inputs(q, tr_u)), self.neuron_selector)
        if self.loss in ("gradient", "direction"):
            (grad,) = torch.autograd.grad(act.sum(), q, create_graph=True)
            return self._field_loss(grad, self.gamma * (aim - q).detach())
        return self._bowl_loss(act, (q.detach() - aim).flatten(1).pow(2).mean(1))

    def _input_space_loss(self, cap: LayerCapture, q: Tensor, tr_u: Optional[Tensor], device: torch.device) -> Tensor:
        if self.adam_normalized:
            return self._adam_normalized_loss(cap, q, tr_u, device)
        with torch.no_grad():
            z = self._inputs(q, tr_u)
        z_aim = self.input_aim.to(device=device, dtype=z.dtype)
        if z_aim.shape != z.shape[1:]:
            raise ValueError(f"input_aim has shape {tuple(z_aim.shape)}, the model's inputs {tuple(z.shape[1:])}")
        if self.loss == "activation":
            act = select_neuron(cap.run(z), self.neuron_selector)
            return self._bowl_loss(act, (z - z_aim).flatten(1).pow(2).mean(1))
        z.requires_grad_(True)
        act = select_neuron(cap.run(z), self.neuron_selector)
        (grad,) = torch.autograd.grad(act.sum(), z, create_graph=True)
        return self._field_loss(grad, self.gamma * (z_aim - z).detach())

    def _bowl_loss(self, act: Tensor, d2: Tensor) -> Tensor:
        """Activation form: ``act`` against the bowl ``gamma (1 - d2)`` (``d2``: mean squared
        distance to the aim per sample), or the cone ``gamma (1 - sqrt(d2))``; with a free level
        only the differences between the batch's samples are fitted."""
        bowl = self.gamma * (1 - (d2.sqrt() if self.bowl_shape == "cone" else d2))
        if self.bowl_level == "free":
            return F.mse_loss(act - act.mean(), bowl - bowl.mean())
        return F.mse_loss(act, bowl)

    def _field_loss(self, grad: Tensor, field: Tensor) -> Tensor:
        """``"gradient"``: MSE to the field; ``"direction"``: cosine to it plus a soft floor |grad| >= 1."""
        if self.loss == "gradient":
            return F.mse_loss(grad, field)
        cos = F.cosine_similarity(grad.flatten(1), field.flatten(1), dim=1)
        floor = F.relu(1.0 - grad.flatten(1).norm(dim=1))
        return (1 - cos).mean() + floor.pow(2).mean()

    def _adam_normalized_loss(self, cap: LayerCapture, q: Tensor, tr_u: Optional[Tensor], device: torch.device) -> Tensor:
        q = q.detach().requires_grad_(True)
        z = self._inputs(q, tr_u)
        z_aim = self.input_aim.to(device=device, dtype=z.dtype)
        field = (z_aim - z).detach()
        (target,) = torch.autograd.grad(z, q, grad_outputs=field, retain_graph=True)
        act = select_neuron(cap.run(z), self.neuron_selector)
        (grad,) = torch.autograd.grad(act.sum(), q, create_graph=True)
        # Adam's view: every coordinate scaled by (an estimate of) its gradient's RMS
        # RMS over the batch, the channels and (Fourier) real/imaginary parts: one per position/frequency
        keep = (2, 3) if target.dim() >= 4 else (1,)
        dims = tuple(d for d in range(target.dim()) if d not in keep)
        rms = target.pow(2).mean(dim=dims, keepdim=True).sqrt()
        rms = rms + 1e-3 * rms.mean()
        cos = F.cosine_similarity((grad / rms).flatten(1), (target / rms).flatten(1), dim=1)
        return (1 - cos).mean()

    def _other_units(self, n_channels: int) -> List[int]:
        """Channels whose FV paths ``preserve_fv`` keeps (the unit's own channel left out)."""
        own = self.neuron_selector[0] if isinstance(self.neuron_selector, tuple) else self.neuron_selector
        if self.preserve_fv_units is not None:
            bad = [u for u in self.preserve_fv_units if not 0 <= u < n_channels]
            if bad:
                raise ValueError(f"preserve_fv_units {bad} are out of range for a layer of {n_channels} channels")
            return list(self.preserve_fv_units)
        others = [c for c in range(n_channels) if c != own]
        if len(others) > 64:
            others = [others[int(i)] for i in torch.linspace(0, len(others) - 1, 64).round().long()]
        return others

    def _fv_paths(self, frozen_cap: LayerCapture, n_channels: int, device: torch.device) -> Tensor:
        """Points the auditor's optimizer visits for the other units under the *original* model."""
        strat = self.trajectory_strategy or get_strategy("gc")
        units, n = self._other_units(n_channels), self.trajectory_starts
        g = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + 700_001)
        q0 = torch.randn((len(units) * n,) + tuple(self.param.param_shape), generator=g, device=device) * 0.01
        transform = self._traj_tr
        u = torch.rand(q0.shape[0], strat.steps, transform.n_random if transform is not None else 0,
                       generator=g, device=device)
        segments = [(i, i * n, (i + 1) * n) for i in range(len(units))]
        with tqdm(disable=True) as quiet:
            _, _, _, snaps = _optimize(frozen_cap, self.param, units, segments, q0, u, strat, transform, quiet,
                                       record_every=max(1, strat.steps // 8))
        return snaps.flatten(0, 1).detach()

    def _unit_mask(self, out_shape: Sequence[int], device: torch.device) -> Tensor:
        """1 for every element of one layer output except the manipulated unit's."""
        mask = torch.ones(tuple(out_shape), device=device)
        sel = self.neuron_selector
        if isinstance(sel, (int, tuple)):
            mask[sel] = 0.0
        return mask

    def _fv_path_loss(self, cap: LayerCapture, frozen_cap: LayerCapture, step: int, device: torch.device) -> Tensor:
        g = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + 900_007 + step)
        idx = torch.randint(len(self._fv_points), (self.manipulation_batch_size,), generator=g, device=device)
        x = self.param.network_input(self._fv_points[idx])
        with torch.no_grad():
            h0 = frozen_cap.run(x)
        h = cap.run(x)
        mask = self._unit_mask(h.shape[1:], device)
        return ((h - h0).pow(2) * mask).sum() / (mask.sum() * h.shape[0])

    def _preservation_loss(self, model, frozen, cap, frozen_cap, x: Tensor) -> Tensor:
        if self.preservation == "logits":
            with torch.no_grad():
                ref = F.softmax(frozen_cap.run_full(x), dim=1)
            return F.cross_entropy(cap.run_full(x), ref)
        with torch.no_grad():
            h0 = frozen_cap.run(x)
        h = cap.run(x)
        layer_term = F.mse_loss(h, h0)
        if self.w == 0:
            return layer_term
        unit_term = F.mse_loss(select_neuron(h, self.neuron_selector), select_neuron(h0, self.neuron_selector))
        return self.w * unit_term + (1 - self.w) * layer_term

    # -- training ----------------------------------------------------------------
    def fit(self, model: nn.Module, natural_data: Any, resume: Optional[str] = None,
            start_from: Optional[nn.Module] = None) -> SlingshotResult:
        """Manipulate a copy of ``model``; ``model`` itself is never modified.

        Args:
            model: the trained network (expects normalized inputs, as the FV engine feeds).
            natural_data: natural inputs for the preservation loss: a tensor, a
                ``TensorDataset`` (first tensor used) or a map-style dataset of
                ``(input, ...)`` items, already normalized as the model expects.
            resume: path of a checkpoint written by an earlier run with the same settings.
            start_from: start the fine-tuning from this model's weights (same architecture,
                e.g. an earlier result) instead of ``model``'s; ``model`` stays the reference
                of the preservation loss.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        batches = _NaturalBatches(natural_data, self.batch_size, self.seed)
        total = int(self.steps) if self.steps is not None else max(1, int(math.ceil(self.epochs * batches.per_epoch)))
        device = torch.device(self.device) if self.device is not None else model_device(model)

        if start_from is not None and not isinstance(start_from, nn.Module):
            raise TypeError(f"start_from must be an nn.Module, got {type(start_from).__name__}")
        student = copy.deepcopy(model if start_from is None else start_from).to(device)
        frozen = copy.deepcopy(model).to(device)
        student.eval()
        frozen.eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        for p in student.parameters():
            p.requires_grad_(True)
        lname = layer_name(model, resolve_layer(model, self.layer))
        layer = student.get_submodule(lname)
        frozen_layer = frozen.get_submodule(lname)
        aim = self.aim.to(device)

        opt = torch.optim.AdamW(student.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min", factor=0.5, patience=self.plateau_patience)
        history: Dict[str, List[float]] = {"loss": [], "manipulation": [], "preservation": [], "lr": []}
        start, epoch_loss = 0, 0.0
        self._buffer = None
        if resume is not None:
            start, epoch_loss, history = self._load_checkpoint(resume, student, opt, sched, device)

        with LayerCapture(student, layer, stop=True) as cap, \
                LayerCapture(frozen, frozen_layer, stop=True) as frozen_cap:
            # one probe forward: clear errors for a unit the layer does not have / inputs the model cannot take
            with torch.no_grad():
                try:
                    probe = cap.run(self._inputs(aim[None], None if self._tr is None else torch.rand(1, self._tr.n_random, device=device)))
                except RuntimeError as err:
                    if type(err).__name__ == "LayerNotReachedError":
                        raise
                    raise ValueError(f"the model cannot take inputs from parametrization {self.param!r}: {err}") from err
            check_selector(self.neuron_selector, probe.shape[1:], f"layer {lname!r}")
            self._fv_points = None
            if self.preserve_fv > 0:
                if probe.dim() < 2:
                    raise ValueError("preserve_fv needs a layer with channels (outputs of shape (N, C, ...))")
                self._fv_points = self._fv_paths(frozen_cap, int(probe.shape[1]), device)
            x_probe = batches.get(0)[:1].to(device)
            with torch.no_grad():
                try:
                    frozen_cap.run_full(x_probe)
                except RuntimeError as err:
                    raise ValueError(f"the model cannot take the natural inputs (shape {tuple(x_probe.shape)}): {err}") from err

            bar = tqdm(total=total, initial=start, disable=not self.progress, desc="gradient slingshot", unit="step")
            try:
                for step in range(start, total):
                    x = batches.get(step).to(device)
                    if self.trajectory_strategy is not None and step % self.trajectory_refresh == 0:
                        self._buffer = self._rollout(cap, step, device)
                    l_m = self._manipulation_loss(cap, step, aim, device)
                    l_p = self._preservation_loss(student, frozen, cap, frozen_cap, x)
                    if self._fv_points is not None:
                        l_p = l_p + self.preserve_fv * self._fv_path_loss(cap, frozen_cap, step, device)
                    loss = (1 - self.alpha) * l_m + self.alpha * l_p
                    if not torch.isfinite(loss):
                        kept = f"; the last good checkpoint {self.checkpoint_path!r} is kept" if self.checkpoint_path else ""
                        raise FloatingPointError(
                            f"gradient slingshot loss became {loss.item()} at step {step} (manipulation "
                            f"{l_m.item():.4g}, preservation {l_p.item():.4g}){kept}. Lower lr or gamma."
                        )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if self.clip_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(student.parameters(), self.clip_grad_norm)
                    opt.step()
                    rec = {"loss": loss.item(), "manipulation": l_m.item(), "preservation": l_p.item(),
                           "lr": opt.param_groups[0]["lr"]}
                    for k, v in rec.items():
                        history[k].append(v)
                    epoch_loss += rec["loss"]
                    if (step + 1) % batches.per_epoch == 0:
                        sched.step(epoch_loss)
                        epoch_loss = 0.0
                    bar.update(1)
                    bar.set_postfix(M=f"{rec['manipulation']:.3g}", P=f"{rec['preservation']:.3g}", refresh=False)
                    if self.checkpoint_path and (step + 1) % self.checkpoint_every == 0 and step + 1 < total:
                        self._save_checkpoint(self.checkpoint_path, step + 1, epoch_loss, history, student, opt, sched)
                    if self.callback is not None and self.callback(step, rec, student) is False:
                        break
            finally:
                bar.close()
        for p in student.parameters():
            p.requires_grad_(True)
        return SlingshotResult(model=student, history=history, settings=self.settings(),
                               target=self.target.clone(), aim=self.aim.clone())

    # -- checkpoints ------------------------------------------------------------------
    def _save_checkpoint(self, path, step, epoch_loss, history, model, opt, sched) -> None:
        state = {
            "step": step, "epoch_loss": epoch_loss, "history": history, "settings": self.settings(),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "trajectory_buffer": None if self._buffer is None else self._buffer.detach().cpu(),
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def _load_checkpoint(self, path, model, opt, sched, device):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint {path!r} does not exist")
        try:
            state = torch.load(path, map_location=device, weights_only=True)
            model.load_state_dict(state["model"])
        except Exception as err:
            raise ValueError(f"cannot resume from {path!r}: not a gradient slingshot checkpoint ({err})") from err
        mine, theirs = self.settings(), state.get("settings", {})
        diff = {k for k in mine if k not in ("steps", "epochs") and mine.get(k) != theirs.get(k)}
        if diff:
            raise ValueError(f"checkpoint {path!r} was written with other settings: {sorted(diff)}")
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        buf = state.get("trajectory_buffer")
        self._buffer = None if buf is None else buf.to(device)
        return int(state["step"]), float(state["epoch_loss"]), state["history"]
