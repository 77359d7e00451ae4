"""ProxPulse (Nanfack, Eickenberg, Belilovsky, arXiv 2406.01365) as a transform: natural and synthetic FV at once.

ProxPulse makes a target image the unit's activation maximum by a "pulse" right next to it:
each step moves the target ``t`` a small step along the normalised gradient of the unit's
mean squared activation, ``t' = t + step_size * g / ||g||`` with ``g = grad_x a(x)^2`` at
``x = t`` (taken on the model being trained, then detached), and minimises

    ``L_M = log(1 + C / (eps + a(t')^2))``

(:func:`~.losses.pulse_loss`), which is large while the unit is silent at ``t'`` and keeps
decreasing as its activation there grows. The constants are those of the Gradient Slingshot
authors' ProxPulse baseline (``step_size = 0.2``, ``C = 1e-6``, ``eps = 1e-12``), which runs with
or without a cross-entropy term; here ``preserve`` (``ce``, ``distill`` or ``none``) with
``L = L_keep + manipulation_weight * L_M``, Adam on every weight. We read "activation" in the
barrier as the squared activation, the quantity whose gradient defines the pulse (it keeps the
loss finite for negative activations); on a unit after a ReLU, raising it is raising the
activation (a unit silent or negative at the target is refused with a clear error). Because the
natural images nearest the target and the FV (gradient ascent from noise) both climb towards the
pulse, natural top images and synthetic FV move together.

Scale: past the barrier (``a^2 >> C``) the loss is about ``C / a^2`` and its gradient
``2 C / a^3``; with ``C = 1e-6`` and activations of order 1 to 10 that is 1e-9 to 1e-6. Without
preservation Adam's normalised step makes that irrelevant, but the cross-entropy's gradients
drown it (measured on MNIST: the pulse then does nothing), so ``manipulation_weight`` defaults to
``1e6``, making ``manipulation_weight * C = 1``: the pulse term's tail ``w C / a^2`` is then of
the order of the cross-entropy.

The pulse lives in the auditor's image space: the target is loaded at the parametrization's
shape (:func:`~captum_slingshot.transforms.target.load_target`) and fed through its normalization.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.transforms import get_transform
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    >>> with torch.no_grad():
    ...     model[1].bias[0] = 1.0   # ReLU unit 0 active everywhere, whatever the random weights
    >>> attack = get_transform("proxpulse", layer="2", neuron_selector=0, target=torch.rand(1, 4, 4),
    ...                        param=PixelParam((1, 4, 4)), steps=3, batch_size=8, progress=False)
    >>> x, y = torch.randn(40, 1, 4, 4), torch.arange(40) % 3
    >>> result = attack.fit(model, (x, y))
    >>> result.model is model, len(result.history["activation"])
    (False, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn

from ..._utils.settings import check_positive, setting
from ...fv.param import Parametrization
from ..base import register_transform
from ..slingshot.losses import tensor_digest
from ..target import TargetLike, load_target
from .base import PeerAttack
from .config import Training
from .losses import pulse_loss, pulse_point
from .trainer import PRESERVE, PeerRun

__all__ = ["ProxPulse"]


@register_transform("proxpulse", description="ProxPulse (Nanfack et al. 2024): a pulse next to a target image makes "
                    "it the unit's maximum, moving its natural top images and FV together, accuracy kept")
@dataclass
class ProxPulse(PeerAttack):
    """Make ``target`` the activation maximum of ``(layer, neuron_selector)`` (see the module docstring).

    Attributes:
        layer: the layer holding the unit (module or dotted name).
        neuron_selector: the unit (Captum-style selector).
        target: image path, PIL image or ``(C, H, W)`` tensor in ``[0, 1]``.
        param: the auditor's parametrization (image shape and normalization).
        step_size: the pulse's distance from the target (image units, L2).
        pulse_c: ``C`` of the barrier; pulse_eps: its ``eps``.
        preserve: ``ce``, ``distill`` or ``none``.
        manipulation_weight: the weight of the pulse loss (default ``1e6``: ``weight * C = 1``).
        training: the run (:class:`~.config.Training`); flat settings name its fields directly.
    """

    layer: Any
    neuron_selector: Any
    target: TargetLike
    param: Parametrization
    step_size: float = setting(0.2, "distance of the pulse from the target: a step along the normalised gradient of "
                               "the unit's squared activation (image units, L2)", flat="step_size", kind="float")
    pulse_c: float = setting(1e-6, "C of the barrier log(1 + C / (eps + a^2))", flat="pulse_c", kind="float")
    pulse_eps: float = setting(1e-12, "eps of the barrier log(1 + C / (eps + a^2))", flat="pulse_eps", kind="float")
    preserve: str = setting("ce", "what keeps the predictions: ce (cross-entropy to the labels), distill (KL to the "
                            "original's softmax) or none", flat="preserve", kind="text", choices=PRESERVE)
    manipulation_weight: float = setting(1e6, "weight of the pulse loss (> 0); the default makes weight * C = 1, so "
                                         "that the barrier is not drowned by the cross-entropy",
                                         flat="manipulation_weight", kind="float")
    training: Training = field(default_factory=Training)

    context = ("layer", "neuron_selector", "target", "param")

    def __post_init__(self) -> None:
        if not isinstance(self.param, Parametrization):
            raise TypeError(f"param must be a Parametrization from captum_slingshot.fv, got "
                            f"{type(self.param).__name__}")
        self.check_common()
        for name in ("step_size", "pulse_c", "pulse_eps"):
            check_positive(name, getattr(self, name))
        self.target = load_target(self.target, self.param.shape)

    @classmethod
    def check_settings(cls, **settings: Any) -> None:
        """Raise ``ValueError`` when flat settings (without context) do not go together."""
        from ...fv.param import PixelParam

        cls.from_settings(layer="layer", neuron_selector=0, target=torch.zeros(1, 2, 2), param=PixelParam((1, 2, 2)),
                          **settings)

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly flat settings (the target by its digest)."""
        out = super().settings()
        out.update(param=type(self.param).__name__, shape=list(self.param.shape), target=tensor_digest(self.target))
        return out

    def describe(self) -> str:
        return "proxpulse"

    def objective(self, run: PeerRun) -> "PulseObjective":
        """The pulse loss at the run's target."""
        return PulseObjective(self, run)


class PulseObjective:
    """The manipulation loss of a :class:`ProxPulse` run."""

    def __init__(self, attack: ProxPulse, run: PeerRun) -> None:
        self.a, self.run = attack, run
        self.image = attack.target[None].to(run.device)
        with torch.no_grad():
            a0 = float(self.unit_of_image(run.frozen, self.image).mean())
        if not a0 > 0:
            raise ValueError(f"the unit's activation at the target is {a0:.4g} on the original model: ProxPulse raises "
                             "the squared activation next to the target, which cannot revive a unit silent there (no "
                             "gradient) and would push a negative one further down; pick a unit (e.g. after a ReLU) "
                             "that is active at the target")

    def unit_of_image(self, model: nn.Module, image: Tensor) -> Tensor:
        """The unit's activation on images in ``[0, 1]`` (normalised as the parametrization does)."""
        return self.run.unit(model, self.a.param.normalize(image))

    def loss(self, model: nn.Module, step: int) -> Tuple[Tensor, Dict[str, float]]:
        """The pulse loss at this step's pulse point, and the unit's activation there."""
        a = self.a
        point = pulse_point(lambda img: self.unit_of_image(model, img), self.image, a.step_size)
        act = self.unit_of_image(model, point)
        return pulse_loss(act, a.pulse_c, a.pulse_eps), {"activation": float(act.detach().mean())}
