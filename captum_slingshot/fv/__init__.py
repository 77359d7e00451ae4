"""How auditors look: feature visualization (parametrizations, units, AM strategies, optimizer, renderer)."""

from .optimize import OptimizationTrace, network_input, optimize
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
    available_parametrizations,
    make_param,
)
from .render import FVResult, derive_seeds, model_device, render
from .strategies import STRATEGIES, AMStrategy, available_strategies, get_strategy, register_strategy
from .transforms import TRANSFORM_SETS, available_transform_sets, make_transforms, register_transform_set
from .units import (
    Direction,
    LayerCapture,
    LayerNotReachedError,
    NeuronSelector,
    Token,
    capture_layer,
    check_selector,
    count_hooks,
    has_attention,
    layer_name,
    layer_output_shape,
    layer_units,
    math_attention,
    resolve_layer,
    select_neuron,
    unit_activation,
)

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "MNIST_MEAN", "MNIST_STD", "PARAMETRIZATIONS", "available_parametrizations",
    "Parametrization", "PixelParam", "LucentPixelParam", "LucentFourierParam", "PaperFourierParam",
    "make_param", "FVResult", "render", "derive_seeds", "model_device", "network_input",
    "optimize", "OptimizationTrace",
    "AMStrategy", "STRATEGIES", "get_strategy", "register_strategy", "available_strategies",
    "TRANSFORM_SETS", "make_transforms", "register_transform_set", "available_transform_sets",
    "Direction", "Token", "NeuronSelector", "has_attention", "math_attention", "LayerCapture", "LayerNotReachedError", "capture_layer", "check_selector",
    "count_hooks", "layer_name", "layer_output_shape", "layer_units", "resolve_layer", "select_neuron", "unit_activation",
]
