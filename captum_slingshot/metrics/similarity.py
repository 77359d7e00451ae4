"""Image similarity measures (LPIPS and SSIM join here in a later release).

Example:
    >>> import torch
    >>> from captum_slingshot.metrics.similarity import pearson_matrix
    >>> a = torch.rand(2, 1, 8, 8)
    >>> pearson_matrix(a, a).diag()
    tensor([1., 1.])
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["pearson_matrix"]


def pearson_matrix(images: Tensor, references: Tensor, eps: float = 1e-12) -> Tensor:
    """Pearson correlation of every image with every reference, ``(N, M)``.

    Both are flattened per example, so any ``(N, ...)`` / ``(M, ...)`` shapes
    with the same number of entries per example work.
    """
    a = images.reshape(images.shape[0], -1).to(torch.float64)
    b = references.reshape(references.shape[0], -1).to(torch.float64)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"images have {a.shape[1]} entries each but references have {b.shape[1]}; "
            "resize them to the same shape first"
        )
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    denom = a.norm(dim=1)[:, None] * b.norm(dim=1)[None, :]
    return ((a @ b.T) / denom.clamp_min(eps)).to(images.dtype if images.is_floating_point() else torch.float32)
