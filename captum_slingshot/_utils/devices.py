"""Where a model lives."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

__all__ = ["model_device"]


def model_device(model: nn.Module, device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """``device`` when given, else the device of the model's first parameter or buffer (CPU if it has none).

    Example:
        >>> from torch import nn
        >>> model_device(nn.Linear(2, 2)), model_device(nn.Identity()), model_device(nn.Identity(), "meta")
        (device(type='cpu'), device(type='cpu'), device(type='meta'))
    """
    if device is not None:
        return torch.device(device)
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")
