"""The Gradient Slingshot's settings as a few frozen dataclasses (besides the loss, :mod:`.losses`).

* :class:`Aim` -- where the bowl is centred in the parametrization (``q*``);
* :class:`Sampling` -- how the manipulation batch is drawn: the paper's tunnel, the auditor's
  random transforms, and optionally :class:`Trajectories` (points the auditor's own optimizer
  visits under the model being manipulated);
* :class:`Preservation` -- what is kept: ``alpha``, the natural-data loss (:class:`LayerMSE` or
  :class:`LogitsCE`) and optionally :class:`FVPaths` (the other units' FV paths);
* :class:`Optimizer` -- AdamW, clipping and the plateau schedule;
* :class:`Run` -- how long, seed, device, checkpoints, progress.

Every field is also a flat option (its ``flat`` name is the command-line flag and the YAML key);
see :mod:`.flat`. Defaults are the paper's MNIST settings.

Example:
    >>> Sampling(sigma=0.1, trajectories=Trajectories("gc")).trajectories.resolved().steps
    200
    >>> Run()
    Traceback (most recent call last):
    ...
    ValueError: give the training length: Run(steps=...) or Run(epochs=...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from ..._utils.settings import setting
from ...fv.strategies import STRATEGIES, AMStrategy, get_strategy, random_transforms
from .losses import tensor_digest

__all__ = ["Aim", "Trajectories", "Sampling", "LayerMSE", "LogitsCE", "FVPaths", "Preservation", "Optimizer", "Run"]


def _strategy_name(value: Union[str, AMStrategy], what: str) -> Tuple[Union[str, AMStrategy], Optional[int]]:
    """A registered strategy given as an object becomes its name (plus a ``steps`` override), so that
    the settings can be written down; other objects are kept as they are."""
    if isinstance(value, AMStrategy):
        base = STRATEGIES.get(value.name, None)
        if base is not None and base.replace(steps=value.steps) == value:
            return value.name, (None if value.steps == base.steps else int(value.steps))
        return value, None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be an AM strategy name or an AMStrategy, got {type(value).__name__}")
    get_strategy(value)  # unknown names fail here
    return value, None


#: the most AM strategies one :class:`Trajectories` rolls out (each has its own seeded stream)
MAX_AUDITORS = 6


def _strategy_entry(entry: str) -> str:
    """One ``+``-joined entry of a trajectory strategy, checked: ``name`` or ``name@parametrization``."""
    from ...fv.param import PARAMETRIZATIONS

    name, at, param = entry.strip().partition("@")
    if not name or (at and not param):
        raise ValueError(f"a trajectory strategy entry is a strategy name, optionally @parametrization "
                         f"(gc, adam, gc@lucent_fourier); got {entry!r}")
    get_strategy(name)  # unknown names fail here, listing the known ones
    if param:
        PARAMETRIZATIONS.get(param)
    return f"{name}@{param}" if param else name


@dataclass(frozen=True, eq=False)
class Aim:
    """Where the bowl is centred in the parametrization.

    Attributes:
        radius: aim at the point within this L2 radius of the origin whose image looks most like
            the target (:func:`~captum_slingshot.transforms.slingshot.aim.reachable_aim`; e.g.
            ``lr * steps`` of the auditor's clipped SGD, 19.5 for ``gc``), instead of at the
            target's own ``q`` (which may lie out of the auditor's reach).
        point: an explicit ``q*`` (shape ``param.param_shape``), e.g. a low-passed target.
    """

    radius: Optional[float] = setting(None, "aim at the point within this radius that looks most like the target "
                                      "(e.g. lr*steps of the auditor's clipped SGD, 19.5 for gc); none: aim at the "
                                      "target itself", flat="aim_radius", kind="float", optional=True)
    point: Optional[Tensor] = setting(None, "an explicit aim point q* (a .pt tensor of the parametrization's shape)",
                                      flat="aim_point", kind="tensor", optional=True)

    def __post_init__(self) -> None:
        if self.radius is not None:
            if not float(self.radius) > 0:
                raise ValueError(f"aim_radius must be positive, got {self.radius}")
            object.__setattr__(self, "radius", float(self.radius))
        if self.point is not None:
            if self.radius is not None:
                raise ValueError("give the aim as a radius or as a point, not both")
            if not isinstance(self.point, Tensor):
                raise TypeError(f"Aim(point=...) takes a tensor, got {type(self.point).__name__}")
            object.__setattr__(self, "point", self.point.detach().float().clone())

    def describe_point(self) -> Optional[str]:
        return None if self.point is None else tensor_digest(self.point)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Aim) and (other.radius, other.describe_point()) == (self.radius, self.describe_point())

    def __hash__(self) -> int:
        return hash((self.radius, self.describe_point()))


@dataclass(frozen=True)
class Trajectories:
    """On-policy samples: part of every manipulation batch comes from the FV paths the auditor's
    own optimizer takes under the model being manipulated, re-run every ``refresh`` steps. On real
    MNIST this is what makes the paper's settings converge within an epoch (without it FV leaves
    the paper's thin tunnel within a few steps).

    Several auditors at once: ``strategy="gc+tr+adam"`` rolls out every listed strategy (each
    with ``starts`` starts, from its own seeded stream) into one buffer, so the manipulation
    loss -- and :class:`ActivationCap` -- act along all their paths (an adaptive attacker against
    ``strategy_divergence``, which compares the unit's FVs under several strategies). An entry
    ``name@param`` runs that strategy in another parametrization (``gc@lucent_fourier``, as the
    check's fourth strategy); its points enter the buffer as the images the model sees, which
    needs the attacker's parametrization to be the pixel one (``q`` *is* the network input).
    :meth:`resolved` is the first entry, the reference.

    Example:
        >>> t = Trajectories("gc+tr+adam@lucent_fourier", steps=20)
        >>> [(s.name, s.steps, p) for s, p in t.parts()]
        [('gc', 20, None), ('tr', 20, None), ('adam', 20, 'lucent_fourier')]

    Attributes:
        strategy: the auditor's AM strategy (a name or a registered :class:`AMStrategy`), or
            several names joined by ``+`` (each optionally ``name@parametrization``).
        steps: override of the strategy's number of steps (e.g. 128 for lucent's 512).
        fraction: share of each manipulation batch drawn from the trajectories.
        refresh: re-run the trajectories every this many steps.
        starts: FV starts per refresh.
    """

    strategy: Union[str, AMStrategy] = setting(
        "gc", "AM strategy whose FV trajectories are mixed into the manipulation batches (e.g. gc, lucent); several "
        "joined by + (gc+tr+adam), each optionally in another parametrization (gc@lucent_fourier; needs the pixel "
        "parametrization); none: the paper's tunnel only", flat="trajectory_strategy", kind="text", optional=True, flat_default=None)
    steps: Optional[int] = setting(None, "override of the trajectory strategy's steps (none: its own)",
                                   flat="trajectory_steps", kind="int", optional=True)
    fraction: float = setting(0.5, "share of each manipulation batch drawn from the trajectories",
                              flat="trajectory_fraction", kind="float")
    refresh: int = setting(50, "re-run the trajectories every N steps", flat="trajectory_refresh", kind="int")
    starts: int = setting(8, "FV starts per trajectory refresh", flat="trajectory_starts", kind="int")

    def __post_init__(self) -> None:
        if isinstance(self.strategy, str) and ("+" in self.strategy or "@" in self.strategy):
            entries = self.strategy.split("+")
            if len(entries) > MAX_AUDITORS:
                raise ValueError(f"at most {MAX_AUDITORS} trajectory strategies at once, got {len(entries)}")
            strategy, steps = "+".join(_strategy_entry(e) for e in entries), None
        else:
            strategy, steps = _strategy_name(self.strategy, "trajectory strategy")
        object.__setattr__(self, "strategy", strategy)
        if steps is not None:
            if self.steps is not None and int(self.steps) != steps:
                raise ValueError(f"the trajectory strategy has {steps} steps but steps={self.steps} was given")
            object.__setattr__(self, "steps", steps)
        if self.steps is not None and int(self.steps) < 1:
            raise ValueError(f"trajectory steps must be at least 1, got {self.steps}")
        if not 0.0 <= float(self.fraction) <= 1.0:
            raise ValueError(f"trajectory_fraction must lie in [0, 1], got {self.fraction}")
        if int(self.refresh) < 1 or int(self.starts) < 1:
            raise ValueError("trajectory_refresh and trajectory_starts must be at least 1")
        object.__setattr__(self, "fraction", float(self.fraction))
        object.__setattr__(self, "refresh", int(self.refresh))
        object.__setattr__(self, "starts", int(self.starts))

    @property
    def name(self) -> str:
        return self.strategy if isinstance(self.strategy, str) else self.strategy.name

    def resolved(self) -> AMStrategy:
        """The (first) strategy as an :class:`AMStrategy` with the ``steps`` override applied."""
        return self.parts()[0][0]

    def parts(self) -> Tuple[Tuple[AMStrategy, Optional[str]], ...]:
        """Every listed strategy (``steps`` override applied) with its parametrization's name (``None``: the
        attacker's own)."""
        overrides = {} if self.steps is None else {"steps": int(self.steps)}
        if not isinstance(self.strategy, str):
            return ((get_strategy(self.strategy, **overrides), None),)
        out = []
        for entry in self.strategy.split("+"):
            name, _, param = entry.partition("@")
            out.append((get_strategy(name, **overrides), param or None))
        return tuple(out)


@dataclass(frozen=True)
class Sampling:
    """How each step's manipulation batch is drawn.

    Attributes:
        sigma: half-width of the uniform noise around the tunnel ``q = p q* + u``.
        tunnel: sample along the whole segment from the FV start to ``q*`` (``False``: only its ends).
        batch_size: samples per step.
        transform_robust: an AM strategy or transform set (``"tr"``, ``"lucent"``,
            ``"paper_mnist"``...) whose random transforms are applied inside the manipulation loss.
        trajectories: on-policy samples from the auditor's own optimizer (``None``: the paper's
            tunnel only).
    """

    sigma: float = setting(0.1, "half-width of the noise around the tunnel", flat="sigma", kind="float")
    tunnel: bool = setting(True, "sample only the two ends of the tunnel, not the whole segment", flat="tunnel",
                           kind="bool")
    batch_size: int = setting(32, "synthetic (manipulation) batch size", flat="manipulation_batch_size", kind="int")
    transform_robust: Optional[str] = setting(
        None, "apply this AM strategy's / transform set's random transforms inside the manipulation loss (e.g. tr, "
        "lucent)", flat="transform_robust", kind="text", optional=True)
    trajectories: Optional[Trajectories] = None

    def __post_init__(self) -> None:
        if not float(self.sigma) >= 0:
            raise ValueError(f"sigma must be non-negative, got {self.sigma}")
        if int(self.batch_size) < 1:
            raise ValueError("batch sizes must be at least 1")
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "batch_size", int(self.batch_size))
        object.__setattr__(self, "tunnel", bool(self.tunnel))
        if self.transform_robust is not None:
            random_transforms(self.transform_robust, (32, 32))  # unknown names fail here
        if self.trajectories is not None and not isinstance(self.trajectories, Trajectories):
            raise TypeError(f"trajectories must be a Trajectories or None, got {type(self.trajectories).__name__}")


