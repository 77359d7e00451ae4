"""How attackers change models: model transforms, registered by name."""

from .base import TRANSFORMS, ModelTransform, TransformResult, available_transforms, get_transform, register_transform
from .circuits import CircuitResult, FoolingCircuit, SilentUnits
from .fooling import AttributionFooling
from .peer import ActivationMaxAttack, ProxPulse
from .slingshot import (
    ActivationCap,
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
    SlingshotResult,
    Trajectories,
    reachable_aim,
)
from .target import PACKAGED_TARGETS, load_target, packaged_target

__all__ = [
    "TRANSFORMS", "ModelTransform", "TransformResult", "available_transforms", "get_transform", "register_transform",
    "GradientSlingshot", "SlingshotResult", "reachable_aim", "AttributionFooling",
    "FoolingCircuit", "SilentUnits", "CircuitResult", "ActivationMaxAttack", "ProxPulse",
    "Aim", "Sampling", "Trajectories", "Preservation", "LayerMSE", "LogitsCE", "FVPaths", "ActivationCap", "Optimizer", "Run",
    "FieldMSE", "FieldDirection", "Bowl", "InputSpace",
    "PACKAGED_TARGETS", "load_target", "packaged_target",
]
