"""How attackers change models: model transforms, registered by name."""

from .base import TRANSFORMS, ModelTransform, available_transforms, get_transform, register_transform
from .slingshot import GradientSlingshot, SlingshotResult, reachable_aim
from .target import PACKAGED_TARGETS, load_target, packaged_target

__all__ = [
    "TRANSFORMS", "ModelTransform", "available_transforms", "get_transform", "register_transform",
    "GradientSlingshot", "SlingshotResult", "reachable_aim", "PACKAGED_TARGETS", "load_target", "packaged_target",
]