@dataclass(frozen=True)
class LayerMSE:
    """Preservation on natural data: the hooked layer close to the original's in MSE (the paper).

    Attributes:
        w: weight of the unit itself inside the layer term (``w mse(unit) + (1 - w) mse(layer)``).
    """

    kind = "activation"
    w: float = setting(0.0, "weight of the unit itself inside the layer preservation loss, in [0, 1]", flat="w",
                       kind="float")

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.w) <= 1.0:
            raise ValueError(f"w must lie in [0, 1], got {self.w}")
        object.__setattr__(self, "w", float(self.w))


@dataclass(frozen=True)
class LogitsCE:
    """Preservation on natural data: the logits close in cross-entropy to the original's softmax."""

    kind = "logits"


@dataclass(frozen=True)
class FVPaths:
    """FV-path preservation (not in the paper): the layer's *other* units keep their original
    activations at the points their own FVs visit on the original model, so their FVs stay as they
    were. Without it the slingshot can bend the landscape near the FV start for neighbouring units
    too (on the MNIST CNN logit 1's GC FV fell from activation 11 to 3), which an audit sees.

    Attributes:
        weight: weight of the term inside the preservation loss (must be positive).
        units: channels whose FV paths are kept (default: every other channel, at most 64).
        strategy: the AM strategy whose paths are kept (default: the trajectories' strategy, else ``gc``).
        starts: FV starts per unit (default: the trajectories' starts, else 8).
    """

    weight: float = setting(1.0, "weight of FV-path preservation: the layer's other units keep their original "
                            "activations along their own FV paths, so their FVs stay as they were (0: off, the "
                            "paper)", flat="preserve_fv", kind="float", flat_default=0.0)
    units: Optional[Tuple[int, ...]] = setting(None, "channels whose FV paths --preserve-fv keeps (default: every "
                                               "other channel, at most 64)", flat="preserve_fv_units", kind="ints",
                                               optional=True)
    strategy: Optional[str] = setting(None, "AM strategy of the kept FV paths (default: the trajectory strategy, "
                                      "else gc)", flat="preserve_fv_strategy", kind="text", optional=True)
    starts: Optional[int] = setting(None, "FV starts per kept unit (default: trajectory_starts, else 8)",
                                    flat="preserve_fv_starts", kind="int", optional=True)

    def __post_init__(self) -> None:
        if not float(self.weight) > 0:
            raise ValueError(f"preserve_fv must be a positive weight to keep FV paths, got {self.weight}")
        object.__setattr__(self, "weight", float(self.weight))
        if self.units is not None:
            units = tuple(int(u) for u in self.units)
            if not units:
                raise ValueError("preserve_fv_units is empty: leave it None to keep every other unit's FV")
            object.__setattr__(self, "units", units)
        if self.strategy is not None:
            get_strategy(self.strategy)
        if self.starts is not None and int(self.starts) < 1:
            raise ValueError(f"preserve_fv_starts must be at least 1, got {self.starts}")


