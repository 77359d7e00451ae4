"""captum_slingshot: feature visualization you can audit.

The three headline operations are importable from here: :func:`render` (how auditors look),
:class:`GradientSlingshot` and :func:`get_transform` (how attackers change models) and
:func:`audit_layer` (how auditors check). The rest lives in the subpackages: :mod:`.fv`,
:mod:`.transforms`, :mod:`.metrics`, :mod:`.checks`, :mod:`.compat` (lucent), and the reference
models and data (:mod:`.models`, :mod:`.data`, :mod:`.weights`). Public names are listed in ``__all__``.

Example:
    >>> import captum_slingshot as cs
    >>> cs.render.__module__, cs.GradientSlingshot.__name__, cs.audit_layer.__module__
    ('captum_slingshot.fv.render', 'GradientSlingshot', 'captum_slingshot.checks.audit')
"""

from .checks import AuditReport, audit_layer, available_checks, register_check
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
from .models import MNISTCNN, VGG, SmallRGBCNN, available_models, pretrained_mnist_cnn, train_classifier, vgg
from .paths import cache_dir
from .transforms import (
    Aim,
    Bowl,
    FieldDirection,
    FieldMSE,
    FVPaths,
    GradientSlingshot,
    InputSpace,
    LayerMSE,
    LogitsCE,
    Optimizer,
    Preservation,
    Run,
    Sampling,
    Trajectories,
    available_transforms,
    get_transform,
    packaged_target,
    register_transform,
)

__version__ = "0.2.0.dev0"

__all__ = [
    # the three headline operations
    "render", "GradientSlingshot", "get_transform", "audit_layer",
    # paths
    "cache_dir",
    # data
    "MNIST_MEAN", "MNIST_STD", "load_mnist", "paper_split", "normalize_mnist", "denormalize_mnist",
    "class_mean_images", "class_mean_image",
    # models
    "MNISTCNN", "VGG", "vgg", "SmallRGBCNN", "train_classifier", "pretrained_mnist_cnn", "available_models",
    # feature visualization
    "FVResult", "Parametrization", "PixelParam", "LucentPixelParam", "LucentFourierParam", "PaperFourierParam",
    "make_param", "AMStrategy", "get_strategy", "Direction", "unit_activation",
    # transforms: the slingshot's settings parts, the registry
    "FieldMSE", "FieldDirection", "Bowl", "InputSpace", "Aim", "Sampling", "Trajectories", "Preservation",
    "LayerMSE", "LogitsCE", "FVPaths", "Optimizer", "Run", "packaged_target", "available_transforms",
    "register_transform",
    # checks
    "AuditReport", "available_checks", "register_check",
    # metrics
    "pearson_matrix",
]
