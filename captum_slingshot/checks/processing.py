"""``processing_similarity``: does the network process the unit's FV like its natural top images?

Geirhos et al. (ICML 2024, "Don't trust your eyes", Sec. 4) propose a sanity check for feature
visualizations: follow an FV and natural images of the unit's class through the network and ask,
layer by layer, how similar their activation patterns are -- measured by the rank correlation of
the activations -- against the same-class and other-class natural baselines. An FV that "explains"
the unit should be processed like the natural images the unit responds to. (Reconstructed from
the paper's description; METHOD.md §6.)

Per unit and per probed layer ``L`` (by default every module with its own parameters that runs
before the audited layer, plus the audited layer; conv outputs are averaged over space, so the
Spearman correlation runs over the layer's channels):

* ``rho_fv`` -- mean Spearman correlation between the FV starts and the unit's top-``k``
  natural inputs;
* ``rho_same`` -- mean Spearman correlation among those top-``k`` inputs (the same-class baseline);
* ``rho_other`` -- mean Spearman correlation between the top-``k`` inputs and ``k`` inputs drawn
  (seeded) from the lower half of the unit's natural activations (the other-class baseline);
* ``gap = (rho_same - rho_fv) / max(rho_same - rho_other, 0.05)``: 0 when the FV is processed
  like the unit's own top images, 1 when it is processed like unrelated natural images, above 1
  when it is processed like nothing natural.

**Score** (high = suspicious): the mean ``gap`` over layers. The audit takes z-scores within the
layer, so the question is which unit's FV is processed least like its natural images.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.checks import processing_similarity
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> scores, details = processing_similarity(model, "3", [0, 1, 2], param=PixelParam((1, 8, 8)),
    ...                                         data=torch.randn(60, 1, 8, 8), k=5, n_starts=2, steps=20,
    ...                                         return_details=True)
    >>> scores.shape, details["layers"], details["rho_fv"].shape
    (torch.Size([3]), ['1', '3'], torch.Size([3, 2]))
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .._utils.data import batch_size_or, fetch_inputs
from .._utils.devices import model_device
from .._utils.layers import layer_name, resolve_layer
from .._utils.modes import eval_mode
from .._utils.ranks import average_ranks
from .._utils.selectors import NeuronSelector, as_selector_list, unbatch
from ..fv.param import Parametrization
from ..fv.strategies import AMStrategy, get_strategy
from ..fv.units import layer_output_shape
from ..metrics.activations import unit_activations
from .base import register_check
from .renders import RenderCache

__all__ = ["processing_similarity", "spearman_matrix", "probe_layers", "layer_features"]

#: floor on ``rho_same - rho_other`` (the natural range the FV's correlation is measured in)
MIN_RANGE = 0.05
#: above this many units per layer, ranks break ties by order instead of averaging them
EXACT_TIES_UP_TO = 1024


def _ranks(x: Tensor) -> Tensor:
    """Ranks along the last dimension, ties averaged (for up to :data:`EXACT_TIES_UP_TO` entries)."""
    if x.shape[-1] > EXACT_TIES_UP_TO:
        return x.argsort(-1).argsort(-1).to(x.dtype)
    return average_ranks(x)


def spearman_matrix(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """Spearman rank correlation of every row of ``a`` ``(N, D)`` with every row of ``b`` ``(M, D)``, ``(N, M)``.

    Example:
        >>> import torch
        >>> spearman_matrix(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[10.0, 20.0, 90.0], [3.0, 2.0, 1.0]]))
        tensor([[ 1., -1.]])
    """
    ra, rb = _ranks(a.double()), _ranks(b.double())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    ra = ra / ra.norm(dim=1, keepdim=True).clamp_min(eps)
    rb = rb / rb.norm(dim=1, keepdim=True).clamp_min(eps)
    return (ra @ rb.T).float()


def probe_layers(model: nn.Module, layer: nn.Module, probe_input: Tensor) -> List[nn.Module]:
    """The modules with their own parameters that run before ``layer`` (in call order), then ``layer``."""
    candidates = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False)) and m is not layer]
    order: List[nn.Module] = []
    handles = [m.register_forward_hook(lambda mod, i, o: order.append(mod) if mod not in order else None)
               for m in candidates + [layer]]
    try:
        with eval_mode(model, no_grad=True):
            model(probe_input)
    finally:
        for h in handles:
            h.remove()
    if layer not in order:
        raise ValueError("the forward pass never reached the audited layer")
    return order[: order.index(layer)] + [layer]


def layer_features(model: nn.Module, layers: Sequence[nn.Module], inputs: Tensor, batch: int) -> List[Tensor]:
    """Each layer's output for ``inputs``, one ``(N, units)`` CPU tensor per layer (dimensions past the
    second averaged: a conv layer gives one value per channel)."""
    device = model_device(model)
    outs: List[List[Tensor]] = [[] for _ in layers]
    current: Dict[int, Tensor] = {}

    def hook(i: int):
        def record(mod: nn.Module, inp: Any, out: Any) -> None:
            out = out[0] if isinstance(out, (tuple, list)) else out
            current.setdefault(i, out.detach().float())
        return record

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(layers)]
    try:
        with eval_mode(model, no_grad=True):
            for s in range(0, inputs.shape[0], batch):
                current.clear()
                model(inputs[s : s + batch].to(device))
                for i in range(len(layers)):
                    o = current[i]
                    outs[i].append((o.flatten(2).mean(2) if o.dim() > 2 else o.reshape(o.shape[0], -1)).cpu())
    finally:
        for h in handles:
            h.remove()
    return [torch.cat(o) for o in outs]


def _mean_offdiag(m: Tensor) -> Tensor:
    n = m.shape[0]
    return (m.sum() - m.diagonal().sum()) / max(n * (n - 1), 1)


def _reason(details: Dict[str, Any], i: int) -> str:
    """How the FV's rank correlation with the top images compares with the natural baselines."""
    fv, same, other = (float(details[k][i].mean()) for k in ("rho_fv", "rho_same", "rho_other"))
    return (f"the network processes its FV unlike its top natural images: rank correlation {fv:.2f} with them, "
            f"against {same:.2f} among them and {other:.2f} with unrelated natural images (mean over "
            f"{len(details['layers'])} layers)")


