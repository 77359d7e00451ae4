"""Where the slingshot aims: ``q*`` in the parametrization and, in input space, ``z*``.

The target's own ``q`` (``param.inverse(target)``) can lie far out of the auditor's reach: the
MNIST cross sits 36 units from the FV start in normalized pixel space, while 200 steps of clipped
SGD with lr 0.1 move at most 20. :func:`reachable_aim` finds the point within a radius whose image
looks most like the target.

Example:
    >>> import torch
    >>> from captum_slingshot.fv import PixelParam
    >>> p = PixelParam((1, 4, 4))
    >>> target = torch.full((1, 4, 4), 0.9)
    >>> round(float(aim_point(p, target, Aim()).mean()), 4), round(float(aim_point(p, target, Aim(radius=1.0)).norm()), 3)
    (0.9, 1.0)
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ...fv.optimize import network_input
from ...fv.param import Parametrization, PixelParam
from ...fv.transforms import Compose
from .config import Aim
from .losses import InputSpace

__all__ = ["reachable_aim", "aim_point", "input_aim_point", "shrink"]


def shrink(param: Parametrization, x: Tensor) -> Tensor:
    """Sigmoid parametrizations never reach 0 or 1: shrink towards 0.5 by 1/1.01 as the paper does."""
    return x if isinstance(param, PixelParam) else 0.5 + (x - 0.5) / 1.01


def reachable_aim(param: Parametrization, target: Tensor, radius: float, steps: int = 1000) -> Tensor:
    """The point within ``radius`` of the origin whose image is closest to ``target``.

    Projected Adam on ``||image(q) - target||^2`` with a cosine-decaying step,
    started from the projection of ``inverse(target)`` onto the ball; the best
    feasible point seen is returned.
    """
    q_t = param.inverse(shrink(param, target)[None])[0]
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


def aim_point(param: Parametrization, target: Tensor, aim: Aim) -> Tensor:
    """``q*`` for ``target`` under ``aim`` (``(*param.param_shape)``, on the CPU)."""
    if aim.point is not None:
        if tuple(aim.point.shape) != tuple(param.param_shape):
            raise ValueError(f"the aim point has shape {tuple(aim.point.shape)}, the parametrization's q "
                             f"{tuple(param.param_shape)}")
        return aim.point.clone()
    if aim.radius is not None:
        return reachable_aim(param, target, aim.radius)
    return param.inverse(shrink(param, target)[None])[0]


def input_aim_point(space: InputSpace, param: Parametrization, aim: Tensor,
                    transform: Optional[Compose]) -> Tensor:
    """``z*``: the given one, or the aim point ``q*`` as the model sees it with every random transform at
    its middle value."""
    if space.aim is not None:
        return space.aim.clone()
    u_mid = None if transform is None else torch.full((1, transform.n_random), 0.5)
    with torch.no_grad():
        return network_input(param, aim[None], transform, u_mid)[0].detach().float().clone()
