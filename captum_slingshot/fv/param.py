"""Parametrizations: the map from an optimization variable ``q`` to an image.

Feature visualization optimizes ``q``; the network sees ``normalize(t(x(q)))``
where ``x(q)`` is the image and ``t`` an optional random transform. Every
parametrization here offers

* :meth:`Parametrization.image` -- ``x(q)`` in ``[0, 1]`` for display,
* :meth:`Parametrization.network_input` -- what the model receives,
* :meth:`Parametrization.inverse` -- an exact inverse of :meth:`image`
  (``image(inverse(x)) == x`` for images strictly inside ``(0, 1)``; see each
  class for the set of images it can represent),
* :meth:`Parametrization.sample_init` -- seeded ``N(0, sd^2)`` starts, as lucent
  and the paper draw them.

All work batched: ``q`` has shape ``(B, *param_shape)`` and images have shape
``(B, C, H, W)``. Grayscale (``C == 1``) and RGB (``C == 3``) are supported.

Example:
    >>> import torch
    >>> from captum_slingshot.fv.param import LucentFourierParam
    >>> p = LucentFourierParam((3, 32, 32))
    >>> q = p.sample_init(2, seeds=[0, 1])
    >>> x = p.image(q)
    >>> x.shape
    torch.Size([2, 3, 32, 32])
    >>> bool(torch.allclose(p.image(p.inverse(x)), x, atol=1e-5))
    True
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .._utils.registry import Registry

__all__ = [
    "Parametrization",
    "PixelParam",
    "LucentPixelParam",
    "LucentFourierParam",
    "PaperFourierParam",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MNIST_MEAN",
    "MNIST_STD",
    "COLOR_CORRELATION_SVD_SQRT",
    "make_param",
    "PARAMETRIZATIONS",
    "available_parametrizations",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)

#: Lucid's colour correlation matrix (square root of the ImageNet colour
#: covariance); normalized by its largest column norm before use.
COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)


def _color_matrix() -> np.ndarray:
    col_norms = np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0)
    return COLOR_CORRELATION_SVD_SQRT / np.max(col_norms)


def _as_shape(shape: Union[int, Sequence[int]]) -> Tuple[int, int, int]:
    if isinstance(shape, int):
        shape = (3, shape, shape)
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (3,) + shape
    if len(shape) != 3:
        raise ValueError(
            f"image shape must be (channels, height, width), got {shape!r}; "
            "pass e.g. (1, 28, 28) for MNIST or (3, 64, 64) for RGB"
        )
    c, h, w = shape
    if c not in (1, 3):
        raise ValueError(
            f"only grayscale (1) or RGB (3) images are supported, got {c} channels"
        )
    if h < 2 or w < 2:
        raise ValueError(f"image height and width must be at least 2, got {h}x{w}")
    return shape  # type: ignore[return-value]


def _logit(x: Tensor) -> Tensor:
    return torch.log(x) - torch.log1p(-x)


class Parametrization:
    """Base class: ``q`` <-> image, plus the normalization the model expects.

    Args:
        shape: ``(channels, height, width)`` of the image, or an int for a
            square RGB image.
        mean, std: per-channel normalization applied to the image before the
            model sees it. ``None`` uses ImageNet statistics for RGB (lucent's
            ``normalize()``) and no normalization for grayscale.
    """

    #: short registry name, set by subclasses
    name: str = ""

    def __init__(
        self,
        shape: Union[int, Sequence[int]],
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
    ) -> None:
        self.shape = _as_shape(shape)
        c = self.channels
        if mean is None and std is None:
            mean, std = (IMAGENET_MEAN, IMAGENET_STD) if c == 3 else ((0.0,), (1.0,))
        elif mean is None or std is None:
            raise ValueError("give both mean and std, or neither")
        if isinstance(mean, (int, float)):
            mean = (mean,)
        if isinstance(std, (int, float)):
            std = (std,)
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean) == 1 and c == 3:
            mean, std = mean * 3, std * 3
        if len(mean) != c or len(std) != c:
            raise ValueError(
                f"mean/std have {len(mean)} entries but the image has {c} channels"
            )
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {std}")
        self.mean = mean
        self.std = std

    # -- geometry ---------------------------------------------------------------
    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    @property
    def param_shape(self) -> Tuple[int, ...]:
        """Shape of one ``q`` (without the batch dimension)."""
        raise NotImplementedError

    # -- maps ---------------------------------------------------------------------
    def raw_image(self, q: Tensor) -> Tensor:
        """Differentiable image before any clamping (what transforms act on)."""
        raise NotImplementedError

    def image(self, q: Tensor) -> Tensor:
        """The image ``x(q)`` in ``[0, 1]``, shape ``(B, C, H, W)``."""
        return self.raw_image(q).clamp(0.0, 1.0)

    def normalize(self, x: Tensor) -> Tensor:
        """Apply this parametrization's per-channel normalization to images."""
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device)
        return (x - mean[:, None, None]) / std[:, None, None]

    def denormalize(self, x: Tensor) -> Tensor:
        """Model inputs back to images in ``[0, 1]`` (undo :meth:`normalize`, then clamp)."""
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x * std + mean).clamp(0.0, 1.0)

    def network_input(self, q: Tensor) -> Tensor:
        """``eta(q) = normalize(x(q))``: what the model receives (no transform)."""
        return self.normalize(self.raw_image(q))

    def inverse(self, image: Tensor) -> Tensor:
        """Return ``q`` with ``image(q) == image`` (batched, ``(B, C, H, W)``)."""
        raise NotImplementedError

    # -- sampling -----------------------------------------------------------------
    def sample_init(
        self,
        n: int,
        seeds: Optional[Sequence[int]] = None,
        generator: Optional[torch.Generator] = None,
        sd: float = 0.01,
        device: Union[str, torch.device, None] = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """``n`` starts ``q0 ~ N(0, sd^2)``.

        With ``seeds`` (one per start) each start is drawn from its own
        generator, so start ``i`` does not depend on ``n``: a batch of starts
        equals the same starts drawn one at a time. Otherwise all starts come
        from ``generator`` (or torch's global RNG).
        """
        if seeds is not None:
            if len(seeds) != n:
                raise ValueError(f"got {len(seeds)} seeds for {n} starts")
            draws = [
                torch.randn(self.param_shape, generator=torch.Generator().manual_seed(int(s)))
                for s in seeds
            ]
            q = torch.stack(draws) if draws else torch.empty((0,) + self.param_shape)
        else:
            q = torch.randn((n,) + self.param_shape, generator=generator)
        return (q * sd).to(device=device, dtype=dtype)

    def _check_image(self, image: Tensor) -> Tensor:
        if image.dim() == 3:
            image = image.unsqueeze(0)
        if image.dim() != 4 or tuple(image.shape[1:]) != self.shape:
            raise ValueError(
                f"expected images of shape (B, {self.channels}, {self.height}, "
                f"{self.width}), got {tuple(image.shape)}; resize or convert the "
                "image first (see captum_slingshot.fv.param)"
            )
        if torch.isnan(image).any():
            raise ValueError("image contains NaN")
        return image

    def _check_q(self, q: Tensor) -> None:
        if tuple(q.shape[1:]) != self.param_shape:
            raise ValueError(
                f"{type(self).__name__} expects q of shape (B, *{self.param_shape}), "
                f"got {tuple(q.shape)}"
            )

    def config(self) -> Tuple:
        """Everything that decides the map ``q -> image`` and the normalization (equal configs: equal maps)."""
        extra = tuple(sorted((k, v) for k, v in vars(self).items()
                             if k in ("decorrelate", "decay_power")))
        return (type(self).__name__, self.shape, self.mean, self.std) + extra

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Parametrization) and type(other) is type(self) and other.config() == self.config()

    def __hash__(self) -> int:
        return hash(self.config())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, mean={self.mean}, std={self.std})"


