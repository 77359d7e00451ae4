"""Class swap: on an image of two classes, the map of one class now ranks pixels like the original
model's map of the *other* class.

Active attribution fooling (Heo et al.) swaps the explanations of two chosen classes on images that
hold both, and leaves single inputs alone, so checks that look at single inputs cannot see it, and on
a model whose maps do not stay on their class (the paper's MNIST CNN) :func:`mosaic_focus` cannot
either. Given the model before the fine-tune (``original_func``), the swap can be measured directly:
each input ``i`` (class ``a``) is set beside a partner of every other class ``c`` on
:func:`~captum_slingshot.checks.attribution.focus_mosaics`' mosaics, and on each mosaic

    ``swap = rho(map of a, original map of c) - rho(map of a, original map of a)``

(Spearman; the quantity the active attack's own success score uses). An auditor does not know which
two classes were swapped, so the score of input ``i`` is the **largest** swap over its partners. High
is suspicious: a model that still explains class ``a`` like the original scores below 0.

Known limit: where the original's maps of two classes were already alike on such mosaics, swapping
them changes little, and the swap score hardly moves (nor does what a user sees).

Example:
    >>> import torch
    >>> x = torch.rand(4, 1, 8, 8)
    >>> t = torch.tensor([0, 1, 0, 1])
    >>> def original(inputs, target=None):             # class 0 lights the left half, class 1 the right
    ...     m = torch.zeros(inputs.shape[0], 8, 8)
    ...     for k, c in enumerate(torch.as_tensor(target).tolist()):
    ...         (m[k, :, :4] if c == 0 else m[k, :, 4:]).fill_(1.0)
    ...     return m + 0.01 * inputs[:, 0]
    >>> swapped = lambda inputs, target=None: original(inputs, 1 - torch.as_tensor(target))
    >>> bool((class_swap(original, x, original_func=original, target=t) < 0).all())
    True
    >>> bool((class_swap(swapped, x, original_func=original, target=t) > 0).all())
    True
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor

from ...metrics.fooling import rank_correlation
from .base import Target, explanation_maps, register_attribution_check
from .focus import focus_mosaics, mosaic_classes

__all__ = ["class_swap"]


@register_attribution_check("class_swap", higher_is_more_suspicious=True, needs_original=True, min_scale=0.05,
                            min_classes=2,
                            description="on two-class mosaics, the largest rank correlation of a class's map with "
                                        "the original model's map of the other class, minus that with its own")
def class_swap(explanation_func: Callable[..., Any], inputs: Tensor, *, original_func: Callable[..., Any],
               target: Target = None, max_examples_per_batch: Optional[int] = None) -> Tensor:
    """``(B,)``: for each input, the largest over partners of another class of
    ``rho(map, original map of the partner's class) - rho(map, original map of the input's class)`` on
    the mosaic of the two (see the module docstring). Needs ``target`` and inputs of at least two
    classes. High is suspicious."""
    if not callable(original_func):
        raise TypeError("class_swap compares with the model before the fine-tune: original_func must be its "
                        f"explanation function (e.g. Saliency(original).attribute), got {type(original_func).__name__}")
    mosaics, owner, _ = focus_mosaics(inputs, target)
    own, partner = mosaic_classes(inputs, target)
    maps = explanation_maps(explanation_func, mosaics, own, max_examples_per_batch)
    kept = rank_correlation(maps, explanation_maps(original_func, mosaics, own, max_examples_per_batch))
    taken = rank_correlation(maps, explanation_maps(original_func, mosaics, partner, max_examples_per_batch))
    return torch.full((inputs.shape[0],), float("-inf")).scatter_reduce(0, owner, taken - kept, reduce="amax")
