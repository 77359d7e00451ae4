"""Attributions you can train against: Captum's methods (and LRP) with a graph back to the weights.

* :mod:`.interpreters` -- Grad-CAM, Saliency, InputXGradient, GradientXActivation (Captum's, with
  ``create_graph``) and LRP-epsilon / LRP-z+ (:mod:`.lrp`), each giving heatmaps ``(B, H, W)``;
* :mod:`.maps` -- what losses and scores read off those maps (normalisation, regions, centres of
  mass, top pixels).

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    >>> explain = make_interpreter("grad_cam", model)
    >>> maps = explain.heatmap(torch.rand(2, 1, 8, 8), target=torch.tensor([0, 2]))
    >>> maps.shape, bool(normalize_maps(maps).max() <= 1)
    (torch.Size([2, 8, 8]), True)
"""

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
from .maps import (
    REGIONS,
    center_of_mass,
    check_maps,
    corner_mask,
    frame_mask,
    minmax_maps,
    normalize_maps,
    region_mask,
    top_fraction_mask,
)

__all__ = ["Interpreter", "GradCAM", "Saliency", "InputXGradient", "GradientXActivation", "LRPEpsilon", "LRPZPlus",
           "INTERPRETERS", "make_interpreter", "available_interpreters", "last_conv_layer", "lrp",
           "REGIONS", "center_of_mass", "check_maps", "corner_mask", "frame_mask", "minmax_maps", "normalize_maps",
           "region_mask", "top_fraction_mask"]
