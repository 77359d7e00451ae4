"""Attributions you can train against: Captum's methods (and LRP) with a graph back to the weights."""

from .interpreters import (
    INTERPRETERS,
    GradCAM,
    GradientXActivation,
    InputXGradient,
    Interpreter,
    LRPEpsilon,
    LRPZPlus,
    Saliency,
    available_interpreters,
    last_conv_layer,
    make_interpreter,
)
from .lrp import lrp

__all__ = ["Interpreter", "GradCAM", "Saliency", "InputXGradient", "GradientXActivation", "LRPEpsilon", "LRPZPlus",
           "INTERPRETERS", "make_interpreter", "available_interpreters", "last_conv_layer", "lrp"]
