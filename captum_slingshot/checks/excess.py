"""``activation_excess``: does the unit's FV reach far beyond anything natural data does?

METHOD.md §4: a slingshot makes the unit's activation at the planted target far larger than
on any natural input (the bowl's top, or the field followed for the auditor's whole budget),
while the preservation loss keeps natural activations as they were. Score:
``(A_fv - max_nat) / (max_nat - median_nat)``, with ``A_fv`` the median final activation over FV
starts and ``max_nat`` / ``median_nat`` over the data: 0 at the natural maximum, 1 one
"natural range" above it, negative below it.

Measured on real MNIST (paper's CNN, logit 0 slung to the cross with the direction loss and
trajectory sampling, 1000 steps; GC, 4 starts, 2000 held-out images): 1.49 for the
manipulated logit against -0.68 to -0.14 for the other nine, and -0.55 to -0.05 for the ten
logits of the clean model, where ``strategy_divergence``, ``natural_gap`` and
``slingshot_field`` did not single the manipulated logit out.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.checks import activation_excess
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    >>> scores = activation_excess(model, "1", [0, 1, 2], param=PixelParam((1, 8, 8)),
    ...                            data=torch.randn(50, 1, 8, 8) * 0.1, n_starts=2, steps=20)
    >>> scores.shape, bool((scores > 0).all())  # a linear unit's FV leaves the natural range
    (torch.Size([3]), True)
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .._utils.data import batch_size_or, fetch_inputs
from .._utils.selectors import NeuronSelector, as_selector_list, unbatch
from ..fv.param import Parametrization
from ..fv.strategies import AMStrategy
from ..fv.units import layer_output_shape, resolve_layer
from ..metrics.activations import unit_activations
from .base import register_check
from .divergence import StrategySpec, resolve_strategy
from .renders import RenderCache

__all__ = ["activation_excess", "DEFAULT_EXCESS_STRATEGIES"]


#: GC (the paper's attacker's aim), TR and Adam: a slingshot aimed at any one of them shows in its FV
DEFAULT_EXCESS_STRATEGIES: Tuple[StrategySpec, ...] = ("gc", "tr", "adam")


def _reason(details: Dict[str, Any], i: int) -> str:
    """Where the unit's strongest FV lands against its natural activations."""
    labels = details["labels"]
    s = int(details["per_strategy"][i].argmax())
    fv, mx = float(details["fv_activation"][i, s]), float(details["natural_max"][i])
    ranges = float(details["per_strategy"][i, s])
    times = f" ({fv / mx:.1f}x that maximum)" if mx > 0 and fv > 0 else ""
    where = "above" if ranges >= 0 else "below"
    return (f"its FV under {labels[s]} reaches activation {fv:.3g}, {abs(ranges):.1f} natural ranges {where} the "
            f"highest activation seen on natural data ({mx:.3g}){times}")


@register_check("activation_excess", higher_is_more_suspicious=True,
                description="the FV's activation lies far above the unit's natural range (any AM strategy)",
                requires_data=True, renders=True, cost="renders", min_scale=0.05, reason=_reason)