class PixelParam(Parametrization):
    """The paper's pixel parametrization: ``q`` *is* the normalized image.

    The network receives ``q`` unchanged; :meth:`image` de-normalizes and
    clamps to ``[0, 1]``. The inverse is exact for every image in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from captum_slingshot.fv.param import PixelParam, MNIST_MEAN, MNIST_STD
        >>> p = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
        >>> x = torch.rand(1, 1, 28, 28)
        >>> bool(torch.allclose(p.image(p.inverse(x)), x, atol=1e-6))
        True
    """

    name = "pixel"

    @property
    def param_shape(self) -> Tuple[int, ...]:
        return self.shape

    def raw_image(self, q: Tensor) -> Tensor:
        self._check_q(q)
        mean = torch.as_tensor(self.mean, dtype=q.dtype, device=q.device)
        std = torch.as_tensor(self.std, dtype=q.dtype, device=q.device)
        return q * std[:, None, None] + mean[:, None, None]

    def network_input(self, q: Tensor) -> Tensor:
        self._check_q(q)
        return q

    def inverse(self, image: Tensor) -> Tensor:
        return self.normalize(self._check_image(image))


class _SigmoidColorParam(Parametrization):
    """Shared part of lucent-style parametrizations: ``sigmoid(C · y)``."""

    def __init__(self, shape, mean=None, std=None, decorrelate: bool = True) -> None:
        super().__init__(shape, mean, std)
        self.decorrelate = bool(decorrelate) and self.channels == 3

    def _color(self, y: Tensor) -> Tensor:
        if not self.decorrelate:
            return y
        c = torch.as_tensor(_color_matrix(), dtype=y.dtype, device=y.device)
        return torch.einsum("ck,bkhw->bchw", c, y)

    def _uncolor(self, z: Tensor) -> Tensor:
        if not self.decorrelate:
            return z
        c = torch.as_tensor(_color_matrix(), dtype=torch.float64)
        c_inv = torch.linalg.inv(c).to(dtype=z.dtype, device=z.device)
        return torch.einsum("ck,bkhw->bchw", c_inv, z)

    def _logit_image(self, image: Tensor) -> Tensor:
        image = self._check_image(image)
        if (image <= 0).any() or (image >= 1).any():
            raise ValueError(
                f"{type(self).__name__}.inverse needs images strictly inside (0, 1) "
                "(the sigmoid never reaches 0 or 1); shrink the image first, e.g. "
                "x = 0.5 + (x - 0.5) / 1.01 as the paper does"
            )
        return self._uncolor(_logit(image))


