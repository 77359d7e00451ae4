"""The paper's evaluation of a manipulation, in one call (METHOD.md §3).

:func:`evaluate_manipulation` renders FV of the unit under the auditor's
protocol and compares it with the target (LPIPS, SSIM, MSE), and measures what
the manipulation kept: accuracy, the unit's AUROC for its class and the overlap
of its top-k natural activating inputs with the original model's.

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

from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .fv.param import Parametrization
from .fv.render import FVResult, render
from .metrics import accuracy, auroc, jaccard, unit_activations
from .metrics.similarity import lpips_distance, mse, ssim

__all__ = ["evaluate_manipulation", "fv_similarity"]


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
