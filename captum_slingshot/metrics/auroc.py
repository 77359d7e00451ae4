"""AUROC of a unit's activation separating its own class from the rest (the paper's second metric).

:func:`auroc` is the Mann--Whitney statistic with average ranks for ties; :func:`unit_auroc` reads
the unit's activations on labelled data first.

Conventions for units and ``data``: see :mod:`captum_slingshot.metrics`.

Example:
    >>> from captum_slingshot.metrics.auroc import auroc
    >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], positive=1)
    0.75
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence, Union

import torch
from torch import Tensor, nn

from .._utils.data import Data, empty_error
from .._utils.selectors import NeuronSelector
from .activations import Device, Layer, unit_batches

__all__ = ["auroc", "unit_auroc"]


def auroc(scores: Union[Tensor, Sequence[float]], labels: Union[Tensor, Sequence[Any]], positive: Any) -> float:
    """Area under the ROC curve of ``scores`` separating ``labels == positive`` from the rest.

    The probability that a random positive scores higher than a random negative, ties counting
    one half: the Mann--Whitney ``U`` with average ranks, ``U / (n_pos * n_neg)``. Equal to
    scikit-learn's ``roc_auc_score(labels == positive, scores)``.

    Args:
        scores: one real score per example, ``(N,)``.
        labels: one label per example, ``(N,)``.
        positive: the label of the positive class.

    Returns:
        AUROC in [0, 1]: 1 when every positive scores above every negative, 0 when below,
        0.5 for uninformative scores.

    Raises:
        ValueError: shapes differ, NaN scores, or only one class present.

    Example:
        >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], positive=1)
        0.75
        >>> auroc([1.0, 1.0, 2.0], [0, 1, 1], positive=1)  # a tie counts 1/2
        0.75
    """
    s = torch.as_tensor(scores).detach().cpu()
    y = torch.as_tensor(labels).detach().cpu()
    if s.dim() != 1 or y.shape != s.shape:
        raise ValueError(
            f"auroc needs 1-D scores and labels of the same length, got shapes {tuple(s.shape)} "
            f"and {tuple(y.shape)}"
        )
    s = s.to(torch.float64)
    if torch.isnan(s).any():
        raise ValueError("auroc: scores contain NaN")
    pos = y == positive
    n_pos = int(pos.sum())
    n_neg = int(pos.numel()) - n_pos
    if n_pos == 0 or n_neg == 0:
        absent = "positive" if n_pos == 0 else "negative"
        raise ValueError(
            f"auroc is undefined with only one class: no {absent} examples (label == {positive!r}: "
            f"{n_pos} of {pos.numel()})"
        )
    # average ranks (1-based); tied scores share the mean of their ranks
    _, inverse, counts = torch.unique(s, sorted=True, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    avg_rank = ends - (counts.to(torch.float64) - 1) / 2
    rank_sum = avg_rank[inverse][pos].sum().item()
    u = rank_sum - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def unit_auroc(
    model: nn.Module,
    layer: Layer,
    neuron_selector: NeuronSelector,
    data: Data,
    target_class: Any,
    max_examples_per_batch: int = 256,
    device: Device = None,
) -> float:
    """AUROC of one unit's activation separating ``target_class`` from the other classes.

    Args:
        model: the model.
        layer: the layer (module of ``model`` or dotted name).
        neuron_selector: one selector (int, tuple, ``Direction`` or callable).
        data: labelled data (``(inputs, labels)``, ``TensorDataset``, dataset of ``(x, y)``,
            ``DataLoader`` of ``(x, y)``; a shuffling loader is fine).
        target_class: the unit's class (positives are ``labels == target_class``).
        max_examples_per_batch: inputs per forward pass.
        device: where inputs go; default the model's device.

    Returns:
        The AUROC, see :func:`auroc`.

    Raises:
        ValueError: no labels, empty data, ``target_class`` absent (or the only class).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(2, 2))
        >>> _ = nn.init.eye_(model[0].weight), nn.init.zeros_(model[0].bias)
        >>> x = torch.tensor([[3.0, 0.0], [2.0, 1.0], [0.0, 1.0], [1.0, 2.0]])
        >>> unit_auroc(model, "0", 0, (x, torch.tensor([0, 0, 1, 1])), target_class=0)
        1.0
    """
    if isinstance(neuron_selector, list):
        raise TypeError("unit_auroc takes one neuron_selector; call it once per unit")
    scores, labels = [], []
    batches = unit_batches(
        model, layer, [neuron_selector], data, max_examples_per_batch, device, need_labels=True, need_order=False
    )
    with contextlib.closing(batches):  # hooks go even when this loop raises
        for a, y in batches:
            assert y is not None
            if y.shape != (a.shape[0],):
                raise ValueError(f"unit_auroc needs one label per input, got labels of shape {tuple(y.shape)}")
            scores.append(a[:, 0])
            labels.append(y.cpu())
    if not scores:
        raise empty_error("unit_auroc")
    y_all = torch.cat(labels)
    n_pos = int((y_all == target_class).sum())
    if n_pos == 0 or n_pos == y_all.numel():
        what = "does not occur in" if n_pos == 0 else "is the only class of"
        raise ValueError(
            f"unit_auroc: target_class {target_class!r} {what} the labels; the AUROC needs "
            "examples of the target class and of other classes"
        )
    return auroc(torch.cat(scores), y_all, target_class)
