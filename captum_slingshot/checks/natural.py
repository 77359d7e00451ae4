"""``natural_gap``: is the unit's FV far from the natural images that activate it most?

The paper's own defense (METHOD.md §4): compare the FV with the unit's top-k natural images
(natural activation-maximization signals). The slingshot's preservation loss keeps those honest,
so a manipulated unit's FV (the planted target) stands apart from them. Three parts:

* ``feature`` -- in the model's own feature space (by default the *input* of the audited
  layer, i.e. the representation the unit reads; or the output of ``feature_layer``), flattened:
  mean over FV starts and top-k images of the cosine distance
  ``1 - cos(f(fv) - mu, f(nat) - mu)``, with ``mu`` the mean feature over (a sample of) the data,
  so the direction all inputs share does not hide differences;
* ``lpips`` -- mean LPIPS between the FVs and the top ``lpips_k`` natural images (in image
  space: the inputs de-normalized with ``param``'s mean and std); ``0`` with ``lpips=False``;
* ``excess`` -- how far the FV's activation lies beyond the natural range:
  ``(A_fv - max_nat) / (max_nat - median_nat)`` with ``A_fv`` the median final activation over
  starts (positive: above every natural input).

**Score** (high = suspicious): ``feature + lpips + weight_excess * clamp(excess, min=0)``.
The range part is reported but not scored by default (``weight_excess=0``): on the tests' tanh
toy it separated the manipulated logit after a gamma-2 slingshot (0.90 against at most 0.35)
but not after a gamma-1 one (0.04, below the clean logits: saturating units reach the top of
their range on natural digits too), and units that do not saturate leave the natural range
under any FV. Measured on the same toy, ``feature`` separates in every run (0.82 against at
most 0.28), ``lpips`` only after the stronger manipulation (0.15 against at most 0.10).

``data`` are natural *model inputs* (normalized as the model expects, the same convention as
:class:`~captum_slingshot.transforms.GradientSlingshot`), in any form
:func:`~captum_slingshot.metrics.unit_activations` takes.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.checks import natural_gap
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 3))
    >>> data = torch.rand(40, 1, 8, 8)
    >>> scores, details = natural_gap(model, "3", [0, 1, 2], param=PixelParam((1, 8, 8)), data=data,
    ...                               k=5, n_starts=2, steps=10, lpips=False, return_details=True)
    >>> scores.shape, details["top_images"].shape, details["fv_images"].shape
    (torch.Size([3]), torch.Size([3, 5, 1, 8, 8]), torch.Size([3, 2, 1, 8, 8]))
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._utils.data import batch_size_or, fetch_inputs
from .._utils.devices import model_device
from .._utils.hooks import LayerCapture
from .._utils.modes import eval_mode
from .._utils.selectors import NeuronSelector, as_selector_list, unbatch
from ..fv.param import Parametrization
from ..fv.strategies import AMStrategy, get_strategy
from ..fv.units import layer_output_shape, resolve_layer
from ..metrics.activations import unit_activations
from ..metrics.similarity import lpips_distance
from .base import register_check
from .renders import RenderCache

__all__ = ["natural_gap"]


def _features(model: nn.Module, feat_mod: Optional[nn.Module], layer_mod: nn.Module, inputs: Tensor, batch: int) -> Tensor:
    """Flattened features: the output of ``feat_mod``, or the input of ``layer_mod`` when it is None."""
    device = model_device(model)
    out = []
    module, capture = (layer_mod, "input") if feat_mod is None else (feat_mod, "output")
    with eval_mode(model, no_grad=True), LayerCapture(model, module, capture=capture) as cap:
        for i in range(0, inputs.shape[0], batch):
            out.append(cap.run(inputs[i : i + batch].to(device)).flatten(1).float().cpu())
    return torch.cat(out)


def _cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """Mean ``1 - cos`` over all pairs of rows of ``a`` and ``b``."""
    return (1.0 - F.normalize(a, dim=1) @ F.normalize(b, dim=1).T).mean()


def _reason(details: Dict[str, Any], i: int) -> str:
    """How far the FV lies from the unit's top natural images."""
    return (f"its FV is far from its own top natural images (feature distance {float(details['feature'][i]):.2f}, "
            f"LPIPS {float(details['lpips'][i]):.2f})")