@dataclass(frozen=True)
class ActivationCap:
    """An adaptive attacker against ``activation_excess`` (not in the paper): the unit's activation
    along the auditor's own FV trajectories (the :class:`Trajectories` buffer) is kept at or below
    its natural range, so the FV can land on the target without climbing above what natural data
    reach. The cap is ``max + (margin - 1) (max - median)`` of the unit on natural data under the
    original model (``margin=1``: the natural maximum); the term is
    ``weight * mean(relu((a - cap) / (max - median))^2)`` over trajectory points, added to the
    preservation loss.

    Attributes:
        weight: weight of the term (must be positive).
        margin: where the cap sits, in units of the natural range above the median (1: the maximum).
    """

    weight: float = setting(1.0, "adaptive attack on activation_excess: keep the unit's activation along the "
                            "auditor's FV trajectories at or below its natural range, with this weight (0: off; "
                            "needs trajectory_strategy)", flat="activation_cap", kind="float", flat_default=0.0)
    margin: float = setting(1.0, "where the activation cap sits: max + (margin - 1) (max - median) of the unit's "
                            "natural activations (1: the natural maximum)", flat="activation_cap_margin",
                            kind="float")

    def __post_init__(self) -> None:
        if not float(self.weight) > 0:
            raise ValueError(f"activation_cap must be a positive weight, got {self.weight}")
        if not float(self.margin) > 0:
            raise ValueError(f"activation_cap_margin must be positive, got {self.margin}")
        object.__setattr__(self, "weight", float(self.weight))
        object.__setattr__(self, "margin", float(self.margin))


