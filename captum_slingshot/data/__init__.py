"""Natural data for the models, loaded offline, and the model's own preprocessing.

* :mod:`.preprocess` -- :class:`Preprocess` (resize, centre crop, mean/std: the model's input
  recipe, given once and used for data and FV alike), :func:`normalize`, :func:`denormalize`;
* :mod:`.folders` -- images from a torchvision ``ImageFolder`` layout (:func:`image_folder`,
  :func:`image_folder_dataset`), with clear errors for a wrong layout or an unreadable image;
* :mod:`.datasets` -- any tensor, ``(inputs, labels)``, ``Dataset`` or ``DataLoader`` as tensors
  (:func:`dataset_tensors`);
* :mod:`.mnist` -- MNIST from the original IDX files, the paper's split, :func:`normalize_mnist`;
* :mod:`.photos` -- crops of scikit-image's sample photos, as tensors or as an image folder;
* :mod:`.classes` -- class mean images, two-class composites.

Example:
    >>> from captum_slingshot.data import load_mnist, class_mean_images, normalize, Preprocess
    >>> test = load_mnist("test")
    >>> class_mean_images(test).shape
    torch.Size([10, 1, 28, 28])
    >>> x = Preprocess.mnist()(test.tensors[0][:2])  # the same as normalize_mnist
    >>> bool((x == normalize(test.tensors[0][:2], (0.1307,), (0.3081,))).all())
    True
"""

from .classes import class_mean_image, class_mean_images, two_class_composites
from .datasets import dataset_tensors
from .folders import IMAGE_EXTENSIONS, image_folder, image_folder_dataset, interleaved_order, read_image
from .mnist import (
    MNIST_MEAN, MNIST_RAW_FILES, MNIST_STD, PAPER_SPLIT_SEED, SPLITS, denormalize_mnist, load_mnist,
    normalize_mnist, paper_split,
)
from .photos import SKIMAGE_PHOTOS, photo_crops, write_photo_folder
from .preprocess import INTERPOLATIONS, Preprocess, default_stats, denormalize, normalize

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
    "two_class_composites",
    "SKIMAGE_PHOTOS",
    "photo_crops",
    "write_photo_folder",
    "Preprocess",
    "INTERPOLATIONS",
    "normalize",
    "denormalize",
    "default_stats",
    "IMAGE_EXTENSIONS",
    "read_image",
    "image_folder_dataset",
    "image_folder",
    "interleaved_order",
    "dataset_tensors",
]
