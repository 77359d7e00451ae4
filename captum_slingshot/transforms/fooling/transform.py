"""Attribution fooling (Heo, Joo, Moon, NeurIPS 2019) as a registered model transform.

Fine-tune a copy of a classifier with its attribution map inside the loss,
``L = L_keep + fooling_weight * L_F`` (Heo et al.'s ``lambda``), so that the maps of the chosen
interpreter lie while the predictions stay: ``L_keep`` is the cross-entropy to the labels (the
paper) or the KL divergence to the original model's softmax (``preserve="distill"``, no labels
needed); ``L_F`` is one of the fooling losses of :mod:`.losses`. The model is kept in ``eval()``
mode (batch norm frozen, dropout off), as in the authors' code; the optimizer is Adam (or SGD:
``optimizer="sgd"``).

* passive modes (``location``, ``topk``, ``center_mass``) fool the map of the original model's
  predicted class on the natural inputs;
* ``active`` swaps the maps of two ``classes`` on a fooling set of images that contain both
  (``fooling_data``; by default made from the natural data with
  :func:`~captum_slingshot.data.two_class_composites`).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.transforms import get_transform
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    >>> x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    >>> attack = get_transform("attribution_fooling", mode="location", interpreter="grad_cam", steps=3,
    ...                        batch_size=8, progress=False)
    >>> result = attack.fit(model, (x, y))
    >>> result.model is model, sorted(result.history)
    (False, ['fooling', 'loss', 'lr', 'preservation'])
"""

from __future__ import annotations

import os
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from torch import Tensor, nn

from ..._utils.settings import FlatOption, flat_values, options_of, setting
from ...attributions.interpreters import INTERPRETERS
from ...attributions.maps import REGIONS
from ..base import ModelTransform, TransformResult, register_transform
from ..slingshot.losses import tensor_digest
from .config import Training
from .trainer import Callback, FoolingRun

__all__ = ["AttributionFooling", "FOOLING_MODES", "PRESERVE"]

#: Heo et al.'s fooling modes: three passive, one active
FOOLING_MODES = ("location", "topk", "center_mass", "active")
#: what keeps the predictions
PRESERVE = ("ce", "distill")


@register_transform("attribution_fooling", description="attribution fooling (Heo et al. 2019): fine-tune so that "
                    "Grad-CAM / gradient / LRP maps lie (location, top-k, centre of mass, active swap), accuracy kept")
