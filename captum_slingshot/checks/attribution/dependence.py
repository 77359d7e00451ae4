"""Input dependence: does the map follow what is in *this* input, or a fixed place?

An honest map of a digit or an object lies on it; a map fooled onto the frame, a corner or away
from the original's top pixels stops following the content. The content of input ``i`` is
``|x_i - median|`` (channels summed; the median over the batch, per pixel, is the "typical" image),
and the score is the rank correlation of the map with its own input's content minus the mean of
its correlations with the other inputs' contents: how much more the map follows its own input
than any input. Low is suspicious.

Example:
    >>> import torch
    >>> x = torch.zeros(3, 1, 6, 6); x[0, 0, 1, 1] = x[1, 0, 4, 4] = x[2, 0, 1, 4] = 1.0
    >>> follows = lambda inputs, target=None: inputs              # the map is the input itself
    >>> fixed = lambda inputs, target=None: torch.ones_like(inputs).cumsum(-1)   # the same map for all
    >>> bool((input_dependence(follows, x) > 0.3).all()), abs(input_dependence(fixed, x).mean().item()) < 1e-6
    (True, True)
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from torch import Tensor

from ...metrics.fooling import rank_correlation_matrix
from .base import Target, explanation_maps, register_attribution_check

__all__ = ["input_dependence", "input_content"]


def input_content(inputs: Tensor) -> Tensor:
    """``(B, H, W)``: how each input differs from the batch's per-pixel median, channels summed."""
    x = inputs.detach().float()
    if x.dim() == 3:
        x = x[:, None]
    return (x - x.median(0, keepdim=True).values).abs().sum(1)


@register_attribution_check("input_dependence", higher_is_more_suspicious=False, min_scale=0.05,
                            description="how much more the map follows its own input's content than other inputs'")
def input_dependence(explanation_func: Callable[..., Any], inputs: Tensor, *, target: Target = None,
                     max_examples_per_batch: Optional[int] = None) -> Tensor:
    """``(B,)``: ``rho(map_i, content_i) - mean_{j != i} rho(map_i, content_j)``. Needs at least two
    inputs. Low is suspicious."""
    if inputs.shape[0] < 2:
        raise ValueError("input_dependence compares each map with the other inputs: give at least 2 inputs")
    maps = explanation_maps(explanation_func, inputs, target, max_examples_per_batch)
    rho = rank_correlation_matrix(maps, input_content(inputs))  # rho[i, j] = rho(map_i, content_j)
    n = maps.shape[0]
    own = rho.diagonal()
    return own - (rho.sum(1) - own) / (n - 1)
