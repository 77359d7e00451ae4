"""A model-level audit of attributions: every attribution check on every interpreter, against a
model you trust, written as the layer audit's :class:`~captum_slingshot.checks.report.AuditReport`.

Rows are interpreters (``grad_cam``, ``lrp_epsilon``, ...); for each check the row's score is the
mean over the inputs of the check's per-input score (a pairwise check: also the mean over the other
interpreters). The score only means something next to the same score of a model that was not
manipulated, so the audit takes a ``reference`` model of the same task (the vendor's published
checkpoint, one you trained, the model before a third party fine-tuned it) and reports
``z = (score - reference score) / min_scale``, signed so that high is suspicious, with each check's
declared ``min_scale`` (0.1 of rank correlation for the disagreement, 0.05 for the others). A row
is flagged when its combined z (the maximum over checks) passes ``threshold``.

Given ``original=``, the model before a fine-tune, the audit also runs the checks that compare with it
(``explanation_drift``, ``class_swap``) on both the model and the reference; their reference should
then be a fine-tune of ``original`` you made yourself that only keeps its accuracy, so that z measures
drift beyond a benign fine-tune's (README, "Checks against the model before the fine-tune").

Example:
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0) and None
    >>> net = lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    >>> model, trusted = net(), net()
    >>> report = audit_attributions(model, torch.rand(6, 1, 8, 8), reference=trusted,
    ...                             interpreters=("grad_cam", "saliency"))
    >>> report.units, report.checks
    (['grad_cam', 'saliency'], ['fixed_pattern', 'input_dependence', 'interpreter_disagreement', 'mosaic_focus'])
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ...attributions.interpreters import INTERPRETERS, make_interpreter
from ..report import AuditReport
from .base import ATTRIBUTION_CHECKS, Target

__all__ = ["audit_attributions", "DEFAULT_INTERPRETERS", "attribution_scores", "default_checks"]

#: the interpreters audited by default: one layer method, one relevance method, the plain gradient
DEFAULT_INTERPRETERS = ("grad_cam", "lrp_epsilon", "saliency")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and (a.data_ptr() == b.data_ptr() or torch.equal(a, b))
    return a is b or (not isinstance(a, Tensor) and not isinstance(b, Tensor) and a == b)


def _computed_once(explanation_func: Any, inputs: Tensor, target: Target) -> Any:
    """``explanation_func``, with its attributions of ``inputs`` (the same tensor, or a full-length view of it)
    for ``target`` computed on the first call and returned again after: every check asks for them, some twice."""
    kept: List[Tensor] = []
    asked = target

    def func(x: Tensor, target: Target = None) -> Tensor:
        if not (x.shape == inputs.shape and x.data_ptr() == inputs.data_ptr() and _same(target, asked)):
            return explanation_func(x, target=target)
        if not kept:
            kept.append(explanation_func(x, target=target).detach())
        return kept[0]

    return func


def _memoized(explanation_func: Any, seen: List[Any]) -> Any:
    """``explanation_func``, its maps kept in ``seen`` and returned again for the same inputs (equal values, not
    just the same tensor) and target: the audit asks the original model for the same maps once for the model
    and once for the reference (``class_swap`` rebuilds its mosaics each time)."""

    def func(x: Tensor, target: Target = None) -> Tensor:
        for xs, t, maps in seen:
            if xs.shape == x.shape and _same(t, target) and torch.equal(xs, x):
                return maps
        maps = explanation_func(x, target=target)
        maps = (maps[0] if isinstance(maps, tuple) else maps).detach()
        seen.append((x.detach(), target, maps))
        return maps

    return func


def default_checks(inputs: Tensor, target: Target, with_original: bool = False) -> List[str]:
    """The registered checks the audit runs by default on ``inputs`` explained for ``target``: all of them but
    those that need more classes among the targets than there are (:attr:`AttributionCheckSpec.min_classes`)
    and, unless ``with_original``, those that need the model before the fine-tune
    (:attr:`AttributionCheckSpec.needs_original`).

    Example:
        >>> import torch
        >>> "mosaic_focus" in default_checks(torch.rand(4, 1, 8, 8), torch.tensor([0, 0, 0, 0]))
        False
    """
    t = torch.as_tensor(target).reshape(-1) if target is not None else torch.zeros(1)
    n_classes = int(t.unique().numel())
    return [c for c in ATTRIBUTION_CHECKS if ATTRIBUTION_CHECKS.get(c).min_classes <= n_classes
            and (with_original or not ATTRIBUTION_CHECKS.get(c).needs_original)]


def _skip_reason(check: str, n_classes: int) -> str:
    spec = ATTRIBUTION_CHECKS.get(check)
    if spec.min_classes > n_classes:
        return f"needs targets of at least {spec.min_classes} classes"
    return "needs original=, the model before the fine-tune"


def attribution_scores(model: nn.Module, inputs: Tensor, target: Target = None,
                       interpreters: Sequence[str] = DEFAULT_INTERPRETERS, checks: Optional[Sequence[str]] = None,
                       max_examples_per_batch: Optional[int] = None,
                       interpreter_layer: Optional[str] = None,
                       original: Optional[nn.Module] = None) -> Dict[str, Tensor]:
    """``{check: (interpreters, B)}``: every check's per-input scores for every interpreter of ``model``
    (a pairwise check averaged over the other interpreters). ``target`` defaults to the model's
    predicted classes; ``interpreter_layer``: the layer of the layer methods (Grad-CAM; default: the last
    convolution); ``original``: the model before the fine-tune, which the checks that need it compare each
    interpreter with (the same interpreter of ``original``)."""
    return _scores(model, inputs, target, interpreters, checks, max_examples_per_batch, interpreter_layer, original,
                   {})


def _scores(model: nn.Module, inputs: Tensor, target: Target, interpreters: Sequence[str],
            checks: Optional[Sequence[str]], max_examples_per_batch: Optional[int], interpreter_layer: Optional[str],
            original: Optional[nn.Module], original_maps: Dict[str, List[Any]]) -> Dict[str, Tensor]:
    """:func:`attribution_scores`, with the original's maps kept per interpreter in ``original_maps`` (shared by
    the audit's two calls)."""
    for c in checks or ():
        ATTRIBUTION_CHECKS.get(c)  # unknown names raise, listing the registered ones
    if original is not None and not isinstance(original, nn.Module):
        raise TypeError(f"original must be the model before the fine-tune (an nn.Module), got {type(original).__name__}")
    needing = [c for c in checks or () if ATTRIBUTION_CHECKS.get(c).needs_original]
    if needing and original is None:
        raise ValueError(f"check(s) {needing} compare with the model before the fine-tune: pass original=")
    interpreters = list(interpreters)
    unknown = [n for n in interpreters if n not in INTERPRETERS]
    if unknown or not interpreters:
        raise ValueError(f"unknown interpreter(s) {unknown}; available: {', '.join(INTERPRETERS)}")
    if any(ATTRIBUTION_CHECKS.get(c).pairwise for c in checks or ATTRIBUTION_CHECKS) and len(interpreters) < 2:
        raise ValueError("a pairwise check (interpreter_disagreement) needs at least two interpreters")
    modes = [(m, m.training) for m in (model, original) if m is not None]
    for m, _ in modes:
        m.eval()
    try:
        if target is None:
            with torch.no_grad():
                target = model(inputs).argmax(1)
        checks = default_checks(inputs, target, original is not None) if checks is None else list(checks)

        def heatmap(m: nn.Module, n: str) -> Any:
            return make_interpreter(n, m, interpreter_layer if INTERPRETERS.get(n).layer_method else None).heatmap

        funcs = [_computed_once(heatmap(model, n), inputs, target) for n in interpreters]
        originals = [_memoized(heatmap(original, n), original_maps.setdefault(n, [])) for n in interpreters
                     ] if original is not None else []
        out: Dict[str, Tensor] = {}
        for c in checks:
            spec = ATTRIBUTION_CHECKS.get(c)
            rows = []
            for i, f in enumerate(funcs):
                if spec.pairwise:
                    pairs = [spec.function(f, inputs, reference_func=g, target=target,
                                           max_examples_per_batch=max_examples_per_batch)
                             for j, g in enumerate(funcs) if j != i]
                    rows.append(torch.stack(pairs).mean(0))
                elif spec.needs_original:
                    rows.append(spec.function(f, inputs, original_func=originals[i], target=target,
                                              max_examples_per_batch=max_examples_per_batch))
                else:
                    rows.append(spec.function(f, inputs, target=target, max_examples_per_batch=max_examples_per_batch))
            out[c] = torch.stack(rows).float()
        return out
    finally:
        for m, was_training in modes:
            m.train(was_training)


