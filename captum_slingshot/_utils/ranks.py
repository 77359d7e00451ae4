"""Average ranks (ties share their mean rank) of every row at once: the one ranking behind Spearman's rho in
``metrics.fooling`` (maps, with ties from ReLU zeros) and ``checks.processing`` (units)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["average_ranks"]


def average_ranks(x: Tensor) -> Tensor:
    """``(N, D)`` -> ``(N, D)``: the 0-based rank of each entry in its row, tied entries sharing their mean rank.

    Example:
        >>> import torch
        >>> average_ranks(torch.tensor([[3.0, 1.0, 3.0, 2.0]])).tolist()
        [[2.5, 0.0, 2.5, 1.0]]
    """
    values, order = x.sort(1)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    group = starts.long().cumsum(1) - 1  # each sorted position's tie group, per row
    position = torch.arange(x.shape[1], dtype=x.dtype, device=x.device).expand_as(x)
    sums = torch.zeros_like(x).scatter_add_(1, group, position)
    counts = torch.zeros_like(x).scatter_add_(1, group, torch.ones_like(x))
    mean_rank = (sums / counts.clamp(min=1)).gather(1, group)
    return torch.empty_like(x).scatter_(1, order, mean_rank)