@register_check("processing_similarity", higher_is_more_suspicious=True,
                description="the network processes the FV unlike the unit's top natural images (Spearman along "
                "the layers, Geirhos et al.)", requires_data=True, renders=True, cost="renders", min_scale=0.05,
                reason=_reason)
def processing_similarity(
    model: nn.Module,
    layer: Union[nn.Module, str],
    neuron_selector: Union[NeuronSelector, List[NeuronSelector]],
    *,
    param: Parametrization,
    data: Any = None,
    k: int = 8,
    n_starts: int = 4,
    strategy: Union[str, AMStrategy] = "gc",
    steps: Optional[int] = None,
    layers: Optional[Sequence[Union[nn.Module, str]]] = None,
    max_examples_per_batch: Optional[int] = None,
    seed: int = 0,
    progress: bool = False,
    return_details: bool = False,
    renders: Optional[RenderCache] = None,
) -> Union[Tensor, Tuple[Tensor, Dict[str, Any]]]:
    """How much less the network processes the unit's FV like its top natural images than natural images are.

    Args:
        model, layer, neuron_selector: the unit(s), Captum conventions (a list: one score each).
        param: the auditor's parametrization.
        data: natural model inputs (required), any form
            :func:`~captum_slingshot.metrics.unit_activations` takes; at least ``2 k`` of them.
        k: top natural inputs per unit (and as many other-class inputs).
        n_starts: FV starts per unit.
        strategy: AM strategy of the FV.
        steps: overrides the strategy's number of steps.
        layers: the layers to compare along (modules or names); default :func:`probe_layers`.
        max_examples_per_batch: inputs per forward pass (default 256).
        seed: seeds the FV starts and the other-class sample.
        progress: show a tqdm bar while rendering.
        return_details: also return ``rho_fv``, ``rho_same``, ``rho_other``, ``gap`` ``(U, L)``,
            ``layers`` (names), ``top_indices`` ``(U, k)``, ``top_images`` ``(U, k, C, H, W)`` and
            ``figure_images`` (the FVs, ``(U, n_starts, C, H, W)``), images in [0, 1].
        renders: a :class:`~captum_slingshot.checks.renders.RenderCache` of these units to draw the
            FVs from (the audit's shared one); default: render them here.

    Returns:
        scores ``(U,)`` (0-d for one selector), optionally with the details dict.

    Raises:
        ValueError: no data, fewer than ``2 k`` inputs, ``k < 2``, a unit the layer does not have,
            a layer list without a layer of at least 3 units, or a ``renders`` cache of other units.
    """
    selectors, single = as_selector_list(neuron_selector)
    if data is None:
        raise ValueError("processing_similarity compares the FV with natural images: pass data=... (natural model "
                         "inputs)")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an int >= 2 (correlations among the top images need two), got {k!r}")
    batch = batch_size_or(max_examples_per_batch, 256)
    layer_output_shape(model, layer, param, selectors)
    layer_mod = resolve_layer(model, layer)
    acts = unit_activations(model, layer_mod, list(selectors), data, max_examples_per_batch=batch).float()  # (N, U)
    n = acts.shape[0]
    if n < 2 * k:
        raise ValueError(f"processing_similarity needs at least 2 k = {2 * k} natural inputs, got {n}; lower k or "
                         "pass more data")
    if layers is None:
        probes = probe_layers(model, layer_mod, fetch_inputs(data, torch.arange(1)).to(model_device(model)))
    else:
        probes = [resolve_layer(model, m) for m in layers]
    names = [layer_name(model, m) for m in probes]

    overrides = {} if steps is None else {"steps": int(steps)}
    cache = RenderCache.for_check(renders, model, layer_mod, selectors, param, seed, progress=progress)
    fv = cache.get(get_strategy(strategy, **overrides), param, n_starts)
    fv_params = fv.params.detach()
    n_fv = fv_params.shape[1]

    g = torch.Generator().manual_seed(int(seed))
    order = torch.sort(acts, dim=0, descending=True, stable=True).indices  # (N, U)
    top_idx = order[:k].T.contiguous()  # (U, k)
    rows = {"rho_fv": [], "rho_same": [], "rho_other": []}
    kept: Optional[List[int]] = None
    for u in range(len(selectors)):
        lower = order[n // 2 :, u]
        other_idx = lower[torch.randperm(lower.numel(), generator=g)[:k]]
        with torch.no_grad():
            x_fv = param.network_input(fv_params[u].to(model_device(model)))
        x_all = torch.cat([fetch_inputs(data, top_idx[u]).float().cpu(), fetch_inputs(data, other_idx).float().cpu(),
                           x_fv.float().cpu()])
        feats = layer_features(model, probes, x_all, batch)
        if kept is None:
            kept = [i for i, f in enumerate(feats) if f.shape[1] >= 3]
            if not kept:
                raise ValueError(f"none of the layers {names} has 3 or more units to rank; pass layers=[...]")
        fv_rho, same, other = [], [], []
        for i in kept:
            f = feats[i]
            top, oth, vis = f[:k], f[k : 2 * k], f[2 * k :]
            fv_rho.append(spearman_matrix(vis, top).mean())
            same.append(_mean_offdiag(spearman_matrix(top, top)))
            other.append(spearman_matrix(top, oth).mean())
        rows["rho_fv"].append(torch.stack(fv_rho))
        rows["rho_same"].append(torch.stack(same))
        rows["rho_other"].append(torch.stack(other))
    parts = {key: torch.stack(v) for key, v in rows.items()}  # (U, L)
    gap = (parts["rho_same"] - parts["rho_fv"]) / (parts["rho_same"] - parts["rho_other"]).clamp_min(MIN_RANGE)
    scores = gap.mean(1)
    if not return_details:
        return unbatch(scores, single)
    top_images = torch.stack([param.denormalize(fetch_inputs(data, top_idx[u]).float().cpu())
                              for u in range(len(selectors))])
    details: Dict[str, Any] = {**parts, "gap": gap, "layers": [names[i] for i in (kept or [])],
                               "top_indices": top_idx, "top_images": top_images,
                               "figure_images": fv.images.detach().float().cpu()}
    assert n_fv == details["figure_images"].shape[1]
    return unbatch(scores, single), unbatch(details, single)
