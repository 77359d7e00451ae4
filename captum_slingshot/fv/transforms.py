"""Per-start random image transforms for transformation robustness (TR).

Lucent and torchvision draw one random transform for the whole batch from a
global RNG. Here every start of a batch gets its own transform, driven by
uniform numbers the caller passes in (``u``, shape ``(B, n_random)``), so a
start's trajectory depends only on its own random stream and never on the
other starts in the batch. All geometric transforms are one batched
``grid_sample`` each and are differentiable with respect to the image.

Named sets (:data:`TRANSFORM_SETS`):

* ``"lucent_standard"`` -- lucent's ``standard_transforms`` values: pad 12
  (constant 0.5), jitter 8, scale 0.9--1.1, rotate -10..10 degrees (0 five
  times more likely), jitter 4. Lucent's ``random_scale`` changes the canvas
  size per call; here the zoom happens inside a fixed canvas so all starts
  can share one batch.
* ``"paper_mnist"``, ``"paper_cifar"``, ``"paper_imagenet"`` -- the paper's
  TR sets (pad 3 / 5 / 2 with 0.5, random affine +-20 degrees with scale
  0.75--1.025, random rotation, (ImageNet: ten small random translations),
  random crop back to the input size).
* ``"paper"`` -- the paper's set chosen by image size (<= 28: MNIST, <= 32:
  CIFAR, else ImageNet).

Example:
    >>> import torch
    >>> from captum_slingshot.fv.transforms import make_transforms
    >>> t = make_transforms("paper_mnist", (28, 28))
    >>> x = torch.rand(4, 1, 28, 28)
    >>> t(x, torch.rand(4, t.n_random)).shape
    torch.Size([4, 1, 28, 28])
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .._utils.registry import Registry

__all__ = [
    "BatchTransform",
    "Compose",
    "Pad",
    "Jitter",
    "RandomScale",
    "RandomRotate",
    "RandomAffine",
    "RandomCrop",
    "Resize",
    "make_transforms",
    "TRANSFORM_SETS",
    "register_transform_set",
    "available_transform_sets",
]


class BatchTransform:
    """A transform ``(x, u) -> x'`` applied with per-example randomness ``u``."""

    #: how many uniform numbers one example consumes per call
    n_random: int = 0

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def output_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        return size


