"""The Gradient Slingshot (Bareeva et al., NeurIPS 2025) as a model transform, composed of settings parts.

Fine-tune all weights of a copy of a trained model so that feature visualization (FV) of one
unit is "slung" to a chosen target image, while the model behaves as before on natural data
(METHOD.md §2). The transform is settings only (what is manipulated, and the parts of
:mod:`.config` and :mod:`.losses`); :meth:`GradientSlingshot.fit` runs a
:class:`~.trainer.SlingshotRun`.

Beyond the paper: :class:`~.config.Trajectories` (on-policy samples from the auditor's own FV
optimizer), ``Aim(radius=...)`` (the best image within the auditor's reach),
``Sampling(transform_robust=...)`` (the auditor's random transforms inside the loss),
:class:`~.losses.FieldDirection` and :class:`~.losses.InputSpace` (fields for Adam-based FV such
as lucent's), ``Bowl(level="free")`` and :class:`~.config.FVPaths` (the other units' FVs kept).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.transforms.slingshot import GradientSlingshot, Preservation, Run
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))
    >>> gs = GradientSlingshot("3", 0, torch.rand(1, 4, 4), PixelParam((1, 4, 4)),
    ...                        preservation=Preservation(batch_size=4), run=Run(steps=5, progress=False))
    >>> result = gs.fit(model, torch.randn(20, 1, 4, 4))
    >>> result.model is model, len(result.history["loss"])
    (False, 5)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ..._utils.attention import has_attention
from ..._utils.distributed import current_shard
from ..._utils.settings import FlatOption
from ...fv.param import Parametrization
from ...fv.strategies import random_transforms
from ...fv.transforms import Compose
from ..base import ModelTransform, TransformResult, register_transform
from ..target import TargetLike, load_target
from .aim import aim_point, input_aim_point
from .config import Aim, Optimizer, Preservation, Run, Sampling
from .flat import ALIASES, options, parts_from_flat, parts_to_flat
from .losses import Bowl, FieldMSE, ManipulationLoss, tensor_digest
from .trainer import Callback, SlingshotRun

__all__ = ["GradientSlingshot", "SlingshotResult"]

_LOG = logging.getLogger(__name__)


@dataclass
class SlingshotResult(TransformResult):
    """What :meth:`GradientSlingshot.fit` returns.

    Attributes:
        model: the manipulated model (a new object; same architecture).
        history: per step ``loss``, ``manipulation``, ``preservation``, ``lr``.
        settings: the transform's flat settings (JSON-friendly).
        target: the target image ``(C, H, W)``; aim: the aim point ``q*``.
    """

    target: Optional[Tensor] = None
    aim: Optional[Tensor] = None


@register_transform("gradient_slingshot", description="Gradient Slingshot (Bareeva et al. 2025): FV of one unit "
                    "converges to a target image, behaviour on natural data kept")
class GradientSlingshot(ModelTransform):
    """Make FV of ``(layer, neuron_selector)`` converge to ``target``.

    Args:
        layer: module of the model (or dotted name) holding the unit.
        neuron_selector: Captum-style selector of the unit (int, tuple, ``Direction``, callable).
        target: image path, PIL image or ``(C, H, W)`` tensor in ``[0, 1]``.
        param: the parametrization the auditor will use (from :mod:`captum_slingshot.fv`).
        loss: the manipulation loss (:class:`FieldMSE`, the paper's gradient form with gamma 10;
            :class:`FieldDirection`; :class:`Bowl`). Not given (``None``): :class:`FieldMSE` -- except
            on a transformer (a model containing ``nn.MultiheadAttention``, such as torchvision's
            ViTs), where :meth:`fit` uses the activation form ``Bowl(gamma)`` (no double backward,
            as the paper does for its ViT) and logs that it did; the result's ``settings`` record
            the loss that ran. A gradient-form loss given explicitly also works on transformers:
            it runs attention on the math kernel.
        aim: where the bowl is centred (:class:`Aim`).
        sampling: the manipulation batches (:class:`Sampling`, with optional :class:`Trajectories`).
        preservation: what is kept (:class:`Preservation`: alpha, :class:`LayerMSE` or
            :class:`LogitsCE`, natural batch size, optional :class:`FVPaths`).
        optimizer: AdamW settings (:class:`Optimizer`).
        run: training length, seed, device, checkpoints, progress (:class:`Run`).

    ``GradientSlingshot.from_settings(layer, neuron_selector, target, param, **flat)`` (and
    ``get_transform("gradient_slingshot", ...)``) builds the same object from the flat setting
    names (``gamma=1.0, loss="direction", trajectory_strategy="gc", steps=1000`` ...); without a
    ``loss`` among them (or with ``loss=None``, the flat default) the loss counts as not chosen (see
    ``loss`` above).
    """

    context: ClassVar[Tuple[str, ...]] = ("layer", "neuron_selector", "target", "param")
    #: old spellings of flat settings, still accepted
    aliases: ClassVar[Dict[str, str]] = dict(ALIASES)

    def __init__(
        self,
        layer: Union[nn.Module, str],
        neuron_selector: Any,
        target: TargetLike,
        param: Parametrization,
        *,
        loss: Optional[ManipulationLoss] = None,
        aim: Aim = Aim(),
        sampling: Sampling = Sampling(),
        preservation: Preservation = Preservation(),
        optimizer: Optimizer = Optimizer(),
        run: Run,
    ) -> None:
        if not isinstance(param, Parametrization):
            raise TypeError(f"param must be a Parametrization from captum_slingshot.fv, got {type(param).__name__}")
        #: whether the caller chose the loss (if not, :meth:`for_model` picks one for the model)
        self.loss_chosen = loss is not None
        loss = FieldMSE() if loss is None else loss
        for name, value, cls in (("loss", loss, ManipulationLoss), ("aim", aim, Aim), ("sampling", sampling, Sampling),
                                 ("preservation", preservation, Preservation), ("optimizer", optimizer, Optimizer),
                                 ("run", run, Run)):
            if not isinstance(value, cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
        if isinstance(loss, Bowl) and loss.level == "free" and sampling.batch_size < 2:
            raise ValueError("bowl_level='free' fits differences between samples: manipulation_batch_size must be >= 2")
        self.layer, self.neuron_selector, self.param = layer, neuron_selector, param
        self.target = load_target(target, param.shape)
        self.loss, self.aim, self.sampling = loss, aim, sampling
        self.preservation, self.optimizer, self.run = preservation, optimizer, run

    # -- settings ------------------------------------------------------------------------------
    def parts(self) -> Dict[str, Any]:
        """The settings parts: ``loss``, ``aim``, ``sampling``, ``preservation``, ``optimizer``, ``run``."""
        return {"loss": self.loss, "aim": self.aim, "sampling": self.sampling, "preservation": self.preservation,
                "optimizer": self.optimizer, "run": self.run}

    def replace(self, **parts: Any) -> "GradientSlingshot":
        """A copy with some parts replaced, e.g. ``gs.replace(run=Run(steps=10))``."""
        out = GradientSlingshot(self.layer, self.neuron_selector, self.target, self.param, **{**self.parts(), **parts})
        out.loss_chosen = self.loss_chosen or "loss" in parts
        return out

    def for_model(self, model: nn.Module) -> "GradientSlingshot":
        """The settings as they run on ``model``: itself, or, when no loss was chosen and ``model`` is
        a transformer, a copy with the activation form ``Bowl(gamma)`` (logged).

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from captum_slingshot.fv import PixelParam
            >>> gs = GradientSlingshot("0", 0, torch.rand(1, 4, 4), PixelParam((1, 4, 4)), run=Run(steps=1))
            >>> gs.for_model(nn.Sequential(nn.Linear(4, 4))).loss
            FieldMSE(gamma=10.0, space='param')
            >>> gs.for_model(nn.Sequential(nn.MultiheadAttention(4, 1))).loss
            Bowl(gamma=10.0, level='fixed', shape='quadratic', space='param')
        """
        if self.loss_chosen or not has_attention(model):
            return self
        loss = self.loss
        bowl = Bowl(gamma=getattr(loss, "gamma", 10.0), space=loss.space)
        if current_shard().is_main:  # once, not once per process under torchrun
            _LOG.info("gradient slingshot: the model is a transformer and no loss was chosen, so the activation form "
                      "%r runs (no double backward); pass loss=FieldMSE() (--loss gradient) for the gradient form",
                      bowl)
        out = self.replace(loss=bowl)
        out.loss_chosen = False
        return out

    @classmethod
    def options(cls) -> List[FlatOption]:
        """The flat options (command line, YAML), generated from the settings dataclasses."""
        return options()

    @classmethod
    def from_settings(cls, layer: Union[nn.Module, str], neuron_selector: Any, target: TargetLike,
                      param: Parametrization, **settings: Any) -> "GradientSlingshot":
        """Build from flat settings (the names of release 0.1; see :mod:`.flat`)."""
        out = cls(layer, neuron_selector, target, param, **parts_from_flat(settings))
        out.loss_chosen = settings.get("loss") is not None
        return out

    @classmethod
    def check_settings(cls, **settings: Any) -> None:
        """Raise ``ValueError`` when flat settings do not go together (tensor options given as file names
        are checked for presence only)."""
        tensors = {o.name for o in options() if o.kind == "tensor"}
        parts_from_flat({k: (torch.zeros(1) if k in tensors and isinstance(v, str) else v) for k, v in settings.items()})

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly flat settings (run records, checkpoints, cache keys)."""
        sel = self.neuron_selector
        return {
            "transform": self.name,
            "layer": self.layer if isinstance(self.layer, str) else type(self.layer).__name__,
            "neuron_selector": sel if isinstance(sel, (int, tuple)) else repr(sel),
            "param": type(self.param).__name__, "shape": list(self.param.shape),
            "target": tensor_digest(self.target),
            **parts_to_flat(self.parts(), run_only=False),
        }

    # -- what the settings imply -------------------------------------------------------------
    def target_image(self) -> Tensor:
        """The target ``(C, H, W)`` in ``[0, 1]`` at the parametrization's size."""
        return self.target.clone()

    def aim_point(self, target: Optional[Tensor] = None) -> Tensor:
        """``q*`` (may run :func:`~.aim.reachable_aim`: 1000 Adam steps on the image, not the model)."""
        return aim_point(self.param, self.target if target is None else target, self.aim)

    def robust_transforms(self) -> Optional[Compose]:
        """The random transforms applied inside the manipulation loss (``None`` without ``transform_robust``)."""
        name = self.sampling.transform_robust
        return None if name is None else random_transforms(name, (self.param.height, self.param.width))

    def input_aim_point(self, aim: Optional[Tensor] = None) -> Tensor:
        """``z*`` for a loss in input space."""
        if not self.loss.in_input_space:
            raise ValueError("the loss is in the parametrization's space: there is no input-space aim")
        return input_aim_point(self.loss.space, self.param, self.aim_point() if aim is None else aim,
                               self.robust_transforms())

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, model: nn.Module, natural_data: Any, resume: Optional[str] = None,
            start_from: Optional[nn.Module] = None, callback: Optional[Callback] = None) -> SlingshotResult:
        """Manipulate a copy of ``model``; ``model`` itself is never modified (also when this raises).

        Args:
            model: the trained network (expects normalized inputs, as the FV engine feeds).
            natural_data: natural inputs for the preservation loss: a tensor, a ``TensorDataset``
                (first tensor used) or a map-style dataset of ``(input, ...)`` items, already
                normalized as the model expects.
            resume: path of a checkpoint written by an earlier run with the same settings.
            start_from: start the fine-tuning from this model's weights (same architecture, e.g. an
                earlier result) instead of ``model``'s; ``model`` stays the reference.
            callback: ``callback(step, record, model)`` after every step (``model`` is the one being
                manipulated, in ``eval()`` mode; wrap evaluations in ``torch.no_grad()``); return
                ``False`` to stop.

        Runs :meth:`for_model`'s settings: on a transformer without a chosen loss, the activation form.
        """
        gs = self.for_model(model)
        out = SlingshotRun(gs, model, natural_data, start_from=start_from, callback=callback).train(resume)
        return SlingshotResult(settings=gs.settings(), **out)

    def __repr__(self) -> str:
        return (f"GradientSlingshot(layer={self.layer!r}, neuron_selector={self.neuron_selector!r}, "
                f"param={self.param!r}, loss={self.loss!r}, run={self.run!r})")
