"""How auditors look: feature visualization (parametrizations, units, AM strategies, renderer)."""

from .param import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MNIST_MEAN,
    MNIST_STD,
    PARAMETRIZATIONS,
    LucentFourierParam,
    LucentPixelParam,
    PaperFourierParam,
    Parametrization,
    PixelParam,
    make_param,
)
from .render import FVResult, derive_seeds, model_device, render
from .strategies import STRATEGIES, AMStrategy, get_strategy, register_strategy
from .transforms import TRANSFORM_SETS, make_transforms
from .units import (
    Direction,
    LayerNotReachedError,
    count_hooks,
    resolve_layer,
    select_neuron,
    unit_activation,
)

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "MNIST_MEAN", "MNIST_STD", "PARAMETRIZATIONS",
    "Parametrization", "PixelParam", "LucentPixelParam", "LucentFourierParam", "PaperFourierParam",
    "make_param", "FVResult", "render", "derive_seeds", "model_device", "AMStrategy", "STRATEGIES",
    "get_strategy", "register_strategy", "TRANSFORM_SETS", "make_transforms", "Direction",
    "LayerNotReachedError", "count_hooks", "resolve_layer", "select_neuron", "unit_activation",
]