@dataclass(frozen=True)
class Preservation:
    """What the manipulation keeps: ``L = (1 - alpha) L_M + alpha L_P``.

    Attributes:
        alpha: weight of the preservation loss, in ``[0, 1]``.
        loss: :class:`LayerMSE` (default) or :class:`LogitsCE`.
        batch_size: natural inputs per step.
        fv_paths: :class:`FVPaths` (``None``: off, the paper).
        activation_cap: :class:`ActivationCap` (``None``: off, the paper).
    """

    alpha: float = setting(0.8, "weight of the preservation loss in [0, 1]", flat="alpha", kind="float")
    loss: Union[LayerMSE, LogitsCE] = LayerMSE()
    batch_size: int = setting(32, "natural batch size", flat="batch_size", kind="int")
    fv_paths: Optional[FVPaths] = None
    activation_cap: Optional[ActivationCap] = None

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if int(self.batch_size) < 1:
            raise ValueError("batch sizes must be at least 1")
        if not isinstance(self.loss, (LayerMSE, LogitsCE)):
            raise TypeError(f"preservation loss must be LayerMSE() or LogitsCE(), got {self.loss!r}")
        object.__setattr__(self, "alpha", float(self.alpha))
        object.__setattr__(self, "batch_size", int(self.batch_size))