class LucentPixelParam(_SigmoidColorParam):
    """Lucent's pixel parametrization (``param.image(..., fft=False)``).

    ``image = sigmoid(C · q)`` with lucent's colour decorrelation ``C`` for RGB
    (identity for grayscale, or when ``decorrelate=False``). Any image strictly
    inside ``(0, 1)`` is reachable; the inverse is exact.
    """

    name = "lucent_pixel"

    @property
    def param_shape(self) -> Tuple[int, ...]:
        return self.shape

    def raw_image(self, q: Tensor) -> Tensor:
        self._check_q(q)
        return torch.sigmoid(self._color(q))

    def inverse(self, image: Tensor) -> Tensor:
        return self._logit_image(image)


def lucent_rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Lucid/lucent's frequency grid: ``(h, w // 2 + 1 [+1 if w odd])``."""
    fy = np.fft.fftfreq(h)[:, None]
    n_x = w // 2 + 2 if w % 2 == 1 else w // 2 + 1
    fx = np.fft.fftfreq(w)[:n_x]
    return np.sqrt(fx * fx + fy * fy)


class LucentFourierParam(_SigmoidColorParam):
    """Lucent's Fourier + colour-decorrelation + sigmoid parametrization.

    Exactly ``lucent.optvis.param.image(w, h, fft=True, decorrelate=True)``:
    ``q`` holds real and imaginary parts of an rFFT spectrum, shape
    ``(C, H, F, 2)`` with lucent's frequency count ``F``; the image is
    ``sigmoid(C · irfft2(S ⊙ q, ortho) / 4)`` with ``S = 1 / max(f, 1/max(h, w))^decay``.

    The map is many-to-one (irfft ignores the imaginary part of real-valued
    frequencies, and lucent's extra column for odd widths); :meth:`inverse`
    returns the representative with those entries set to zero. Every image
    strictly inside ``(0, 1)`` is reachable.
    """

    name = "lucent_fourier"
    _magic = 4.0  # lucent's constant

    def __init__(self, shape, mean=None, std=None, decorrelate: bool = True, decay_power: float = 1.0):
        super().__init__(shape, mean, std, decorrelate)
        self.decay_power = float(decay_power)
        h, w = self.height, self.width
        freqs = lucent_rfft2d_freqs(h, w)
        scale = 1.0 / np.maximum(freqs, 1.0 / max(w, h)) ** self.decay_power
        # lucent builds the scale in float64 and casts to float32
        self._scale = torch.tensor(scale).float()
        self._n_freq = freqs.shape[1]

    @property
    def param_shape(self) -> Tuple[int, ...]:
        return (self.channels, self.height, self._n_freq, 2)

    def _scale_for(self, q: Tensor) -> Tensor:
        return self._scale.to(device=q.device, dtype=q.dtype)

    def raw_image(self, q: Tensor) -> Tensor:
        self._check_q(q)
        spectrum = torch.view_as_complex((self._scale_for(q)[..., None] * q).contiguous())
        y = torch.fft.irfftn(spectrum, s=(self.height, self.width), norm="ortho")
        return torch.sigmoid(self._color(y / self._magic))

    def inverse(self, image: Tensor) -> Tensor:
        y = self._logit_image(image) * self._magic
        spec = torch.fft.rfftn(y, s=(self.height, self.width), norm="ortho")
        n = spec.shape[-1]
        q = torch.view_as_real(spec) / self._scale_for(y)[:, :n, None]
        if self._n_freq > n:  # lucent's extra column for odd widths is ignored
            q = torch.nn.functional.pad(q, (0, 0, 0, self._n_freq - n))
        return q.contiguous()