def activation_excess(
    model: nn.Module,
    layer: Union[nn.Module, str],
    neuron_selector: Union[NeuronSelector, List[NeuronSelector]],
    *,
    param: Parametrization,
    data: Any = None,
    strategies: Union[StrategySpec, Sequence[StrategySpec]] = DEFAULT_EXCESS_STRATEGIES,
    n_starts: int = 4,
    steps: Optional[int] = None,
    max_examples_per_batch: Optional[int] = None,
    seed: int = 0,
    progress: bool = False,
    n_top_images: int = 8,
    return_details: bool = False,
    renders: Optional[RenderCache] = None,
) -> Union[Tensor, Tuple[Tensor, Dict[str, Any]]]:
    """How far the unit's FV activation lies beyond its natural range, one score per unit.

    Each strategy's FV is scored ``(A_fv - max_nat) / (max_nat - median_nat)`` and the unit's
    score is the **largest over strategies**: an attack aimed at one AM procedure (GC, or TR with
    the transform-robust option, or Adam) makes *that* procedure's FV climb far above anything
    natural, while the others may stay in range.

    Args:
        model, layer, neuron_selector: the unit(s), Captum conventions (a list: one score each).
        param: the auditor's parametrization.
        data: natural model inputs (required), any form
            :func:`~captum_slingshot.metrics.unit_activations` takes.
        strategies: AM strategies to score (names, :class:`AMStrategy`, or ``(strategy,
            parametrization)`` pairs as in :func:`strategy_divergence`, in a list); one name is fine.
        n_starts, steps: starts per FV and an override of every strategy's steps.
        max_examples_per_batch: inputs per forward pass (default 256).
        seed: seeds the FV starts.
        progress: show a tqdm bar while rendering.
        n_top_images: how many of each unit's most activating natural inputs the details show.
        return_details: also return ``top_images`` ``(U, n_top_images, C, H, W)`` (the most
            activating natural inputs as images in [0, 1]), ``top_indices``, ``fv_activation`` ``(U, S)`` (median final activation per
            strategy, measured without transforms), ``per_strategy`` ``(U, S)`` scores, ``labels``,
            ``natural_max``, ``natural_median`` and ``strongest`` (the label that gave each score).
        renders: a :class:`~captum_slingshot.checks.renders.RenderCache` of these units to draw the
            FVs from (the audit's shared one); default: render them here.

    Returns:
        scores ``(U,)`` (0-d for one selector), optionally with the details dict.

    Raises:
        ValueError: no data, data that yields nothing, a unit the layer does not have, a ``renders``
            cache of other units, no strategies.
    """
    selectors, single = as_selector_list(neuron_selector)
    if data is None:
        raise ValueError("activation_excess compares with natural activations: pass data=... (natural model inputs)")
    specs = [strategies] if isinstance(strategies, (str, AMStrategy)) else list(strategies)
    if not specs:
        raise ValueError("strategies is empty: give at least one AM strategy, e.g. strategies=('gc',)")
    layer_output_shape(model, layer, param, selectors)
    layer_mod = resolve_layer(model, layer)
    acts = unit_activations(model, layer_mod, list(selectors), data,
                            max_examples_per_batch=batch_size_or(max_examples_per_batch, 256)).float()
    overrides = {} if steps is None else {"steps": int(steps)}
    resolved = [resolve_strategy(s, param, overrides) for s in specs]
    labels = [r[0] for r in resolved]
    if len(set(labels)) != len(labels):
        raise ValueError(f"strategies must differ, got {labels}")
    cache = RenderCache.for_check(renders, model, layer_mod, selectors, param, seed, progress=progress)
    a_fv = [cache.get(strat, p, n_starts).activations.detach().float().cpu().median(dim=1).values
            for _, strat, p in resolved]
    a = torch.stack(a_fv, 1)  # (U, S)
    mx, md = acts.max(dim=0).values, acts.median(dim=0).values
    per = (a - mx[:, None]) / (mx - md).clamp_min(1e-12)[:, None]
    scores, best = per.max(dim=1)
    if not return_details:
        return unbatch(scores, single)
    top = acts.topk(min(int(n_top_images), acts.shape[0]), dim=0)  # (k, U)
    top_images = torch.stack([param.denormalize(fetch_inputs(data, top.indices[:, u]).float().cpu())
                              for u in range(len(selectors))]) if top.indices.numel() else None
    details = {"fv_activation": a, "per_strategy": per, "labels": labels, "natural_max": mx,
               "natural_median": md, "strongest": [labels[int(b)] for b in best],
               "top_indices": top.indices.T, "top_images": top_images}
    return unbatch(scores, single), unbatch(details, single)

