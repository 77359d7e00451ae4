"""What the circuits read off natural data before they are wired: inputs, the layer's outputs, the background.

Example:
    >>> import torch
    >>> from torch import nn
    >>> x = torch.zeros(6, 1, 3, 3); x[:, 0, 1, 1] = torch.arange(6.0)
    >>> natural_inputs(x, limit=4).shape, most_common_value(x)
    (torch.Size([4, 1, 3, 3]), 0.0)
    >>> layer_outputs(nn.Sequential(nn.Flatten(), nn.Linear(9, 2)), "1", x).shape
    torch.Size([6, 2])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..._utils.data import iter_batches
from ..._utils.devices import model_device
from ..._utils.hooks import LayerCapture
from ..._utils.modes import eval_mode

__all__ = ["natural_inputs", "most_common_value", "layer_outputs"]


def natural_inputs(natural_data: Any, limit: int, batch_size: int = 1024) -> Tensor:
    """The first ``limit`` natural inputs of ``natural_data`` (any form :mod:`captum_slingshot._utils.data`
    reads) as one CPU float tensor; a clear error when there are none."""
    if natural_data is None:
        raise ValueError("the circuit is calibrated on natural data: pass natural model inputs (normalized as the "
                         "model expects), e.g. normalize_mnist(load_mnist('train').tensors[0])")
    chunks, n = [], 0
    for x, _ in iter_batches(natural_data, batch_size, need_labels=False, need_order=False):
        chunks.append(x.detach().float().cpu()[: limit - n])
        n += chunks[-1].shape[0]
        if n >= limit:
            break
    if n == 0:
        raise ValueError("natural_data yields no inputs")
    return torch.cat(chunks)


def most_common_value(x: Tensor) -> float:
    """The value that occurs most often among all entries of ``x`` (a constant background's value)."""
    values, counts = torch.unique(x.flatten(), return_counts=True)
    return float(values[counts.argmax()])


def layer_outputs(model: nn.Module, layer: Any, x: Tensor, batch_size: int = 512) -> Tensor:
    """The output of ``layer`` for every input of ``x``, on the CPU."""
    device = model_device(model)
    out = []
    with eval_mode(model, no_grad=True), LayerCapture(model, layer) as cap:
        for i in range(0, x.shape[0], batch_size):
            out.append(cap.run(x[i : i + batch_size].to(device)).detach().float().cpu())
    return torch.cat(out)
