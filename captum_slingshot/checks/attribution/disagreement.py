"""Interpreter disagreement: two attribution methods that normally agree no longer do.

Heo et al.'s attack fools the method it is trained against; the others mostly keep explaining the
model (their transfer FSR is low), so the fooled method's map parts from the rest. The score is
``1 - rho``, with ``rho`` the Spearman rank correlation of the two maps of each input.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum.attr import InputXGradient, Saliency
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x = torch.rand(4, 1, 4, 4)
    >>> s = interpreter_disagreement(Saliency(model).attribute, x, reference_func=InputXGradient(model).attribute,
    ...                              target=0)
    >>> s.shape, bool(((s >= 0) & (s <= 2)).all())
    (torch.Size([4]), True)
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from torch import Tensor

from ...metrics.fooling import rank_correlation
from .base import Target, explanation_maps, register_attribution_check

__all__ = ["interpreter_disagreement"]


@register_attribution_check("interpreter_disagreement", higher_is_more_suspicious=True, pairwise=True, min_scale=0.1,
                            description="1 - rank correlation between two interpreters' maps of the same input")
def interpreter_disagreement(explanation_func: Callable[..., Any], inputs: Tensor, *,
                             reference_func: Callable[..., Any], target: Target = None,
                             max_examples_per_batch: Optional[int] = None) -> Tensor:
    """``(B,)``: ``1 - Spearman rho`` between ``explanation_func``'s and ``reference_func``'s maps
    (0: same ranking, 1: unrelated, 2: reversed). High is suspicious."""
    a = explanation_maps(explanation_func, inputs, target, max_examples_per_batch)
    b = explanation_maps(reference_func, inputs, target, max_examples_per_batch)
    return 1.0 - rank_correlation(a, b)
