"""Explanation drift: how far a fine-tune moved the maps away from those of the model it started from.

Passive attribution fooling (Heo et al.'s location, top-k and centre-of-mass modes) exists to move
the map of every input away from where the original model put it, and a fine-tune that only keeps
the model's accuracy moves it much less. Given the model *before* the fine-tune (``original_func``:
its explanation function), the score of each input is ``1 - rho``, with ``rho`` the Spearman rank
correlation of the model's map with the original's map of the same input and class. High is
suspicious; a fine-tune of your own that only keeps accuracy tells how much drift is normal (pass it
as the audit's ``reference``).

Example:
    >>> import torch
    >>> x = torch.rand(3, 1, 4, 4)
    >>> same = lambda inputs, target=None: inputs
    >>> explanation_drift(same, x, original_func=same).tolist()
    [0.0, 0.0, 0.0]
    >>> flipped = lambda inputs, target=None: -inputs
    >>> explanation_drift(flipped, x, original_func=same).tolist()
    [2.0, 2.0, 2.0]
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from torch import Tensor

from ...metrics.fooling import rank_correlation
from .base import Target, explanation_maps, register_attribution_check

__all__ = ["explanation_drift"]


@register_attribution_check("explanation_drift", higher_is_more_suspicious=True, needs_original=True, min_scale=0.1,
                            description="1 - rank correlation of each map with the original model's map of the "
                                        "same input (the model before the fine-tune)")
def explanation_drift(explanation_func: Callable[..., Any], inputs: Tensor, *, original_func: Callable[..., Any],
                      target: Target = None, max_examples_per_batch: Optional[int] = None) -> Tensor:
    """``(B,)``: ``1 - Spearman rho`` between ``explanation_func``'s map and ``original_func``'s map of each
    input for ``target`` (0: the original's ranking, 2: reversed). High is suspicious."""
    if not callable(original_func):
        raise TypeError("explanation_drift compares with the model before the fine-tune: original_func must be its "
                        f"explanation function (e.g. Saliency(original).attribute), got {type(original_func).__name__}")
    maps = explanation_maps(explanation_func, inputs, target, max_examples_per_batch)
    original = explanation_maps(original_func, inputs, target, max_examples_per_batch)
    return 1.0 - rank_correlation(maps, original)
