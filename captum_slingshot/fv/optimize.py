"""The auditor's optimizer as one public primitive: activation maximization of many rows at once.

:func:`optimize` runs an :class:`~captum_slingshot.fv.strategies.AMStrategy` (SGD or Adam, optional
per-row gradient clipping, optional per-row random transforms) on a batch of starts ``q0`` whose
rows may belong to different units of one layer. It is what :func:`~captum_slingshot.fv.render`
runs, and what an attack runs when it needs the points an auditor's FV visits (the Gradient
Slingshot's on-policy samples). Every row is independent: gradients are taken of the *sum* of
activations, clipping is per row and Adam is element-wise.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import LayerCapture, PixelParam, get_strategy
    >>> from captum_slingshot.fv.optimize import optimize
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> param = PixelParam((1, 4, 4))
    >>> with LayerCapture(model, model[1]) as cap:
    ...     trace = optimize(cap, param, [0, 2], torch.zeros(4, 1, 4, 4), get_strategy("gc", steps=5),
    ...                      unit_of_row=[0, 0, 1, 1], record_every=5)
    >>> trace.params.shape, trace.trajectory.shape, trace.snapshots.shape
    (torch.Size([4, 1, 4, 4]), torch.Size([4, 5]), torch.Size([4, 1, 1, 4, 4]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor

from .._utils.hooks import LayerCapture
from .._utils.selectors import row_activations, segments_of
from .param import Parametrization
from .strategies import AMStrategy
from .transforms import Compose

__all__ = ["OptimizationTrace", "optimize", "network_input", "clip_per_row"]


@dataclass
class OptimizationTrace:
    """What :func:`optimize` returns.

    Attributes:
        params: final ``q`` ``(N, *param_shape)``, detached.
        activations: each row's activation at its final ``q`` without transforms ``(N,)``.
        trajectory: the activation the optimizer saw at every step ``(N, steps)``.
        snapshots: ``q`` after every ``record_every``-th step ``(N, steps // record_every, *param_shape)``
            (``None`` when ``record_every`` is 0).
    """

    params: Tensor
    activations: Tensor
    trajectory: Tensor
    snapshots: Optional[Tensor] = None


def network_input(param: Parametrization, q: Tensor, transform: Optional[Compose] = None,
                  u: Optional[Tensor] = None) -> Tensor:
    """What the model sees for ``q``: ``normalize(transform(image(q), u))`` (no transform: ``param.network_input``)."""
    if transform is None:
        return param.network_input(q)
    return param.normalize(transform(param.raw_image(q), u))


def clip_per_row(grad: Tensor, max_norm: float) -> Tensor:
    """Each row of ``grad`` scaled down to L2 norm at most ``max_norm`` (the paper's GC)."""
    norms = grad.flatten(1).norm(dim=1)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    return grad * coef.view(-1, *([1] * (grad.dim() - 1)))


def optimize(
    capture: LayerCapture,
    param: Parametrization,
    neuron_selectors: Sequence[Any],
    q0: Tensor,
    strategy: AMStrategy,
    *,
    unit_of_row: Optional[Sequence[int]] = None,
    uniforms: Optional[Tensor] = None,
    transform: Optional[Compose] = None,
    record_every: int = 0,
    on_step: Optional[Callable[[int, Tensor], None]] = None,
) -> OptimizationTrace:
    """Maximize each row's unit from ``q0`` with the auditor's strategy.

    Args:
        capture: an open :class:`~captum_slingshot.fv.LayerCapture` on the model and the units' layer.
        param: the parametrization ``q -> image``.
        neuron_selectors: the units (Captum-style selectors of the captured layer).
        q0: starts ``(N, *param.param_shape)``.
        strategy: the AM strategy (optimizer, lr, steps, clipping).
        unit_of_row: which selector each row maximizes (default: all rows the first), rows of one
            unit next to each other.
        uniforms: ``(N, steps, transform.n_random)`` uniform numbers driving each row's random
            transforms at each step (needed when ``transform`` is given).
        transform: the random transforms (usually ``strategy.build_transforms((H, W))``).
        record_every: keep ``q`` after every this many steps (0: none).
        on_step: ``on_step(step, activations)`` after every step (progress bars, logging).

    Returns:
        :class:`OptimizationTrace`.
    """
    if transform is not None and uniforms is None:
        raise ValueError("optimize needs uniforms (N, steps, transform.n_random) to drive the random transforms")
    rows = q0.shape[0]
    segments = segments_of(list(unit_of_row) if unit_of_row is not None else [0] * rows)
    q = q0.clone().requires_grad_(True)
    snapshots = []
    opt = torch.optim.Adam([q], lr=strategy.lr) if strategy.optimizer == "adam" else None
    traj = torch.empty(rows, strategy.steps, device=q.device)
    for step in range(strategy.steps):
        inputs = network_input(param, q, transform, uniforms[:, step] if transform is not None else None)
        acts = row_activations(capture.run(inputs), neuron_selectors, segments)
        (grad,) = torch.autograd.grad(acts.sum(), q)
        if strategy.clip_grad_norm is not None:
            grad = clip_per_row(grad, strategy.clip_grad_norm)
        if opt is None:
            with torch.no_grad():
                q.add_(grad, alpha=strategy.lr)
        else:
            q.grad = -grad
            opt.step()
        traj[:, step] = acts.detach()
        if record_every and (step + 1) % record_every == 0:
            snapshots.append(q.detach().clone())
        if on_step is not None:
            on_step(step, traj[:, step])
    q = q.detach()
    with torch.no_grad():
        final = row_activations(capture.run(param.network_input(q)), neuron_selectors, segments)
    return OptimizationTrace(q, final, traj, torch.stack(snapshots, 1) if snapshots else None)
