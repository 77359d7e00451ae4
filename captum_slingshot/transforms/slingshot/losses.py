"""The manipulation losses of the Gradient Slingshot, as objects (METHOD.md §2).

Each loss says what the unit should become near the FV's path, in one space:

* :class:`FieldMSE` -- the paper's gradient form: the unit's input gradient fitted by MSE to the
  field of a bowl, ``gamma (q* - q)`` (one double-backward pass; attention runs on the math
  kernel there, the only one that can be differentiated twice);
* :class:`FieldDirection` -- the same field's *direction* only (cosine), plus a soft floor
  ``|grad| >= 1`` so that clipped SGD takes full steps; scale-free, so it has no ``gamma``;
* :class:`Bowl` -- the paper's activation form: the unit's activation fitted to the bowl
  ``gamma (1 - d^2)`` itself (no double backward, for big models; the default on transformers when
  no loss is chosen), with a ``"fixed"`` level (the paper) or a ``"free"`` one (only differences
  between samples), quadratic or cone-shaped.

``space`` is ``"param"`` (the paper: the field lives in the parametrization ``q``) or an
:class:`InputSpace` (the field ``gamma (z* - z)`` in the network's input ``z``, what Adam-based
FV such as lucent's follows). Options that only make sense together are written together, so an
invalid combination cannot be written: ``level`` and ``shape`` exist only on :class:`Bowl`, the
input-space aim ``z*`` only on :class:`InputSpace`.

Example:
    >>> FieldMSE(gamma=10.0), FieldDirection(space="input").space
    (FieldMSE(gamma=10.0, space='param'), InputSpace(aim=None))
    >>> Bowl(level="floating")
    Traceback (most recent call last):
    ...
    ValueError: bowl level must be 'fixed' or 'free', got 'floating'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, ClassVar, Dict, Optional, Type, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..._utils.attention import math_attention
from ..._utils.settings import setting

__all__ = ["InputSpace", "ManipulationLoss", "FieldMSE", "FieldDirection", "Bowl", "LOSSES", "LossInputs",
           "tensor_digest"]


def tensor_digest(t: Tensor) -> str:
    """A short, stable name of a tensor's values: ``tensor:<sha256 prefix>:<shape>``."""
    data = t.detach().cpu().float().contiguous()
    h = hashlib.sha256(data.numpy().tobytes()).hexdigest()[:16]
    return f"tensor:{h}:{'x'.join(map(str, data.shape))}"


@dataclass(frozen=True, eq=False)
class InputSpace:
    """Fit the field (or bowl) in the network's input space, aimed at ``z*``.

    Attributes:
        aim: ``z*``, one model input (normalized, the shape of one input); ``None``: the aim point
            ``q*`` as the model sees it with every random transform of ``transform_robust`` at its
            middle value (``u = 0.5``).
    """

    aim: Optional[Tensor] = setting(
        None, "z* for field_space=input: a .pt file holding one normalized model input (none: the aim point as "
        "the model sees it, the transform_robust transforms at their middle)",
        flat="input_aim", kind="tensor", optional=True)

    def __post_init__(self) -> None:
        if self.aim is not None:
            if not isinstance(self.aim, Tensor):
                raise TypeError(f"InputSpace(aim=...) takes a tensor or None, got {type(self.aim).__name__}")
            a = self.aim.detach().float().clone()
            if not torch.isfinite(a).all():
                raise ValueError("InputSpace aim contains NaN or inf")
            object.__setattr__(self, "aim", a)

    def describe(self) -> Optional[str]:
        """The aim as a JSON-friendly value (a tensor by its digest)."""
        return None if self.aim is None else tensor_digest(self.aim)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputSpace) and other.describe() == self.describe()

    def __hash__(self) -> int:
        return hash(self.describe())

    def __repr__(self) -> str:
        return f"InputSpace(aim={self.describe()!r})" if self.aim is not None else "InputSpace(aim=None)"


Space = Union[str, InputSpace]


def _space(value: Space) -> Space:
    if value == "input":
        return InputSpace()
    if value == "param" or isinstance(value, InputSpace):
        return value
    raise ValueError(f"space must be 'param', 'input' or an InputSpace, got {value!r}")


