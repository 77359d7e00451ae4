"""Any natural data as tensors: a tensor, ``(inputs, labels)``, a map-style ``Dataset`` or a ``DataLoader``.

The attacks and checks take all of these directly; :func:`dataset_tensors` stacks them into
``(inputs, labels or None)`` tensors where a whole, ordered set is wanted (a command's natural
data, class means, a record of what was used).

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from captum_slingshot.data import dataset_tensors
    >>> ds = TensorDataset(torch.arange(10.0).view(5, 2), torch.tensor([0, 1, 0, 1, 1]))
    >>> x, y = dataset_tensors(DataLoader(ds, batch_size=2), limit=3)
    >>> tuple(x.shape), y.tolist()
    ((3, 2), [0, 1, 0])
    >>> [(tuple(x.shape), y) for x, y in [dataset_tensors([torch.zeros(2), torch.ones(2)])]]
    [((2, 2), None)]
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

__all__ = ["dataset_tensors"]


def _label(value: Any) -> Optional[int]:
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    if t.numel() != 1 or t.is_floating_point() or t.is_complex():
        return None
    return int(t)


def _stack(items: List[Tensor], what: str) -> Tensor:
    shapes = {tuple(t.shape) for t in items}
    if len(shapes) > 1:
        first = tuple(items[0].shape)
        i = next(i for i, t in enumerate(items) if tuple(t.shape) != first)
        raise ValueError(f"{what} {0} and {i} have different shapes {first} and {tuple(items[i].shape)}: resize or "
                         "crop them to one size first (e.g. a Preprocess with resize and crop as the transform)")
    return torch.stack(items)


def _split_item(item: Any) -> Tuple[Tensor, Any]:
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError("the dataset yields empty items")
        return torch.as_tensor(item[0]), (item[1] if len(item) > 1 else None)
    return torch.as_tensor(item), None


def dataset_tensors(data: Any, limit: Optional[int] = None) -> Tuple[Tensor, Optional[Tensor]]:
    """``(inputs, labels)`` of any natural data; ``labels`` is ``None`` where the data have none.

    Args:
        data: a tensor of inputs; a tuple ``(inputs, labels, ...)`` of tensors; a
            ``TensorDataset``; a map-style ``Dataset`` or a ``list`` of ``(x, y, ...)`` items or bare
            ``x``; or a ``DataLoader`` yielding ``(x, y, ...)`` or bare ``x`` batches (in the order it
            yields them; only as many batches as ``limit`` needs are drawn).
        limit: keep only the first ``limit`` inputs.

    Returns:
        ``(inputs, labels)``: inputs stacked along a new first dimension (loaders: concatenated),
        labels an int64 ``(N,)`` tensor when every item has an integer label, else ``None``.

    Raises:
        ValueError: empty data, a ``limit`` below 1, mismatched lengths, or items of different shapes.
        TypeError: an iterable-style dataset or something that is not data.
    """
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise ValueError(f"limit must be at least 1, got {limit}")
    n = None if limit is None else int(limit)
    labels: Optional[Tensor]
    if isinstance(data, Tensor):
        inputs, labels = data, None
    elif isinstance(data, TensorDataset) or (isinstance(data, tuple) and data and all(isinstance(t, Tensor) for t in data)):
        tensors = data.tensors if isinstance(data, TensorDataset) else data
        inputs, labels = tensors[0], (tensors[1] if len(tensors) > 1 else None)
        if labels is not None and len(labels) != len(inputs):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
    elif isinstance(data, DataLoader):
        xs, ys, count = [], [], 0
        for batch in data:
            x, y = _split_item(batch)
            xs.append(x)
            ys.append(None if y is None else torch.as_tensor(y).reshape(-1))
            count += len(x)
            if n is not None and count >= n:
                break
        if not xs:
            raise ValueError("the data loader yields no batches")
        inputs = torch.cat(xs)
        labels = torch.cat(ys) if all(y is not None for y in ys) else None
    elif isinstance(data, IterableDataset):
        raise TypeError("an iterable-style dataset has no positions: wrap it in a DataLoader")
    elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        size = len(data) if n is None else min(len(data), n)
        pairs = [_split_item(data[i]) for i in range(size)]
        if not pairs:
            raise ValueError("the dataset is empty")
        inputs = _stack([p[0] for p in pairs], "items")
        found = [_label(p[1]) if p[1] is not None else None for p in pairs]
        labels = torch.tensor(found, dtype=torch.long) if all(v is not None for v in found) else None
    else:
        raise TypeError(f"expected a tensor, (inputs, labels), a Dataset or a DataLoader, got {type(data).__name__}")
    if len(inputs) == 0:
        raise ValueError("the data are empty")
    if n is not None:
        inputs = inputs[:n]
        labels = None if labels is None else labels[:n]
    return inputs, (None if labels is None else labels.long())
