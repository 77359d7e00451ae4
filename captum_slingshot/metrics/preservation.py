"""Preservation metrics of the paper's evaluation: does the manipulated model still behave?

A Gradient Slingshot changes what feature visualization shows while trying to keep the model's
behaviour on natural data. The paper checks that with

* :func:`accuracy` -- top-1 accuracy before / after the manipulation,
* :func:`unit_auroc` -- AUROC of the unit's activation separating its own class from the rest
  (built on :func:`auroc`, the Mann--Whitney statistic with average ranks for ties),
* :func:`top_k_activating` and :func:`jaccard` -- overlap of the top-100 most activating
  dataset inputs ("natural activation-maximization signals", n-AMS) before / after.

:func:`unit_activations` returns the unit's activation on every input of a dataset.

Units are given as in Captum's neuron methods (see :mod:`captum_slingshot.fv.units`): a
``layer`` (module of the model or dotted name) and a ``neuron_selector`` (int, tuple of ints,
:class:`~captum_slingshot.fv.units.Direction` or callable ``(B, ...) -> (B,)``). An int on a
conv layer is a channel averaged over space; ``(c, y, x)`` is one spatial neuron.

``data`` may be

* a tensor of inputs (only where no labels are needed),
* a ``tuple`` ``(inputs, labels)`` of tensors (a 1-tuple ``(inputs,)`` is inputs only),
* a ``TensorDataset`` (first tensor inputs, second labels),
* a map-style ``Dataset`` (or a ``list``) of ``(x, y, ...)`` items or of bare ``x`` tensors,
* a ``DataLoader`` yielding ``(x, y, ...)`` batches or bare ``x`` batches.

Inputs are fed to the model as they are (normalize them the way the model expects) on the
model's device, in chunks of at most ``max_examples_per_batch``. The model runs in eval mode
under ``torch.no_grad()``; every submodule's training flag is restored afterwards and every
hook is removed, also when an error is raised. "Position" below means the index of an input
in the order the data yields it, which for datasets and non-shuffling loaders is the dataset
index. Functions that return per-input results (:func:`unit_activations`,
:func:`top_k_activating`) refuse shuffling loaders.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.metrics.preservation import jaccard, top_k_activating
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
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, SequentialSampler, TensorDataset

from ..fv.units import LayerCapture, NeuronSelector, check_selector, layer_name, select_neuron

__all__ = ["TopK", "accuracy", "unit_activations", "auroc", "unit_auroc", "top_k_activating", "jaccard"]

Data = Union[Tensor, Tuple[Tensor, ...], Dataset, DataLoader, Sequence[Any]]
Layer = Union[nn.Module, str]
Selectors = Union[NeuronSelector, List[NeuronSelector]]
Device = Optional[Union[str, torch.device]]


# ------------------------------------------------------------------------------------ helpers


def _check_batch_size(max_examples_per_batch: int) -> int:
    if isinstance(max_examples_per_batch, bool) or not isinstance(max_examples_per_batch, int):
        raise TypeError(f"max_examples_per_batch must be an int, got {max_examples_per_batch!r}")
    if max_examples_per_batch < 1:
        raise ValueError(f"max_examples_per_batch must be >= 1, got {max_examples_per_batch}")
    return max_examples_per_batch


def _model_device(model: nn.Module, device: Device) -> torch.device:
    if device is not None:
        return torch.device(device)
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _tensor_tuple(data: Any) -> Optional[Tuple[Tensor, ...]]:
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


def _unpack(batch_or_item: Any) -> Tuple[Any, Any]:
    """``(x, y)`` from a ``(x, y, ...)`` tuple / list, or ``(x, None)`` from a bare ``x``."""
    if isinstance(batch_or_item, (tuple, list)):
        if not batch_or_item:
            raise ValueError("the data yielded an empty item / batch")
        return batch_or_item[0], (batch_or_item[1] if len(batch_or_item) > 1 else None)
    return batch_or_item, None


def _data_len(data: Any) -> Optional[int]:
    """Number of inputs ``data`` yields when known without iterating it."""
    if isinstance(data, Tensor):
        return int(data.shape[0]) if data.dim() else None
    tensors = _tensor_tuple(data)
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


def _iter_batches(
    data: Data, batch_size: int, *, need_labels: bool, need_order: bool
) -> Iterator[Tuple[Tensor, Optional[Tensor]]]:
    """Yield ``(inputs, labels or None)`` chunks of at most ``batch_size`` inputs, in order."""
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
    tensors = _tensor_tuple(data)
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
            x, y = _split(*_unpack(batch))
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
            items = [_unpack(data[i]) for i in range(s, min(n, s + batch_size))]
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


class _EvalNoGrad:
    """Eval mode + no_grad; restores every submodule's own training flag on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._flags: Dict[nn.Module, bool] = {}
        self._no_grad = torch.no_grad()

    def __enter__(self) -> None:
        self._flags = {m: m.training for m in self.model.modules()}
        self.model.eval()
        self._no_grad.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._no_grad.__exit__(*exc)
        for m, flag in self._flags.items():
            m.training = flag


