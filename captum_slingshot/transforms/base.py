"""Model transforms: take a trained model, return a new one of the same architecture.

Transforms are registered by name (like timm's model registry) so that studies
and the command line can ask for ``"gradient_slingshot"``.

Example:
    >>> from captum_slingshot.transforms import available_transforms
    >>> "gradient_slingshot" in available_transforms()
    True
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Type

from torch import nn

__all__ = ["ModelTransform", "register_transform", "get_transform", "available_transforms", "TRANSFORMS"]

TRANSFORMS: Dict[str, Type["ModelTransform"]] = {}


class ModelTransform:
    """Base class. Subclasses implement :meth:`fit` and never modify the model they are given."""

    #: registry name
    name: str = ""

    def fit(self, model: nn.Module, natural_data: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


def register_transform(name: str) -> Callable[[Type[ModelTransform]], Type[ModelTransform]]:
    """Class decorator adding a transform to :data:`TRANSFORMS` under ``name``."""

    def deco(cls: Type[ModelTransform]) -> Type[ModelTransform]:
        if name in TRANSFORMS and TRANSFORMS[name] is not cls:
            raise ValueError(f"a model transform named {name!r} is already registered")
        cls.name = name
        TRANSFORMS[name] = cls
        return cls

    return deco


def get_transform(name: str, **kwargs: Any) -> ModelTransform:
    """Build a registered transform by name with its settings."""
    try:
        cls = TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"unknown model transform {name!r}; available: {available_transforms()}") from None
    return cls(**kwargs)


def available_transforms() -> List[str]:
    """Names of the registered transforms."""
    return sorted(TRANSFORMS)
