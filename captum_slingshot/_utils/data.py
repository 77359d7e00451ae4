"""Natural data in any of the shapes users have it, read the same way everywhere.

``data`` may be

* a tensor of inputs (only where no labels are needed),
* a ``tuple`` ``(inputs, labels)`` of tensors (a 1-tuple ``(inputs,)`` is inputs only),
* a ``TensorDataset`` (first tensor inputs, second labels),
* a map-style ``Dataset`` (or a ``list``) of ``(x, y, ...)`` items or of bare ``x`` tensors,
* a ``DataLoader`` yielding ``(x, y, ...)`` batches or bare ``x`` batches.

:func:`iter_batches` yields ``(inputs, labels or None)`` chunks in order; :func:`fetch_inputs`
gets the inputs at given positions back; :class:`NaturalBatches` draws seeded, resumable
training batches.

Example:
    >>> import torch
    >>> x, y = torch.arange(10.0).view(5, 2), torch.tensor([0, 1, 0, 1, 1])
    >>> [tuple(b.shape) for b, _ in iter_batches((x, y), 2, need_labels=True, need_order=True)]
    [(2, 2), (2, 2), (1, 2)]
    >>> fetch_inputs(x, torch.tensor([4, 0]))[:, 0]
    tensor([8., 0.])
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, SequentialSampler, TensorDataset

from .seeding import natural_order_seed

__all__ = ["Data", "positive_int", "check_batch_size", "batch_size_or", "tensor_tuple", "data_len", "iter_batches", "fetch_inputs", "empty_error",
           "NaturalBatches"]

Data = Union[Tensor, Tuple[Tensor, ...], Dataset, DataLoader, Sequence[Any]]


def positive_int(value: Any, name: str) -> int:
    """``value`` checked to be an int (not a bool) of at least 1; ``name`` says which argument in errors."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_batch_size(max_examples_per_batch: Any) -> int:
    """``max_examples_per_batch`` checked to be a positive int."""
    return positive_int(max_examples_per_batch, "max_examples_per_batch")


def tensor_tuple(data: Any) -> Optional[Tuple[Tensor, ...]]:
    """The tensors of a ``(inputs, labels, ...)`` tuple or a ``TensorDataset``, else ``None``."""
    if isinstance(data, TensorDataset):
        return tuple(data.tensors)
    if isinstance(data, tuple) and data and all(isinstance(t, Tensor) for t in data):
        n = data[0].shape[0] if data[0].dim() else None
        for t in data:
            if t.dim() == 0 or t.shape[0] != n:
                raise ValueError(
                    "a data tuple must be (inputs, labels) tensors with the same first (batch) "
                    f"dimension, got shapes {[tuple(t.shape) for t in data]}"
                )
        return data
    return None


def _is_sequential_loader(loader: DataLoader) -> bool:
    if isinstance(loader.dataset, IterableDataset):
        return True  # iterable datasets have no sampler: their own order is used
    if loader.batch_sampler is not None and type(loader.batch_sampler) is not BatchSampler:
        return False
    return isinstance(loader.sampler, SequentialSampler)


def _split(x: Any, y: Any) -> Tuple[Tensor, Optional[Tensor]]:
    x = torch.as_tensor(x)
    return x, (None if y is None else torch.as_tensor(y))


def unpack(batch_or_item: Any) -> Tuple[Any, Any]:
    """``(x, y)`` from a ``(x, y, ...)`` tuple / list, or ``(x, None)`` from a bare ``x``."""
    if isinstance(batch_or_item, (tuple, list)):
        if not batch_or_item:
            raise ValueError("the data yielded an empty item / batch")
        return batch_or_item[0], (batch_or_item[1] if len(batch_or_item) > 1 else None)
    return batch_or_item, None


def data_len(data: Any) -> Optional[int]:
    """Number of inputs ``data`` yields when known without iterating it."""
    if isinstance(data, Tensor):
        return int(data.shape[0]) if data.dim() else None
    tensors = tensor_tuple(data)
    if tensors is not None:
        return int(tensors[0].shape[0])
    if isinstance(data, DataLoader):
        if isinstance(data.dataset, IterableDataset) or data.drop_last:
            return None
        try:
            return len(data.dataset)  # type: ignore[arg-type]
        except TypeError:
            return None
    if isinstance(data, (Dataset, list)):
        try:
            return len(data)  # type: ignore[arg-type]
        except TypeError:
            return None
    return None


