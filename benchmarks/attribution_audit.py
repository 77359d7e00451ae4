"""Time of the attribution audit's scores against round 1's code and against the bare maps.

Models: the paper's MNIST CNN (the cached ``pretrained_mnist_cnn``, seed 0) on real MNIST test digits, and
``SmallRGBCNN`` (width 16, 8 classes, freshly initialised: only the time is measured) on scikit-image photo
crops (64 px). Interpreters: the audit's defaults (``grad_cam``, ``lrp_epsilon``, ``saliency``); targets: the
model's predictions.

Three pairs, each run side by side in this process, alternating in rounds (the median is kept):

* ``input_dependence``: today's (one rank-correlation matrix, all ranks at once) against round 1's
  (``B - 1`` rolled rank correlations, ties ranked one row at a time, restated below), on the same maps;
  both must give the same scores (the largest difference is printed);
* the round-1 checks (``interpreter_disagreement``, ``input_dependence``, ``fixed_pattern``) through
  :func:`attribution_scores` against round 1's way (every check asking the interpreters for its own maps),
  same scores again;
* every default check including ``mosaic_focus`` against the bare work: each interpreter's maps of the
  inputs and of the focus mosaics, computed once, with nothing else.

Usage::

    python benchmarks/attribution_audit.py [--quick] [--inputs 200] [--rounds 3]

``--quick``: 64 inputs, 1 round. Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch
from torch import Tensor, nn

from captum_slingshot.attributions import make_interpreter
from captum_slingshot.checks.attribution import (
    DEFAULT_INTERPRETERS, attribution_scores, explanation_maps, fixed_pattern, focus_mosaics, input_content,
    input_dependence, interpreter_disagreement,
)
from captum_slingshot.data import load_mnist, normalize_mnist, photo_crops
from captum_slingshot.models import SmallRGBCNN, pretrained_mnist_cnn

ROUND1_CHECKS = ("fixed_pattern", "input_dependence", "interpreter_disagreement")


def _round1_ranks(x: Tensor) -> Tensor:
    """Round 1's average ranks: argsort, then ties averaged with ``torch.unique`` one row at a time."""
    flat = x.detach().flatten(1).double()
    order = flat.argsort(1)
    ranks = torch.empty_like(flat)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], dtype=flat.dtype).expand_as(flat))
    out = torch.empty_like(ranks)
    for i in range(flat.shape[0]):
        values, inverse = torch.unique(flat[i], return_inverse=True)
        if values.numel() == flat.shape[1]:
            out[i] = ranks[i]
            continue
        sums = torch.zeros(values.numel(), dtype=flat.dtype).index_add_(0, inverse, ranks[i])
        counts = torch.zeros_like(sums).index_add_(0, inverse, torch.ones_like(ranks[i]))
        out[i] = (sums / counts)[inverse]
    return out


def _round1_rank_correlation(a: Tensor, b: Tensor) -> Tensor:
    ra, rb = _round1_ranks(a), _round1_ranks(b)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    den = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(den > 0, (ra * rb).sum(1) / den.clamp(min=1e-300), torch.zeros_like(den)).float()


def round1_input_dependence(explanation_func: Callable, inputs: Tensor, *, target=None) -> Tensor:
    maps = explanation_maps(explanation_func, inputs, target)
    content = input_content(inputs)
    n = maps.shape[0]
    others = torch.zeros(n)
    for shift in range(1, n):
        others += _round1_rank_correlation(maps, content.roll(shift, 0))
    return _round1_rank_correlation(maps, content) - others / (n - 1)


def round1_scores(model: nn.Module, inputs: Tensor, target: Tensor) -> Dict[str, Tensor]:
    """Round 1's :func:`attribution_scores` of the round-1 checks: each check computes its own maps."""
    funcs = [make_interpreter(n, model).heatmap for n in DEFAULT_INTERPRETERS]
    out = {"fixed_pattern": torch.stack([fixed_pattern(f, inputs, target=target) for f in funcs]),
           "input_dependence": torch.stack([round1_input_dependence(f, inputs, target=target) for f in funcs]),
           "interpreter_disagreement": torch.stack([
               torch.stack([interpreter_disagreement(f, inputs, reference_func=g, target=target)
                            for j, g in enumerate(funcs) if j != i]).mean(0) for i, f in enumerate(funcs)])}
    return {k: v.float() for k, v in out.items()}


def bare_maps(model: nn.Module, inputs: Tensor, target: Tensor) -> None:
    """The floor: every interpreter's maps of the inputs and of the focus mosaics, once."""
    mosaics, owner, _ = focus_mosaics(inputs, target)
    for name in DEFAULT_INTERPRETERS:
        f = make_interpreter(name, model).heatmap
        f(inputs, target=target)
        f(mosaics, target=target[owner])


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 inputs, 1 round")
    ap.add_argument("--inputs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n, rounds = (64, 1) if args.quick else (args.inputs, args.rounds)

    torch.manual_seed(0)
    xt, _ = load_mnist("test").tensors
    rgb_x, _ = photo_crops(max(1, n // 8 + 1), "heldout", size=64, seed=0)
    cases = {"mnist": (pretrained_mnist_cnn(seed=0, progress=False).eval(), normalize_mnist(xt[:n])),
             "rgb": (SmallRGBCNN(num_classes=8, width=16).eval(), rgb_x[:n])}
    metrics: Dict[str, float] = {}
    for case, (model, x) in cases.items():
        with torch.no_grad():
            target = model(x).argmax(1)
        if target.unique().numel() < 2:  # an untrained model may call everything one class; spread the targets
            target = torch.arange(len(x)) % 8
        maps_func = make_interpreter("lrp_epsilon", model).heatmap
        times: Dict[str, List[float]] = {k: [] for k in ("dep_new", "dep_old", "r1_new", "r1_old", "all", "bare")}
        for _ in range(rounds):
            times["dep_old"].append(timed(lambda: round1_input_dependence(maps_func, x, target=target)))
            times["dep_new"].append(timed(lambda: input_dependence(maps_func, x, target=target)))
            times["r1_old"].append(timed(lambda: round1_scores(model, x, target)))
            times["r1_new"].append(timed(lambda: attribution_scores(model, x, target, checks=ROUND1_CHECKS)))
            times["bare"].append(timed(lambda: bare_maps(model, x, target)))
            times["all"].append(timed(lambda: attribution_scores(model, x, target)))
        old, new = round1_scores(model, x, target), attribution_scores(model, x, target, checks=ROUND1_CHECKS)
        diff = max(float((old[c] - new[c]).abs().max()) for c in ROUND1_CHECKS)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{case}: {len(x)} inputs, {int(target.unique().numel())} classes; input_dependence round 1 "
              f"{med['dep_old']:.2f} s, today {med['dep_new']:.3f} s; round-1 checks round 1 {med['r1_old']:.2f} s, "
              f"today {med['r1_new']:.2f} s (largest score difference {diff:.1e}); all checks with mosaic_focus "
              f"{med['all']:.2f} s, bare maps {med['bare']:.2f} s", flush=True)
        metrics[f"{case}_input_dependence_speedup"] = med["dep_old"] / med["dep_new"]
        metrics[f"{case}_round1_checks_speedup"] = med["r1_old"] / med["r1_new"]
        metrics[f"{case}_round1_checks_max_difference"] = diff
        metrics[f"{case}_audit_scores_over_bare_maps"] = med["all"] / med["bare"]
        metrics[f"{case}_audit_scores_seconds"] = med["all"]
    for k, v in metrics.items():
        print(f"metric {k} {v:.6g}")


if __name__ == "__main__":
    main()
