"""What the slingshot keeps: the model on natural data, and (optionally) the other units' FV paths.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import LayerCapture
    >>> model, frozen = nn.Sequential(nn.Linear(3, 2)), nn.Sequential(nn.Linear(3, 2))
    >>> _ = frozen.load_state_dict(model.state_dict())
    >>> with LayerCapture(model, "0") as cap, LayerCapture(frozen, "0") as cap0:
    ...     float(natural_loss(LayerMSE(), cap, cap0, torch.randn(4, 3), 0).detach())
    0.0
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..._utils.hooks import LayerCapture
from ..._utils.seeding import generator
from ..._utils.selectors import Token, select_neuron
from ...fv.optimize import optimize
from ...fv.param import Parametrization
from ...fv.strategies import AMStrategy
from .config import FVPaths, LayerMSE, LogitsCE, Trajectories

__all__ = ["natural_loss", "other_units", "fv_path_strategy", "fv_path_points", "fv_path_loss"]


def natural_loss(loss: Any, cap: LayerCapture, frozen_cap: LayerCapture, x: Tensor, neuron_selector: Any) -> Tensor:
    """The preservation loss on a natural batch ``x``: :class:`LayerMSE` or :class:`LogitsCE`."""
    if isinstance(loss, LogitsCE):
        with torch.no_grad():
            ref = F.softmax(frozen_cap.run_full(x), dim=1)
        return F.cross_entropy(cap.run_full(x), ref)
    assert isinstance(loss, LayerMSE)
    with torch.no_grad():
        h0 = frozen_cap.run(x)
    h = cap.run(x)
    layer_term = F.mse_loss(h, h0)
    if loss.w == 0:
        return layer_term
    unit_term = F.mse_loss(select_neuron(h, neuron_selector), select_neuron(h0, neuron_selector))
    return loss.w * unit_term + (1 - loss.w) * layer_term


def other_units(fv_paths: FVPaths, neuron_selector: Any, n_channels: int) -> List[Any]:
    """Channels whose FV paths are kept (the manipulated unit's own channel left out).

    For a :class:`~captum_slingshot.fv.Token` unit of a transformer, ``n_channels`` is the width
    ``D`` and the kept units are the other features of the same token, as ``Token`` selectors.

    Example:
        >>> from captum_slingshot.fv import Token
        >>> other_units(FVPaths(), 1, 3), other_units(FVPaths(), Token(1), 3)
        ([0, 2], [Token(0, token=0), Token(2, token=0)])
    """
    token = neuron_selector if isinstance(neuron_selector, Token) else None
    own = neuron_selector[0] if isinstance(neuron_selector, tuple) else neuron_selector
    if token is not None:
        own = token.feature if isinstance(token.feature, int) else None
    what = "features" if token is not None else "channels"
    if fv_paths.units is not None:
        bad = [u for u in fv_paths.units if not 0 <= u < n_channels]
        if bad:
            raise ValueError(f"preserve_fv_units {bad} are out of range for a layer of {n_channels} {what}")
        others = list(fv_paths.units)
    else:
        others = [c for c in range(n_channels) if c != own]
        if len(others) > 64:
            others = [others[int(i)] for i in torch.linspace(0, len(others) - 1, 64).round().long()]
    return others if token is None else [Token(c, token=token.token) for c in others]


def fv_path_strategy(fv_paths: FVPaths, trajectories: Optional[Trajectories]) -> AMStrategy:
    """The AM strategy of the kept paths: its own, else the trajectories', else ``gc``."""
    from ...fv.strategies import get_strategy

    if fv_paths.strategy is not None:
        return get_strategy(fv_paths.strategy)
    return trajectories.resolved() if trajectories is not None else get_strategy("gc")


def fv_path_points(fv_paths: FVPaths, trajectories: Optional[Trajectories], frozen_cap: LayerCapture,
                   param: Parametrization, neuron_selector: Any, n_channels: int, seed: int,
                   device: torch.device) -> Tensor:
    """Points the auditor's optimizer visits for the other units under the *original* model (8 per start)."""
    strategy = fv_path_strategy(fv_paths, trajectories)
    transform = strategy.build_transforms((param.height, param.width))
    if isinstance(neuron_selector, Token):  # (B, tokens, D): the units are the D features, not dim 1
        with torch.no_grad():
            n_channels = int(frozen_cap.run(param.network_input(
                torch.zeros((1,) + tuple(param.param_shape), device=device))).shape[-1])
    units = other_units(fv_paths, neuron_selector, n_channels)
    n = fv_paths.starts or (trajectories.starts if trajectories is not None else 8)
    g = generator(seed, "fv_paths", 0, device)
    q0 = torch.randn((len(units) * n,) + tuple(param.param_shape), generator=g, device=device) * 0.01
    u = torch.rand(q0.shape[0], strategy.steps, transform.n_random if transform is not None else 0,
                   generator=g, device=device)
    trace = optimize(frozen_cap, param, units, q0, strategy, unit_of_row=[i for i in range(len(units)) for _ in range(n)],
                     uniforms=u, transform=transform, record_every=max(1, strategy.steps // 8))
    return trace.snapshots.flatten(0, 1).detach()


def _unit_mask(out_shape: Sequence[int], neuron_selector: Any, device: torch.device) -> Tensor:
    """1 for every element of one layer output except the manipulated unit's."""
    mask = torch.ones(tuple(out_shape), device=device)
    if isinstance(neuron_selector, (int, tuple)):
        mask[neuron_selector] = 0.0
    elif isinstance(neuron_selector, Token) and isinstance(neuron_selector.feature, int):
        tok = slice(None) if neuron_selector.token is None else neuron_selector.token
        mask[tok, neuron_selector.feature] = 0.0
    return mask


def fv_path_loss(points: Tensor, cap: LayerCapture, frozen_cap: LayerCapture, param: Parametrization,
                 neuron_selector: Any, batch_size: int, seed: int, step: int, device: torch.device,
                 rows: slice = slice(None)) -> Tensor:
    """The other units' activations at ``batch_size`` of the kept points, against the original's (MSE);
    with ``rows``, only that share of the batch (one process's)."""
    g = generator(seed, "fv_path_batches", step, device)
    idx = torch.randint(len(points), (batch_size,), generator=g, device=device)[rows]
    x = param.network_input(points[idx])
    with torch.no_grad():
        h0 = frozen_cap.run(x)
    h = cap.run(x)
    mask = _unit_mask(h.shape[1:], neuron_selector, device)
    return ((h - h0).pow(2) * mask).sum() / (mask.sum() * h.shape[0])
