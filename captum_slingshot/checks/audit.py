"""Audit every unit of a layer with the registered checks and flag the outliers, label-free.

Each check runs once for all units (batched). What a check needs it declares when it is
registered (:class:`~captum_slingshot.checks.base.CheckSpec`): natural data, the shared FV renders
(one :class:`~captum_slingshot.checks.renders.RenderCache` per audit, so a render two checks need
is computed once), its score direction and the floor on its spread. Its scores become robust z-scores across the
layer's units, ``(s - median) / max(1.4826 MAD, floor)``, signed by the check's direction so
that high always means suspicious; the floor (the check's ``min_scale``, or ``mad_floor``) keeps
near-identical scores from exploding. The per-check z are pooled (Stouffer's ``sum / sqrt(K)`` by
default, or mean, or max) and a unit is flagged when the pooled z exceeds ``threshold``. No labels, no clean reference model: a
manipulated unit is one that stands out from its own layer. With few units (say under 8) the
median and MAD are rough; audit whole layers.

In a process group (``torchrun``; :mod:`captum_slingshot.distributed`) the units are split
across the processes in consecutive parts, each process runs every check on its part, and the
scores, details and renders are gathered before the z-scores are taken over the whole layer:
every process returns the same report as one process would (each unit's FV starts are seeded
per start, not per batch), so rank 0 can write it.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam
    >>> from captum_slingshot.checks import audit_layer
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 6))
    >>> report = audit_layer(model, "3", param=PixelParam((1, 8, 8)), data=torch.rand(50, 1, 8, 8),
    ...                      checks=("natural_gap", "slingshot_field"), k=5, steps=20, lpips=False,
    ...                      progress=False)
    >>> len(report.table), report.flagged
    (6, [])
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._utils.distributed import all_gather_objects, concat_units, current_shard
from .._utils.layers import layer_name, resolve_layer
from .._utils.selectors import NeuronSelector
from ..fv.param import Parametrization
from ..fv.units import layer_output_shape, layer_units
from .base import CheckSpec, get_check
from .renders import RenderCache
from .report import AuditReport, robust_z

__all__ = ["audit_layer", "DEFAULT_CHECKS", "COMBINE_RULES", "route_settings"]

#: the checks :func:`audit_layer` runs by default, chosen on the detection benchmark
#: (``benchmarks/detection.py``, real MNIST: 14 slingshotted logits among 156 clean ones, z within
#: each layer): ``activation_excess`` (max over GC/TR/Adam) AUROC 0.977, TPR 0.93 at 5 % FPR;
#: ``strategy_divergence`` 0.755 / 0.36; pooled (Stouffer) 0.987 / 1.00, 13 of 14 flagged at 3.5
#: and no unit of a clean model. ``natural_gap`` (0.59) and ``slingshot_field`` (0.42) did not
#: separate there and only diluted the pool (mean of all four on the first 12: 7 of 12 flagged
#: against 11 of 12); they stay available by name.
DEFAULT_CHECKS: Tuple[str, ...] = ("activation_excess", "strategy_divergence")

#: how the per-check z ``(K, U)`` become one combined z per unit. ``"stouffer"``: ``sum / sqrt(K)``,
#: the standard way to pool z-scores (for K independent standard-normal z it is standard normal
#: again, so ``threshold`` keeps its meaning whatever K is); ``"mean"``: ``sum / K`` (stricter
#: the more checks run); ``"max"``: the largest (one check alone can flag).
COMBINE_RULES: Dict[str, Callable[[Tensor], Tensor]] = {
    "stouffer": lambda z: z.sum(0) / math.sqrt(z.shape[0]),
    "mean": lambda z: z.mean(0),
    "max": lambda z: z.max(0).values,
}


def route_settings(checks: Sequence[str], settings: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Give each check the settings its signature takes.

    ``name={...}`` (a check's name with a dict) goes to that check only; any other keyword goes
    to every check that takes it, and must be taken by at least one.

    Example:
        >>> import captum_slingshot.checks
        >>> route_settings(["natural_gap", "slingshot_field"], {"k": 4, "n_samples": 8})
        {'natural_gap': {'k': 4}, 'slingshot_field': {'n_samples': 8}}
    """
    specs = {c: get_check(c) for c in checks}
    routed: Dict[str, Dict[str, Any]] = {c: {} for c in checks}
    per_check = {}
    for key, value in settings.items():
        if key in routed and isinstance(value, dict):
            per_check[key] = value
            continue
        takers = [c for c in checks if key in specs[c].parameters()]
        if not takers:
            raise TypeError(f"audit_layer got an unexpected keyword argument {key!r}: none of the checks "
                            f"{list(checks)} takes it")
        for c in takers:
            routed[c][key] = value
    for c, kwargs in per_check.items():
        bad = set(kwargs) - specs[c].parameters()
        if bad:
            raise TypeError(f"check {c!r} does not take {sorted(bad)}")
        routed[c].update(kwargs)
    return routed


