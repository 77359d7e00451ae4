"""Top-1 accuracy before / after a manipulation (the paper's first preservation metric).

Conventions for units and ``data``: see :mod:`captum_slingshot.metrics`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.metrics.accuracy import accuracy
    >>> accuracy(nn.Linear(2, 2), (torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))) in (0.0, 1.0)
    True
"""

from __future__ import annotations

from torch import Tensor, nn

from .._utils.data import Data, check_batch_size, empty_error, iter_batches
from .._utils.devices import model_device
from .._utils.modes import eval_mode
from .activations import Device

__all__ = ["accuracy"]


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
    bs = check_batch_size(max_examples_per_batch)
    dev = model_device(model, device)
    correct, total = 0, 0
    with eval_mode(model, no_grad=True):
        for x, y in iter_batches(data, bs, need_labels=True, need_order=False):
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
        raise empty_error("accuracy")
    return correct / total