def _affine(x: Tensor, rot_deg: Tensor, scale: Tensor, shift: Tensor, fill: float) -> Tensor:
    """Rotate by ``rot_deg``, zoom by ``scale`` about the centre, then shift by
    ``shift`` pixels ``(dx, dy)``; uncovered pixels get ``fill``.

    ``grid_sample`` maps output to input positions, so the inverse transform
    is built in normalized coordinates (``align_corners=False``).
    """
    b, _, h, w = x.shape
    dev, dt = x.device, x.dtype
    a = rot_deg.to(device=dev, dtype=dt) * (math.pi / 180.0)
    s = scale.to(device=dev, dtype=dt)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    # inverse rotation/zoom in pixel space, conjugated into normalized space
    # (D = diag(2/w, 2/h)): A = D R(-a)/s D^-1
    a00, a01 = cos, sin * (h / w)
    a10, a11 = -sin * (w / h), cos
    tx = shift[:, 0].to(device=dev, dtype=dt) * (2.0 / w)
    ty = shift[:, 1].to(device=dev, dtype=dt) * (2.0 / h)
    theta = torch.stack(
        [
            torch.stack([a00, a01, -(a00 * tx + a01 * ty)], -1),
            torch.stack([a10, a11, -(a10 * tx + a11 * ty)], -1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if fill == 0.0:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def _pick(u: Tensor, values: Sequence[float]) -> Tensor:
    idx = (u * len(values)).long().clamp_(0, len(values) - 1)
    return torch.as_tensor(values, dtype=torch.float32, device=u.device)[idx]


class Compose(BatchTransform):
    """Apply transforms in order, splitting ``u`` among them."""

    def __init__(self, transforms: Sequence[BatchTransform]) -> None:
        self.transforms = list(transforms)
        self.n_random = sum(t.n_random for t in self.transforms)

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        if u.shape[-1] < self.n_random:
            raise ValueError(f"need {self.n_random} random numbers per example, got {u.shape[-1]}")
        i = 0
        for t in self.transforms:
            x = t(x, u[:, i : i + t.n_random])
            i += t.n_random
        return x

    def output_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        for t in self.transforms:
            size = t.output_size(size)
        return size

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Pad(BatchTransform):
    """Pad every side by ``width`` pixels (``mode`` as in ``F.pad``)."""

    def __init__(self, width: int, mode: str = "constant", value: float = 0.5) -> None:
        self.width, self.mode, self.value = int(width), mode, float(value)

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        if self.mode == "constant":
            return F.pad(x, [self.width] * 4, mode="constant", value=self.value)
        return F.pad(x, [self.width] * 4, mode=self.mode)

    def output_size(self, size):
        return (size[0] + 2 * self.width, size[1] + 2 * self.width)

    def __repr__(self):
        return f"Pad({self.width}, {self.mode!r}, {self.value})"


class Jitter(BatchTransform):
    """Lucent's jitter: shift by integers ``dx, dy`` in ``{0, ..., d-1}``, zero fill."""

    n_random = 2

    def __init__(self, d: int) -> None:
        if d <= 1:
            raise ValueError(f"jitter d must be more than 1, got {d}")
        self.d = int(d)

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        shift = (u[:, :2] * self.d).floor().clamp_(0, self.d - 1)
        zeros = torch.zeros(x.shape[0], device=x.device)
        return _affine(x, zeros, torch.ones_like(zeros), shift, 0.0)

    def __repr__(self):
        return f"Jitter({self.d})"


class RandomScale(BatchTransform):
    """Zoom about the centre by a factor chosen uniformly from ``scales``."""

    n_random = 1

    def __init__(self, scales: Sequence[float], fill: float = 0.0) -> None:
        self.scales, self.fill = [float(s) for s in scales], float(fill)

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        s = _pick(u[:, 0], self.scales)
        zeros = torch.zeros_like(s)
        return _affine(x, zeros, s, torch.zeros(x.shape[0], 2, device=x.device), self.fill)

    def __repr__(self):
        return f"RandomScale({len(self.scales)} scales)"


class RandomRotate(BatchTransform):
    """Rotate about the centre by an angle (degrees) chosen uniformly from ``angles``."""

    n_random = 1

    def __init__(self, angles: Sequence[float], fill: float = 0.0) -> None:
        self.angles, self.fill = [float(a) for a in angles], float(fill)

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        a = _pick(u[:, 0], self.angles)
        return _affine(x, a, torch.ones_like(a), torch.zeros(x.shape[0], 2, device=x.device), self.fill)

    def __repr__(self):
        return f"RandomRotate({len(self.angles)} angles)"


class RandomAffine(BatchTransform):
    """torchvision-like ``RandomAffine``: angle ~ U(degrees), scale ~ U(scale),
    translation ~ U(-t·size, t·size) rounded to whole pixels; ``fill`` outside."""

    n_random = 4

    def __init__(
        self,
        degrees: Union[float, Tuple[float, float]] = 0.0,
        translate: Optional[Tuple[float, float]] = None,
        scale: Optional[Tuple[float, float]] = None,
        fill: float = 0.0,
    ) -> None:
        if isinstance(degrees, (int, float)):
            degrees = (-float(degrees), float(degrees))
        self.degrees = (float(degrees[0]), float(degrees[1]))
        self.translate = translate
        self.scale = scale
        self.fill = float(fill)

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        lo, hi = self.degrees
        angle = lo + (hi - lo) * u[:, 0]
        if self.scale is not None:
            s = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 1]
        else:
            s = torch.ones_like(angle)
        if self.translate is not None:
            mx, my = self.translate[0] * w, self.translate[1] * h
            shift = torch.stack([(2 * u[:, 2] - 1) * mx, (2 * u[:, 3] - 1) * my], 1).round()
        else:
            shift = torch.zeros(x.shape[0], 2, device=u.device)
        return _affine(x, angle, s, shift, self.fill)

    def __repr__(self):
        return f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, fill={self.fill})"


class RandomCrop(BatchTransform):
    """Crop ``size`` at a uniformly random position, per example."""

    n_random = 2

    def __init__(self, size: Tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        b, c, h, w = x.shape
        ch, cw = self.size
        if ch > h or cw > w:
            x = F.pad(x, [0, max(0, cw - w), 0, max(0, ch - h)])
            h, w = x.shape[-2:]
        top = (u[:, 0] * (h - ch + 1)).long().clamp_(0, h - ch).to(x.device)
        left = (u[:, 1] * (w - cw + 1)).long().clamp_(0, w - cw).to(x.device)
        ys = top[:, None] + torch.arange(ch, device=x.device)
        xs = left[:, None] + torch.arange(cw, device=x.device)
        bi = torch.arange(b, device=x.device)[:, None, None]
        out = x.permute(0, 2, 3, 1)[bi, ys[:, :, None], xs[:, None, :]]
        return out.permute(0, 3, 1, 2)

    def output_size(self, size):
        return self.size

    def __repr__(self):
        return f"RandomCrop({self.size})"


class Resize(BatchTransform):
    """Deterministic bilinear resize (lucent upsamples small images to 224)."""

    def __init__(self, size: Tuple[int, int], align_corners: bool = True) -> None:
        self.size, self.align_corners = (int(size[0]), int(size[1])), align_corners

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) == self.size:
            return x
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=self.align_corners)

    def output_size(self, size):
        return self.size

    def __repr__(self):
        return f"Resize({self.size})"


