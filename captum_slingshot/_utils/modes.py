"""Eval mode for the length of a block, with every module's own training flag restored after."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model: nn.Module, no_grad: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (and, with ``no_grad``, turn autograd off); restore every
    submodule's training flag afterwards, also when the block raises.

    Example:
        >>> from torch import nn
        >>> m = nn.Sequential(nn.Dropout(), nn.Linear(2, 2)).train()
        >>> m[1].eval()  # doctest: +ELLIPSIS
        Linear(...)
        >>> with eval_mode(m):
        ...     m.training, m[0].training
        (False, False)
        >>> m.training, m[0].training, m[1].training
        (True, True, False)
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            yield model
    finally:
        for m, flag in flags:
            m.training = flag
