"""Nanfack et al.'s attacks on activation maximization (AAAI 2024, arXiv 2306.07397), restated as one transform.

The paper fine-tunes a model so that the interpretation of one unit by its most activating
images (natural top-k and synthetic FV) changes while the model's accuracy stays, with three
attacks: *push-down* (the unit's top images no longer show its concept), *push-up* (chosen decoy
images become its top images) and *fairwashing* (the unit's top images no longer show a
protected concept, its interpretation otherwise kept). No code was published; the formulation
here follows that description. The unit's activations ``a`` on the natural data rank images, so
every term is a ranking constraint -- a hinge in units of ``s``, the original unit's activation
spread on the natural data (:mod:`.losses`) -- added to the accuracy-keeping loss,
``L = L_keep + manipulation_weight * L_M`` (``L_keep``: cross-entropy to the labels by default).
Each attack moves one set of natural images ``M`` past a fixed threshold ``tau`` read from the
original's activations on the other natural images ``O``, and keeps the unit's activations on
``O`` at the original's ``a0`` (``keep_weight * mean|a(O) - a0(O)| / s``). Both terms are linear,
so each image pulls with a force of at most 1: lowering the whole unit (hiding the top images by
silencing the unit, which also kills a ReLU unit past recovery -- what squared hinges did on
MNIST) gains at most 1 per moved image and costs ``keep_weight`` per kept one, so with
``keep_weight > 1`` only changes specific to the moved images pay:

* ``push_down``: ``M`` = the original's ``top_k`` natural images (and, with ``param`` and
  ``fv_starts > 0``, the original's FVs of the unit); ``tau`` = the median of ``a0(O)``: the top
  images sink ``margin`` below the median of the others, so the concept they showed
  leaves the natural top-k, and its FV, no longer an activation maximum, leaves the FV;
* ``push_up``: ``M`` = the images of ``decoy_class``; ``tau`` = the maximum of ``a0(O)``: the
  decoys rise ``margin`` above every other natural image's original activation -- they take the
  top of the ranking (a unit after a ReLU cannot lift images it is silent on: no gradient; a
  decoy class it is silent on throughout is refused);
* ``fairwash``: ``M`` = the images of ``protected_class``; ``tau`` = the median of ``a0(O)``:
  the protected class leaves the unit's top images while the rest of its ranking (its apparent
  interpretation) is kept -- push-down of a concept instead of a set of images.

One transform with a ``mode`` (like ``attribution_fooling``) rather than three: the three attacks
share the unit, the ranking of the natural data, the hinge, the preservation and every run
setting; only the sets and the threshold differ.
Success is measured with :func:`captum_slingshot.metrics.kendall_tau` of the unit's activations
before/after, the top-k overlap and :func:`captum_slingshot.metrics.class_shares` of the top-k
(in place of the paper's CLIP score).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.transforms import get_transform
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    >>> x, y = torch.randn(60, 1, 4, 4), torch.arange(60) % 3
    >>> attack = get_transform("activation_max_attack", layer="2", neuron_selector=1, mode="push_up", decoy_class=2,
    ...                        top_k=5, steps=3, batch_size=16, progress=False)
    >>> result = attack.fit(model, (x, y))
    >>> result.model is model, len(result.history["manipulation"])
    (False, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from ..._utils.data import NaturalBatches, fetch_inputs
from ..._utils.settings import setting
from ...fv.param import Parametrization
from ...fv.render import render
from ..base import register_transform
from .base import PeerAttack
from .config import Ranking, Training
from .losses import keep_loss, push_down_loss, push_up_loss
from .trainer import PRESERVE, PeerRun

__all__ = ["ActivationMaxAttack", "AM_MODES"]

#: the paper's three attacks
AM_MODES = ("push_down", "push_up", "fairwash")


def _class_index(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative class index, got {value!r}")
    return value


@register_transform("activation_max_attack", description="Nanfack et al. 2024: fine-tune so that a unit's top "
                    "natural images and FV change (push_down, push_up decoys, fairwash a class), accuracy kept")
@dataclass
class ActivationMaxAttack(PeerAttack):
    """Push-down, push-up or fairwashing of one unit's activation-maximization interpretation (module docstring).

    Attributes:
        layer: the layer holding the unit (module or dotted name).
        neuron_selector: the unit (Captum-style selector).
        param: the auditor's parametrization; with ``fv_starts > 0`` push-down also pushes down the
            original's FVs rendered with it (``None``: natural images only).
        mode: ``push_down``, ``push_up`` or ``fairwash``.
        decoy_class: push-up's decoy class.
        protected_class: fairwashing's protected class.
        preserve: ``ce``, ``distill`` or ``none``.
        manipulation_weight: the weight of the attack's loss.
        ranking: which images move and how far (:class:`~.config.Ranking`: ``top_k``, ``margin``,
            ``keep_weight``, ``fv_starts``); flat settings name its fields directly.
        training: the run (:class:`~.config.Training`); flat settings name its fields directly.
    """

    layer: Any
    neuron_selector: Any
    param: Optional[Parametrization] = None
    mode: str = setting("push_down", "attack: push_down (the unit's top natural images and FV sink below the median), "
                        "push_up (images of decoy_class rise above all others) or fairwash (images of protected_class "
                        "leave the top, the rest of the ranking kept)", flat="mode", kind="text", choices=AM_MODES)
    decoy_class: Optional[int] = setting(None, "push_up: the class whose images become the unit's top images",
                                         flat="decoy_class", kind="int", optional=True)
    protected_class: Optional[int] = setting(None, "fairwash: the class whose images leave the unit's top images",
                                             flat="protected_class", kind="int", optional=True)
    preserve: str = setting("ce", "what keeps the predictions: ce (cross-entropy to the labels), distill (KL to the "
                            "original's softmax) or none", flat="preserve", kind="text", choices=PRESERVE)
    manipulation_weight: float = setting(1.0, "weight of the attack's ranking loss (> 0)", flat="manipulation_weight",
                                         kind="float")
    ranking: Ranking = field(default_factory=Ranking)
    training: Training = field(default_factory=Training)

    context = ("layer", "neuron_selector", "param")
    parts = {"ranking": Ranking, "training": Training}

    def __post_init__(self) -> None:
        if self.mode not in AM_MODES:
            raise ValueError(f"unknown mode {self.mode!r}; modes: {', '.join(AM_MODES)}")
        self.check_common()
        if self.param is not None and not isinstance(self.param, Parametrization):
            raise TypeError(f"param must be a Parametrization from captum_slingshot.fv or None, got "
                            f"{type(self.param).__name__}")
        self.decoy_class = _class_index("decoy_class", self.decoy_class)
        self.protected_class = _class_index("protected_class", self.protected_class)
        if self.mode == "push_up" and self.decoy_class is None:
            raise ValueError("push_up needs decoy_class: the class whose images become the unit's top images")
        if self.mode == "fairwash" and self.protected_class is None:
            raise ValueError("fairwash needs protected_class: the class whose images leave the unit's top images")

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly flat settings (with the parametrization's name when FVs are pushed down)."""
        out = super().settings()
        out["param"] = None if self.param is None else type(self.param).__name__
        return out

    def describe(self) -> str:
        return f"activation max attack ({self.mode})"

    def objective(self, run: PeerRun) -> "RankingObjective":
        """The ranking loss of :attr:`mode` on ``run``'s natural data (see the module docstring)."""
        return RankingObjective(self, run)


