"""Offline natural RGB data: random crops of the sample photos shipped inside scikit-image.

:func:`photo_crops` returns them as tensors; :func:`write_photo_folder` writes them as PNG files in
an image-folder layout (one class per photo), a real folder to try ``--data DIR`` and
:func:`~captum_slingshot.data.image_folder` on without any download.

Example:
    >>> from captum_slingshot.data import photo_crops
    >>> x, y = photo_crops(1, "train", size=16, photos=("chelsea",))
    >>> tuple(x.shape), y.tolist()
    ((1, 3, 16, 16), [0])
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = ["SKIMAGE_PHOTOS", "photo_crops", "write_photo_folder"]

#: natural RGB photos shipped inside scikit-image (no download needed)
SKIMAGE_PHOTOS: Tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle",
                                   "hubble_deep_field", "immunohistochemistry", "retina")


def _fractions(name: str, value: Tuple[float, float], axis: str, ends: str) -> Tuple[float, float]:
    """``value`` checked as two fractions ``0 <= lo < hi <= 1`` of a photo's ``axis``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two fractions of the photo's {axis} ({ends}), got {value!r}") from None
    if not 0.0 <= lo < hi <= 1.0:
        first, second = ends.split(", ")
        raise ValueError(f"{name} must satisfy 0 <= {first} < {second} <= 1 (fractions of the photo's {axis}), "
                         f"got {value!r}")
    return lo, hi


def _band(split: str, band: Optional[Tuple[float, float]]) -> Tuple[float, float]:
    """The rows ``(top, bottom)`` of each photo to crop from, as fractions of its height."""
    if band is None:
        return (0.0, 0.75) if split == "train" else (0.75, 1.0)
    return _fractions("band", band, "height", "top, bottom")


def _crops(n_per_photo: int, split: str, seed: int, photos: Tuple[str, ...],
           band: Optional[Tuple[float, float]] = None,
           columns: Optional[Tuple[float, float]] = None) -> Iterator[Tuple[int, Tensor, bool]]:
    """``(photo index, crop (1, 3, side, side) in [0, 1], flip it?)`` for every crop, in order."""
    import numpy as np

    try:
        import skimage.data
    except ImportError as err:  # pragma: no cover - scikit-image is in the test extra
        raise ImportError("photo crops need scikit-image: pip install scikit-image") from err
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    if int(n_per_photo) < 1:
        raise ValueError(f"n_per_photo must be at least 1, got {n_per_photo}")
    lo, hi = _band(split, band)
    left_f, right_f = (0.0, 1.0) if columns is None else _fractions("columns", columns, "width", "left, right")
    unknown = [p for p in photos if not callable(getattr(skimage.data, p, None))]
    if unknown:
        raise ValueError(f"skimage.data has no photo {unknown[0]!r}; e.g. {', '.join(SKIMAGE_PHOTOS)}")
    g = np.random.default_rng(seed + (0 if split == "train" else 10_000))
    for label, name in enumerate(photos):
        arr = getattr(skimage.data, name)()
        arr = arr[0] if isinstance(arr, tuple) else arr  # stereo_motorcycle: (left, right, disparity)
        if arr.ndim != 3 or arr.shape[-1] < 3:
            raise ValueError(f"skimage.data.{name}() is not an RGB image (shape {arr.shape})")
        img = torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1).float() / 255
        h, w = img.shape[1:]
        top, bottom = int(lo * h), int(hi * h)
        left, right = int(left_f * w), int(right_f * w)
        if bottom - top < 48:
            raise ValueError(f"band {band!r} leaves {bottom - top} rows of skimage.data.{name}() ({h} rows); crops "
                             "need at least 48: widen the band")
        if right - left < 48:
            raise ValueError(f"columns {columns!r} leave {right - left} columns of skimage.data.{name}() ({w} "
                             "columns); crops need at least 48: widen them")
        for _ in range(int(n_per_photo)):
            side = int(g.integers(48, min(160, bottom - top, right - left) + 1))
            y0 = int(g.integers(top, bottom - side + 1))
            x0 = int(g.integers(left, right - side + 1))
            crop = img[:, y0 : y0 + side, x0 : x0 + side][None]
            yield label, crop, bool(g.random() < 0.5)


