"""The unit's activation on every input of a dataset (the basis of the preservation metrics).

Conventions for units and ``data``: see :mod:`captum_slingshot.metrics`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.metrics.activations import unit_activations
    >>> model = nn.Sequential(nn.Linear(3, 2))
    >>> unit_activations(model, "0", [0, 1], torch.zeros(4, 3)).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .._utils.data import Data, check_batch_size, empty_error, iter_batches
from .._utils.devices import model_device
from .._utils.hooks import LayerCapture
from .._utils.layers import layer_name
from .._utils.modes import eval_mode
from .._utils.selectors import NeuronSelector, as_selector_list, check_selector, select_neuron

__all__ = ["unit_activations", "unit_batches", "Layer", "Selectors", "Device"]

Layer = Union[nn.Module, str]
Selectors = Union[NeuronSelector, List[NeuronSelector]]
Device = Optional[Union[str, torch.device]]


def unit_batches(
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
    bs = check_batch_size(max_examples_per_batch)
    dev = model_device(model, device)
    with LayerCapture(model, layer, stop=True) as cap, eval_mode(model, no_grad=True):
        desc = f"layer {layer_name(model, cap.layer)!r}"
        checked = False
        for x, y in iter_batches(data, bs, need_labels=need_labels, need_order=need_order):
            if x.shape[0] == 0:
                continue
            out = cap.run(x.to(dev))
            if not checked:
                for sel in selectors:
                    check_selector(sel, out.shape[1:], desc)
                checked = True
            acts = torch.stack([select_neuron(out, sel) for sel in selectors], dim=1)
            yield acts.detach().cpu(), y


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
    selectors, single = as_selector_list(neuron_selector)
    batches = unit_batches(
        model, layer, selectors, data, max_examples_per_batch, device, need_labels=False, need_order=True
    )
    with contextlib.closing(batches):
        chunks = [a for a, _ in batches]
    if not chunks:
        raise empty_error("unit_activations")
    acts = torch.cat(chunks)
    return acts[:, 0] if single else acts