def empty_error(what: str) -> ValueError:
    """The error for data that yield no inputs."""
    return ValueError(f"{what}: the data yielded no inputs (empty dataset or loader)")


def iter_batches(
    data: Data, batch_size: int, *, need_labels: bool, need_order: bool
) -> Iterator[Tuple[Tensor, Optional[Tensor]]]:
    """Yield ``(inputs, labels or None)`` chunks of at most ``batch_size`` inputs, in order.

    ``need_labels``: data without labels are an error. ``need_order``: positions must be dataset
    indices, so a shuffling loader is an error.
    """
    if isinstance(data, Tensor):
        if data.dim() == 0:
            raise ValueError("inputs must have a batch dimension, got a 0-d tensor")
        if need_labels:
            raise ValueError(
                "this metric needs labels, but data is a bare tensor of inputs; pass "
                "(inputs, labels), a TensorDataset, or a dataset / loader of (x, y) pairs"
            )
        for s in range(0, data.shape[0], batch_size):
            yield data[s : s + batch_size], None
        return
    tensors = tensor_tuple(data)
    if tensors is not None:
        if need_labels and len(tensors) < 2:
            raise ValueError(
                f"this metric needs labels, but the data holds only {len(tensors)} tensor; "
                "pass (inputs, labels)"
            )
        x = tensors[0]
        y = tensors[1] if len(tensors) > 1 else None
        for s in range(0, x.shape[0], batch_size):
            yield x[s : s + batch_size], (None if y is None else y[s : s + batch_size])
        return
    if isinstance(data, DataLoader):
        if need_order and not _is_sequential_loader(data):
            raise ValueError(
                "the DataLoader shuffles (or uses a custom sampler), so positions in it are not "
                "dataset indices; pass a DataLoader with shuffle=False, or the dataset itself"
            )
        for batch in data:
            x, y = _split(*unpack(batch))
            if need_labels and y is None:
                raise ValueError("this metric needs labels, but the DataLoader yields inputs only")
            if x.dim() == 0:
                raise ValueError("the DataLoader yields 0-d inputs; batches need a batch dimension")
            for s in range(0, x.shape[0], batch_size):
                yield x[s : s + batch_size], (None if y is None else y[s : s + batch_size])
        return
    if isinstance(data, (Dataset, list)) and hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        n = len(data)  # type: ignore[arg-type]
        for s in range(0, n, batch_size):
            items = [unpack(data[i]) for i in range(s, min(n, s + batch_size))]
            ys = [y for _, y in items]
            if need_labels and any(y is None for y in ys):
                raise ValueError("this metric needs labels, but the dataset's items are inputs only")
            x = torch.stack([torch.as_tensor(x) for x, _ in items])
            y = None if any(y is None for y in ys) else torch.stack([torch.as_tensor(y) for y in ys])
            yield x, y
        return
    raise TypeError(
        "data must be a tensor of inputs, an (inputs, labels) tuple of tensors, a TensorDataset, "
        f"a map-style Dataset or a DataLoader, got {type(data).__name__}"
    )