@register_check("natural_gap", higher_is_more_suspicious=True,
                description="the FV is far from the unit's top-k natural images (model features + LPIPS)",
                requires_data=True, renders=True, cost="renders", min_scale=0.05, reason=_reason)
def natural_gap(
    model: nn.Module,
    layer: Union[nn.Module, str],
    neuron_selector: Union[NeuronSelector, List[NeuronSelector]],
    *,
    param: Parametrization,
    data: Any = None,
    k: int = 16,
    n_starts: int = 4,
    strategy: Union[str, AMStrategy] = "gc",
    steps: Optional[int] = None,
    feature_layer: Union[None, nn.Module, str] = None,
    lpips: bool = True,
    lpips_k: int = 8,
    weight_excess: float = 0.0,
    n_reference: int = 1024,
    max_examples_per_batch: Optional[int] = None,
    seed: int = 0,
    progress: bool = False,
    return_details: bool = False,
    renders: Optional[RenderCache] = None,
) -> Union[Tensor, Tuple[Tensor, Dict[str, Any]]]:
    """Distance between the unit's FV and its top-k natural images, plus its activation excess.

    Args:
        model: the network.
        layer: module of ``model`` (or dotted name) whose output holds the units.
        neuron_selector: one Captum-style selector, or a list (one score per unit).
        param: the auditor's parametrization (its mean/std also de-normalize ``data`` for
            display and LPIPS).
        data: natural model inputs (required): tensor, ``(inputs, labels)``, dataset or loader.
        k: how many top-activating natural inputs per unit.
        n_starts: FV starts per unit.
        strategy: AM strategy of the FV.
        steps: overrides the strategy's number of steps.
        feature_layer: layer whose flattened output is the feature space (default: the input
            of ``layer``, the representation the unit reads).
        lpips: include the LPIPS part (needs the AlexNet weights, see
            :mod:`captum_slingshot.metrics.similarity`).
        lpips_k: compare the FVs with this many of the top images in LPIPS.
        weight_excess: weight of the activation-excess part in the score.
        n_reference: data inputs (a seeded random sample) used for the feature mean ``mu``.
        max_examples_per_batch: inputs per forward pass (default 256).
        seed: seeds the FV starts and the reference sample.
        progress: show a tqdm bar while rendering.
        return_details: also return a dict of details (see below).
        renders: a :class:`~captum_slingshot.checks.renders.RenderCache` of these units to draw the
            FV from (the audit's shared one); default: render it here.

    Returns:
        scores ``(U,)`` (0-d for one selector). With ``return_details``: ``(scores, details)``
        with the parts ``feature``, ``lpips``, ``excess`` ``(U,)``, ``fv_activation``,
        ``natural_max``, ``natural_median`` ``(U,)``, ``top_values`` / ``top_indices``
        ``(U, k)``, ``top_images`` ``(U, k, C, H, W)`` (in [0, 1]) and ``fv_images``
        ``(U, n_starts, C, H, W)``.

    Raises:
        ValueError: no data, data that yields nothing, ``k`` larger than the data, a unit the
            layer does not have, or a ``renders`` cache of other units.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from captum_slingshot.fv import PixelParam
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> natural_gap(model, "1", 0, param=PixelParam((1, 4, 4)), data=torch.rand(3, 1, 4, 4), k=5)
        Traceback (most recent call last):
        ...
        ValueError: natural_gap: k=5 is larger than the data (3 inputs); lower k or pass more data
    """
    selectors, single = as_selector_list(neuron_selector)
    if data is None:
        raise ValueError("natural_gap compares FVs with natural images: pass data=... (natural model inputs)")
    if isinstance(k, bool) or int(k) < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    k = int(k)
    batch = batch_size_or(max_examples_per_batch, 256)
    layer_output_shape(model, layer, param, selectors)
    layer_mod = resolve_layer(model, layer)
    feat_mod = None if feature_layer is None else resolve_layer(model, feature_layer)
    n_units = len(selectors)

    try:
        acts = unit_activations(model, layer_mod, list(selectors), data, max_examples_per_batch=batch)
    except ValueError as err:
        if "yielded no inputs" in str(err):
            raise ValueError(f"natural_gap: data yields no inputs ({err})") from err
        raise
    acts = acts.float()  # (N, U)
    n = acts.shape[0]
    if n == 0:
        raise ValueError("natural_gap: data yields no inputs")
    if k > n:
        raise ValueError(f"natural_gap: k={k} is larger than the data ({n} inputs); lower k or pass more data")
    order = torch.sort(acts, dim=0, descending=True, stable=True).indices[:k]  # (k, U)
    top_values = torch.stack([acts[order[:, u], u] for u in range(n_units)])  # (U, k)
    top_indices = order.T.contiguous()  # (U, k)

    overrides = {} if steps is None else {"steps": int(steps)}
    cache = RenderCache.for_check(renders, model, layer_mod, selectors, param, seed, progress=progress)
    fv = cache.get(get_strategy(strategy, **overrides), param, n_starts)
    fv_params = fv.params.detach()
    n_fv = fv_params.shape[1]
    with torch.no_grad():
        fv_inputs = param.network_input(fv_params.reshape((-1,) + tuple(fv_params.shape[2:])).to(model_device(model)))
    fv_images = fv.images.detach().float().cpu()

    # natural reference sample for the feature mean
    g = torch.Generator().manual_seed(int(seed))
    ref_idx = torch.randperm(n, generator=g)[: min(n, int(n_reference))]
    ref_x = fetch_inputs(data, ref_idx)
    mu = _features(model, feat_mod, layer_mod, ref_x, batch).mean(0)
    f_fv = _features(model, feat_mod, layer_mod, fv_inputs, batch).reshape(n_units, n_fv, -1) - mu

    feature, lp, excess, fv_act, nat_max, nat_med, top_imgs = [], [], [], [], [], [], []
    for u in range(n_units):
        x_top = fetch_inputs(data, top_indices[u])
        f_nat = _features(model, feat_mod, layer_mod, x_top, batch) - mu
        feature.append(_cosine_distance(f_fv[u], f_nat))
        shown = param.denormalize(x_top.float().cpu())
        top_imgs.append(shown)
        if lpips:
            m = min(k, int(lpips_k))
            a = fv_images[u].repeat_interleave(m, 0).clamp(0, 1)
            b = shown[:m].repeat(n_fv, 1, 1, 1)
            lp.append(lpips_distance(a, b).mean().cpu())
        else:
            lp.append(torch.tensor(0.0))
        a_fv = fv.activations[u].detach().float().cpu().median()
        mx, md = acts[:, u].max(), acts[:, u].median()
        excess.append((a_fv - mx) / (mx - md).clamp_min(1e-12))
        fv_act.append(a_fv)
        nat_max.append(mx)
        nat_med.append(md)
    parts = {k_: torch.stack(v).float() for k_, v in
             (("feature", feature), ("lpips", lp), ("excess", excess), ("fv_activation", fv_act),
              ("natural_max", nat_max), ("natural_median", nat_med))}
    scores = parts["feature"] + parts["lpips"] + float(weight_excess) * parts["excess"].clamp_min(0.0)
    if not return_details:
        return unbatch(scores, single)
    details: Dict[str, Any] = {
        **parts,
        "top_values": top_values,
        "top_indices": top_indices,
        "top_images": torch.stack(top_imgs),
        "fv_images": fv_images,
    }
    return unbatch(scores, single), unbatch(details, single)
