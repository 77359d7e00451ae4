"""The training run shared by the peer attacks: one :class:`PeerRun` per fit, holding all run state; its loop is
:meth:`~captum_slingshot.transforms.finetune.FinetuneRun.train`.

A peer attack fine-tunes every weight of a copy of the model with
``L = L_keep + manipulation_weight * L_M``: ``L_keep`` is the cross-entropy to the labels
(``preserve="ce"``), the KL divergence to the original's softmax (``"distill"``) or nothing
(``"none"``); ``L_M`` comes from the attack's :class:`Objective`, built once per run from the
frozen original (so a resumed run rebuilds it identically). Per step: a natural batch, both
losses, a NaN guard, Adam, the progress bar, checkpoints, the callback. Batch ``k`` of every
stream depends only on ``(seed, k)``, so a run resumed from a checkpoint continues exactly.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.transforms.peer import ActivationMaxAttack, Ranking, Training
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    >>> data = (torch.randn(40, 1, 4, 4), torch.randint(0, 3, (40,)))
    >>> attack = ActivationMaxAttack("2", 0, ranking=Ranking(top_k=5), training=Training(steps=2, batch_size=8,
    ...                                                                                  progress=False))
    >>> out = PeerRun(attack, model, data).train()
    >>> sorted(out["history"])
    ['kept', 'loss', 'lr', 'manipulation', 'moved', 'preservation']
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol, Tuple

import torch
from torch import Tensor, nn

from ..._utils.data import NaturalBatches, data_len, iter_batches
from ..._utils.hooks import LayerCapture
from ..._utils.layers import layer_name, resolve_layer
from ..._utils.selectors import check_selector, select_neuron
from ..finetune import Callback, FinetuneRun, RunTexts

__all__ = ["PeerRun", "Objective", "Callback", "PRESERVE"]

#: what keeps the predictions
PRESERVE = ("ce", "distill", "none")


class Objective(Protocol):
    """An attack's manipulation loss: ``loss(model, step) -> (L_M, records)`` for the model being trained."""

    def loss(self, model: nn.Module, step: int) -> Tuple[Tensor, Dict[str, float]]:  # pragma: no cover
        ...


class PeerRun(FinetuneRun):
    """One fit of a peer attack on one model.

    Args:
        transform: the settings; it has ``layer``, ``neuron_selector``, ``preserve``,
            ``manipulation_weight``, ``training`` and ``objective(run) -> Objective``.
        model: the trained network; never modified (it is the frozen original).
        natural_data: natural inputs, with labels where the attack or ``preserve="ce"`` needs them.
        callback: ``callback(step, record, model)`` after every step; ``False`` stops.
    """

    def __init__(self, transform: Any, model: nn.Module, natural_data: Any, *,
                 callback: Optional[Callback] = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        t = self.t = transform
        self.callback = callback
        if data_len(natural_data) == 0:
            raise ValueError(f"natural_data is empty: {t.name} needs natural inputs")
        self.natural = natural_data
        self.batches = NaturalBatches(natural_data, t.training.batch_size, t.training.seed)
        x0, y0 = self.batches.get_labeled(0)
        if t.preserve == "ce" and y0 is None:
            raise ValueError("preserve='ce' needs labels, but natural_data holds inputs only; pass (inputs, labels) or "
                             "use preserve='distill' (KL to the original model's outputs)")
        self.copy_models(model, t.training.device)
        self.layer = layer_name(model, resolve_layer(model, t.layer))
        self._check_model(x0, y0)
        self.objective: Objective = t.objective(self)
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=t.training.lr)
        self.history: Dict[str, List[float]] = {"loss": [], "preservation": [], "manipulation": [], "lr": []}
        self.start = 0

    # -- reading the unit ----------------------------------------------------------------------
    def unit(self, model: nn.Module, x: Tensor) -> Tensor:
        """The unit's activation ``(B,)`` on inputs ``x`` (with a graph when gradients are on)."""
        with LayerCapture(model, self.layer, stop=True) as cap:
            return select_neuron(cap.run(x.to(self.device)), self.t.neuron_selector)

    @torch.no_grad()
    def original_activations(self, data: Any, need_labels: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """The original unit's activation on every input of ``data``, in order, and the labels (or ``None``)."""
        acts, labels = [], []
        for x, y in iter_batches(data, max(256, self.t.training.batch_size), need_labels=need_labels,
                                 need_order=True):
            acts.append(self.unit(self.frozen, x).float().cpu())
            labels.append(y)
        a = torch.cat(acts)
        if not torch.isfinite(a).all():
            raise ValueError(f"the original unit's activation is not finite on some natural inputs (first at "
                             f"{int((~torch.isfinite(a)).nonzero()[0])})")
        y = None if any(v is None for v in labels) else torch.cat([torch.as_tensor(v) for v in labels]).long()
        return a, y

    # -- checks ------------------------------------------------------------------------------
    def _check_model(self, x: Tensor, y: Optional[Tensor]) -> None:
        with torch.no_grad(), LayerCapture(self.frozen, self.layer, stop=False) as cap:
            try:
                out = cap.run_full(x[:1].to(self.device))
            except RuntimeError as err:
                raise ValueError(f"the model cannot take the natural inputs (shape {tuple(x.shape[1:])}): "
                                 f"{err}") from err
            if cap.output is None:
                raise ValueError(f"the forward pass never reached layer {self.layer!r}; pick a layer that the "
                                 "model's forward() calls")
            check_selector(self.t.neuron_selector, cap.output.shape[1:], f"layer {self.layer!r}")
        if self.t.preserve == "none":
            return
        if not isinstance(out, Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"preserve={self.t.preserve!r} needs a classifier with logits (batch, classes); the model "
                             f"outputs {shape} (use preserve='none')")
        n = int(out.shape[1])
        if y is not None and (int(y.min()) < 0 or int(y.max()) >= n):
            raise ValueError(f"labels must be class indices in [0, {n - 1}] (the model has {n} outputs), got "
                             f"{int(y.min())}..{int(y.max())}")

    # -- what the shared loop needs ----------------------------------------------------------
    def texts(self) -> RunTexts:
        """The attack's name and description; its ``manipulation`` loss, weighted by ``manipulation_weight``."""
        return RunTexts(name=self.t.name, bar=self.t.describe(), key="manipulation", short="attack",
                        weight="manipulation_weight")

    def attack_loss(self, x: Tensor, step: int) -> Tuple[Tensor, Dict[str, float]]:
        """The objective's manipulation loss of the step (on its own batches) and its records."""
        return self.objective.loss(self.student, step)
