"""The papers' evaluations of a manipulation, in one call each.

:func:`evaluate_manipulation` (the slingshot, METHOD.md §3) renders FV of the unit under the
auditor's protocol and compares it with the target (LPIPS, SSIM, MSE), and measures what the
manipulation kept: accuracy, the unit's AUROC for its class and the overlap of its top-k natural
activating inputs with the original model's.

:func:`evaluate_fooling` (attribution fooling, METHOD.md §5) computes the per-input fooling
scores and the Fooling Success Rate of each interpreter (the one trained against and the others:
transfer), the rank correlation of the fooled maps to the original's, and the accuracy drop.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.evaluation import evaluate_manipulation
    >>> from captum_slingshot.fv import PixelParam
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(144, 3)).eval()
    >>> x, y = torch.randn(40, 1, 12, 12), torch.randint(0, 3, (40,))
    >>> r = evaluate_manipulation(model, model, "1", 0, torch.rand(1, 12, 12), PixelParam((1, 12, 12)),
    ...                           (x, y), target_class=0, n_starts=4, steps=5, k=10, lpips=False)
    >>> r["jaccard_top_k"], r["accuracy_drop"], r["auroc_drop"]
    (1.0, 0.0, 0.0)
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .attributions.interpreters import make_interpreter
from .attributions.maps import region_mask
from .fv.param import Parametrization
from .fv.render import FVResult, render
from .metrics import accuracy, auroc, jaccard, unit_activations
from .metrics.fooling import (
    TOP_FRACTION, active_swap_score, center_mass_distance, fooling_success_rate, location_score, rank_correlation,
    topk_overlap,
)
from .metrics.similarity import lpips_distance, mse, ssim

__all__ = ["evaluate_manipulation", "fv_similarity", "fooling_scores", "evaluate_fooling"]


def fv_similarity(images: Tensor, target: Tensor, lpips: bool = True) -> Dict[str, float]:
    """Mean and std over FVs of SSIM, MSE (and LPIPS) to ``target`` (all in [0, 1]).

    Example:
        >>> import torch
        >>> from captum_slingshot.evaluation import fv_similarity
        >>> t = torch.rand(1, 16, 16)
        >>> fv_similarity(t.expand(3, 1, 16, 16), t, lpips=False)["mse"]
        0.0
    """
    ref = target[None].expand_as(images)
    out: Dict[str, float] = {}
    names = {"ssim": ssim, "mse": mse}
    if lpips:
        names["lpips"] = lpips_distance
    for name, fn in names.items():
        v = fn(images, ref).double()
        out[name] = float(v.mean())
        out[f"{name}_std"] = float(v.std()) if v.numel() > 1 else 0.0
    return out


def evaluate_manipulation(
    model: nn.Module,
    original: nn.Module,
    layer: Union[nn.Module, str],
    neuron_selector: Any,
    target: Tensor,
    param: Parametrization,
    heldout: Tuple[Tensor, Tensor],
    target_class: Optional[int] = None,
    strategy: str = "gc",
    n_starts: int = 100,
    seed: int = 0,
    k: int = 100,
    lpips: bool = True,
    max_examples_per_batch: int = 1000,
    fv: Optional[FVResult] = None,
    **strategy_overrides: Any,
) -> Dict[str, Any]:
    """Target similarity of the unit's FV and preservation of the model, as in the paper.

    Args:
        model: the manipulated model; original: the model before manipulation.
        layer, neuron_selector: the unit (Captum conventions).
        target: the target image ``(C, H, W)`` in [0, 1].
        param: the auditor's parametrization.
        heldout: ``(inputs, labels)``, inputs normalized as the model expects.
        target_class: class for the unit's AUROC (default: ``neuron_selector`` if it is an int).
        strategy, n_starts, seed, **strategy_overrides: the auditor's FV protocol
            (the paper's MNIST protocol: ``"gc"``, 100 starts, SGD lr 0.1, 200 steps).
        k: size of the top-k natural activating sets compared by Jaccard.
        lpips: also compute LPIPS (AlexNet) to the target.
        fv: a ready :class:`FVResult` of ``model`` to score instead of rendering.

    Returns:
        dict with ``ssim``, ``mse``, ``lpips`` (means, and ``*_std``), ``activation`` (mean FV
        activation), ``accuracy``/``accuracy_original``/``accuracy_drop`` (points, 0-1 scale),
        ``auroc``/``auroc_original``/``auroc_drop``, ``jaccard_top_k``, ``k``.
    """
    x, y = heldout
    if target_class is None:
        if not isinstance(neuron_selector, int):
            raise ValueError("give target_class: the unit's selector is not a class index")
        target_class = neuron_selector
    if fv is None:
        fv = render(model, layer, neuron_selector, param, strategy, n_starts=n_starts, seed=seed,
                    **strategy_overrides)
    out: Dict[str, Any] = fv_similarity(fv.images, target.to(fv.images.device), lpips=lpips)
    out["activation"] = float(fv.activations.mean())
    acc, acc0 = (accuracy(m, (x, y), max_examples_per_batch) for m in (model, original))
    acts, acts0 = (unit_activations(m, layer, neuron_selector, x, max_examples_per_batch) for m in (model, original))
    au, au0 = auroc(acts, y, target_class), auroc(acts0, y, target_class)
    if not 1 <= k <= len(acts):
        raise ValueError(f"k={k} must lie in [1, {len(acts)}] (the number of held-out inputs)")
    # top-k from the activations already computed (stable sort: ties go to the lower index,
    # as in top_k_activating), not a second pass over the data
    top, top0 = (torch.sort(a, descending=True, stable=True).indices[:k] for a in (acts, acts0))
    out.update(
        accuracy=acc, accuracy_original=acc0, accuracy_drop=acc0 - acc,
        auroc=au, auroc_original=au0, auroc_drop=au0 - au,
        jaccard_top_k=jaccard(top, top0), k=k,
        natural_activation_max=float(acts.max()),
    )
    return out


def _maps(model: nn.Module, interpreter: str, layer: Optional[str], x: Tensor, target: Tensor, batch: int) -> Tensor:
    """``(N, H, W)`` maps of ``interpreter`` on ``model`` for ``x`` and per-input ``target`` (no graph kept)."""
    from .attributions.interpreters import INTERPRETERS

    interp = make_interpreter(interpreter, model, layer if INTERPRETERS.get(interpreter).layer_method else None)
    device = next(model.parameters()).device
    out = []
    for s in range(0, x.shape[0], batch):
        out.append(interp.heatmap(x[s:s + batch].to(device), target[s:s + batch].to(device)).detach().cpu())
        model.zero_grad(set_to_none=True)
    return torch.cat(out)


def fooling_scores(model: nn.Module, original: nn.Module, inputs: Tensor, mode: str, interpreter: str = "grad_cam",
                   *, layer: Optional[str] = None, region: Any = "frame", classes: Optional[Sequence[int]] = None,
                   top_fraction: float = TOP_FRACTION, max_examples_per_batch: int = 128) -> Dict[str, Tensor]:
    """Per-input fooling scores of ``model`` against ``original`` (one value per input, Captum-style).

    Passive modes explain each input's class as the *original* model predicts it; ``active``
    explains both ``classes`` on ``inputs`` (images that contain both).

    Returns:
        ``{"score": (N,), "rank_correlation": (N,), "empty": (N,)}``: the mode's score (see
        :mod:`captum_slingshot.metrics.fooling`), the Spearman correlation of the fooled map to
        the original's (for ``active``: of the first class's map to its own original map), and
        whether the fooled map holds no positive relevance at all (an explanation deleted, not moved).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
        >>> s = fooling_scores(model, model, torch.randn(5, 1, 8, 8), "topk", "saliency")
        >>> s["score"].tolist(), s["rank_correlation"].round().tolist()   # the same model: nothing moved
        ([1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    b = int(max_examples_per_batch)
    with torch.no_grad():
        device = next(original.parameters()).device
        predicted = torch.cat([original(inputs[s:s + b].to(device)).argmax(1).cpu() for s in range(0, len(inputs), b)])
    if mode == "active":
        if classes is None or len(classes) != 2:
            raise ValueError("active fooling scores need the two classes: classes=(c1, c2)")
        c1, c2 = (torch.full((len(inputs),), int(c), dtype=torch.long) for c in classes)
        m1, m2 = (_maps(model, interpreter, layer, inputs, c, b) for c in (c1, c2))
        o1, o2 = (_maps(original, interpreter, layer, inputs, c, b) for c in (c1, c2))
        return {"score": active_swap_score(m1, m2, o1, o2), "rank_correlation": rank_correlation(m1, o1),
                "empty": _empty(m1)}
    maps = _maps(model, interpreter, layer, inputs, predicted, b)
    if mode == "location":
        score = location_score(maps, region_mask(region, tuple(maps.shape[-2:])))
        return {"score": score, "rank_correlation": rank_correlation(maps, _maps(original, interpreter, layer, inputs,
                                                                                 predicted, b)), "empty": _empty(maps)}
    orig = _maps(original, interpreter, layer, inputs, predicted, b)
    if mode == "topk":
        score = topk_overlap(maps, orig, top_fraction)
    elif mode == "center_mass":
        score = center_mass_distance(maps, orig)
    else:
        raise ValueError(f"unknown fooling mode {mode!r}; modes: location, topk, center_mass, active")
    return {"score": score, "rank_correlation": rank_correlation(maps, orig), "empty": _empty(maps)}


def _empty(maps: Tensor) -> Tensor:
    return maps.flatten(1).max(1).values <= 0


def evaluate_fooling(model: nn.Module, original: nn.Module, heldout: Tuple[Tensor, Tensor], mode: str,
                     interpreters: Sequence[str] = ("grad_cam",), *, layer: Optional[str] = None, region: Any = "frame",
                     classes: Optional[Sequence[int]] = None, fooling_inputs: Optional[Tensor] = None,
                     top_fraction: float = TOP_FRACTION, max_examples_per_batch: int = 128) -> Dict[str, Any]:
    """Fooling Success Rate per interpreter, mean scores and rank correlations, and the accuracy drop.

    Args:
        model: the fooled model; original: the model before.
        heldout: ``(inputs, labels)`` never trained on; the accuracy is measured on them, and the
            passive modes' maps too.
        mode: the fooling mode; interpreters: the first is the one trained against, the rest
            measure transfer.
        layer: the layer of layer methods (Grad-CAM; default: the last convolution).
        region: location fooling's region (``frame``, ``corner`` or a mask ``(H, W)``).
        classes, fooling_inputs: active fooling's two classes and held-out images containing both.

    Returns:
        dict with ``fsr`` / ``score`` / ``rank_correlation`` / ``empty`` (``{interpreter: value}``;
        means for the scores, the share of maps without positive relevance), ``accuracy``,
        ``accuracy_original``, ``accuracy_drop`` (points, 0-100),
        ``region_area`` (location), ``n``.
    """
    x, y = heldout
    inputs = x
    if mode == "active":
        if fooling_inputs is None or len(fooling_inputs) == 0:
            raise ValueError("active fooling is measured on held-out images that contain both classes: pass "
                             "fooling_inputs")
        inputs = fooling_inputs
    area = float(region_mask(region, tuple(x.shape[-2:])).mean()) if mode == "location" else None
    out: Dict[str, Any] = {"fsr": {}, "score": {}, "rank_correlation": {}, "empty": {}, "n": int(len(inputs)),
                           "region_area": area}
    for name in interpreters:
        s = fooling_scores(model, original, inputs, mode, name, layer=layer, region=region, classes=classes,
                           top_fraction=top_fraction, max_examples_per_batch=max_examples_per_batch)
        out["fsr"][name] = fooling_success_rate(s["score"], mode, area)
        out["score"][name] = float(s["score"].mean())
        out["rank_correlation"][name] = float(s["rank_correlation"].mean())
        out["empty"][name] = float(s["empty"].float().mean())
    acc, acc0 = (accuracy(m, (x, y), max_examples_per_batch) for m in (model, original))
    out.update(accuracy=acc, accuracy_original=acc0, accuracy_drop=100.0 * (acc0 - acc))
    return out