def _count(data: Any) -> Optional[int]:
    from .._utils.data import data_len

    return data_len(data)


def audit_layer(
    model: nn.Module,
    layer: Union[nn.Module, str],
    *,
    param: Parametrization,
    data: Any = None,
    units: Optional[Sequence[NeuronSelector]] = None,
    checks: Sequence[str] = DEFAULT_CHECKS,
    threshold: float = 3.5,
    combine: str = "stouffer",
    mad_floor: Union[None, float, Dict[str, float]] = None,
    max_examples_per_batch: Optional[int] = None,
    seed: int = 0,
    progress: bool = True,
    **check_kwargs: Any,
) -> AuditReport:
    """Run defense checks on every unit of ``layer`` and flag units that stand out.

    Args:
        model: the network (receives ``param.network_input(q)``; ``data`` are model inputs).
        layer: module of ``model`` or its dotted name.
        param: the auditor's parametrization.
        data: natural model inputs (needed by ``natural_gap``).
        units: selectors to audit; default every channel of the layer's output (found with one
            probe forward: the features of a linear layer, the channels of a conv layer).
        checks: names of registered checks (see :func:`available_checks`).
        threshold: flag units whose combined robust z exceeds this.
        combine: how the per-check z are pooled, a key of :data:`COMBINE_RULES`: ``"stouffer"``
            (``sum / sqrt(K)``), ``"mean"`` or ``"max"``.
        mad_floor: floor on ``1.4826 MAD`` per check (a float for all, or ``{check: floor}``);
            default each check's registered ``min_scale``.
        max_examples_per_batch: passed to every check.
        seed: passed to every check.
        progress: show a tqdm bar over the checks.
        **check_kwargs: settings for the checks, routed by their signatures (``n_starts=4`` goes
            to every check that takes ``n_starts``); ``strategy_divergence={"n_starts": 2}``
            reaches one check only.

    Returns:
        :class:`AuditReport` (``.table``, ``.flagged``, ``.summary()``, ``.to_json()``,
        ``.to_csv()``, ``.save_figures()``).

    Raises:
        ValueError: unknown check or layer, a unit the layer does not have, a check that needs
            ``data`` without it, data that yields nothing, ``k`` larger than the data.
        TypeError: a keyword argument no check takes.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from captum_slingshot.fv import PixelParam
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> audit_layer(model, "1", param=PixelParam((1, 4, 4)), units=[5], checks=("slingshot_field",))
        Traceback (most recent call last):
        ...
        ValueError: neuron_selector 5 is out of range for layer '1': index 5 on dimension 0 of size 3 (output shape per example (3,))
    """
    if combine not in COMBINE_RULES:
        raise ValueError(f"combine must be one of {sorted(COMBINE_RULES)}, got {combine!r}")
    checks = list(checks)
    if not checks:
        raise ValueError("no checks to run")
    if len(set(checks)) != len(checks):
        raise ValueError(f"checks must not repeat, got {checks}")
    specs: Dict[str, CheckSpec] = {c: get_check(c) for c in checks}
    for c, spec in specs.items():
        if spec.needs_data and data is None:
            raise ValueError(f"check {c!r} needs natural data: pass data=... or leave {c!r} out of checks")
    layer_mod = resolve_layer(model, layer)
    lname = layer_name(model, layer_mod)
    if units is None:
        unit_list: List[Any] = layer_units(model, layer_mod, param)
    else:
        unit_list = list(units)
        if not unit_list:
            raise ValueError("units is empty")
        layer_output_shape(model, layer_mod, param, unit_list)
    routed = route_settings(checks, check_kwargs)
    shard = current_shard()
    mine = unit_list[shard.split(len(unit_list))]
    scores, details, rendered = _run_checks(model, layer_mod, mine, checks, specs, routed, param, data,
                                            max_examples_per_batch, seed, progress and shard.is_main,
                                            f"audit {lname}" + (f" (units {len(mine)} of {len(unit_list)}, process "
                                                                f"{shard.rank})" if shard.world_size > 1 else ""))
    if shard.world_size > 1:
        parts = [p for p in all_gather_objects((len(mine), scores, details, rendered)) if p[0] > 0]
        sizes = [p[0] for p in parts]
        scores, details, rendered = (concat_units([p[i] for p in parts], sizes) for i in (1, 2, 3))

    z: Dict[str, Tensor] = {}
    for c in checks:
        if isinstance(mad_floor, dict):
            floor = float(mad_floor.get(c, specs[c].min_scale))
        elif mad_floor is not None:
            floor = float(mad_floor)
        else:
            floor = specs[c].min_scale
        z[c] = robust_z(scores[c], specs[c].higher_is_more_suspicious, floor)
    combined = COMBINE_RULES[combine](torch.stack([z[c] for c in checks]))
    return AuditReport(layer=lname, units=unit_list, checks=checks,
                       directions={c: specs[c].higher_is_more_suspicious for c in checks},
                       scores=scores, z=z, combined=combined, threshold=float(threshold),
                       combine=combine, details=details, renders=rendered,
                       info={"param": repr(param), "seed": int(seed),
                             "n_natural": None if data is None else _count(data),
                             "check_settings": {c: {k: repr(v) for k, v in routed[c].items()} for c in checks}})