@dataclass(frozen=True)
class Optimizer:
    """AdamW on all weights, gradient-norm clipping, learning rate halved on plateau (per epoch)."""

    lr: float = setting(1e-3, "AdamW learning rate", flat="lr", kind="float")
    weight_decay: float = setting(1e-3, "AdamW weight decay", flat="weight_decay", kind="float")
    clip_grad_norm: Optional[float] = setting(1.0, "gradient norm clipping (none: off)", flat="clip_grad_norm",
                                              kind="float", optional=True)
    plateau_patience: int = setting(2, "epochs without improvement before the learning rate is halved",
                                    flat="plateau_patience", kind="int")

    def __post_init__(self) -> None:
        if not float(self.lr) > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "weight_decay", float(self.weight_decay))
        object.__setattr__(self, "plateau_patience", int(self.plateau_patience))
        if self.clip_grad_norm is not None:
            object.__setattr__(self, "clip_grad_norm", float(self.clip_grad_norm))


@dataclass(frozen=True)
class Run:
    """How long and where a fit runs, and what it writes on the way.

    Attributes:
        steps / epochs: training length (``steps`` wins if both are given; one epoch is one pass
            over the natural data in batches of ``Preservation.batch_size``).
        seed: seeds the manipulation batches, natural batch order and transforms.
        device: where to train (default: the model's device).
        checkpoint_path, checkpoint_every: periodic atomic checkpoints.
        progress: show a tqdm bar with both loss terms.
        precision: mixed precision of the forward passes, ``"bf16"`` or ``"fp16"`` (``torch.autocast``;
            the losses stay float32, fp16 adds a gradient scaler); ``None`` (the default): float32.
            Meant for GPUs; on CPU bf16 runs but is rarely faster.
    """

    steps: Optional[int] = setting(None, "training steps (wins over epochs)", flat="steps", kind="int", optional=True)
    epochs: Optional[float] = setting(None, "training epochs over the natural data", flat="epochs", kind="float",
                                      optional=True)
    seed: int = setting(0, "seed of the manipulation batches, data order and transforms", flat="seed", kind="int")
    device: Optional[str] = setting(None, "torch device to train on, e.g. cuda (default: the model's)", flat="device",
                                    kind="text", optional=True)
    checkpoint_path: Optional[str] = setting(None, "write an atomic checkpoint here every checkpoint_every steps",
                                             flat="checkpoint_path", kind="text", optional=True)
    checkpoint_every: int = setting(500, "steps between checkpoints", flat="checkpoint_every", kind="int")
    progress: bool = setting(True, "hide progress bars", flat="progress", kind="bool")
    precision: Optional[str] = setting(None, "mixed precision of the forward passes: bf16 or fp16 (default: float32; "
                                       "for GPUs)", flat="precision", kind="text", optional=True,
                                       choices=("bf16", "fp16"))

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in ("bf16", "fp16"):
            raise ValueError(f"precision must be 'bf16', 'fp16' or None, got {self.precision!r}")
        if self.steps is None and self.epochs is None:
            raise ValueError("give the training length: Run(steps=...) or Run(epochs=...)")
        if self.steps is not None:
            if int(self.steps) < 1:
                raise ValueError(f"steps must be at least 1, got {self.steps}")
            object.__setattr__(self, "steps", int(self.steps))
        if self.epochs is not None:
            if not float(self.epochs) > 0:
                raise ValueError(f"epochs must be positive, got {self.epochs}")
            object.__setattr__(self, "epochs", float(self.epochs))
        if int(self.checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "checkpoint_every", int(self.checkpoint_every))
        if self.device is not None:
            object.__setattr__(self, "device", str(torch.device(self.device)))
