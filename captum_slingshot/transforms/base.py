"""Model transforms: take a trained model, return a new one; registered by name.

A transform is *settings*; :meth:`ModelTransform.fit` runs it on a model and returns a
:class:`TransformResult` holding a new model (the original is never modified). Transforms are
registered by name (like timm's model registry) so that studies and the command line can ask for
``"gradient_slingshot"``. Their settings are data: :meth:`ModelTransform.options` lists them as
flat options (generated from settings dataclasses), :meth:`ModelTransform.from_settings` builds a
transform from flat values and :meth:`ModelTransform.settings` writes them back.

A new attack is one file and one registration. The simplest is a dataclass whose settings fields
are declared with :func:`~captum_slingshot._utils.settings.setting`; the base class then derives
its options, ``from_settings`` and ``settings``. ``context`` names what the place that runs it
(command line, study) supplies besides the settings: ``layer``, ``neuron_selector`` (the unit),
``target`` (a target image) and ``param`` (the auditor's parametrization).

Example:
    >>> from captum_slingshot.transforms import available_transforms, get_transform
    >>> "gradient_slingshot" in available_transforms()
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple, Type

from torch import nn

from .._utils.registry import Registry
from .._utils.settings import FlatOption, flat_values, options_of

__all__ = ["ModelTransform", "TransformResult", "TRANSFORMS", "CONTEXT", "register_transform", "get_transform",
           "available_transforms"]

#: what the command line and studies can hand a transform besides its settings
CONTEXT = ("layer", "neuron_selector", "target", "param")


@dataclass
class TransformResult:
    """What :meth:`ModelTransform.fit` returns.

    Attributes:
        model: the transformed model (a new object).
        history: per-step records (e.g. ``loss``), lists of floats.
        settings: the transform's flat settings (JSON-friendly).
    """

    model: nn.Module
    history: Dict[str, List[float]] = field(default_factory=dict)
    settings: Dict[str, Any] = field(default_factory=dict)


class ModelTransform:
    """Base class. Subclasses implement :meth:`fit` and never modify the model they are given."""

    #: registry name (set by :func:`register_transform`)
    name: ClassVar[str] = ""
    #: the values of :data:`CONTEXT` this transform takes (as constructor keywords)
    context: ClassVar[Tuple[str, ...]] = ()
    #: old spellings of flat settings that are still accepted: ``{old: new}``
    aliases: ClassVar[Dict[str, str]] = {}

    @classmethod
    def options(cls) -> List[FlatOption]:
        """The transform's flat options (command line, YAML); by default the fields of a dataclass
        transform declared with ``setting(...)``."""
        return options_of(cls) if dataclasses.is_dataclass(cls) else []

    @classmethod
    def from_settings(cls, **settings: Any) -> "ModelTransform":
        """Build from flat settings plus context values; by default ``cls(**settings)`` with the flat
        names mapped to the dataclass fields."""
        if not dataclasses.is_dataclass(cls):
            return cls(**settings)
        by_flat = {f.metadata["option"].name: f.name for f in dataclasses.fields(cls) if "option" in f.metadata}
        known = set(by_flat) | {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown} of transform {cls.name!r}; settings: "
                             f"{', '.join(o.name for o in cls.options())}")
        return cls(**{by_flat.get(k, k): v for k, v in settings.items()})

    @classmethod
    def check_settings(cls, **settings: Any) -> None:
        """Raise ``ValueError`` when flat settings (without context) do not go together, before any
        model is loaded (a study checks every cell this way); by default nothing is checked."""

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly flat settings (run records); by default the declared dataclass fields."""
        out: Dict[str, Any] = {"transform": self.name}
        if dataclasses.is_dataclass(self):
            out.update(flat_values(self))
        return out

    def fit(self, model: nn.Module, natural_data: Any, **kwargs: Any) -> TransformResult:  # pragma: no cover
        raise NotImplementedError


#: name -> transform class
TRANSFORMS: Registry[Type[ModelTransform]] = Registry("model transform")


def register_transform(name: str, description: Optional[str] = None) -> Callable[[Type[ModelTransform]],
                                                                                   Type[ModelTransform]]:
    """Class decorator adding a transform to :data:`TRANSFORMS` under ``name`` (a second, different
    class under a taken name raises)."""

    def deco(cls: Type[ModelTransform]) -> Type[ModelTransform]:
        if not (isinstance(cls, type) and issubclass(cls, ModelTransform)):
            raise TypeError(f"register_transform decorates ModelTransform subclasses, got {cls!r}")
        TRANSFORMS.register(name, cls, description=description)
        cls.name = name
        return cls

    return deco


def get_transform(name: str, **settings: Any) -> ModelTransform:
    """Build a registered transform by name from flat settings (and its context values).

    Example:
        >>> import torch
        >>> from captum_slingshot.fv import PixelParam
        >>> gs = get_transform("gradient_slingshot", layer="fc", neuron_selector=0, target=torch.rand(1, 4, 4),
        ...                    param=PixelParam((1, 4, 4)), gamma=1.0, loss="direction", steps=10)
        >>> type(gs).__name__, gs.loss, gs.run.steps
        ('GradientSlingshot', FieldDirection(space='param', adam_normalized=False), 10)
    """
    return TRANSFORMS.get(name).from_settings(**settings)


def available_transforms() -> Dict[str, str]:
    """Registered transforms: ``{name: one-line description}``."""
    return TRANSFORMS.describe()
