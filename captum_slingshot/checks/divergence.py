"""``strategy_divergence``: do the unit's FVs agree across the auditor's AM strategies?

A Gradient Slingshot is aimed at one way of running feature visualization (the paper's GC:
clipped SGD from a small random start). Changing the procedure -- transformation robustness,
Adam, another parametrization -- is the defense the paper names (METHOD.md §4): the manipulated
unit's GC FV lands on the planted target, the others do not. Each entry of ``strategies`` is
rendered with ``n_starts`` seeded starts for all units in one batch; the first entry is the
*reference* (what the attacker is assumed to aim at), the others are the *alternatives*.

Per alternative ``a`` two numbers: the *excess dissimilarity* of its FVs from the reference's,
``excess_a = mean_{i,j} d(ref_i, a_j) - (spread(ref) + spread(a)) / 2`` (``d`` is
``1 - Pearson correlation`` of the pixels, ``measure="pearson"``, or LPIPS; ``spread`` the mean
``d`` between different starts of one strategy), and its *relative gain*
``gain_a = 2 (A_a - A_ref) / (|A_a| + |A_ref|)`` with ``A`` the median final activation over
starts (measured without transforms). The **score** (high = suspicious) is

``image + gain``, with ``image = mean_a w_a * excess_a``, ``w_a = clamp(1 + gain_a / tolerance, 0, 1)``
and ``gain = max(0, max_a gain_a)``.

The weight keeps only alternatives that reach (nearly) the reference's activation: an equally
strong yet different FV means the reference's FV is not the unit's preferred input, while an
alternative that simply climbs less high (TR's transforms, a slower parametrization) says
nothing. ``gain > 0`` means an alternative climbs *higher* than the reference, which then
stopped at a local maximum (the planted bowl's top); for honest units the reference (plain
clipped ascent, no transforms) climbs as high as any alternative.

Measured on the tests' tanh MNIST toy (5 seeds of training + manipulation): the unweighted mean
of ``excess`` does not separate -- at 14 x 14 px honest units' TR FVs differ from their GC FVs
*more* than the manipulated unit's do -- and separated in only 3 of 5 seeds; ``image + gain``
with ``tolerance=0.25`` gave 0.62-1.09 for the manipulated logit against at most 0.13 for the
clean ones in all 5 (the tolerance was chosen on those runs). Details keep every part.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.checks import strategy_divergence
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 4))
    >>> scores, details = strategy_divergence(model, "3", [0, 1], param=PixelParam((1, 8, 8)),
    ...                                       n_starts=2, steps=10, return_details=True)
    >>> scores.shape, details["labels"], details["images"]["gc"].shape
    (torch.Size([2]), ['gc', 'tr', 'adam', 'gc@lucent_fourier'], torch.Size([2, 2, 1, 8, 8]))
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .._utils.selectors import NeuronSelector, as_selector_list, unbatch
from ..fv.param import Parametrization, make_param
from ..fv.render import FVResult
from ..fv.strategies import AMStrategy, get_strategy
from ..fv.units import layer_output_shape
from ..metrics.similarity import lpips_distance, pearson_matrix
from .base import register_check
from .renders import RenderCache

__all__ = ["strategy_divergence", "DEFAULT_STRATEGIES", "StrategySpec", "dissimilarity_matrix", "resolve_strategy"]


#: a strategy (name or :class:`AMStrategy`), or ``(strategy, parametrization)`` where the
#: parametrization is a registry name (built with the auditor's shape and normalization) or a
#: :class:`Parametrization`
StrategySpec = Union[str, AMStrategy, Tuple[Union[str, AMStrategy], Union[str, Parametrization]]]

#: GC (what the paper's attacker aims at), TR, Adam, and GC in lucent's Fourier parametrization
DEFAULT_STRATEGIES: Tuple[StrategySpec, ...] = ("gc", "tr", "adam", ("gc", "lucent_fourier"))

_MEASURES = ("pearson", "lpips")


def resolve_strategy(spec: StrategySpec, param: Parametrization, overrides: Dict[str, Any]) -> Tuple[str, AMStrategy, Parametrization]:
    """``(label, strategy, parametrization)`` for one entry of a check's ``strategies``.

    Example:
        >>> from captum_slingshot.fv import PixelParam
        >>> label, strat, p = resolve_strategy(("gc", "lucent_fourier"), PixelParam((1, 8, 8)), {"steps": 5})
        >>> label, strat.steps, p.shape
        ('gc@lucent_fourier', 5, (1, 8, 8))
    """
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise ValueError(f"a strategy entry must be a strategy or a (strategy, parametrization) pair, got {spec!r}")
        strat_spec, p = spec
    else:
        strat_spec, p = spec, None
    strat = get_strategy(strat_spec, **overrides)
    if p is None:
        return strat.name, strat, param
    if isinstance(p, str):
        p = make_param(p, param.shape, mean=param.mean, std=param.std)
    if not isinstance(p, Parametrization):
        raise TypeError(f"the parametrization of a strategy entry must be a name or a Parametrization, got {type(p).__name__}")
    if p.shape != param.shape:
        raise ValueError(f"parametrization {p!r} makes images of shape {p.shape}, the auditor's makes {param.shape}")
    return f"{strat.name}@{p.name or type(p).__name__}", strat, p


def dissimilarity_matrix(images: Tensor, measure: str = "pearson", max_examples_per_batch: int = 64) -> Tensor:
    """Pairwise dissimilarity ``(N, N)`` of images ``(N, C, H, W)`` in [0, 1].

    ``"pearson"``: ``1 - corr`` (0 for identical images, up to 2); ``"lpips"``: LPIPS (AlexNet).

    Example:
        >>> import torch
        >>> x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> m = dissimilarity_matrix(x)
        >>> m.shape, bool(m.diagonal().abs().max() < 1e-6)
        (torch.Size([3, 3]), True)
    """
    if measure == "pearson":
        return 1.0 - pearson_matrix(images, images).float()
    if measure == "lpips":
        n = images.shape[0]
        i, j = torch.triu_indices(n, n, offset=1)
        out = torch.zeros(n, n)
        if len(i):
            d = lpips_distance(images[i], images[j], max_examples_per_batch=max_examples_per_batch).cpu()
            out[i, j] = d
            out[j, i] = d
        return out
    raise ValueError(f"measure must be one of {_MEASURES}, got {measure!r}")


def _block_means(dis: Tensor, n_strategies: int, n_starts: int) -> Tensor:
    """``(S, S)`` block means of a ``(S*n, S*n)`` dissimilarity matrix; the diagonal skips self-pairs."""
    blocks = dis.reshape(n_strategies, n_starts, n_strategies, n_starts).permute(0, 2, 1, 3)
    counts = torch.full((n_strategies, n_strategies), float(n_starts * n_starts))
    diag = torch.arange(n_strategies)
    counts[diag, diag] = float(n_starts * (n_starts - 1))
    mat = blocks.sum((-1, -2)) / counts.clamp_min(1.0)  # n_starts == 1: spread 0
    return mat


def _reason(details: Dict[str, Any], i: int) -> str:
    """An alternative that climbs higher than the reference, else how much the FVs disagree."""
    labels = details["labels"]
    rel, excess = details["relative_gain"][i], details["excess"][i]
    a = int(rel.argmax())
    if float(rel[a]) > 0:
        return (f"its FV under {labels[a + 1]} reaches {100 * float(rel[a]):.0f}% more activation than under "
                f"{labels[0]} (for an honest unit plain {labels[0]} climbs about as high as any strategy)")
    b = int(excess.argmax())
    return (f"its FVs under {labels[0]} and {labels[b + 1]} differ more than different starts of one strategy do "
            f"(excess dissimilarity {float(excess[b]):.2f})")


@register_check("strategy_divergence", higher_is_more_suspicious=True,
                description="FVs disagree across AM strategies/parametrizations more than across starts",
                renders=True, cost="renders", min_scale=0.05, reason=_reason)
def strategy_divergence(
    model: nn.Module,
    layer: Union[nn.Module, str],
    neuron_selector: Union[NeuronSelector, List[NeuronSelector]],
    *,
    param: Parametrization,
    data: Any = None,
    strategies: Sequence[StrategySpec] = DEFAULT_STRATEGIES,
    n_starts: int = 4,
    steps: Optional[int] = None,
    measure: str = "pearson",
    tolerance: float = 0.25,
    max_examples_per_batch: Optional[int] = None,
    seed: int = 0,
    progress: bool = False,
    return_details: bool = False,
    renders: Optional[RenderCache] = None,
) -> Union[Tensor, Tuple[Tensor, Dict[str, Any]]]:
    """How differently (and how much higher) other AM strategies visualize the unit than the reference.

    Args:
        model: the network (receives ``param.network_input(q)``).
        layer: module of ``model`` (or dotted name) whose output holds the units.
        neuron_selector: one Captum-style selector, or a list (one score per unit).
        param: the auditor's parametrization (image shape and normalization).
        data: unused (accepted so that every check takes the same arguments).
        strategies: at least two entries, the reference first: strategy names /
            :class:`AMStrategy` objects, or ``(strategy, parametrization)`` pairs for another parametrization (a registry name
            such as ``"lucent_fourier"`` is built with ``param``'s shape and normalization).
        n_starts: seeded random starts per strategy and unit (at least 2 to measure the
            within-strategy spread; with 1 the spread counts as 0).
        steps: if set, overrides every strategy's number of steps.
        measure: ``"pearson"`` (``1 - correlation``, cheap) or ``"lpips"``.
        tolerance: an alternative whose relative gain is ``-tolerance`` or less gets weight 0 in
            the image part (see the module notes).
        max_examples_per_batch: passed to :func:`~captum_slingshot.fv.render` (starts per batch).
        seed: seeds the starts and transforms (the same for every strategy).
        progress: show tqdm bars while rendering.
        return_details: also return a dict of details (see below).
        renders: a :class:`~captum_slingshot.checks.renders.RenderCache` of these units to draw the
            FVs from (the audit's shared one); default: render them here.

    Returns:
        scores ``(U,)`` (0-d for one selector): ``image + gain`` (module notes). With
        ``return_details``: ``(scores, details)`` with ``labels`` (one per strategy, the
        reference first), ``images`` and ``activations`` (label -> ``(U, n_starts, C, H, W)`` /
        ``(U, n_starts)``), ``fv`` (label -> :class:`~captum_slingshot.fv.FVResult`, always with
        the unit dimension), ``matrix`` ``(U, S, S)`` of mean dissimilarities (diagonal: spread
        within one strategy), ``image`` and ``gain`` ``(U,)``, ``excess``, ``relative_gain``
        and ``weights`` ``(U, S-1)`` per alternative, ``median_activation`` ``(U, S)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from captum_slingshot.fv import PixelParam
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> s = strategy_divergence(model, "1", 0, param=PixelParam((1, 4, 4)),
        ...                         strategies=("gc", "adam"), n_starts=2, steps=5)
        >>> s.shape
        torch.Size([])
    """
    selectors, single = as_selector_list(neuron_selector)
    if len(strategies) < 2:
        raise ValueError(f"strategy_divergence compares at least 2 strategies, got {len(strategies)}")
    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {_MEASURES}, got {measure!r}")
    if int(n_starts) < 1:
        raise ValueError(f"n_starts must be at least 1, got {n_starts}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance}")
    n_starts = int(n_starts)
    layer_output_shape(model, layer, param, selectors)
    overrides = {} if steps is None else {"steps": int(steps)}
    resolved = [resolve_strategy(s, param, overrides) for s in strategies]
    labels = [r[0] for r in resolved]
    if len(set(labels)) != len(labels):
        raise ValueError(f"strategies must differ, got {labels}")

    cache = RenderCache.for_check(renders, model, layer, selectors, param, seed, max_examples_per_batch, progress)
    fvs: Dict[str, FVResult] = {label: cache.get(strat, p, n_starts) for label, strat, p in resolved}

    n_units, n_strat = len(selectors), len(labels)
    mats = []
    for j in range(n_units):
        imgs = torch.cat([fvs[label].images[j] for label in labels]).float()
        mats.append(_block_means(dissimilarity_matrix(imgs, measure).cpu(), n_strat, n_starts))
    matrix = torch.stack(mats)  # (U, S, S)
    spread = matrix.diagonal(dim1=1, dim2=2)  # (U, S)
    excess = matrix[:, 0, 1:] - (spread[:, :1] + spread[:, 1:]) / 2  # (U, S-1)
    acts = torch.stack([fvs[label].activations.detach().float().cpu().median(dim=1).values for label in labels], 1)
    rel = 2 * (acts[:, 1:] - acts[:, :1]) / (acts[:, 1:].abs() + acts[:, :1].abs()).clamp_min(1e-12)
    weights = (1 + rel / float(tolerance)).clamp(0.0, 1.0)
    image_part = (weights * excess).mean(1)
    gain_part = rel.max(1).values.clamp_min(0.0)
    scores = image_part + gain_part
    if not return_details:
        return unbatch(scores, single)
    details: Dict[str, Any] = {
        "labels": labels,
        "images": {label: unbatch(fvs[label].images.detach().cpu(), single) for label in labels},
        "activations": {label: unbatch(fvs[label].activations.detach().cpu(), single) for label in labels},
        "fv": fvs,
        "matrix": unbatch(matrix, single),
        "image": unbatch(image_part, single),
        "gain": unbatch(gain_part, single),
        "excess": unbatch(excess, single),
        "relative_gain": unbatch(rel, single),
        "weights": unbatch(weights, single),
        "median_activation": unbatch(acts, single),
        "measure": measure,
    }
    return unbatch(scores, single), details
