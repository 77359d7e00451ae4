"""The model's own input preprocessing, given once: resize, centre crop, per-channel mean and std.

A model expects its inputs prepared one way (torchvision's ImageNet models: shorter side resized to
256 px, a 224 px centre crop, ImageNet mean/std; the paper's MNIST CNN: 28 px, MNIST mean/std).
:class:`Preprocess` holds that recipe once, and everything that feeds the model uses it: natural
images from a folder or a dataset (it is a ``transform`` for torchvision datasets), tensors of
images in ``[0, 1]``, and the auditor's FV parametrization (:meth:`Preprocess.param`: same mean and
std, the crop as the image size). :func:`normalize` and :func:`denormalize` are the per-channel
maps on their own.

Example:
    >>> import torch
    >>> from captum_slingshot.data import Preprocess
    >>> pre = Preprocess(resize=40, crop=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    >>> x = pre(torch.full((3, 60, 80), 0.75))  # resize the shorter side to 40, crop 32 x 32, normalize
    >>> tuple(x.shape), round(float(x.mean()), 4)
    ((3, 32, 32), 1.0)
    >>> param = pre.param("pixel")  # the FV parametrization with the same mean/std and size
    >>> param.shape, param.mean
    ((3, 32, 32), (0.5, 0.5, 0.5))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..fv.param import IMAGENET_MEAN, IMAGENET_STD, MNIST_MEAN, MNIST_STD

__all__ = ["Preprocess", "normalize", "denormalize", "default_stats", "INTERPOLATIONS"]

#: interpolation modes of :attr:`Preprocess.interpolation` (torchvision's names, lower case)
INTERPOLATIONS: Tuple[str, ...] = ("bilinear", "bicubic", "nearest")


def default_stats(channels: int) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Mean and std used when none are given: ImageNet's for 3 channels, none (0 and 1) otherwise.

    The same rule as the FV parametrizations' (:class:`~captum_slingshot.fv.Parametrization`).

    Example:
        >>> default_stats(1)
        ((0.0,), (1.0,))
    """
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return (0.0,) * channels, (1.0,) * channels