def _run_checks(model: nn.Module, layer: nn.Module, units: List[Any], checks: Sequence[str], specs: Dict[str, CheckSpec],
                routed: Dict[str, Dict[str, Any]], param: Parametrization, data: Any,
                max_examples_per_batch: Optional[int], seed: int, progress: bool,
                desc: str) -> Tuple[Dict[str, Tensor], Dict[str, Dict[str, Any]], Dict[str, Any]]:
    """Every check on ``units`` with one shared :class:`RenderCache`: ``(scores, details, renders)``."""
    scores: Dict[str, Tensor] = {}
    details: Dict[str, Dict[str, Any]] = {}
    if not units:
        return scores, details, {}
    renders = RenderCache(model, layer, units, param, seed=seed, max_examples_per_batch=max_examples_per_batch)
    bar = tqdm(checks, disable=not progress, desc=desc, unit="check")
    try:
        for c in bar:
            bar.set_postfix_str(f"{c} ({len(units)} units)")
            spec = specs[c]
            extra = {"renders": renders} if spec.uses_renders else {}
            s, det = spec.function(model, layer, list(units), param=param, data=data,
                                   max_examples_per_batch=max_examples_per_batch, seed=seed, return_details=True,
                                   **extra, **routed[c])
            scores[c] = torch.as_tensor(s).detach().float().cpu().reshape(-1)
            if scores[c].shape[0] != len(units):
                raise RuntimeError(f"check {c!r} returned {scores[c].shape[0]} scores for {len(units)} units")
            details[c] = det
    finally:
        bar.close()
    return scores, details, renders.results()