def _lucent_standard(size: Tuple[int, int]) -> List[BatchTransform]:
    return [
        Pad(12, "constant", 0.5),
        Jitter(8),
        RandomScale([1 + (i - 5) / 50.0 for i in range(11)]),
        RandomRotate(list(range(-10, 11)) + 5 * [0]),
        Jitter(4),
    ]


def _paper(pad: int, translations: int = 0) -> "callable":
    def build(size: Tuple[int, int]) -> List[BatchTransform]:
        ts: List[BatchTransform] = [Pad(pad, "constant", 0.5)]
        ts += [RandomAffine(0.0, translate=(0.015, 0.015), fill=0.5) for _ in range(translations)]
        ts.append(RandomAffine((-20.0, 20.0), scale=(0.75, 1.025), fill=0.5))
        if translations == 0:
            ts.append(RandomAffine((-20.0, 21.0), fill=0.0))  # RandomRotation((-20, 21))
        ts.append(RandomCrop(size))
        return ts

    return build


#: name -> builder ``size -> list of transforms`` (add with :func:`register_transform_set`)
TRANSFORM_SETS: Registry = Registry("transform set")


def register_transform_set(name: str, build=None, *, description: Optional[str] = None):
    """Register a transform set: ``build((height, width))`` returns a list of :class:`BatchTransform`.
    Usable as a decorator."""
    return TRANSFORM_SETS.register(name, build, description=description)


def available_transform_sets() -> dict:
    """Registered transform sets: ``{name: one-line description}`` (``"paper"`` picks one of the paper's by size).

    Example:
        >>> sorted(available_transform_sets())
        ['lucent_standard', 'paper_cifar', 'paper_imagenet', 'paper_mnist']
    """
    return TRANSFORM_SETS.describe()


register_transform_set("lucent_standard", _lucent_standard,
                       description="lucent's standard_transforms: pad 12, jitter 8, scale 0.9-1.1, rotate +-10, jitter 4")
register_transform_set("paper_mnist", _paper(3), description="the paper's MNIST TR: pad 3, random affine, rotation, crop")
register_transform_set("paper_cifar", _paper(5), description="the paper's CIFAR TR: pad 5, random affine, rotation, crop")
register_transform_set("paper_imagenet", _paper(2, translations=10),
                       description="the paper's ImageNet TR: pad 2, ten small translations, random affine, crop")


def make_transforms(name: str, size: Tuple[int, int]) -> Compose:
    """Build a named transform set for images of ``size = (height, width)``."""
    if name == "paper":
        side = max(size)
        name = "paper_mnist" if side <= 28 else "paper_cifar" if side <= 32 else "paper_imagenet"
    if name not in TRANSFORM_SETS:
        raise ValueError(f"unknown transform set {name!r}; choose one of {sorted(TRANSFORM_SETS) + ['paper']}")
    return Compose(TRANSFORM_SETS[name](tuple(size)))