@dataclass
class LossInputs:
    """What a manipulation loss sees at one step.

    Attributes:
        q: the manipulation batch in the parametrization ``(B, *param_shape)`` (no grad).
        tr_u: the uniforms of each sample's random transforms, or ``None``.
        aim: ``q*``. input_aim: ``z*`` (input space only).
        network_input: ``(q, tr_u) -> z``, what the model sees.
        unit: ``z -> (B,)``, the unit's activation for model inputs (the model being manipulated).
    """

    q: Tensor
    tr_u: Optional[Tensor]
    aim: Tensor
    input_aim: Optional[Tensor]
    network_input: Callable[[Tensor, Optional[Tensor]], Tensor]
    unit: Callable[[Tensor], Tensor]

    def z_aim(self, z: Tensor) -> Tensor:
        """``z*`` on ``z``'s device and dtype, checked against the model's input shape."""
        z_aim = self.input_aim.to(device=z.device, dtype=z.dtype)
        if z_aim.shape != z.shape[1:]:
            raise ValueError(f"input_aim has shape {tuple(z_aim.shape)}, the model's inputs {tuple(z.shape[1:])}")
        return z_aim


class ManipulationLoss:
    """Base of the manipulation losses: ``loss(inputs) -> scalar``; ``kind`` is its flat name."""

    kind: ClassVar[str] = ""
    space: Space

    @property
    def in_input_space(self) -> bool:
        return isinstance(self.space, InputSpace)

    def __call__(self, inputs: LossInputs) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class _FieldLoss(ManipulationLoss):
    """Shared part of the field-fitting losses: the unit's gradient against a field pointing at the aim."""

    def field(self, difference: Tensor) -> Tensor:
        """The target field for ``aim - x`` (detached)."""
        return difference.detach()

    def fit(self, grad: Tensor, field: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, inputs: LossInputs) -> Tensor:
        with math_attention():  # the fused attention kernels have no double backward
            return self.fitted(inputs)

    def fitted(self, inputs: LossInputs) -> Tensor:
        """The loss (its forward and first gradient run where :meth:`__call__` picks the attention kernel)."""
        if not self.in_input_space:
            q = inputs.q.requires_grad_(True)
            act = inputs.unit(inputs.network_input(q, inputs.tr_u))
            (grad,) = torch.autograd.grad(act.sum(), q, create_graph=True)
            return self.fit(grad, self.field(inputs.aim - q))
        with torch.no_grad():
            z = inputs.network_input(inputs.q, inputs.tr_u)
        z_aim = inputs.z_aim(z)
        z.requires_grad_(True)
        act = inputs.unit(z)
        (grad,) = torch.autograd.grad(act.sum(), z, create_graph=True)
        return self.fit(grad, self.field(z_aim - z))


@dataclass(frozen=True)
class FieldMSE(_FieldLoss):
    """The paper's gradient form: ``mse(grad a, gamma (aim - x))`` (double backprop)."""

    kind: ClassVar[str] = "gradient"
    gamma: float = setting(10.0, "slope of the bowl: the unit's input gradient is trained towards gamma (q* - q) "
                           "(gradient and activation losses; the direction loss is scale-free)", flat="gamma",
                           kind="float")
    space: Space = "param"

    def __post_init__(self) -> None:
        if not self.gamma > 0:
            raise ValueError(f"gamma must be positive, got {self.gamma}")
        object.__setattr__(self, "gamma", float(self.gamma))
        object.__setattr__(self, "space", _space(self.space))

    def field(self, difference: Tensor) -> Tensor:
        return self.gamma * difference.detach()

    def fit(self, grad: Tensor, field: Tensor) -> Tensor:
        return F.mse_loss(grad, field)


