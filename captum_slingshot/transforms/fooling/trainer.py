"""The attribution-fooling training run: one :class:`FoolingRun` per fit, holding all run state; its loop is
:meth:`~captum_slingshot.transforms.finetune.FinetuneRun.train`.

Per step: a natural batch ``(x, y)``; the preservation loss (cross-entropy to ``y``, or KL to the
original's softmax; with ``hold_weight``, plus the held maps of the inputs not fooled); the maps of the trained-against interpreter with a graph to the weights and
the original model's maps of the same inputs and classes (no graph); the fooling loss;
``L = L_keep + fooling_weight * L_F``; a NaN guard; Adam; the progress bar (both terms);
checkpoints; the callback. Batch ``k`` depends only on ``(seed, k)``, so a resumed run continues
exactly.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.transforms.fooling import AttributionFooling, Training
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    >>> data = (torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,)))
    >>> attack = AttributionFooling(mode="topk", training=Training(steps=2, batch_size=4, progress=False))
    >>> out = FoolingRun(attack, model, data).train()
    >>> len(out["history"]["fooling"])
    2
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..._utils.data import NaturalBatches, data_len, tensor_tuple
from ..._utils.layers import layer_name
from ...attributions.interpreters import INTERPRETERS, Interpreter, make_interpreter
from ...attributions.maps import center_of_mass, minmax_maps, region_mask, top_fraction_mask
from ..finetune import Callback, FinetuneRun, RunTexts
from .config import make_optimizer
from .losses import active_loss, center_mass_loss, location_loss, mass_loss, topk_loss

__all__ = ["FoolingRun", "Callback", "read_mask"]


def read_mask(path: str) -> Tensor:
    """A location-fooling mask from a file: a ``.pt`` tensor, or an image read as grayscale in ``[0, 1]``."""
    if path.endswith((".pt", ".pth")):
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, Tensor):
            raise ValueError(f"mask file {path!r} holds a {type(obj).__name__}; expected a tensor (H, W)")
        return obj.float()
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            gray = img.convert("L")
            data = torch.tensor(list(gray.getdata()), dtype=torch.float32).view(gray.height, gray.width)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"mask file {path!r} is neither a .pt tensor nor an image: {err}") from err
    return data / 255.0


def _first_tensor(data: Any, what: str) -> Tensor:
    if isinstance(data, Tensor):
        return data
    tensors = tensor_tuple(data)
    if tensors is not None:
        return tensors[0]
    raise TypeError(f"{what} must be a tensor of inputs or an (inputs, ...) tuple / TensorDataset, got "
                    f"{type(data).__name__}")


class FoolingRun(FinetuneRun):
    """One fit of an :class:`~.transform.AttributionFooling` on one model.

    Args:
        transform: the settings.
        model: the trained classifier; never modified (it gives the original maps).
        natural_data: natural inputs with labels (``(x, y)``, a ``TensorDataset`` or a dataset).
        fooling_data: the images the maps are fooled on: active fooling's two-class images (default: composites
            of the natural data); for a passive mode, default: the natural batch of each step.
        callback: ``callback(step, record, model)`` after every step; ``False`` stops.
    """

    def __init__(self, transform: Any, model: nn.Module, natural_data: Any, fooling_data: Any = None, *,
                 callback: Optional[Callback] = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        t = self.t = transform
        self.callback = callback
        if data_len(natural_data) == 0:
            raise ValueError("natural_data is empty: the fooling run needs natural inputs (with labels for "
                             "preserve='ce')")
        self.batches = NaturalBatches(natural_data, t.training.batch_size, t.training.seed)
        x0, y0 = self.batches.get_labeled(0)
        if t.preserve == "ce" and y0 is None:
            raise ValueError("preserve='ce' needs labels, but natural_data holds inputs only; pass (inputs, labels) or "
                             "use preserve='distill' (KL to the original model's outputs)")
        self.copy_models(model, t.training.device)
        self.interps: List[Interpreter] = []
        self.originals: List[Interpreter] = []
        layer_methods = [n for n in t.interpreters if INTERPRETERS.get(n).layer_method]
        if t.interpreter_layer is not None and not layer_methods:
            raise ValueError(f"interpreter {t.interpreter!r} attributes to the input and takes no interpreter_layer")
        for name in t.interpreters:
            layer = None
            if name in layer_methods:
                layer = layer_name(model, make_interpreter(name, model, t.interpreter_layer).layer)
            self.interps.append(make_interpreter(name, self.student, layer))
            self.originals.append(make_interpreter(name, self.frozen, layer))
        self.classes = self._check_model(x0, y0)
        size = tuple(int(s) for s in x0.shape[-2:])
        self.mask: Optional[Tensor] = None
        if t.mode == "location":
            region = read_mask(t.region) if isinstance(t.region, str) and os.path.isfile(t.region) else t.region
            self.mask = region_mask(region, size).to(self.device)
        self.fooling: Optional[NaturalBatches] = None
        if t.mode == "active" or fooling_data is not None or t.classes is not None:
            fooling = self._fooling_set(natural_data, fooling_data)
            self.fooling = NaturalBatches(fooling, t.training.batch_size, t.training.seed + 1)
        #: the classes whose natural inputs the hold term leaves alone (a passive mode's fooled classes)
        self.unheld = () if t.mode == "active" or t.classes is None else tuple(t.classes)
        if t.hold_weight > 0 and t.mode != "active" and self.fooling is None:
            raise ValueError("hold_weight holds the maps of the inputs the attack does not fool, but this passive run "
                             "fools every natural input: give classes= (the classes to fool) or fooling_data=")
        self.last_hold: Optional[float] = None
        self.optimizer = make_optimizer(t.training, self.student.parameters())
        self.history: Dict[str, List[float]] = {"loss": [], "preservation": [], "fooling": [], "lr": []}
        self.start = 0

    # -- checks ------------------------------------------------------------------------------
    def _check_model(self, x: Tensor, y: Optional[Tensor]) -> int:
        """The number of classes; clear errors for inputs the model cannot take, labels or classes out of range."""
        with torch.no_grad():
            try:
                out = self.frozen(x[:1].to(self.device))
            except RuntimeError as err:
                raise ValueError(f"the model cannot take the natural inputs (shape {tuple(x.shape[1:])}): "
                                 f"{err}") from err
        if out.dim() != 2:
            raise ValueError(f"attribution fooling needs a classifier with logits (batch, classes); the model outputs "
                             f"{tuple(out.shape)}")
        n = int(out.shape[1])
        if y is not None and (int(y.min()) < 0 or int(y.max()) >= n):
            raise ValueError(f"labels must be class indices in [0, {n - 1}] (the model has {n} outputs), got "
                             f"{int(y.min())}..{int(y.max())}")
        if self.t.classes is not None and max(self.t.classes) >= n:
            raise ValueError(f"classes {tuple(self.t.classes)} are out of range: the model has {n} classes "
                             f"(0..{n - 1})")
        return n

    def _fooling_set(self, natural_data: Any, fooling_data: Any) -> Tensor:
        from ...data import two_class_composites

        t = self.t
        if fooling_data is None and t.mode != "active":  # a passive mode on given classes: their natural inputs
            tensors = tensor_tuple(natural_data)
            if tensors is None or len(tensors) < 2:
                raise ValueError(f"fooling classes {tuple(t.classes)} needs natural data as (inputs, labels) tensors "
                                 "to find their inputs; or pass fooling_data (the images to fool the maps on)")
            keep = torch.isin(tensors[1].long(), torch.tensor(t.classes))
            if not bool(keep.any()):
                raise ValueError(f"the natural data has no input of classes {tuple(t.classes)} to fool the maps of")
            return tensors[0][keep]
        if fooling_data is None:
            tensors = tensor_tuple(natural_data)
            if tensors is None or len(tensors) < 2:
                raise ValueError("active fooling needs images that contain both classes: pass fooling_data, or natural "
                                 "data as (inputs, labels) tensors to make composites from")
            x, y = tensors[0], tensors[1]
            try:
                fooling, _ = two_class_composites(x, y, t.classes, t.fooling_size, seed=t.training.seed,
                                                  background=float(x.min()))
            except ValueError as err:
                raise ValueError(f"cannot make the active fooling set from the natural data: {err}") from err
            return fooling
        x = _first_tensor(fooling_data, "fooling_data")
        if x.dim() == 0 or x.shape[0] == 0:
            raise ValueError("the fooling set is empty: active fooling needs images that contain both classes"
                             if t.mode == "active" else "the fooling set is empty: give the images to fool the maps on, "
                             "or leave fooling_data out to fool them on the natural data")
        if tuple(x.shape[1:]) != tuple(self.batches.get(0).shape[1:]):
            raise ValueError(f"fooling_data inputs {tuple(x.shape[1:])} must have the natural inputs' shape "
                             f"{tuple(self.batches.get(0).shape[1:])}")
        return x

    # -- one step ------------------------------------------------------------------------------
    @staticmethod
    def original_maps(original: Interpreter, x: Tensor, target: Tensor) -> Tensor:
        """The original model's normalised maps (no graph)."""
        return minmax_maps(original.heatmap(x, target).detach()).detach()

    def fooling_loss(self, x: Tensor, step: int) -> Tensor:
        """The fooling loss of the step, averaged over the interpreters trained against."""
        t = self.t
        if t.mode == "active":
            x = self.fooling.get(step).to(self.device)
            target = None
        else:
            if self.fooling is not None:  # a passive mode fooled on given images only
                x = self.fooling.get(step).to(self.device)
            with torch.no_grad():
                target = self.frozen(x).argmax(1)
        losses = [self._fooling_loss(interp, original, x, target) for interp, original in zip(self.interps,
                                                                                             self.originals)]
        return torch.stack(losses).mean()

    def _fooling_loss(self, interp: Interpreter, original: Interpreter, x: Tensor, target: Optional[Tensor]) -> Tensor:
        t = self.t
        if t.mode == "active":
            c1, c2 = (torch.full((x.shape[0],), c, device=self.device, dtype=torch.long) for c in t.classes)
            first = minmax_maps(interp.heatmap(x, c1))
            second = minmax_maps(interp.heatmap(x, c2))
            return active_loss(first, second, self.original_maps(original, x, c1), self.original_maps(original, x, c2))
        raw = interp.heatmap(x, target)
        if t.mode == "location":
            return location_loss(minmax_maps(raw), self.mask)
        before = original.heatmap(x, target).detach()  # the original's maps (it needs gradients, keeps none)
        mass = before.clamp(min=0).flatten(1).sum(1)
        if t.mode == "topk":
            return topk_loss(raw, top_fraction_mask(before, t.top_fraction)) + mass_loss(raw, mass)
        return center_mass_loss(raw, center_of_mass(before)) + mass_loss(raw, mass)

    def hold_loss(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """The maps of the natural inputs the run does not fool (labels ``y`` outside a passive run's classes;
        without labels, the original's predictions), held at the original's: the mean squared difference of the
        min-max normalised maps of each input's originally predicted class, averaged over the interpreters trained
        against; zero when the batch has no such input."""
        with torch.no_grad():
            target = self.frozen(x).argmax(1)
        label = target if y is None else y
        held = ~torch.isin(label, torch.tensor(self.unheld, device=label.device, dtype=label.dtype))
        if not bool(held.any()):
            return torch.zeros((), device=x.device)
        x, target = x[held], target[held]
        losses = [(minmax_maps(interp.heatmap(x, target)) - self.original_maps(original, x, target)).pow(2).mean()
                  for interp, original in zip(self.interps, self.originals)]
        return torch.stack(losses).mean()

    # -- what the shared loop needs ----------------------------------------------------------
    def preservation_loss(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        """``L_keep``: the predictions kept (cross-entropy or KL), plus ``hold_weight`` x :meth:`hold_loss`."""
        keep = super().preservation_loss(x, y)
        if self.t.hold_weight <= 0:
            return keep
        hold = self.hold_loss(x, y)
        self.last_hold = float(hold.detach())
        return keep + self.t.hold_weight * hold

    def texts(self) -> RunTexts:
        """How the run names itself: ``attribution fooling``; its ``fooling`` loss, weighted by ``fooling_weight``."""
        return RunTexts(name="attribution fooling", bar=f"attribution fooling ({self.t.mode})", key="fooling",
                        short="fool", weight="fooling_weight")

    def attack_loss(self, x: Tensor, step: int) -> Tuple[Tensor, Dict[str, float]]:
        """The fooling loss of the step; with a hold term, its value as the extra record ``hold``."""
        return self.fooling_loss(x, step), ({} if self.last_hold is None else {"hold": self.last_hold})