class PaperFourierParam(_SigmoidColorParam):
    """The paper's Fourier parametrization (torch-dreams' scale).

    ``q`` has shape ``(C, H, F, 2)`` with ``F = W // 2`` frequencies for even
    widths (the Nyquist column is dropped) and ``(W + 1) // 2`` for odd ones;
    the image is ``sigmoid(C · irfft2(S ⊙ q, ortho))`` with
    ``S = 1 / max(|f|^(2·0.75), 1/(max(h, w)·d))`` on torch-dreams' grid
    (``d = sqrt(1/2)``). No ``/4``.

    Because the Nyquist column is dropped, the reachable images are those whose
    logit (after colour un-mixing) has no energy at the horizontal Nyquist
    frequency; :meth:`inverse` is exact on them (``image(inverse(image(q))) ==
    image(q)``) and returns the least-squares projection for other images.
    """

    name = "paper_fourier"

    def __init__(self, shape, mean=None, std=None, decorrelate: bool = True, decay_power: float = 0.75):
        super().__init__(shape, mean, std, decorrelate)
        self.decay_power = float(decay_power)
        h, w = self.height, self.width
        d = 0.5 ** 0.5
        fy = np.fft.fftfreq(h, d=d)[:, None]
        n_x = (w + 1) // 2 if w % 2 == 1 else w // 2
        fx = np.fft.rfftfreq(w, d=d)[:n_x]
        freqs = (fx * fx + fy * fy) ** self.decay_power
        self._scale = torch.tensor(1.0 / np.maximum(freqs, 1.0 / (max(w, h) * d))).float()
        self._n_freq = n_x

    @property
    def param_shape(self) -> Tuple[int, ...]:
        return (self.channels, self.height, self._n_freq, 2)

    def raw_image(self, q: Tensor) -> Tensor:
        self._check_q(q)
        scale = self._scale.to(device=q.device, dtype=q.dtype)
        spectrum = torch.view_as_complex((scale[..., None] * q).contiguous())
        y = torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")
        return torch.sigmoid(self._color(y))

    def inverse(self, image: Tensor) -> Tensor:
        y = self._logit_image(image)
        spec = torch.fft.rfft2(y, norm="ortho")[..., : self._n_freq]
        scale = self._scale.to(device=y.device, dtype=y.dtype)
        return (torch.view_as_real(spec) / scale[..., None]).contiguous()


#: name -> parametrization class (add with ``PARAMETRIZATIONS.register(name, cls)``)
PARAMETRIZATIONS: Registry = Registry("parametrization")
for _cls in (PixelParam, LucentPixelParam, LucentFourierParam, PaperFourierParam):
    PARAMETRIZATIONS.register(_cls.name, _cls)


def available_parametrizations() -> dict:
    """Registered parametrizations: ``{name: one-line description}``.

    Example:
        >>> list(available_parametrizations())
        ['lucent_fourier', 'lucent_pixel', 'paper_fourier', 'pixel']
    """
    return PARAMETRIZATIONS.describe()


def make_param(name: str, shape, mean=None, std=None, **kwargs) -> Parametrization:
    """Build a parametrization by registry name.

    Example:
        >>> from captum_slingshot.fv.param import make_param
        >>> make_param("pixel", (1, 28, 28)).param_shape
        (1, 28, 28)
    """
    return PARAMETRIZATIONS.get(name)(shape, mean=mean, std=std, **kwargs)
