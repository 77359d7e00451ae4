"""Target images for manipulations: paths, PIL images or tensors, made to fit a parametrization.

Example:
    >>> from captum_slingshot.transforms.target import load_target, packaged_target
    >>> load_target(packaged_target("cross"), (1, 28, 28)).shape
    torch.Size([1, 28, 28])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

__all__ = ["load_target", "packaged_target", "PACKAGED_TARGETS"]

_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "targets"
PACKAGED_TARGETS = {"cross": "cross.jpg", "fake": "fake.jpg"}

TargetLike = Union[str, os.PathLike, Image.Image, Tensor]


def packaged_target(name: str) -> str:
    """Path of a target image shipped with the package (``"cross"``, ``"fake"``)."""
    try:
        return str(_ASSETS / PACKAGED_TARGETS[name])
    except KeyError:
        raise ValueError(f"unknown packaged target {name!r}; choose one of {sorted(PACKAGED_TARGETS)}") from None


def load_target(target: TargetLike, shape: Sequence[int]) -> Tensor:
    """The target as a ``(C, H, W)`` float tensor in ``[0, 1]`` of the given shape.

    Paths and PIL images are converted to grayscale or RGB as ``shape`` needs
    and resized (bilinear). Tensors must already have the right channel count
    (``(C, H, W)`` or ``(1, C, H, W)``, values in ``[0, 1]``); they are resized
    if needed.
    """
    c, h, w = (int(s) for s in shape)
    if isinstance(target, (str, os.PathLike)):
        path = Path(target)
        if not path.is_file():
            raise FileNotFoundError(f"target image {str(path)!r} does not exist")
        try:
            with Image.open(path) as img:
                img.load()
                target = img.copy()
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"cannot read target image {str(path)!r}: {err}") from err
    if isinstance(target, Image.Image):
        img = target.convert("L" if c == 1 else "RGB")
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float().div(255)
        t = t.view(img.size[1], img.size[0], c).permute(2, 0, 1)
    elif isinstance(target, Tensor):
        t = target.detach().float().cpu()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() == 2:
            t = t[None]
        if t.dim() != 3:
            raise ValueError(f"target tensor must be (C, H, W), got shape {tuple(target.shape)}")
        if t.shape[0] != c:
            raise ValueError(
                f"target tensor has {t.shape[0]} channels but the parametrization needs {c}; "
                "convert it (e.g. x.mean(0, keepdim=True) for grayscale) or pass a file/PIL image"
            )
        if torch.isnan(t).any() or torch.isinf(t).any():
            raise ValueError("target tensor contains NaN or inf")
        if t.min() < 0 or t.max() > 1:
            raise ValueError(f"target tensor values must lie in [0, 1], got [{t.min():.3g}, {t.max():.3g}]")
    else:
        raise TypeError(f"target must be a path, a PIL image or a tensor, got {type(target).__name__}")
    if tuple(t.shape[1:]) != (h, w):
        t = F.interpolate(t[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)
    return t.contiguous()
