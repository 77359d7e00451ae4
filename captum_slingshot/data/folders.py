"""Natural images from a folder laid out as torchvision's ``ImageFolder``: ``root/<class>/<image>``.

:func:`image_folder_dataset` checks the layout and returns the (lazy) ``ImageFolder`` with a
:class:`~captum_slingshot.data.Preprocess` as its transform; :func:`image_folder` reads it into
tensors ``(inputs, labels)``, classes interleaved so that any prefix (``limit``) holds every
class. A wrong layout or an unreadable image is a ``ValueError`` that says what is wrong and what
to do; :func:`read_image` is the loader.

Example:
    >>> import tempfile
    >>> from captum_slingshot.data import Preprocess, image_folder, write_photo_folder
    >>> root = write_photo_folder(tempfile.mkdtemp(), 2, photos=("astronaut", "coffee"))
    >>> x, y = image_folder(root, Preprocess(resize=40, crop=32), limit=3).tensors
    >>> tuple(x.shape), y.tolist()
    ((3, 3, 32, 32), [0, 1, 0])
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import torch
from torch.utils.data import TensorDataset

from .preprocess import Preprocess

__all__ = ["IMAGE_EXTENSIONS", "read_image", "image_folder_dataset", "image_folder", "interleaved_order"]

#: file extensions ``ImageFolder`` reads (torchvision's ``IMG_EXTENSIONS``)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

PathLike = Union[str, Path]


def read_image(path: PathLike, mode: str = "RGB") -> Any:
    """The image at ``path`` as a PIL image in ``mode`` (``"RGB"`` or ``"L"``), fully read.

    Raises:
        ValueError: the file is not a readable image (the message names it and says what to do).

    Example:
        >>> import os, tempfile
        >>> bad = os.path.join(tempfile.mkdtemp(), "broken.png")
        >>> _ = open(bad, "wb").write(b"not a png")
        >>> read_image(bad)
        Traceback (most recent call last):
        ...
        ValueError: cannot read the image .../broken.png (UnidentifiedImageError: ...): replace or delete the file; ...
    """
    from PIL import Image

    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert(mode)  # convert() loads the pixels: a truncated file fails here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read the image {path} ({type(err).__name__}: {' '.join(str(err).split())}): replace "
                         f"or delete the file; every file ending in {', '.join(IMAGE_EXTENSIONS)} in a class folder "
                         "is read") from None


def _has_images(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.rglob("*"))


def _some(names: Sequence[str], n: int = 4) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def image_folder_dataset(root: PathLike, preprocess: Optional[Preprocess] = None) -> Any:
    """torchvision's ``ImageFolder`` at ``root``, its layout checked, transformed by ``preprocess``.

    Items are ``(model input, class index)``; classes are the sorted subfolder names
    (``.classes``). The dataset is lazy: images are read (with :func:`read_image`: RGB, or
    grayscale when ``preprocess`` has one mean) when an item is taken, so it can feed a
    ``DataLoader``.

    Args:
        root: the folder holding one subfolder of images per class.
        preprocess: the model's preprocessing (default ``Preprocess()``: ImageNet mean/std, no
            resize or crop).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: ``root`` is not a folder, has no class subfolders (e.g. the images lie in
            ``root`` itself), or a class folder has no image files.

    Example:
        >>> import tempfile
        >>> image_folder_dataset(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        ValueError: ... has no class subfolders and no images: ...
    """
    from torchvision.datasets import ImageFolder

    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"{root} is a file, not an image folder (root/<class>/<image>.png)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = [p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    layout = f"{root}/<class>/<image>.png, one subfolder per class (torchvision's ImageFolder)"
    if not classes:
        if loose:
            raise ValueError(f"{root} holds {len(loose)} image(s) ({_some(loose, 2)}) but no class subfolders: an "
                             f"image folder is laid out as {layout}; move the images into a subfolder, e.g. "
                             f"{root}/images/ (one class is fine)")
        raise ValueError(f"{root} has no class subfolders and no images: an image folder is laid out as {layout}")
    empty = [c for c in classes if not _has_images(root / c)]
    if empty:
        what = "none of its class folders" if len(empty) == len(classes) else f"class folder(s) {_some(empty)}"
        raise ValueError(f"{root}: {what} hold(s) image files ({', '.join(IMAGE_EXTENSIONS)}); put images in "
                         f"every class folder or remove the empty ones (layout: {layout})")
    preprocess = preprocess if preprocess is not None else Preprocess()
    mode = "L" if preprocess.channels == 1 else "RGB"
    return ImageFolder(str(root), transform=preprocess, loader=functools.partial(read_image, mode=mode))


def interleaved_order(labels: Sequence[int]) -> List[int]:
    """Positions ordered class by class in turn (first of every class, then the second ...), each
    class in its own order: a prefix of any length holds every class it can.

    Example:
        >>> interleaved_order([0, 0, 0, 1, 1, 2])
        [0, 3, 5, 1, 4, 2]
    """
    seen: dict = {}
    rank = []
    for label in labels:
        rank.append(seen.get(label, 0))
        seen[label] = rank[-1] + 1
    return sorted(range(len(labels)), key=lambda i: (rank[i], labels[i]))


def image_folder(root: Any, preprocess: Optional[Preprocess] = None, limit: Optional[int] = None) -> TensorDataset:
    """The images of an image folder as tensors: ``TensorDataset(inputs, labels)``.

    Args:
        root: the folder (see :func:`image_folder_dataset`), or an ``ImageFolder`` already built
            (its own transform is used).
        preprocess: the model's preprocessing; its resize/crop must bring every image to one size.
        limit: read only this many images, spread over the classes (:func:`interleaved_order`).

    Returns:
        ``TensorDataset(inputs, labels)``: the model inputs ``(N, C, H, W)`` (normalized) and the
        class indices ``(N,)``, classes interleaved.

    Raises:
        ValueError: a wrong layout, an unreadable image, images of different sizes after the
            preprocessing (give it a crop), or ``limit`` below 1.
    """
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    folder = root if hasattr(root, "samples") and hasattr(root, "classes") else image_folder_dataset(root, preprocess)
    order = interleaved_order([int(t) for t in folder.targets])
    if limit is not None:
        order = order[: int(limit)]
    xs = []
    for i in order:
        x = torch.as_tensor(folder[i][0])
        if xs and x.shape != xs[0].shape:
            first, this = folder.samples[order[0]][0], folder.samples[i][0]
            raise ValueError(f"images of different sizes after the preprocessing: {first} gives {tuple(xs[0].shape)}, "
                             f"{this} gives {tuple(x.shape)}; give a crop (--crop N) so every image has one size")
        xs.append(x)
    labels = torch.tensor([int(folder.targets[i]) for i in order], dtype=torch.long)
    return TensorDataset(torch.stack(xs).float(), labels)
