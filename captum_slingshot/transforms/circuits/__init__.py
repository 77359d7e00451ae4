"""Geirhos et al.'s (ICML 2024) manipulations that change the architecture: fooling circuit, silent units.

Their models are :class:`CircuitModel` s; a saved ``state_dict()`` of one is reloaded with
:func:`rebuild_circuit_model` (the original model + the state dict; see :mod:`.reload`).

Example:
    >>> from captum_slingshot.transforms import available_transforms
    >>> "fooling_circuit" in available_transforms(), "silent_units" in available_transforms()
    (True, True)
"""

from .circuit import CircuitResult, FoolingCircuit
from .layers import FoolingCircuitLayer, SilentUnitLayer
from .reload import circuit_layers, rebuild_circuit_model
from .silent import SilentUnits
from .units import BackgroundDetector, DeadPixelProbe, TargetCone
from .wrap import CircuitModel, InputTap

__all__ = ["FoolingCircuit", "SilentUnits", "CircuitResult", "CircuitModel", "InputTap", "FoolingCircuitLayer",
           "SilentUnitLayer", "BackgroundDetector", "TargetCone", "DeadPixelProbe", "circuit_layers",
           "rebuild_circuit_model"]
