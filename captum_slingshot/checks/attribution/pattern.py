"""Fixed pattern: the maps of different inputs look alike.

Location fooling draws the same frame or corner for every input; centre-of-mass fooling pushes
every map to the same side. The score is the rank correlation of each input's map with the mean
of the other inputs' maps. High is suspicious.

Example:
    >>> import torch
    >>> same = lambda inputs, target=None: torch.arange(16.0).view(1, 4, 4).expand(inputs.shape[0], 4, 4)
    >>> fixed_pattern(same, torch.rand(3, 1, 4, 4)).tolist()
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from torch import Tensor

from ...attributions.maps import normalize_maps
from ...metrics.fooling import rank_correlation
from .base import Target, explanation_maps, register_attribution_check

__all__ = ["fixed_pattern"]


@register_attribution_check("fixed_pattern", higher_is_more_suspicious=True, min_scale=0.05,
                            description="rank correlation of each map with the mean map of the other inputs")
def fixed_pattern(explanation_func: Callable[..., Any], inputs: Tensor, *, target: Target = None,
                  max_examples_per_batch: Optional[int] = None) -> Tensor:
    """``(B,)``: ``rho(map_i, mean_{j != i} map_j)`` (maps normalised to their positive part over the
    maximum first). Needs at least two inputs. High is suspicious."""
    if inputs.shape[0] < 2:
        raise ValueError("fixed_pattern compares each map with the other inputs' maps: give at least 2 inputs")
    maps = normalize_maps(explanation_maps(explanation_func, inputs, target, max_examples_per_batch))
    n = maps.shape[0]
    others = (maps.sum(0, keepdim=True) - maps) / (n - 1)
    return rank_correlation(maps, others)