def _as_selector_list(neuron_selector: Selectors) -> Tuple[List[NeuronSelector], bool]:
    if isinstance(neuron_selector, list):
        if not neuron_selector:
            raise ValueError("neuron_selector is an empty list; give at least one selector")
        return list(neuron_selector), True
    return [neuron_selector], False


def _unit_batches(
    model: nn.Module,
    layer: Layer,
    selectors: List[NeuronSelector],
    data: Data,
    max_examples_per_batch: int,
    device: Device,
    *,
    need_labels: bool,
    need_order: bool,
) -> Iterator[Tuple[Tensor, Optional[Tensor]]]:
    """Yield ``(activations (B, U) on the CPU, labels or None)`` per chunk of ``data``."""
    bs = _check_batch_size(max_examples_per_batch)
    dev = _model_device(model, device)
    with LayerCapture(model, layer, stop=True) as cap, _EvalNoGrad(model):
        desc = f"layer {layer_name(model, cap.layer)!r}"
        checked = False
        for x, y in _iter_batches(data, bs, need_labels=need_labels, need_order=need_order):
            if x.shape[0] == 0:
                continue
            out = cap.run(x.to(dev))
            if not checked:
                for sel in selectors:
                    check_selector(sel, out.shape[1:], desc)
                checked = True
            acts = torch.stack([select_neuron(out, sel) for sel in selectors], dim=1)
            yield acts.detach().cpu(), y


def _empty_error(what: str) -> ValueError:
    return ValueError(f"{what}: the data yielded no inputs (empty dataset or loader)")


# ----------------------------------------------------------------------------------- accuracy


def accuracy(model: nn.Module, data: Data, max_examples_per_batch: int = 256, device: Device = None) -> float:
    """Top-1 accuracy of ``model`` on labelled ``data``, in [0, 1].

    Args:
        model: a classifier returning logits ``(B, num_classes)``.
        data: labelled data: ``(inputs, labels)``, a ``TensorDataset``, a map-style dataset of
            ``(x, y)`` items, or a ``DataLoader`` of ``(x, y)`` batches (may shuffle).
        max_examples_per_batch: inputs per forward pass.
        device: where inputs go; default the model's device.

    Returns:
        The fraction of inputs whose arg-max logit is the label.

    Raises:
        ValueError: no labels, empty data, outputs that are not ``(B, num_classes)``, labels
            that are not one integer per input.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Linear(2, 2, bias=False)
        >>> _ = nn.init.eye_(model.weight)  # predicts the arg-max coordinate
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
        >>> accuracy(model, (x, torch.tensor([0, 1, 1, 1])))
        0.75
    """
    bs = _check_batch_size(max_examples_per_batch)
    dev = _model_device(model, device)
    correct, total = 0, 0
    with _EvalNoGrad(model):
        for x, y in _iter_batches(data, bs, need_labels=True, need_order=False):
            assert y is not None
            if x.shape[0] == 0:
                continue
            logits = model(x.to(dev))
            if not isinstance(logits, Tensor) or logits.dim() != 2:
                shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                raise ValueError(
                    f"accuracy needs logits of shape (batch, num_classes), the model returned {shape}"
                )
            if y.shape != (x.shape[0],) or y.is_floating_point() or y.is_complex():
                raise ValueError(
                    f"accuracy needs one integer class label per input, got labels of shape "
                    f"{tuple(y.shape)} and dtype {y.dtype} for {x.shape[0]} inputs"
                )
            correct += int((logits.argmax(1).cpu() == y.cpu()).sum())
            total += int(x.shape[0])
    if total == 0:
        raise _empty_error("accuracy")
    return correct / total


# --------------------------------------------------------------------------- unit activations


