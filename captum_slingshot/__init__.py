"""captum_slingshot: feature visualization you can audit.

Public names are re-exported here; see ``__all__``.
"""

from .data import (
    MNIST_MEAN,
    MNIST_STD,
    class_mean_image,
    class_mean_images,
    denormalize_mnist,
    load_mnist,
    normalize_mnist,
    paper_split,
)
from .models import (
    MNISTCNN,
    VGG,
    SmallRGBCNN,
    pretrained_mnist_cnn,
    train_classifier,
    vgg,
)
from .paths import cache_dir
from .fv import (
    AMStrategy,
    Direction,
    FVResult,
    LucentFourierParam,
    LucentPixelParam,
    PaperFourierParam,
    Parametrization,
    PixelParam,
    get_strategy,
    make_param,
    render,
    unit_activation,
)
from .metrics import pearson_matrix

__version__ = "0.1.0.dev0"

__all__ = [
    # paths
    "cache_dir",
    # data
    "MNIST_MEAN",
    "MNIST_STD",
    "load_mnist",
    "paper_split",
    "normalize_mnist",
    "denormalize_mnist",
    "class_mean_images",
    "class_mean_image",
    # models
    "MNISTCNN",
    "VGG",
    "vgg",
    "SmallRGBCNN",
    "train_classifier",
    "pretrained_mnist_cnn",
    # feature visualization
    "render",
    "FVResult",
    "Parametrization",
    "PixelParam",
    "LucentPixelParam",
    "LucentFourierParam",
    "PaperFourierParam",
    "make_param",
    "AMStrategy",
    "get_strategy",
    "Direction",
    "unit_activation",
    # metrics
    "pearson_matrix",
]
