"""Mosaic focus: on an image of two classes, does the map of one class stay on that class?

Quantus' ``Focus`` (Arias-Duart et al., "Focus! Rating XAI Methods and Finding Biases", 2022)
shows a model a mosaic of images of different classes and measures the share of the explanation's
positive relevance that lies on the images of the class explained. Here each input ``i`` (of class
``c_i``, the target) is set beside a partner of another class ``c`` (both shrunk to half size,
side by side, as in :func:`~captum_slingshot.data.two_class_composites`), and the share of the map of ``c_i``
that lies on ``i``'s half is its focus. Active attribution fooling (Heo et al.) swaps the maps of
two classes on exactly such images and leaves single inputs alone, so it is invisible to checks
that look at single inputs; an auditor does not know which two classes were swapped, so every
input is set beside one partner of *every* other class in the batch, and its score is the
**smallest** focus over those partners (the worst pair). Low is suspicious.

The layout, fixed before any result: the partner of class ``c`` of input ``i`` is the
``(i mod n_c)``-th input of class ``c`` in batch order; input ``i`` goes on the left when ``i`` is
even, on the right when odd; the canvas is the darkest value of the batch (black, for normalised
images); a map with no positive relevance scores 0.5 (it points nowhere). Cost: ``K - 1`` maps
per input for ``K`` classes in the batch.

Known limit: the check needs maps that, on a clean model, stay on the class they explain. The
paper's MNIST CNN does not have them (Grad-CAM of its last convolution lies along the edges of a
two-digit image, LRP lights both digits: a trusted model keeps about 0.4 of its map on its own
half against its worst partner), and there the check does not tell active fooling from a plain
fine-tune (README, "Checks").

Example:
    >>> import torch
    >>> x = torch.zeros(4, 1, 8, 8); x[:, :, 2:6, 2:6] = 1.0            # a square in each input
    >>> honest = lambda inputs, target=None: inputs                      # the map is the input itself
    >>> mosaic_focus(honest, x, target=torch.tensor([0, 1, 0, 1])).tolist()
    [0.5, 0.5, 0.5, 0.5]
    >>> x[1::2] = 0.0; x[1::2, :, 3:5, 3:5] = 1.0                       # class 1: a smaller square
    >>> s = mosaic_focus(honest, x, target=torch.tensor([0, 1, 0, 1]))
    >>> [round(v, 1) for v in s.tolist()]
    [0.8, 0.2, 0.8, 0.2]
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import torch
from torch import Tensor

from ..._utils.composites import side_by_side
from .base import Target, explanation_maps, register_attribution_check

__all__ = ["mosaic_focus", "focus_mosaics", "mosaic_classes", "own_half_share"]


def _targets(inputs: Tensor, target: Target) -> Tensor:
    n = inputs.shape[0]
    if target is None:
        raise ValueError("mosaic_focus needs target= (one class per input: whose map is asked, and which inputs "
                         "are of another class to set beside it), e.g. the model's predictions")
    t = torch.as_tensor(target).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"target gives {t.numel()} classes for {n} inputs; give one per input")
    return t


def _layout(t: Tensor) -> Tuple[Tensor, Tensor]:
    """``(owner, partner)`` input indices of every mosaic (see the module docstring's layout)."""
    classes = t.unique()
    if classes.numel() < 2:
        raise ValueError(f"mosaic_focus sets each input beside an input of another class, but every input is of "
                         f"class {int(classes[0])}: give inputs of at least two classes")
    pools = {int(c): torch.nonzero(t == c).flatten() for c in classes}
    own, partner = [], []
    for i in range(t.shape[0]):
        for c, pool in pools.items():
            if c != int(t[i]):
                own.append(i)
                partner.append(int(pool[i % len(pool)]))
    return torch.tensor(own), torch.tensor(partner)


def mosaic_classes(inputs: Tensor, target: Target) -> Tuple[Tensor, Tensor]:
    """``(own (M,), partner (M,))``: the class of each :func:`focus_mosaics` mosaic's owner and of its partner.

    Example:
        >>> import torch
        >>> own, partner = mosaic_classes(torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]))
        >>> own.tolist(), partner.tolist()
        ([0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1])
    """
    t = _targets(inputs, target)
    owner, partner = _layout(t)
    return t[owner], t[partner]


def focus_mosaics(inputs: Tensor, target: Target) -> Tuple[Tensor, Tensor, Tensor]:
    """The mosaics of :func:`mosaic_focus`: ``(mosaics (M, C, H, W), owner (M,), on_left (M,))``, every input
    beside one partner of every other class in ``target``; ``owner`` is the input each mosaic scores.

    Example:
        >>> import torch
        >>> m, owner, left = focus_mosaics(torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]))
        >>> tuple(m.shape), owner.tolist(), left.tolist()
        ((6, 1, 8, 8), [0, 0, 1, 1, 2, 2], [True, True, False, False, True, True])
    """
    if not isinstance(inputs, Tensor) or inputs.dim() != 4 or min(inputs.shape[-2:]) < 4:
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be images (B, C, H, W) with H, W >= 4, got {shape}")
    t = _targets(inputs, target)
    owner, partner_idx = _layout(t)
    on_left = owner % 2 == 0
    x = inputs.detach()
    left = torch.where(on_left[:, None, None, None], x[owner], x[partner_idx])
    right = torch.where(on_left[:, None, None, None], x[partner_idx], x[owner])
    return side_by_side(left, right, background=float(x.min())), owner, on_left


def own_half_share(maps: Tensor, on_left: Tensor) -> Tensor:
    """``(M,)``: the share of each mosaic map's positive relevance on its owner's half (the left one where
    ``on_left``); with an odd width the canvas column between the halves counts for neither; a map with no
    positive relevance scores 0.5.

    Example:
        >>> import torch
        >>> maps = torch.tensor([[[1.0, 3.0]], [[0.0, -1.0]]])
        >>> own_half_share(maps, torch.tensor([True, True])).tolist()
        [0.25, 0.5]
    """
    maps = maps.clamp(min=0)
    w = maps.shape[-1]
    left, right = maps[..., : w // 2].flatten(1).sum(1), maps[..., w - w // 2:].flatten(1).sum(1)
    total = maps.flatten(1).sum(1)
    mine = torch.where(on_left, left, right)
    return torch.where(total > 0, mine / total.clamp(min=1e-12), torch.full_like(total, 0.5))


@register_attribution_check("mosaic_focus", higher_is_more_suspicious=False, min_scale=0.05, min_classes=2,
                            description="the smallest share of the map on its own input's half of a two-class "
                                        "mosaic, over partners of every other class (Quantus' Focus)")
def mosaic_focus(explanation_func: Callable[..., Any], inputs: Tensor, *, target: Target = None,
                 max_examples_per_batch: Optional[int] = None) -> Tensor:
    """``(B,)``: for each input, the smallest share of the positive relevance of its class's map that lies
    on its own half of a mosaic with a partner of another class (see the module docstring). Needs
    ``target`` and inputs of at least two classes. Low is suspicious."""
    mosaics, owner, on_left = focus_mosaics(inputs, target)
    t = _targets(inputs, target)
    share = own_half_share(explanation_maps(explanation_func, mosaics, t[owner], max_examples_per_batch), on_left)
    return torch.full((inputs.shape[0],), float("inf")).scatter_reduce(0, owner, share, reduce="amin")
