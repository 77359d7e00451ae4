"""What the peer attacks share: settings handling (their own fields plus :class:`~.config.Training`'s) and ``fit``.

A :class:`PeerAttack` is a dataclass with ``layer`` and ``neuron_selector`` (the unit, supplied as
context), its own ``setting(...)`` fields, ``preserve``, ``manipulation_weight`` and a
``training`` part; it builds its manipulation loss with :meth:`PeerAttack.objective` and is fitted
by :class:`~.trainer.PeerRun`.

Example:
    >>> from captum_slingshot.transforms import get_transform
    >>> attack = get_transform("activation_max_attack", layer="fc1", neuron_selector=3, steps=50, lr=1e-3)
    >>> attack.training.steps, attack.settings()["neuron_selector"], attack.settings()["lr"]
    (50, 3, 0.001)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, List, Optional

from torch import nn

from ..._utils.settings import FlatOption, check_positive, flat_values, options_of
from ..base import ModelTransform, TransformResult
from .config import Training
from .trainer import PRESERVE, Callback, Objective, PeerRun

__all__ = ["PeerAttack"]


class PeerAttack(ModelTransform):
    """Base of the peer attacks (dataclass subclasses; see the module docstring)."""

    #: the attacks read labels from their natural data (cross-entropy; decoy and protected classes)
    uses_labels = True
    #: settings parts (field name -> dataclass) whose fields are flat options of the attack
    parts: ClassVar[Dict[str, type]] = {"training": Training}

    def check_common(self) -> None:
        """Validate the fields every peer attack has (call from ``__post_init__``)."""
        if self.preserve not in PRESERVE:
            raise ValueError(f"preserve must be one of {', '.join(PRESERVE)}, got {self.preserve!r}")
        check_positive("manipulation_weight", self.manipulation_weight)
        for name, part in self.parts.items():
            if not isinstance(getattr(self, name), part):
                raise TypeError(f"{name} must be a {part.__module__}.{part.__name__}, got "
                                f"{type(getattr(self, name)).__name__}")
        if isinstance(self.neuron_selector, list):
            self.neuron_selector = tuple(self.neuron_selector)

    @classmethod
    def options(cls) -> List[FlatOption]:
        """The flat options (command line, YAML): the attack's fields, then its parts'."""
        return options_of(cls, *cls.parts.values())

    @classmethod
    def from_settings(cls, **settings: Any) -> "PeerAttack":
        """Build from flat settings and context values (the run's among them: ``steps``, ``lr``...)."""
        names = {part: {f.name for f in dataclasses.fields(cls.parts[part])} for part in cls.parts}
        own = {f.name for f in dataclasses.fields(cls)} - set(cls.parts)
        unknown = sorted(set(settings) - own - set().union(*names.values()))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown} of transform {cls.name!r}; settings: "
                             f"{', '.join(o.name for o in cls.options())}")
        parts = {part: cls.parts[part](**{k: v for k, v in settings.items() if k in names[part]}) for part in cls.parts}
        return cls(**{k: v for k, v in settings.items() if k in own}, **parts)

    @classmethod
    def check_settings(cls, **settings: Any) -> None:
        """Raise ``ValueError`` when flat settings (without context) do not go together."""
        context = {name: None for name in cls.context}
        context.update(layer="layer", neuron_selector=0)
        cls.from_settings(**context, **settings)

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly flat settings: the unit, the attack's options and the run's."""
        sel = self.neuron_selector
        out: Dict[str, Any] = {
            "transform": self.name,
            "layer": self.layer if isinstance(self.layer, str) else type(self.layer).__name__,
            "neuron_selector": list(sel) if isinstance(sel, tuple) else sel if isinstance(sel, int) else repr(sel),
        }
        out.update(flat_values(self))
        for part in self.parts:
            out.update(flat_values(getattr(self, part)))
        return out

    def describe(self) -> str:
        """The progress bar's label."""
        return self.name

    def objective(self, run: PeerRun) -> Objective:  # pragma: no cover
        raise NotImplementedError

    def fit(self, model: nn.Module, natural_data: Any, resume: Optional[str] = None,
            callback: Optional[Callback] = None) -> TransformResult:
        """Attack a copy of ``model``; ``model`` itself is never modified (also when this raises).

        Args:
            model: the trained classifier, fed as it expects (normalized inputs).
            natural_data: ``(inputs, labels)``, a ``TensorDataset`` or a dataset of ``(x, y)`` items
                (inputs only are enough with ``preserve="distill"`` or ``"none"`` where the attack
                needs no classes).
            resume: path of a checkpoint written by an earlier run with the same settings.
            callback: ``callback(step, record, model)`` after every step; return ``False`` to stop.
        """
        out = PeerRun(self, model, natural_data, callback=callback).train(resume)
        return TransformResult(settings=self.settings(), **out)
