"""The unit's most activating natural inputs (the paper's n-AMS) and their overlap before / after.

:func:`top_k_activating` keeps a stable running top-k in one pass (ties: the lower position wins,
so the result does not depend on the batch size); :func:`jaccard` compares two index sets.

Conventions for units and ``data``: see :mod:`captum_slingshot.metrics`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.metrics.topk import jaccard, top_k_activating
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(50, 3, generator=g)
    >>> before = nn.Linear(3, 2)
    >>> after = nn.Linear(3, 2)
    >>> _ = after.load_state_dict(before.state_dict())
    >>> top_before = top_k_activating(before, before, 0, x, k=10)
    >>> top_after = top_k_activating(after, after, 0, x, k=10)
    >>> jaccard(top_before, top_after)
    1.0
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, List, Optional, Union

import torch
from torch import Tensor, nn

from .._utils.data import Data, data_len, empty_error, fetch_inputs, positive_int
from .._utils.selectors import as_selector_list
from .activations import Device, Layer, Selectors, unit_batches

__all__ = ["TopK", "top_k_activating", "jaccard"]


@dataclass
class TopK:
    """The ``k`` most activating inputs of a dataset for one unit.

    Attributes:
        values: activations ``(k,)``, sorted descending (ties: lower position first).
        indices: int64 positions ``(k,)`` of those inputs in the data.
    """

    values: Tensor
    indices: Tensor

    def __len__(self) -> int:
        return int(self.indices.numel())

    def images(self, data: Data) -> Tensor:
        """The inputs at :attr:`indices`, ``(k, C, H, W)`` (``(k, ...)`` in general), in order.

        Args:
            data: the data the top-k was computed on (any form :func:`top_k_activating` takes).

        Returns:
            The inputs, stacked, on the device / dtype the data holds them in.

        Example:
            >>> import torch
            >>> x = torch.arange(4.0).view(4, 1, 1, 1)
            >>> TopK(torch.tensor([9.0, 8.0]), torch.tensor([2, 0])).images(x).flatten()
            tensor([2., 0.])
        """
        if self.indices.numel() == 0:
            raise ValueError("this TopK is empty")
        return fetch_inputs(data, self.indices)


def top_k_activating(
    model: nn.Module,
    layer: Layer,
    neuron_selector: Selectors,
    data: Data,
    k: int = 100,
    max_examples_per_batch: int = 256,
    device: Device = None,
) -> Union[TopK, List[TopK]]:
    """The ``k`` inputs of ``data`` that activate the unit most (the paper's n-AMS).

    One pass over the data, keeping a running top-``k`` (stable: among equal activations the
    lower position wins, so the result does not depend on ``max_examples_per_batch``).

    Args:
        model: the model.
        layer: the layer (module of ``model`` or dotted name).
        neuron_selector: a selector, or a list of selectors (one :class:`TopK` each, same pass).
        data: inputs (tensor), ``(inputs, labels)``, a dataset of ``(x, ...)`` or of ``x``, or a
            non-shuffling ``DataLoader``.
        k: how many inputs (the paper uses 100).
        max_examples_per_batch: inputs per forward pass.
        device: where inputs go; default the model's device.

    Returns:
        A :class:`TopK` (values descending, int64 positions), or a list of them for a list of
        selectors. ``result.images(data)`` fetches the inputs.

    Raises:
        ValueError: ``k < 1``, ``k`` larger than the data, empty data, NaN activations, the
            layer has no such unit, shuffling loader.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Linear(2, 2)
        >>> _ = nn.init.eye_(model.weight), nn.init.zeros_(model.bias)
        >>> x = torch.tensor([[0.0, 5.0], [3.0, 1.0], [1.0, 0.0], [2.0, 4.0]])
        >>> top = top_k_activating(model, model, 0, x, k=2)
        >>> top.values, top.indices
        (tensor([3., 2.]), tensor([1, 3]))
        >>> [t.indices.tolist() for t in top_k_activating(model, model, [0, 1], x, k=2)]
        [[1, 3], [0, 3]]
    """
    k = positive_int(k, "k")
    selectors, single = as_selector_list(neuron_selector)
    n_known = data_len(data)
    if n_known == 0:
        raise empty_error("top_k_activating")
    if n_known is not None and k > n_known:
        raise ValueError(f"k={k} is larger than the dataset, which has {n_known} inputs")
    n_units = len(selectors)
    best_v: Optional[Tensor] = None  # (k', U)
    best_i: Optional[Tensor] = None  # (k', U)
    seen = 0
    batches = unit_batches(
        model, layer, selectors, data, max_examples_per_batch, device, need_labels=False, need_order=True
    )
    with contextlib.closing(batches):  # hooks go even when this loop raises
        for acts, _ in batches:
            if torch.isnan(acts).any():
                bad = seen + int(torch.isnan(acts).any(1).nonzero()[0])
                raise ValueError(f"top_k_activating: the unit's activation is NaN for input {bad}")
            b = acts.shape[0]
            pos = torch.arange(seen, seen + b, dtype=torch.int64).unsqueeze(1).expand(b, n_units)
            seen += b
            if best_v is None or best_i is None:
                v, i = acts, pos
            else:  # the running best comes first, so a stable sort keeps lower positions ahead on ties
                v, i = torch.cat([best_v, acts.to(best_v.dtype)]), torch.cat([best_i, pos])
            order = torch.sort(v, dim=0, descending=True, stable=True).indices[:k]
            best_v, best_i = v.gather(0, order), i.gather(0, order)
    if best_v is None or best_i is None:
        raise empty_error("top_k_activating")
    if seen < k:
        raise ValueError(f"k={k} is larger than the dataset, which has {seen} inputs")
    result = [TopK(values=best_v[:, u].clone(), indices=best_i[:, u].clone()) for u in range(n_units)]
    return result[0] if single else result


def _index_set(x: Union[TopK, Tensor, Iterable[int]], name: str) -> set:
    if isinstance(x, TopK):
        x = x.indices
    if isinstance(x, Tensor):
        if x.is_floating_point() or x.is_complex():
            raise TypeError(f"jaccard: {name} must hold integer indices, got dtype {x.dtype}")
        return set(x.flatten().tolist())
    try:
        items = list(x)
    except TypeError:
        raise TypeError(
            f"jaccard: {name} must be a TopK, a tensor or a sequence of indices, got {type(x).__name__}"
        ) from None
    out = set()
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, Tensor) and v.dim() == 0 and not v.is_floating_point():
                v = int(v)
            elif hasattr(v, "__index__") and not isinstance(v, bool):
                v = v.__index__()
            else:
                raise TypeError(f"jaccard: {name} must hold integer indices, got {v!r}")
        out.add(int(v))
    return out


def jaccard(a: Union[TopK, Tensor, Iterable[int]], b: Union[TopK, Tensor, Iterable[int]]) -> float:
    """Jaccard overlap ``|A & B| / |A | B|`` of two sets of indices.

    Duplicates count once. Used on the top-``k`` most activating inputs of a unit before and
    after a manipulation.

    Args:
        a: a :class:`TopK` (its ``indices``), an integer tensor, or a sequence of ints.
        b: the same.

    Returns:
        The overlap in [0, 1]: 1 for equal sets, 0 for disjoint ones.

    Raises:
        ValueError: both sets empty (the overlap is undefined).

    Example:
        >>> jaccard([0, 1, 2, 3], [2, 3, 4, 5])  # 2 shared of 6
        0.3333333333333333
    """
    sa, sb = _index_set(a, "a"), _index_set(b, "b")
    union = sa | sb
    if not union:
        raise ValueError("jaccard: both index sets are empty, the overlap is undefined")
    return len(sa & sb) / len(union)