def fetch_inputs(data: Data, indices: Tensor) -> Tensor:
    """The inputs at positions ``indices`` of ``data`` (any form :func:`iter_batches` reads), stacked in order."""
    idx = indices.to(torch.int64).cpu()
    if idx.numel() == 0:
        raise ValueError("no positions to fetch")
    n = data_len(data)
    if n is not None and int(idx.max()) >= n:
        raise ValueError(
            f"index {int(idx.max())} is out of range for data of {n} inputs; pass the data "
            "the top-k was computed on"
        )
    if isinstance(data, Tensor):
        return data[idx.to(data.device)]
    tensors = tensor_tuple(data)
    if tensors is not None:
        return tensors[0][idx.to(tensors[0].device)]
    if isinstance(data, DataLoader) and not isinstance(data.dataset, IterableDataset):
        data = data.dataset  # type: ignore[assignment]
    if isinstance(data, DataLoader):  # iterable dataset: walk it in order
        wanted = {int(i): j for j, i in enumerate(idx.tolist())}
        found: Dict[int, Tensor] = {}
        start = 0
        for x, _ in iter_batches(data, 1 << 30, need_labels=False, need_order=True):
            for p in range(start, start + x.shape[0]):
                if p in wanted:
                    found[p] = x[p - start]
            start += x.shape[0]
            if len(found) == len(wanted):
                break
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise ValueError(f"the data yields only {start} inputs; position {missing[0]} is missing")
        return torch.stack([found[int(i)] for i in idx.tolist()])
    if isinstance(data, (Dataset, list)) and hasattr(data, "__getitem__"):
        return torch.stack([torch.as_tensor(unpack(data[int(i)])[0]) for i in idx.tolist()])
    raise TypeError(f"cannot fetch inputs from data of type {type(data).__name__}")


class NaturalBatches:
    """Seeded, resumable training batches of natural inputs: batch ``k`` depends only on ``(seed, k)``.

    Each epoch is a fresh permutation seeded from ``(seed, epoch)``; a last partial batch is dropped.

    Example:
        >>> import torch
        >>> b = NaturalBatches(torch.arange(10.0)[:, None], batch_size=4, seed=0)
        >>> b.per_epoch, torch.equal(b.get(3), NaturalBatches(torch.arange(10.0)[:, None], 4, 0).get(3))
        (2, True)
    """

    def __init__(self, data: Any, batch_size: int, seed: int) -> None:
        if isinstance(data, Tensor):
            data = TensorDataset(data)
        tensors = tensor_tuple(data) if isinstance(data, tuple) else None
        if tensors is not None:
            data = TensorDataset(*tensors)
        if isinstance(data, DataLoader):
            data = data.dataset
        if not isinstance(data, Dataset) or not hasattr(data, "__len__"):
            raise TypeError("natural_data must be a tensor of inputs, an (inputs, labels) tuple, a TensorDataset or a "
                            "map-style Dataset")
        n = len(data)
        if n == 0:
            raise ValueError("natural_data is empty: the preservation loss needs natural inputs")
        self.data, self.n, self.seed = data, n, seed
        self.batch_size = min(batch_size, n)
        self.per_epoch = max(1, n // self.batch_size)
        self._perm_epoch, self._perm = -1, None

    def _indices(self, k: int) -> Tensor:
        epoch, b = divmod(k, self.per_epoch)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(natural_order_seed(self.seed, epoch))
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g), epoch
        return self._perm[b * self.batch_size : (b + 1) * self.batch_size]

    def get(self, k: int, rows: slice = slice(None)) -> Tensor:
        """Batch number ``k`` (counted from the first step of the run); only its ``rows`` when given
        (one process's share of the batch: only those items are loaded)."""
        idx = self._indices(k)[rows]
        if isinstance(self.data, TensorDataset):
            return self.data.tensors[0][idx]
        items = [self.data[int(i)] for i in idx]
        return torch.stack([it[0] if isinstance(it, (tuple, list)) else it for it in items])

    def get_labeled(self, k: int) -> Tuple[Tensor, Optional[Tensor]]:
        """Batch number ``k`` as ``(inputs, labels or None)``: the same inputs as :meth:`get`."""
        idx = self._indices(k)
        if isinstance(self.data, TensorDataset):
            t = self.data.tensors
            return t[0][idx], (t[1][idx] if len(t) > 1 else None)
        items = [unpack(self.data[int(i)]) for i in idx]
        ys = [y for _, y in items]
        y = None if any(v is None for v in ys) else torch.stack([torch.as_tensor(v) for v in ys])
        return torch.stack([torch.as_tensor(x) for x, _ in items]), y


def batch_size_or(max_examples_per_batch: Optional[int], default: int) -> int:
    """``max_examples_per_batch`` (checked), or ``default`` when it is ``None``."""
    b = default if max_examples_per_batch is None else int(max_examples_per_batch)
    if b < 1:
        raise ValueError(f"max_examples_per_batch must be at least 1, got {max_examples_per_batch}")
    return b