def unit_activations(
    model: nn.Module,
    layer: Layer,
    neuron_selector: Selectors,
    data: Data,
    max_examples_per_batch: int = 256,
    device: Device = None,
) -> Tensor:
    """The unit's activation on every input of ``data``, in order.

    The forward pass stops right after ``layer``, so the rest of the model is not run.

    Args:
        model: the model.
        layer: the layer (module of ``model`` or dotted name).
        neuron_selector: a selector (int, tuple, ``Direction``, callable), or a list of them to
            read several units of the same layer in one pass.
        data: inputs (tensor), ``(inputs, labels)``, a ``TensorDataset`` / map-style dataset of
            ``(x, ...)`` items or of ``x``, or a non-shuffling ``DataLoader``.
        max_examples_per_batch: inputs per forward pass.
        device: where inputs go; default the model's device.

    Returns:
        A CPU tensor ``(N,)`` for one selector, ``(N, U)`` for a list of ``U`` selectors.

    Raises:
        ValueError: the layer has no such unit, empty data, shuffling loader.
        LayerNotReachedError: the forward never runs ``layer``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.ReLU())
        >>> _ = model[0].weight.data.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        >>> x = torch.arange(8.0).view(2, 1, 2, 2)  # spatial means 1.5 and 5.5
        >>> unit_activations(model, "0", 0, x)  # channel 0, mean over space
        tensor([1.5000, 5.5000])
        >>> unit_activations(model, "0", [0, (1, 1, 1)], x)  # two units: (N, U)
        tensor([[ 1.5000, -3.0000],
                [ 5.5000, -7.0000]])
    """
    selectors, many = _as_selector_list(neuron_selector)
    batches = _unit_batches(
        model, layer, selectors, data, max_examples_per_batch, device, need_labels=False, need_order=True
    )
    with contextlib.closing(batches):
        chunks = [a for a, _ in batches]
    if not chunks:
        raise _empty_error("unit_activations")
    acts = torch.cat(chunks)
    return acts if many else acts[:, 0]


# -------------------------------------------------------------------------------------- AUROC


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
    batches = _unit_batches(
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
        raise _empty_error("unit_auroc")
    y_all = torch.cat(labels)
    n_pos = int((y_all == target_class).sum())
    if n_pos == 0 or n_pos == y_all.numel():
        what = "does not occur in" if n_pos == 0 else "is the only class of"
        raise ValueError(
            f"unit_auroc: target_class {target_class!r} {what} the labels; the AUROC needs "
            "examples of the target class and of other classes"
        )
    return auroc(torch.cat(scores), y_all, target_class)


# ------------------------------------------------------------------------------------- top-k


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
        idx = self.indices.to(torch.int64).cpu()
        if idx.numel() == 0:
            raise ValueError("this TopK is empty")
        n = _data_len(data)
        if n is not None and int(idx.max()) >= n:
            raise ValueError(
                f"index {int(idx.max())} is out of range for data of {n} inputs; pass the data "
                "the top-k was computed on"
            )
        if isinstance(data, Tensor):
            return data[idx.to(data.device)]
        tensors = _tensor_tuple(data)
        if tensors is not None:
            return tensors[0][idx.to(tensors[0].device)]
        if isinstance(data, DataLoader) and not isinstance(data.dataset, IterableDataset):
            data = data.dataset  # type: ignore[assignment]
        if isinstance(data, DataLoader):  # iterable dataset: walk it in order
            wanted = {int(i): j for j, i in enumerate(idx.tolist())}
            found: Dict[int, Tensor] = {}
            start = 0
            for x, _ in _iter_batches(data, 1 << 30, need_labels=False, need_order=True):
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
            return torch.stack([torch.as_tensor(_unpack(data[int(i)])[0]) for i in idx.tolist()])
        raise TypeError(f"cannot fetch inputs from data of type {type(data).__name__}")


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k


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
    k = _check_k(k)
    selectors, many = _as_selector_list(neuron_selector)
    n_known = _data_len(data)
    if n_known == 0:
        raise _empty_error("top_k_activating")
    if n_known is not None and k > n_known:
        raise ValueError(f"k={k} is larger than the dataset, which has {n_known} inputs")
    n_units = len(selectors)
    best_v: Optional[Tensor] = None  # (k', U)
    best_i: Optional[Tensor] = None  # (k', U)
    seen = 0
    batches = _unit_batches(
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
        raise _empty_error("top_k_activating")
    if seen < k:
        raise ValueError(f"k={k} is larger than the dataset, which has {seen} inputs")
    result = [TopK(values=best_v[:, u].clone(), indices=best_i[:, u].clone()) for u in range(n_units)]
    return result if many else result[0]


# ------------------------------------------------------------------------------------ Jaccard


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