def _stats_for(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tuple[Tensor, Tensor]:
    channels = x.shape[-3] if x.dim() >= 3 else None
    if len(mean) != len(std):
        raise ValueError(f"mean has {len(mean)} entries but std has {len(std)}")
    if channels is not None and len(mean) != channels:
        raise ValueError(f"the images have {channels} channel(s) (shape {tuple(x.shape)}) but mean/std have "
                         f"{len(mean)} entries: give one mean and std per channel")
    m = torch.as_tensor(tuple(mean), dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(tuple(std), dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return m, s


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(x - mean) / std`` per channel, for images ``(..., C, H, W)``.

    One entry of each applies to every channel (and to any shape, as ``normalize_mnist`` does).

    Raises:
        ValueError: ``mean``/``std`` have more than one entry but not one per channel of ``x``.

    Example:
        >>> import torch
        >>> normalize(torch.ones(2, 3, 1, 1), (0.5, 0.0, 1.0), (0.5, 1.0, 1.0)).flatten().tolist()
        [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    """
    if len(mean) == 1 and len(std) == 1:
        return (x - float(mean[0])) / float(std[0])
    m, s = _stats_for(x, mean, std)
    return (x - m) / s


def denormalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Inverse of :func:`normalize`: ``x * std + mean`` per channel (no clamping).

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 4, 4)
        >>> torch.allclose(denormalize(normalize(x, (0.1, 0.2, 0.3), (0.5, 0.4, 0.3)), (0.1, 0.2, 0.3), (0.5, 0.4, 0.3)), x)
        True
    """
    if len(mean) == 1 and len(std) == 1:
        return x * float(std[0]) + float(mean[0])
    m, s = _stats_for(x, mean, std)
    return x * s + m


def _positive(value: Any, name: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive number of pixels (int), got {value!r}")
    return value


def _floats(value: Any, name: str) -> Optional[Tuple[float, ...]]:
    if value is None:
        return None
    values = (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    if not values:
        raise ValueError(f"{name} is empty")
    return values


@dataclass(frozen=True)
class Preprocess:
    """How images become model inputs: resize, centre crop, ``[0, 1]`` tensor, per-channel normalization.

    The steps and their order are torchvision's classification presets' (``weights.transforms()``):
    the shorter side is resized to ``resize`` px (aspect kept, antialiased), the centre
    ``crop`` x ``crop`` square is cut out, the image becomes a float tensor in ``[0, 1]`` and is
    normalized with ``mean``/``std``. Calling a ``Preprocess`` on a PIL image or on a tensor in
    ``[0, 1]`` (``(C, H, W)`` or a batch ``(N, C, H, W)``) runs all of it, so it serves as a
    torchvision dataset's ``transform``.

    Args:
        resize: side the shorter image side is resized to, in px; ``None`` keeps the size.
        crop: side of the square centre crop, in px; ``None`` keeps the whole image. Also the
            default size of the FV parametrization (:meth:`param`).
        mean, std: per-channel normalization the model expects (as many entries as channels; PIL
            images are read as RGB for 3 and as grayscale for 1). ``None`` for both: ImageNet's
            statistics for RGB, none for other channel counts (as the FV parametrizations do).
        interpolation: ``"bilinear"`` (default), ``"bicubic"`` or ``"nearest"``.

    Raises:
        ValueError: a size below 1, only one of ``mean``/``std``, different lengths, a std that is
            not positive, or an unknown interpolation.

    Example:
        >>> Preprocess.imagenet()
        Preprocess(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation='bilinear')
        >>> Preprocess.mnist().shape(1), Preprocess(crop=64).shape()
        (None, (3, 64, 64))
    """

    resize: Optional[int] = None
    crop: Optional[int] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        _positive(self.resize, "resize")
        _positive(self.crop, "crop")
        mean, std = _floats(self.mean, "mean"), _floats(self.std, "std")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        if mean is not None and std is not None:
            if len(mean) != len(std):
                raise ValueError(f"mean has {len(mean)} entries but std has {len(std)}: give one of each per channel")
            if any(s <= 0 for s in std):
                raise ValueError(f"std must be positive, got {std}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    # -- common recipes --------------------------------------------------------------------------
    @classmethod
    def imagenet(cls, size: int = 224) -> "Preprocess":
        """torchvision's ImageNet evaluation recipe: resize to ``size * 256 / 224``, crop ``size``, ImageNet stats."""
        return cls(resize=int(round(size * 256 / 224)), crop=size, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    @classmethod
    def mnist(cls) -> "Preprocess":
        """The paper's MNIST CNN: 28 px grayscale as is, MNIST mean/std."""
        return cls(mean=MNIST_MEAN, std=MNIST_STD)

    @classmethod
    def from_torchvision_weights(cls, weights: Any) -> "Preprocess":
        """The preprocessing of torchvision weights (``weights.transforms()``), read without downloading.

        Args:
            weights: a weights enum member (``ResNet18_Weights.DEFAULT``), its name
                (``"ResNet50_Weights.IMAGENET1K_V2"``), or a model name (``"resnet18"``: its
                default weights).

        Raises:
            ValueError: unknown name, a model without pretrained weights, or weights whose
                transforms are not a classification preset (resize, crop, mean, std).

        Example:
            >>> Preprocess.from_torchvision_weights("vit_b_16")
            Preprocess(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation='bilinear')
        """
        preset = _torchvision_weights(weights).transforms()
        try:
            resize, crop = preset.resize_size, preset.crop_size
            mean, std, mode = preset.mean, preset.std, preset.interpolation
        except AttributeError:
            raise ValueError(f"the transforms of torchvision weights {weights} are not a classification preset "
                             f"(resize, crop, mean, std): {type(preset).__name__}; give Preprocess(...) yourself") from None
        one = lambda size: None if size is None else int(size[0] if isinstance(size, (list, tuple)) else size)
        return cls(resize=one(resize), crop=one(crop), mean=tuple(mean), std=tuple(std),
                   interpolation=str(getattr(mode, "value", mode)).lower())

    # -- geometry and statistics -----------------------------------------------------------------
    @property
    def channels(self) -> Optional[int]:
        """Channels the mean/std are for (``None`` when they are not given)."""
        return None if self.mean is None else len(self.mean)

    def shape(self, channels: Optional[int] = None) -> Optional[Tuple[int, int, int]]:
        """``(C, crop, crop)`` of the model inputs (``None`` without a crop); ``C``: ``channels``, else
        the mean's length, else 3."""
        if self.crop is None:
            return None
        return (int(channels or self.channels or 3), self.crop, self.crop)

    def stats(self, channels: int) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        """``(mean, std)`` for images of ``channels`` channels (the defaults when none are given).

        Raises:
            ValueError: the mean/std have another number of entries.
        """
        if self.mean is None or self.std is None:
            return default_stats(channels)
        if len(self.mean) != channels:
            raise ValueError(f"the images have {channels} channel(s) but the preprocessing's mean/std have "
                             f"{len(self.mean)} entries: give one mean and std per channel of the model's input")
        return self.mean, self.std

    # -- the maps ------------------------------------------------------------------------------------
    def image(self, img: Any) -> Tensor:
        """Resized and cropped, as a float tensor in ``[0, 1]`` (not normalized).

        Args:
            img: a PIL image (read as RGB, or grayscale when the mean has one entry) or a tensor in
                ``[0, 1]`` of shape ``(C, H, W)`` or ``(N, C, H, W)``.
        """
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        if not isinstance(img, Tensor):
            mode = "L" if self.channels == 1 else "RGB"
            if getattr(img, "mode", mode) != mode:
                img = img.convert(mode)
        if self.resize is not None:
            img = TF.resize(img, [self.resize], interpolation=InterpolationMode(self.interpolation), antialias=True)
        if self.crop is not None:
            img = TF.center_crop(img, [self.crop, self.crop])
        if not isinstance(img, Tensor):
            img = TF.pil_to_tensor(img)
        return img.float().div_(255.0) if img.dtype == torch.uint8 else img.float()

    def normalize(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` per channel (see :func:`normalize`)."""
        return normalize(x, *self.stats(x.shape[-3]))

    def denormalize(self, x: Tensor) -> Tensor:
        """Model inputs back to images (``x * std + mean``; no clamping)."""
        return denormalize(x, *self.stats(x.shape[-3]))

    def __call__(self, img: Any) -> Tensor:
        """The model input of an image: :meth:`image`, then :meth:`normalize`."""
        return self.normalize(self.image(img))

    def param(self, name: str = "pixel", shape: Optional[Sequence[int]] = None, **kwargs: Any) -> Any:
        """The FV parametrization ``name`` with this preprocessing's mean/std and, by default, ``(C, crop, crop)``.

        Raises:
            ValueError: no ``shape`` and no crop to take it from.
        """
        from ..fv import make_param

        if shape is None:
            shape = self.shape()
            if shape is None:
                raise ValueError("give the FV image shape (C, H, W): this preprocessing has no crop to take it from")
        c = int(tuple(shape)[0])
        mean, std = (self.mean, self.std) if self.mean is not None else (None, None)
        if mean is not None and len(mean) != c and len(mean) != 1:
            self.stats(c)  # raises the mismatch
        return make_param(name, tuple(shape), mean=mean, std=std, **kwargs)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly fields (for run records)."""
        d = asdict(self)
        d["mean"] = None if self.mean is None else list(self.mean)
        d["std"] = None if self.std is None else list(self.std)
        return d


def _torchvision_weights(weights: Any) -> Any:
    """A torchvision weights enum member from a member, its name, or a model name (its ``DEFAULT``)."""
    import torchvision.models as tvm

    if not isinstance(weights, str):
        if not hasattr(weights, "transforms"):
            raise ValueError(f"expected torchvision weights (e.g. ResNet18_Weights.DEFAULT), got {weights!r}")
        return weights
    if weights in tvm.list_models():
        try:
            enum = tvm.get_model_weights(weights)
        except (KeyError, ValueError):
            enum = None
        if enum is None or not hasattr(enum, "DEFAULT"):
            raise ValueError(f"torchvision model {weights!r} has no pretrained weights to take the preprocessing from")
        return enum.DEFAULT
    try:
        return tvm.get_weight(weights)
    except (KeyError, ValueError, AttributeError):
        raise ValueError(f"unknown torchvision weights {weights!r}: give a model name (resnet18) or weights such as "
                         "'ResNet50_Weights.IMAGENET1K_V2'") from None