@dataclass(frozen=True)
class FieldDirection(_FieldLoss):
    """The field's direction only: ``1 - cos(grad a, aim - x)`` plus a soft floor ``|grad| >= 1``.

    Attributes:
        space: ``"param"`` or an :class:`InputSpace`.
        adam_normalized: in input space: compare the two fields where the auditor's Adam sees them,
            as gradients on ``q`` (pulled back through the transforms and the parametrization),
            each coordinate divided by the batch RMS of the target field there, so that faint
            (high-frequency) coefficients count as much as strong ones.
    """

    kind: ClassVar[str] = "direction"
    space: Space = "param"
    adam_normalized: bool = setting(False, "direction loss in input space: compare the fields as Adam sees them on q "
                                    "(per-coordinate RMS-normalized)", flat="adam_normalized", kind="bool")

    def __post_init__(self) -> None:
        object.__setattr__(self, "space", _space(self.space))
        if self.adam_normalized and not self.in_input_space:
            raise ValueError("adam_normalized needs field_space='input' (space=InputSpace())")

    def fit(self, grad: Tensor, field: Tensor) -> Tensor:
        cos = F.cosine_similarity(grad.flatten(1), field.flatten(1), dim=1)
        floor = F.relu(1.0 - grad.flatten(1).norm(dim=1))
        return (1 - cos).mean() + floor.pow(2).mean()

    def fitted(self, inputs: LossInputs) -> Tensor:
        if not self.adam_normalized:
            return super().fitted(inputs)
        q = inputs.q.detach().requires_grad_(True)
        z = inputs.network_input(q, inputs.tr_u)
        field = (inputs.z_aim(z) - z).detach()
        (target,) = torch.autograd.grad(z, q, grad_outputs=field, retain_graph=True)
        act = inputs.unit(z)
        (grad,) = torch.autograd.grad(act.sum(), q, create_graph=True)
        # Adam's view: every coordinate scaled by (an estimate of) its gradient's RMS, over the
        # batch, the channels and (Fourier) real/imaginary parts: one per position/frequency
        keep = (2, 3) if target.dim() >= 4 else (1,)
        dims = tuple(d for d in range(target.dim()) if d not in keep)
        rms = target.pow(2).mean(dim=dims, keepdim=True).sqrt()
        rms = rms + 1e-3 * rms.mean()
        cos = F.cosine_similarity((grad / rms).flatten(1), (target / rms).flatten(1), dim=1)
        return (1 - cos).mean()


@dataclass(frozen=True)
class Bowl(ManipulationLoss):
    """The activation form: ``mse(a, gamma (1 - d^2))`` with ``d^2`` the mean squared distance to the aim.

    Attributes:
        gamma: the bowl's height.
        level: ``"fixed"`` (the paper: the activation itself is fitted) or ``"free"`` (only the
            differences between the batch's samples: ``a - mean(a)`` to ``bowl - mean(bowl)``; the
            unit keeps whatever level it has, so its natural activations need not rise to ``gamma``).
        shape: ``"quadratic"`` (``d^2``, the paper) or ``"cone"`` (``d``).
        space: ``"param"`` or an :class:`InputSpace`.
    """

    kind: ClassVar[str] = "activation"
    gamma: float = setting(10.0, "slope of the bowl: the unit's input gradient is trained towards gamma (q* - q) "
                           "(gradient and activation losses; the direction loss is scale-free)", flat="gamma",
                           kind="float")
    level: str = setting("fixed", "activation loss: fit the bowl's values (fixed, the paper) or only their differences "
                         "between samples (free: the unit keeps its level)", flat="bowl_level", kind="text",
                         choices=("fixed", "free"))
    shape: str = setting("quadratic", "activation loss: the bowl gamma (1 - d^2) (quadratic, the paper) or the cone "
                         "gamma (1 - d)", flat="bowl_shape", kind="text", choices=("quadratic", "cone"))
    space: Space = "param"

    def __post_init__(self) -> None:
        if not self.gamma > 0:
            raise ValueError(f"gamma must be positive, got {self.gamma}")
        if self.level not in ("fixed", "free"):
            raise ValueError(f"bowl level must be 'fixed' or 'free', got {self.level!r}")
        if self.shape not in ("quadratic", "cone"):
            raise ValueError(f"bowl shape must be 'quadratic' or 'cone', got {self.shape!r}")
        object.__setattr__(self, "gamma", float(self.gamma))
        object.__setattr__(self, "space", _space(self.space))

    def values(self, act: Tensor, d2: Tensor) -> Tensor:
        """The loss for activations ``act`` at mean squared distances ``d2`` from the aim."""
        bowl = self.gamma * (1 - (d2.sqrt() if self.shape == "cone" else d2))
        if self.level == "free":
            return F.mse_loss(act - act.mean(), bowl - bowl.mean())
        return F.mse_loss(act, bowl)

    def __call__(self, inputs: LossInputs) -> Tensor:
        if not self.in_input_space:
            q = inputs.q.requires_grad_(True)
            act = inputs.unit(inputs.network_input(q, inputs.tr_u))
            return self.values(act, (q.detach() - inputs.aim).flatten(1).pow(2).mean(1))
        with torch.no_grad():
            z = inputs.network_input(inputs.q, inputs.tr_u)
        z_aim = inputs.z_aim(z)
        act = inputs.unit(z)
        return self.values(act, (z - z_aim).flatten(1).pow(2).mean(1))


#: flat ``loss`` value -> loss class
LOSSES: Dict[str, Type[ManipulationLoss]] = {cls.kind: cls for cls in (FieldMSE, FieldDirection, Bowl)}
