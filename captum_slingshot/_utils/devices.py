"""Where a model lives."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch import nn

__all__ = ["model_device", "PRECISIONS", "autocast"]


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


#: ``precision`` -> the autocast dtype (``None``: full precision, no autocast)
PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: Optional[str], device: Union[str, torch.device]) -> Any:
    """The forward passes' mixed-precision context: ``torch.autocast`` for ``"bf16"`` / ``"fp16"``,
    a no-op for ``None``. Losses stay in float32 (autocast runs ``mse_loss``, ``cross_entropy`` and
    the norms in float32).

    Example:
        >>> import torch
        >>> with autocast("bf16", "cpu"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
        >>> with autocast(None, "cpu"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
    """
    import contextlib

    if precision is None:
        return contextlib.nullcontext()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} or None, got {precision!r}")
    return torch.autocast(device_type=torch.device(device).type, dtype=PRECISIONS[precision])