def _resized(crop: Tensor, size: int) -> Tensor:
    import torch.nn.functional as F

    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def photo_crops(
    n_per_photo: int,
    split: str = "train",
    size: int = 64,
    seed: int = 0,
    photos: Tuple[str, ...] = SKIMAGE_PHOTOS,
    band: Optional[Tuple[float, float]] = None,
    columns: Optional[Tuple[float, float]] = None,
) -> Tuple[Tensor, Tensor]:
    """Random square crops of scikit-image's sample photos: offline natural RGB data.

    Each crop has a random side of 48-160 px, is resized to ``size`` (bilinear, antialiased) and
    flipped left-right with probability 1/2. ``split="train"`` crops from the top 75 % of every
    photo, ``"heldout"`` from the bottom 25 %, so the two never overlap.

    Args:
        n_per_photo: crops per photo.
        split: ``"train"`` or ``"heldout"``.
        size: output side in pixels.
        seed: seeds the crops (the held-out split uses ``seed + 10000``).
        photos: names of ``skimage.data`` functions that return RGB(A) images (or tuples whose
            first item is one).
        band: ``(top, bottom)``, fractions of each photo's height to crop from instead of the
            split's own rows (e.g. ``(0.6, 0.75)`` for a validation band next to the held-out
            rows); the split still picks the seed stream.
        columns: ``(left, right)``, fractions of each photo's width to crop from (default: all of
            it). With ``band`` it picks one tile of each photo, e.g. for splits that interleave
            train and held-out tiles instead of holding out one band.

    Returns:
        ``(images, labels)``: images ``(len(photos) * n_per_photo, 3, size, size)`` in ``[0, 1]``,
        labels the index of each crop's photo in ``photos``.

    Raises:
        ImportError: scikit-image is not installed.
        ValueError: an unknown split or photo, ``n_per_photo`` or ``size`` below 1, a band outside
            ``0 <= top < bottom <= 1`` or narrower than 48 rows of a photo, columns outside
            ``0 <= left < right <= 1`` or narrower than 48 columns.

    Example:
        >>> x, y = photo_crops(2, "heldout", size=32, photos=("astronaut", "coffee"))
        >>> tuple(x.shape), y.tolist(), bool(0 <= x.min() and x.max() <= 1)
        ((4, 3, 32, 32), [0, 0, 1, 1], True)
    """
    if int(n_per_photo) < 1 or int(size) < 1:
        raise ValueError(f"n_per_photo and size must be at least 1, got {n_per_photo} and {size}")
    xs, ys = [], []
    for label, crop, flip in _crops(n_per_photo, split, seed, photos, band, columns):
        crop = _resized(crop, int(size))
        xs.append(crop.flip(-1) if flip else crop)
        ys.append(label)
    return torch.stack(xs).clamp(0, 1), torch.tensor(ys)


def write_photo_folder(
    root: Union[str, Path],
    n_per_photo: int,
    split: str = "train",
    size: Optional[int] = None,
    seed: int = 0,
    photos: Tuple[str, ...] = SKIMAGE_PHOTOS,
    band: Optional[Tuple[float, float]] = None,
    columns: Optional[Tuple[float, float]] = None,
) -> Path:
    """Write crops of scikit-image's photos as an image folder: ``root/<photo>/<split>_<i>.png``.

    The same crops as :func:`photo_crops` (same seed, same split, same flips), saved as 8-bit RGB
    PNG files, one class folder per photo. With ``size=None`` every crop keeps its own random side
    (48-160 px), like a real folder of photos of different sizes: give the reader a crop
    (``Preprocess(resize=..., crop=...)``, ``--resize``/``--crop``).

    Args:
        root: folder to write into (created; files of the same names are replaced).
        n_per_photo: crops per photo.
        split: ``"train"`` (top 75 % of each photo) or ``"heldout"`` (bottom 25 %).
        size: side to resize every crop to, or ``None`` to keep their own sizes.
        seed: seeds the crops.
        photos: names of ``skimage.data`` photos (see :data:`SKIMAGE_PHOTOS`).
        band: ``(top, bottom)`` fractions of each photo's height instead of the split's rows
            (see :func:`photo_crops`).
        columns: ``(left, right)`` fractions of each photo's width (see :func:`photo_crops`).

    Returns:
        ``root`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> root = write_photo_folder(tempfile.mkdtemp(), 2, size=24, photos=("rocket", "chelsea"))
        >>> sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
        ['chelsea/train_0000.png', 'chelsea/train_0001.png', 'rocket/train_0000.png', 'rocket/train_0001.png']
    """
    from PIL import Image

    if size is not None and int(size) < 1:
        raise ValueError(f"size must be at least 1 (or None), got {size}")
    root = Path(root).expanduser()
    count: dict = {}
    for label, crop, flip in _crops(n_per_photo, split, seed, photos, band, columns):
        crop = _resized(crop, int(size)) if size is not None else crop[0]
        crop = (crop.flip(-1) if flip else crop).clamp(0, 1)
        pixels = crop.mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        folder = root / photos[label]
        folder.mkdir(parents=True, exist_ok=True)
        i = count[label] = count.get(label, -1) + 1
        Image.fromarray(pixels).save(folder / f"{split}_{i:04d}.png")
    return root
