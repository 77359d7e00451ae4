"""How far a unit's ranking of natural images moved: Kendall's tau, top-k overlap, class shares of the top-k.

Nanfack et al. (AAAI 2024) measure their activation-maximization attacks by the rank correlation
of the unit's activations over a natural set before and after (Kendall's tau) and by the semantic
change of its top images (CLIP). Without CLIP weights offline, :func:`class_shares` stands in for
the semantic measure on labelled data: the share of each class among the top-k images (how much
of the unit's apparent concept is the protected or the decoy class).

* :func:`kendall_tau` -- Kendall's tau-b of two score vectors (ties handled; ``O(n^2)`` in chunks);
* :func:`class_shares` -- the class composition of a set of top images;
* :func:`ranking_change` -- both models' activations over ``data``: tau, top-k Jaccard and class shares.

Conventions for units and ``data``: see :mod:`captum_slingshot.metrics`.

Example:
    >>> import torch
    >>> kendall_tau(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0]))
    1.0
    >>> kendall_tau(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0]))
    -1.0
    >>> class_shares(torch.tensor([0, 1, 2, 3]), torch.tensor([1, 1, 0, 1]), num_classes=2).tolist()
    [0.25, 0.75]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor, nn

from .._utils.data import Data, iter_batches, positive_int
from .activations import Device, Layer, unit_activations
from .topk import TopK, jaccard

__all__ = ["kendall_tau", "class_shares", "ranking_change", "RankingChange"]


def kendall_tau(a: Tensor, b: Tensor, chunk: int = 256) -> float:
    """Kendall's tau-b between two score vectors of the same length (e.g. a unit's activations on a
    natural set before and after a manipulation).

    ``tau_b = sum_{i<j} sign(a_i - a_j) sign(b_i - b_j) / sqrt(T_a T_b)`` with ``T`` the number of
    pairs not tied in each vector: 1 for the same order, -1 for the reversed one.

    Raises:
        ValueError: different lengths, fewer than 2 scores, non-finite scores, or a constant vector
            (tau is undefined).

    Example:
        >>> import torch
        >>> round(kendall_tau(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 3.0, 2.0, 4.0])), 4)
        0.6667
    """
    a, b = torch.as_tensor(a).flatten().double(), torch.as_tensor(b).flatten().double()
    if a.numel() != b.numel():
        raise ValueError(f"kendall_tau needs two vectors of the same length, got {a.numel()} and {b.numel()}")
    if a.numel() < 2:
        raise ValueError("kendall_tau needs at least 2 scores")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("kendall_tau: the scores must be finite")
    chunk = positive_int(chunk, "chunk")
    s = ta = tb = 0.0
    for i in range(0, a.numel(), chunk):
        da = torch.sign(a[i:i + chunk, None] - a[None])
        db = torch.sign(b[i:i + chunk, None] - b[None])
        s += float((da * db).sum())
        ta += float(da.abs().sum())
        tb += float(db.abs().sum())
    if ta == 0 or tb == 0:
        raise ValueError("kendall_tau is undefined when one of the vectors is constant")
    return s / (ta * tb) ** 0.5


def class_shares(top: Union[TopK, Tensor], labels: Tensor, num_classes: Optional[int] = None) -> Tensor:
    """The share of each class among the images at positions ``top`` (a :class:`TopK` or indices):
    ``(num_classes,)``, summing to 1 (``num_classes`` default: ``labels.max() + 1``)."""
    idx = (top.indices if isinstance(top, TopK) else torch.as_tensor(top)).flatten().long().cpu()
    labels = torch.as_tensor(labels).flatten().long().cpu()
    if idx.numel() == 0:
        raise ValueError("class_shares: no top images")
    if int(idx.max()) >= labels.numel() or int(idx.min()) < 0:
        raise ValueError(f"class_shares: positions must index the {labels.numel()} labels, got {int(idx.min())}.."
                         f"{int(idx.max())}")
    n = int(labels.max()) + 1 if num_classes is None else positive_int(num_classes, "num_classes")
    if int(labels.max()) >= n:
        raise ValueError(f"class_shares: labels go up to {int(labels.max())} but num_classes={n}")
    return torch.bincount(labels[idx], minlength=n).float() / idx.numel()


@dataclass
class RankingChange:
    """What :func:`ranking_change` returns.

    Attributes:
        kendall_tau: Kendall's tau-b of the unit's activations before/after over the data.
        jaccard: overlap of the top-k sets before/after.
        top_before / top_after: the top-k before and after.
        shares_before / shares_after: class shares of the two top-k sets (``None`` without labels).
    """

    kendall_tau: float
    jaccard: float
    top_before: TopK
    top_after: TopK
    shares_before: Optional[Tensor] = None
    shares_after: Optional[Tensor] = None


def _top(acts: Tensor, k: int) -> TopK:
    order = torch.sort(acts, descending=True, stable=True).indices[:k]
    return TopK(values=acts[order].clone(), indices=order.clone())


def ranking_change(before: nn.Module, after: nn.Module, layer: Layer, neuron_selector, data: Data, k: int = 50,
                   max_examples_per_batch: int = 256, device: Device = None) -> RankingChange:
    """How a unit's ranking of ``data`` changed between two models of the same architecture.

    Args:
        before: the original model; after: the manipulated one.
        layer: the layer (a dotted name, found in both models).
        neuron_selector: one selector.
        data: natural data; labelled data adds the class shares of both top-k sets.
        k: the top-k size.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Sequential(nn.Linear(3, 2))
        >>> x, y = torch.randn(30, 3, generator=torch.Generator().manual_seed(0)), torch.arange(30) % 2
        >>> r = ranking_change(m, m, "0", 0, (x, y), k=5)
        >>> r.kendall_tau, r.jaccard, float(r.shares_before.sum())
        (1.0, 1.0, 1.0)
    """
    k = positive_int(k, "k")
    if not isinstance(layer, str):
        raise TypeError("ranking_change needs the layer's dotted name (it is looked up in both models)")
    a0 = unit_activations(before, layer, neuron_selector, data, max_examples_per_batch, device)
    a1 = unit_activations(after, layer, neuron_selector, data, max_examples_per_batch, device)
    if a0.dim() != 1:
        raise ValueError("ranking_change takes one neuron_selector")
    if k > a0.numel():
        raise ValueError(f"k={k} is larger than the dataset, which has {a0.numel()} inputs")
    t0, t1 = _top(a0, k), _top(a1, k)
    labels = [y for _, y in iter_batches(data, 1 << 20, need_labels=False, need_order=True)] \
        if not isinstance(data, Tensor) else [None]
    shares0 = shares1 = None
    if labels and all(y is not None for y in labels):
        y = torch.cat([torch.as_tensor(v) for v in labels])
        n = int(y.max()) + 1
        shares0, shares1 = class_shares(t0, y, n), class_shares(t1, y, n)
    return RankingChange(kendall_tau(a0, a1), jaccard(t0, t1), t0, t1, shares0, shares1)
