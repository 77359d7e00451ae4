"""Images per class: the mean image of every class, and composites holding two classes at once.

Example:
    >>> import torch
    >>> from captum_slingshot.data import class_mean_images
    >>> images = torch.tensor([0.0, 1.0, 3.0]).view(3, 1, 1, 1)
    >>> class_mean_images((images, torch.tensor([0, 1, 1])), num_classes=2).flatten()
    tensor([0., 2.])
"""

from __future__ import annotations

from typing import Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._utils.composites import side_by_side
from .datasets import dataset_tensors

__all__ = ["class_mean_images", "class_mean_image", "two_class_composites"]


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
    images, labels = dataset_tensors(dataset)
    if labels is None:
        raise ValueError("the dataset has no labels: give (images, labels) pairs")
    return images, labels


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
    first = images[pools[0][torch.randint(len(pools[0]), (int(n),), generator=g)]]
    second = images[pools[1][torch.randint(len(pools[1]), (int(n),), generator=g)]]
    swap = torch.rand(int(n), generator=g) < 0.5
    left = torch.where(swap[:, None, None, None], second, first)
    right = torch.where(swap[:, None, None, None], first, second)
    return side_by_side(left, right, background), torch.where(swap, torch.tensor(c2), torch.tensor(c1))