@dataclass
class AttributionFooling(ModelTransform):
    """Fool the attribution maps of ``interpreter`` on a copy of a classifier (see the module docstring).

    Attributes:
        mode: ``location``, ``topk``, ``center_mass`` or ``active``.
        interpreter: the attribution method trained against
            (:func:`~captum_slingshot.attributions.available_interpreters`); several joined by ``+``
            (``"grad_cam+lrp_epsilon"``) are fooled together, their fooling losses averaged: the
            adaptive attack on :func:`~captum_slingshot.checks.attribution.interpreter_disagreement`.
        interpreter_layer: the layer of a layer method (Grad-CAM; default: the last convolution).
        fooling_weight: Heo et al.'s ``lambda``, the weight of the fooling loss (> 0).
        region: location fooling's region: ``frame``, ``corner``, a mask tensor ``(H, W)`` or the
            path of one (``.pt`` tensor or an image; white = where the relevance should go).
        top_fraction: the share of the original's most relevant pixels top-k fooling empties.
        classes: the two classes whose explanations active fooling swaps. A passive mode fools the maps of
            these classes only (one or more): its fooling set is the natural inputs of these classes, unless
            ``fooling_data`` is given.
        hold_weight: the weight of a term that holds the maps of the natural inputs the attack does not fool
            at the original's (mean squared difference of the min-max normalised maps of the interpreters
            trained against, each input's original class). Passive modes: the inputs outside ``classes``
            (needs ``classes`` or ``fooling_data``); active: every natural input. 0 (the default) holds
            nothing. It is the adaptive attack on the audit against the original
            (:func:`~captum_slingshot.checks.attribution.explanation_drift`): the fooling stays where it is
            aimed and the other maps do not drift.
        fooling_size: composites made from the natural data when active fooling gets no
            ``fooling_data``.
        preserve: ``ce`` (cross-entropy to the labels) or ``distill`` (KL to the original's softmax).
        training: the run (:class:`~.config.Training`: batch size, learning rate, steps, seed,
            device, checkpoints, progress bar); flat settings name its fields directly
            (``get_transform("attribution_fooling", steps=300, lr=1e-3)``).
    """

    mode: str = setting("location", "fooling mode: location (map pushed onto a region), topk (relevance removed from "
                        "the original's top pixels), center_mass (centre of mass pushed away) or active (two classes' "
                        "explanations swapped)", flat="mode", kind="text", choices=FOOLING_MODES)
    interpreter: str = setting("grad_cam", "the attribution method trained against; several joined by + (e.g. "
                               "grad_cam+lrp_epsilon) are fooled together, so that they agree on the lie (the attack "
                               "on the interpreter_disagreement check)", flat="interpreter", kind="text")
    interpreter_layer: Optional[str] = setting(None, "the layer of a layer method such as grad_cam (default: the last "
                                               "convolution)", flat="interpreter_layer", kind="text", optional=True)
    fooling_weight: float = setting(1.0, "weight of the fooling loss (Heo et al.'s lambda, > 0)", flat="fooling_weight",
                                    kind="float")
    region: Union[str, Tensor] = setting("frame", "location fooling's region: frame, corner, or a mask file (.pt "
                                         "tensor or image of the input's size; white: where relevance should go)",
                                         flat="region", kind="text")
    top_fraction: float = setting(0.1, "share of the original's most relevant pixels that top-k fooling empties",
                                  flat="top_fraction", kind="float")
    classes: Optional[Tuple[int, ...]] = setting(None, "the two classes whose explanations active fooling swaps, "
                                                 "e.g. 3,8; a passive mode fools these classes' maps only",
                                                 flat="classes", kind="ints", optional=True)
    hold_weight: float = setting(0.0, "weight of a term holding the maps of the inputs not fooled at the "
                                 "original's (passive modes: outside classes; active: every natural input); 0: off",
                                 flat="hold_weight", kind="float")
    fooling_size: int = setting(2000, "two-class composites made from the natural data for active fooling",
                                flat="fooling_size", kind="int")
    preserve: str = setting("ce", "what keeps the predictions: ce (cross-entropy to the labels, the paper) or distill "
                            "(KL to the original model's softmax; no labels needed)", flat="preserve", kind="text",
                            choices=PRESERVE)
    training: Training = field(default_factory=Training)

    #: the transform reads labels from its natural data (``preserve="ce"``)
    uses_labels = True

    def __post_init__(self) -> None:
        if self.mode not in FOOLING_MODES:
            raise ValueError(f"unknown fooling mode {self.mode!r}; modes: {', '.join(FOOLING_MODES)}")
        names = self.interpreters
        unknown = [n for n in names if n not in INTERPRETERS]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(f"interpreter must name registered interpreters (several joined by +, each once), got "
                             f"{self.interpreter!r}; available: {', '.join(INTERPRETERS)}")
        if self.preserve not in PRESERVE:
            raise ValueError(f"preserve must be one of {', '.join(PRESERVE)}, got {self.preserve!r}")
        if isinstance(self.fooling_weight, bool) or not isinstance(self.fooling_weight, (int, float)) \
                or not self.fooling_weight > 0:
            raise ValueError(f"fooling_weight (Heo et al.'s lambda) must be > 0, got {self.fooling_weight!r}: a weight "
                             "of 0 or less does not fool (or un-fools) the maps")
        if isinstance(self.fooling_size, bool) or not isinstance(self.fooling_size, int) or self.fooling_size < 1:
            raise ValueError(f"fooling_size must be a positive integer, got {self.fooling_size!r}")
        if not isinstance(self.training, Training):
            raise TypeError(f"training must be a Training, got {type(self.training).__name__}")
        if not 0 < float(self.top_fraction) < 1:
            raise ValueError(f"top_fraction must be in (0, 1), got {self.top_fraction}")
        if isinstance(self.region, str) and self.region not in REGIONS and not os.path.isfile(self.region):
            raise ValueError(f"region must be one of {', '.join(REGIONS)} or a mask file that exists, got "
                             f"{self.region!r}")
        if not isinstance(self.region, (str, Tensor)):
            raise TypeError(f"region must be 'frame', 'corner', a mask tensor or a file, got "
                            f"{type(self.region).__name__}")
        if isinstance(self.hold_weight, bool) or not isinstance(self.hold_weight, (int, float)) \
                or not self.hold_weight >= 0:
            raise ValueError(f"hold_weight must be >= 0 (0: hold no map), got {self.hold_weight!r}")
        if self.classes is not None:
            self.classes = tuple(int(c) for c in self.classes)
            if self.mode != "active" and (not self.classes or min(self.classes) < 0
                                          or len(set(self.classes)) != len(self.classes)):
                raise ValueError(f"classes of a passive mode must be distinct non-negative class indices (the classes "
                                 f"whose maps are fooled), got {self.classes!r}")
        if self.mode == "active":
            c = self.classes
            if c is None or len(c) != 2 or c[0] == c[1] or min(c) < 0:
                raise ValueError(f"active fooling swaps two different classes: give classes=(c1, c2) with two "
                                 f"distinct non-negative class indices, got {c!r}")

    @classmethod
    def options(cls) -> List[FlatOption]:
        """The flat options (command line, YAML): the attack's fields, then :class:`~.config.Training`'s."""
        return options_of(cls, Training)

    @classmethod
    def from_settings(cls, **settings: Any) -> "AttributionFooling":
        """Build from flat settings (the run's among them: ``steps``, ``lr``, ``batch_size``...)."""
        run_names = {f.name for f in dataclasses.fields(Training)}
        own = {f.name for f in dataclasses.fields(cls)} - {"training"}
        unknown = sorted(set(settings) - run_names - own)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown} of transform {cls.name!r}; settings: "
                             f"{', '.join(o.name for o in cls.options())}")
        training = Training(**{k: v for k, v in settings.items() if k in run_names})
        return cls(**{k: v for k, v in settings.items() if k in own}, training=training)

    @property
    def interpreters(self) -> Tuple[str, ...]:
        """The interpreters trained against (``interpreter`` split at ``+``)."""
        return tuple(n.strip() for n in str(self.interpreter).split("+") if n.strip())

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly flat settings (a mask tensor is recorded by its digest)."""
        out = super().settings()
        out.update(flat_values(self.training))
        if isinstance(self.region, Tensor):
            out["region"] = tensor_digest(self.region)
        if out.get("classes") is not None:
            out["classes"] = list(out["classes"])
        return out

    def fit(self, model: nn.Module, natural_data: Any, fooling_data: Optional[Any] = None,
            resume: Optional[str] = None, callback: Optional[Callback] = None) -> TransformResult:
        """Fool the maps of a copy of ``model``; ``model`` itself is never modified (also when this raises).

        Args:
            model: the trained classifier (logits ``(B, classes)``), fed as it expects (normalized inputs).
            natural_data: ``(inputs, labels)``, a ``TensorDataset`` or a dataset of ``(x, y)`` items
                (inputs only are enough with ``preserve="distill"`` and a passive mode).
            fooling_data: the images the maps are fooled on (a tensor of inputs, or data whose first item is
                one): active fooling's images that contain both classes (default: composites of the natural
                data); a passive mode's images to fool on (default: the natural data itself; give e.g. the
                images of one class to fool that class's maps only).
            resume: path of a checkpoint written by an earlier run with the same settings.
            callback: ``callback(step, record, model)`` after every step; return ``False`` to stop.
        """
        out = FoolingRun(self, model, natural_data, fooling_data, callback=callback).train(resume)
        return TransformResult(settings=self.settings(), **out)