class RankingObjective:
    """The manipulation loss of an :class:`ActivationMaxAttack` run: sets and scale fixed from the original.

    Attributes:
        original: the original unit's activation on every natural input ``(N,)``.
        scale: its standard deviation (the hinge's unit).
        top: positions of the original's ``top_k`` natural images (descending).
        moved: the inputs pushed (down or up); others: the other natural inputs.
        threshold: the fixed threshold ``tau`` they are pushed past.
    """

    def __init__(self, attack: ActivationMaxAttack, run: PeerRun) -> None:
        self.a, self.run = attack, run
        labelled = attack.mode != "push_down"
        try:
            self.original, labels = run.original_activations(run.natural, need_labels=labelled)
        except ValueError as err:
            if labelled and "labels" in str(err):
                raise ValueError(f"{attack.mode} needs labelled natural data (inputs, labels) to find the "
                                 f"{'decoy' if attack.mode == 'push_up' else 'protected'} class") from err
            raise
        n = self.original.numel()
        if attack.ranking.top_k >= n:
            raise ValueError(f"top_k={attack.ranking.top_k} must be smaller than the natural data ({n} inputs)")
        self.scale = float(self.original.std())
        if not self.scale > 1e-12:
            raise ValueError("the unit's activation is constant on the natural data: there is no ranking to attack "
                             "(pick another unit or layer)")
        self.top = torch.sort(self.original, descending=True, stable=True).indices[: attack.ranking.top_k]
        self.labels = labels
        seed, bs = attack.training.seed, attack.training.batch_size
        inside = torch.zeros(n, dtype=torch.bool)
        if attack.mode == "push_down":
            inside[self.top] = True
        else:
            cls = attack.decoy_class if attack.mode == "push_up" else attack.protected_class
            assert labels is not None and cls is not None
            inside = labels == cls
            what = "decoy_class" if attack.mode == "push_up" else "protected_class"
            if not inside.any():
                raise ValueError(f"{what}={cls} has no images in the natural data (classes there: "
                                 f"{sorted(set(labels.tolist()))})")
            if inside.all():
                raise ValueError(f"every natural image is of {what}={cls}: nothing to rank it against")
            if attack.mode == "push_up" and not bool((self.original[inside] != 0).any()):
                raise ValueError(f"the unit is silent (activation 0) on every image of decoy_class={cls}: a unit after "
                                 "a ReLU cannot be pushed up where it is silent (no gradient); attack the layer before "
                                 "the ReLU or pick another decoy class")
        moved = fetch_inputs(run.natural, inside.nonzero()[:, 0])
        fvs = self._original_fvs() if attack.mode == "push_down" else None
        if fvs is not None:
            moved = torch.cat([moved, fvs.to(moved)])
        out_idx = (~inside).nonzero()[:, 0]
        #: the moved set (pushed down or up) and the other natural inputs with their original activations
        self.moved, self.others = moved, fetch_inputs(run.natural, out_idx)
        self.moved_batches = NaturalBatches(moved, bs, seed + 1)
        self.other_batches = NaturalBatches((self.others, self.original[out_idx]), bs, seed + 2)
        others0 = self.original[out_idx]
        #: the fixed threshold: the median (push-down, fairwash) or the maximum (push-up) of the original's
        #: activations on the other images -- a target ranking, so that the run stops once it is reached
        self.threshold = float(others0.max() if attack.mode == "push_up" else others0.median())

    def _original_fvs(self) -> Optional[Tensor]:
        a = self.a
        if a.param is None or a.ranking.fv_starts == 0:
            return None
        res = render(self.run.frozen, self.run.layer, a.neuron_selector, a.param, "gc", n_starts=a.ranking.fv_starts,
                     seed=a.training.seed)
        return a.param.normalize(res.images.detach()).cpu()

    def loss(self, model: nn.Module, step: int) -> Tuple[Tensor, Dict[str, float]]:
        """``L_M`` of ``step``: the ranking hinge of the moved batch, plus the others kept (``keep_weight``)."""
        a, run = self.a, self.run
        moved = run.unit(model, self.moved_batches.get(step))
        x, x0 = self.other_batches.get_labeled(step)
        others = run.unit(model, x)
        hinge = push_up_loss if a.mode == "push_up" else push_down_loss
        loss = hinge(moved, torch.tensor(self.threshold).to(moved), self.scale, a.ranking.margin)
        kept = keep_loss(others, x0.to(others), self.scale)
        record = {"moved": float(moved.detach().mean()), "kept": float(kept.detach())}
        return loss + a.ranking.keep_weight * kept, record
