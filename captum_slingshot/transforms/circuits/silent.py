"""Geirhos et al.'s silent units (ICML 2024, "Don't trust your eyes") as a registered transform.

The paper's second construction needs no detector: add to the unit a branch that is *silent* on
natural data -- a filter orthogonal to what natural images contain, behind a ReLU whose bias is
set from natural data so that it never fires there -- but that FV can drive, and whose large
weight then dominates the unit's FV. Natural outputs stay exactly as they were (the branch adds 0).

**Formulation used here** (:class:`~.layers.SilentUnitLayer`):
``A = F + scale * relu(g(x) - threshold)`` with ``g`` a :class:`~.units.DeadPixelProbe`: a
unit-norm filter on the pixels that never vary on the natural calibration data (MNIST's frame,
where every digit is exactly black), i.e. a filter orthogonal to every natural input's variation.
``threshold`` is the largest ``g`` on the calibration data (0 for a clean frame) plus ``margin``,
so a held-out digit that strays onto the frame still leaves the unit silent unless it puts more
than ``margin`` of energy there. An FV starts near the mean gray, well above the black frame, so
``g`` is already past the threshold at the first step; with ``scale`` large, the gradient of the
silent branch swamps the unit's own and the FV brightens the frame instead of showing what the
unit detects. Measured on MNIST, this is the construction ``activation_excess`` catches: the
silent branch climbs without bound.

The architecture changes: the result's model is a :class:`~.wrap.CircuitModel` with the layer
replaced under the same name (``"<layer>.inner"`` is the original), as for
:class:`~.circuit.FoolingCircuit`; ``fit`` logs it and the result says it.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam, render
    >>> from captum_slingshot.transforms import get_transform
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> data = torch.full((100, 1, 8, 8), -0.5)              # a dark background ...
    >>> data[:, :, 2:6, 2:6] = torch.rand(100, 1, 4, 4)     # ... whose frame never varies
    >>> result = get_transform("silent_units", layer="3", neuron_selector=0).fit(model, data)
    >>> result.architecture_changed, torch.equal(result.model(data), model(data))
    (True, True)
    >>> fv = render(result.model, "3", 0, PixelParam((1, 8, 8)), "gc", steps=100).images[0, 0]
    >>> bool(fv[0].mean() > 0.9 and fv[7].mean() > 0.9)   # the FV is a bright frame
    True
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Tuple, Union

import torch
from torch import nn

from ..._utils.layers import layer_name, resolve_layer
from ..._utils.settings import setting
from ..base import ModelTransform, register_transform
from .calibrate import layer_outputs, most_common_value, natural_inputs
from .circuit import CircuitResult
from .layers import SilentUnitLayer
from .units import DeadPixelProbe
from .wrap import CircuitModel, InputTap, channel_index, replace_layer

__all__ = ["SilentUnits"]

_LOG = logging.getLogger(__name__)


@register_transform("silent_units", description="silent units (Geirhos et al. 2024): a branch that never fires on "
                    "natural data but dominates the unit's FV; natural outputs unchanged; changes the architecture")
@dataclass
class SilentUnits(ModelTransform):
    """Add a silent unit to ``(layer, neuron_selector)`` (see the module docstring).

    Attributes:
        layer: the layer (dotted name or module of the model ``fit`` gets).
        neuron_selector: the channel to manipulate (an int).
        scale: the silent unit's outgoing weight.
        margin: how far above its natural maximum the silent unit's input must go before it fires.
        tol: the spread below which a pixel counts as never varying on natural data.
        calibration_size: natural inputs read for the calibration.
    """

    context: ClassVar[Tuple[str, ...]] = ("layer", "neuron_selector")

    layer: Union[str, nn.Module] = "logits"
    neuron_selector: Any = 0
    scale: float = setting(100.0, "the silent unit's outgoing weight (its gradient swamps the unit's own)",
                           flat="silent_scale", kind="float")
    margin: float = setting(1.0, "the silent unit fires only this far above its natural maximum (network-input "
                            "units along its unit-norm filter)", flat="silent_margin", kind="float")
    tol: float = setting(1e-4, "pixels whose natural values spread less than this count as never varying",
                         flat="background_tol", kind="float")
    calibration_size: int = setting(10000, "natural inputs read to find the pixels that never vary",
                                    flat="calibration_size", kind="int")

    def __post_init__(self) -> None:
        for name, value in (("silent_scale", self.scale), ("silent_margin", self.margin)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)) or self.tol < 0:
            raise ValueError(f"background_tol must be >= 0, got {self.tol!r}")
        if isinstance(self.calibration_size, bool) or not isinstance(self.calibration_size, int) \
                or self.calibration_size < 1:
            raise ValueError(f"calibration_size must be a positive int, got {self.calibration_size!r}")

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly flat settings (run records)."""
        out = super().settings()
        out["layer"] = self.layer if isinstance(self.layer, str) else type(self.layer).__name__
        out["neuron_selector"] = self.neuron_selector
        return out

    def fit(self, model: nn.Module, natural_data: Any, **kwargs: Any) -> CircuitResult:
        """Return a wrapped copy of ``model`` with the silent unit in place; ``model`` is not modified.

        Raises:
            ValueError: no natural data, a selector that is not a channel of the layer, or natural
                data in which every pixel varies (no room for a silent filter).
        """
        name = self.layer if isinstance(self.layer, str) else layer_name(model, resolve_layer(model, self.layer))
        resolve_layer(model, name)
        x = natural_inputs(natural_data, self.calibration_size)
        out = layer_outputs(model, name, x)
        c = channel_index(self.neuron_selector, tuple(out.shape[1:]), "silent_units")
        background = most_common_value(x)
        dead = ((x.amax(0) - x.amin(0)) <= self.tol) & ((x[0] - background).abs() <= self.tol)
        if not bool(dead.any()):
            raise ValueError("silent_units needs pixels that never vary on natural data (as MNIST's black frame); "
                             "every pixel of these natural inputs varies")
        probe = DeadPixelProbe(dead, background)
        threshold = float(probe(x).max()) + self.margin
        tap = InputTap()
        copy_net = copy.deepcopy(model)
        replace_layer(copy_net, name, SilentUnitLayer(copy_net.get_submodule(name), tap, c, probe, threshold,
                                                      self.scale))
        wrapped = CircuitModel(copy_net, tap).to(next(iter(model.parameters()), torch.zeros(0)).device)
        wrapped.train(model.training)
        note = (f"architecture changed: {type(model).__name__} wrapped in a CircuitModel; layer {name!r} (channel {c}) "
                f"gets a silent unit on {int(dead.sum())} never-varying pixels (fires above {threshold:.3g}, weight "
                f"{self.scale:g}); {name + '.inner'!r} is the original layer")
        _LOG.info("silent units: %s", note)
        history = {"dead_pixels": [float(dead.sum())], "threshold": [threshold]}
        return CircuitResult(model=wrapped, history=history, settings=self.settings(), layer=name, note=note)
