"""Two images side by side on one canvas: the layout of active attribution fooling's composites
(``data.two_class_composites``) and of the ``mosaic_focus`` check's mosaics, in one place."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["side_by_side"]


def side_by_side(left: Tensor, right: Tensor, background: float = 0.0) -> Tensor:
    """``(N, C, H, W)``: each ``left[i]`` and ``right[i]`` shrunk to ``(H/2, W/2)`` (bilinear, antialiased) and
    placed in the left and right halves of an ``(H, W)`` canvas of ``background``, vertically centred: the
    layout of ``data.two_class_composites`` and of the ``mosaic_focus`` check's mosaics.

    Example:
        >>> import torch
        >>> out = side_by_side(torch.ones(2, 1, 8, 8), torch.zeros(2, 1, 8, 8), background=-1.0)
        >>> out[0, 0, 4].tolist()
        [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        >>> out[0, 0, 0].unique().tolist()
        [-1.0]
    """
    if not isinstance(left, Tensor) or left.dim() != 4 or min(left.shape[-2:]) < 4 or left.shape != right.shape:
        raise ValueError(f"left and right must be two (N, C, H, W) batches of one shape with H, W >= 4, got "
                         f"{getattr(left, 'shape', left)} and {getattr(right, 'shape', right)}")
    n, c, h, w = left.shape
    hh, hw = h // 2, w // 2
    top = (h - hh) // 2
    small = lambda x: F.interpolate(x.float(), size=(hh, hw), mode="bilinear", align_corners=False, antialias=True)
    out = torch.full((n, c, h, w), float(background))
    out[:, :, top:top + hh, :hw] = small(left)
    out[:, :, top:top + hh, w - hw:] = small(right)
    return out
