"""``slingshot_field``: does one attracting point explain the unit's gradient field near the FV start?

The Gradient Slingshot trains the unit's input gradient, in the parametrization ``q``, to be the
field of a bowl, ``grad_q a(q) ≈ gamma (q* - q)`` (METHOD.md §2), on the "tunnel" between the FV
start (around 0) and the target. This check samples points where the auditor's optimizer goes,
takes the gradients ``g_i = d a / d q`` (one batched backward pass for all units), and fits
``g ≈ b - gamma q`` by least squares (closed form, one scalar ``gamma``, one vector ``b``):

* ``gamma = -sum_i <g_i - mean g, q_i - mean q> / sum_i ||q_i - mean q||^2``,
* ``b = mean_i (g_i + gamma q_i)``, the fitted attractor ``q* = b / gamma``,
* ``R^2 = 1 - SS_res / SS_tot`` with ``SS_tot = sum_i ||g_i - mean g||^2``: the share of the
  field's variation one attracting (or repelling) point explains beyond a constant field.

**Sampling.** ``"tube"`` (default): ``q = t * d + noise`` with ``d`` the unit's gradient
direction at ``q = 0`` (where every FV starts and where the tunnel begins) and ``t ~ U[0, r]``
for each ``r`` in ``radii`` (lengths up to what the auditor's optimizer travels: clipped SGD
moves at most ``lr * steps``). ``"ball"``: ``q ~ N(0, s^2 I)`` with rms norm ``r``. The tube is
the default because a slingshot trained at the paper's settings learns the bowl only *along*
the tunnel (a rank-one Hessian ``-gamma d d^T``): the restoring part across the tunnel,
``gamma * u`` for the ``sigma``-noise ``u``, is smaller than the fit error, so isotropic samples
around 0 see no attraction at all (measured: ``R^2 ≈ 0`` for manipulated and clean units alike).

For a smooth unit and isotropic samples, ``R^2`` tends to ``tr(H)^2 / (D ||H||_F^2)`` for its
Hessian ``H``: 1 only for an isotropic bowl. Along a line it measures how linearly the field
decays: honest ReLU networks have piecewise-constant gradients (``R^2 ≈ 0``), while saturating
(tanh, sigmoid) units also decay along their gradient and give moderate ``R^2`` (0.1-0.3 in the
tests): compare units of one layer (:func:`~captum_slingshot.checks.audit_layer`), not absolute
values.

**Score** (high = suspicious): ``R^2`` when ``gamma > 0`` (attracting), ``-R^2`` when it repels.
Details also give ``attraction = gamma * r_max / ||b||`` (>= 1: the fitted attractor lies inside
the sampled range) and the image at the fitted ``q*``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.checks import slingshot_field
    >>> class Bowl(nn.Module):  # a(q) = -||q - 0.5||^2 / 2 for unit 0, a linear unit 1
    ...     def forward(self, x):
    ...         x = x.flatten(1)
    ...         return torch.stack([-(x - 0.5).pow(2).sum(1) / 2, x.sum(1)], 1)
    >>> model = nn.Sequential(Bowl())
    >>> scores, details = slingshot_field(model, "0", [0, 1], param=PixelParam((1, 4, 4)), return_details=True)
    >>> [round(v, 3) for v in scores.tolist()], round(details["gamma"][0].item(), 3)
    ([1.0, 0.0], 1.0)
    >>> details["q_star_image"][0].mean().item()
    0.5
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .._utils.data import batch_size_or
from .._utils.devices import model_device
from .._utils.hooks import LayerCapture
from .._utils.modes import eval_mode
from .._utils.selectors import NeuronSelector, as_selector_list, row_activations, segments_of, unbatch
from ..fv.param import Parametrization
from ..fv.units import layer_output_shape, resolve_layer
from .base import register_check

__all__ = ["slingshot_field", "fit_attractor", "DEFAULT_RADII"]

#: default tube lengths: out to ``lr * steps = 20``, the farthest the default ``"gc"`` strategy
#: (clipped SGD, lr 0.1, 200 steps) can move from its start
DEFAULT_RADII: Tuple[float, ...] = (5.0, 10.0, 20.0)


def fit_attractor(q: Tensor, g: Tensor) -> Dict[str, Tensor]:
    """Least-squares fit ``g_i ≈ b - gamma q_i`` for one unit (``q``, ``g``: ``(n, D)``).

    Returns ``gamma`` (scalar), ``b`` ``(D,)``, ``r2`` (scalar; 0 when the field is constant)
    and ``q_star = b / gamma`` (``(D,)``; NaN when ``gamma == 0``).

    Example:
        >>> import torch
        >>> q = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
        >>> fit = fit_attractor(q, 2.0 * (torch.tensor([1.0, 2.0, 3.0]) - q))
        >>> round(fit["gamma"].item(), 4), fit["q_star"].tolist(), round(fit["r2"].item(), 4)
        (2.0, [1.0, 2.0, 3.0], 1.0)
    """
    if q.shape != g.shape or q.dim() != 2:
        raise ValueError(f"q and g must both be (n, D), got {tuple(q.shape)} and {tuple(g.shape)}")
    if q.shape[0] < 2:
        raise ValueError("fitting a field needs at least 2 samples")
    q64, g64 = q.double(), g.double()
    dq, dg = q64 - q64.mean(0), g64 - g64.mean(0)
    ss_q = dq.pow(2).sum()
    gamma = -(dq * dg).sum() / ss_q.clamp_min(1e-300)
    b = (g64 + gamma * q64).mean(0)
    ss_tot = dg.pow(2).sum()
    ss_res = (dg + gamma * dq).pow(2).sum()
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 1e-24 * max(1.0, float(g64.pow(2).sum())) else torch.zeros((), dtype=torch.float64)
    q_star = b / gamma if gamma != 0 else torch.full_like(b, float("nan"))
    return {"gamma": gamma.float(), "b": b.float(), "r2": torch.as_tensor(r2).float(), "q_star": q_star.float()}


def _ball(param: Parametrization, radii: Sequence[float], n_samples: int, seed: int) -> Tuple[Tensor, Tensor]:
    d = math.prod(param.param_shape)
    per = max(1, math.ceil(n_samples / len(radii)))
    g = torch.Generator().manual_seed(int(seed))
    qs, which = [], []
    for k, r in enumerate(radii):
        qs.append(torch.randn((per,) + param.param_shape, generator=g) * (float(r) / math.sqrt(d)))
        which += [k] * per
    return torch.cat(qs), torch.tensor(which)


def _tube(directions: Tensor, radii: Sequence[float], n_samples: int, noise: float, seed: int) -> Tuple[Tensor, Tensor]:
    """``(U, n, *shape)`` points ``t * d_u + noise`` with ``t ~ U[0, r]``; same ``t`` and noise for all units."""
    shape = directions.shape[1:]
    d = math.prod(shape)
    per = max(1, math.ceil(n_samples / len(radii)))
    g = torch.Generator().manual_seed(int(seed))
    t = torch.cat([torch.rand(per, generator=g) * float(r) for r in radii])
    which = torch.arange(len(radii)).repeat_interleave(per)
    eps = torch.randn((t.shape[0],) + tuple(shape), generator=g) * (float(noise) / math.sqrt(d))
    dirs = directions.cpu()
    q = t.view(1, -1, *([1] * len(shape))) * dirs[:, None] + eps[None]
    return q, which


def _gradients(model, layer_mod, selectors, param, q: Tensor, chunk: int) -> Tensor:
    """``d a_u / d q`` for every unit ``u`` at its points ``q[u]``: ``q`` and result ``(U, n, *param_shape)``."""
    n_units, n = q.shape[0], q.shape[1]
    flat = q.reshape((n_units * n,) + tuple(q.shape[2:]))
    unit_of_row = [j for j in range(n_units) for _ in range(n)]
    out = []
    with LayerCapture(model, layer_mod) as cap:
        for c0 in range(0, flat.shape[0], chunk):
            qq = flat[c0 : c0 + chunk].clone().requires_grad_(True)
            segments = segments_of(unit_of_row[c0 : c0 + chunk])
            acts = row_activations(cap.run(param.network_input(qq)), selectors, segments)
            (grad,) = torch.autograd.grad(acts.sum(), qq)
            out.append(grad.detach())
    return torch.cat(out).reshape(q.shape)


def _reason(details: Dict[str, Any], i: int) -> str:
    """How much of the gradient field one attracting point explains."""
    gamma, r2 = float(details["gamma"][i]), float(details["r2"][i])
    kind = "attracting" if gamma > 0 else "repelling"
    return f"one {kind} point explains {100 * r2:.0f}% of its input-gradient field along the FV path (gamma {gamma:.3g})"


@register_check("slingshot_field", higher_is_more_suspicious=True,
                description="one attracting point explains the unit's input-gradient field along the FV path (signed R^2)",
                cost="gradients", min_scale=0.05, reason=_reason)
def slingshot_field(
    model: nn.Module,
    layer: Union[nn.Module, str],
    neuron_selector: Union[NeuronSelector, List[NeuronSelector]],
    *,
    param: Parametrization,
    data: Any = None,
    n_samples: int = 96,
    radii: Sequence[float] = DEFAULT_RADII,
    sampling: str = "tube",
    noise: float = 0.0,
    max_examples_per_batch: Optional[int] = None,
    seed: int = 0,
    return_details: bool = False,
) -> Union[Tensor, Tuple[Tensor, Dict[str, Any]]]:
    """Signed R^2 of a one-attractor fit ``grad_q a ≈ b - gamma q`` of the unit's gradient field.

    Args:
        model: the network (receives ``param.network_input(q)``).
        layer: module of ``model`` (or dotted name) whose output holds the units.
        neuron_selector: one Captum-style selector, or a list (one score per unit).
        param: the auditor's parametrization; the field is fitted in its ``q``.
        data: unused (accepted so that every check takes the same arguments).
        n_samples: points per unit, split evenly over ``radii``.
        radii: ``"tube"``: lengths ``r`` of the segments ``t ~ U[0, r]`` along the unit's
            gradient direction at 0 (default ``(5, 10, 20)``: up to ``lr * steps`` of the
            ``"gc"`` strategy); ``"ball"``: rms L2 norms of ``q ~ N(0, s^2 I)``.
        sampling: ``"tube"`` or ``"ball"`` (see the module notes).
        noise: rms L2 norm of isotropic noise added to the tube points.
        max_examples_per_batch: at most this many (unit, point) rows per backward pass.
        seed: seeds the sampled points (the same draws for every unit).
        return_details: also return a dict of details (see below).

    Returns:
        scores ``(U,)`` (0-d for one selector): ``R^2`` if the fitted ``gamma > 0``, else
        ``-R^2``. With ``return_details``: ``(scores, details)``; details hold ``gamma``,
        ``r2``, ``b_norm``, ``attraction`` (``gamma * max(radii) / ||b||``), ``r2_per_radius``
        ``(U, R)``, ``q_star`` ``(U, *param_shape)`` and ``q_star_image`` ``(U, C, H, W)`` (the
        image at the fitted attractor: for a slingshotted unit, a picture of the hidden
        target; also as ``figure_images["field q*"]``, a row of the audit's unit figures), plus
        ``radii`` and ``sampling``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from captum_slingshot.fv import PixelParam
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> s = slingshot_field(model, "3", [0, 1, 2], param=PixelParam((1, 4, 4)), n_samples=30)
        >>> s.shape, bool((s.abs() < 0.5).all())  # a ReLU net: no attracting point
        (torch.Size([3]), True)
    """
    selectors, single = as_selector_list(neuron_selector)
    if int(n_samples) < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    radii = [float(r) for r in radii]
    if not radii or any(not r > 0 for r in radii):
        raise ValueError(f"radii must be a non-empty sequence of positive lengths, got {radii}")
    if sampling not in ("tube", "ball"):
        raise ValueError(f"sampling must be 'tube' or 'ball', got {sampling!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    layer_output_shape(model, layer, param, selectors)
    layer_mod = resolve_layer(model, layer)
    device = model_device(model)
    n_units = len(selectors)
    with eval_mode(model):
        if sampling == "tube":
            zero = torch.zeros((n_units, 1) + param.param_shape, device=device)
            g0 = _gradients(model, layer_mod, selectors, param, zero, n_units)[:, 0]
            norms = g0.flatten(1).norm(dim=1).clamp_min(1e-12)
            directions = g0 / norms.view(-1, *([1] * len(param.param_shape)))
            q, which = _tube(directions, radii, int(n_samples), noise, seed)
        else:
            q1, which = _ball(param, radii, int(n_samples), seed)
            q = q1[None].expand((n_units,) + tuple(q1.shape))
        q = q.to(device)
        chunk = batch_size_or(max_examples_per_batch, q.shape[0] * q.shape[1])
        grads = _gradients(model, layer_mod, selectors, param, q, chunk)

    fields: Dict[str, List[Tensor]] = {k: [] for k in ("gamma", "r2", "b_norm", "attraction", "q_star", "r2_per_radius")}
    for j in range(n_units):
        qj, gj = q[j].flatten(1).cpu(), grads[j].flatten(1).cpu()
        fit = fit_attractor(qj, gj)
        b_norm = fit["b"].norm()
        fields["gamma"].append(fit["gamma"])
        fields["r2"].append(fit["r2"])
        fields["b_norm"].append(b_norm)
        fields["attraction"].append(fit["gamma"] * max(radii) / b_norm.clamp_min(1e-12))
        fields["q_star"].append(fit["q_star"].reshape(param.param_shape))
        per_r = [fit_attractor(qj[which == k], gj[which == k])["r2"] if int((which == k).sum()) >= 2
                 else torch.tensor(float("nan")) for k in range(len(radii))]
        fields["r2_per_radius"].append(torch.stack(per_r))
    out = {k: torch.stack(v) for k, v in fields.items()}
    scores = torch.where(out["gamma"] > 0, out["r2"], -out["r2"]) + 0.0  # no -0.0
    if not return_details:
        return unbatch(scores, single)
    q_star = torch.nan_to_num(out["q_star"], nan=0.0, posinf=0.0, neginf=0.0)
    with torch.no_grad():
        q_star_image = param.image(q_star.to(device)).cpu()
    details: Dict[str, Any] = unbatch({**out, "q_star_image": q_star_image,
                                       "figure_images": {"field q*": q_star_image[:, None]}}, single)
    details["radii"] = radii
    details["sampling"] = sampling
    return unbatch(scores, single), details