def audit_attributions(model: nn.Module, inputs: Tensor, *, reference: nn.Module, target: Target = None,
                       interpreters: Sequence[str] = DEFAULT_INTERPRETERS, checks: Optional[Sequence[str]] = None,
                       threshold: float = 3.5, max_examples_per_batch: Optional[int] = None,
                       interpreter_layer: Optional[str] = None, original: Optional[nn.Module] = None) -> AuditReport:
    """Audit ``model``'s attributions on ``inputs`` against ``reference`` (see the module docstring).

    Args:
        model: the classifier under audit (logits ``(B, classes)``); left unchanged.
        inputs: natural inputs ``(B, C, H, W)``, fed as the model expects (at least 2).
        reference: a model of the same task you trust; required (a score alone has no scale).
        target: classes explained (default: ``model``'s predictions, used for both models).
        interpreters: registered interpreter names (the rows).
        checks: registered attribution checks (default: all that apply, :func:`default_checks`; the report's
            ``info["skipped"]`` names those left out).
        threshold: flag a row whose combined z (max over checks) exceeds this.
        max_examples_per_batch: chunk size for the maps.
        interpreter_layer: the dotted name of the layer the layer methods (Grad-CAM) explain, in both models
            (default: the last convolution). Grad-CAM of a convolution's raw output is fragile: on the MNIST
            CNN a plain fine-tune empties most of its maps. Naming the activation after it (``"relu2"``) gives
            Selvaraju et al.'s rectified feature maps, though on the development suite the audit separated
            fooled from clean models no better there (README, "Three more checks tried").
        original: the model before the fine-tune (optional). Given, the checks that compare with it run too
            (``explanation_drift``, ``class_swap``), on ``model`` and on ``reference`` alike; make ``reference``
            a fine-tune of ``original`` of your own that only keeps its accuracy.
    """
    if not isinstance(reference, nn.Module):
        raise TypeError("audit_attributions needs reference=, a model of the same task you trust (e.g. the "
                        f"published checkpoint): a score alone has no scale; got {type(reference).__name__}")
    if not isinstance(inputs, Tensor) or inputs.dim() != 4 or inputs.shape[0] < 2:
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be a batch of at least 2 images (B, C, H, W), got {shape}")
    if target is None:
        was = model.training
        model.eval()
        with torch.no_grad():
            target = model(inputs).argmax(1)
        model.train(was)
    with_original = original is not None
    n_classes = int(torch.as_tensor(target).reshape(-1).unique().numel())
    skipped = [] if checks is not None else [c for c in ATTRIBUTION_CHECKS
                                             if c not in default_checks(inputs, target, with_original)]
    original_maps: Dict[str, List[Any]] = {}  # the original's maps, computed once for both models
    mine = _scores(model, inputs, target, interpreters, checks, max_examples_per_batch, interpreter_layer, original,
                   original_maps)
    ref = _scores(reference, inputs, target, interpreters, checks, max_examples_per_batch, interpreter_layer, original,
                  original_maps)
    names = list(mine)
    directions = {c: ATTRIBUTION_CHECKS.get(c).higher_is_more_suspicious for c in names}
    scores = {c: mine[c].mean(1) for c in names}
    ref_scores = {c: ref[c].mean(1) for c in names}
    z = {c: (scores[c] - ref_scores[c]) / ATTRIBUTION_CHECKS.get(c).min_scale * (1 if directions[c] else -1)
         for c in names}
    combined = torch.stack([z[c] for c in names]).max(0).values
    details: Dict[str, Dict[str, Any]] = {c: {"reference": ref_scores[c], "per_input": mine[c],
                                              "reference_per_input": ref[c]} for c in names}
    info: Dict[str, Any] = {"kind": "attributions", "n_inputs": int(inputs.shape[0]),
                            "reference": type(reference).__name__, "interpreter_layer": interpreter_layer,
                            "original": type(original).__name__ if with_original else None,
                            "descriptions": {c: ATTRIBUTION_CHECKS.get(c).description for c in names},
                            "min_scale": {c: ATTRIBUTION_CHECKS.get(c).min_scale for c in names},
                            "skipped": {c: _skip_reason(c, n_classes) for c in skipped}}
    units: List[Any] = list(interpreters)
    return AuditReport(layer="attributions", units=units, checks=names, directions=directions, scores=scores,
                       z=z, combined=combined, threshold=float(threshold), combine="max", details=details, info=info)
