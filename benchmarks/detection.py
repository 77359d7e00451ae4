"""Detection benchmark: do the defense checks find slingshotted units among clean ones?

Suite, all on real MNIST with the paper's CNN:

* **clean units**: the 10 logits of clean models (training seeds 0, 1, 2) and the 9 logits
  that were not manipulated in every manipulated model;
* **manipulated units**: one logit per manipulated model, slung by the Gradient Slingshot with
  varied units, targets (``cross``, ``fake``), seeds and settings: the direction loss with
  trajectory sampling, the same with the transform-robust option (the paper's MNIST TR set),
  the paper's gradient loss (gamma 10), and the paper's tunnel-only sampling.

Manipulated models are cached in ``$CAPTUM_SLINGSHOT_HOME/models/detection/`` (named by their
settings), so a second run only audits. Every model's ``logits`` layer is audited with
:func:`captum_slingshot.checks.audit_layer` (all registered checks, 2 000 held-out images as
natural data). Reported per check (on the robust z-scores the audit computes within each
layer, and on raw scores) and for the combined audit: AUROC between manipulated and clean
units, TPR at 5 % FPR, and how many clean units the audit flags. ``--quick`` runs a reduced
suite (used by the tests).

Usage::

    python benchmarks/detection.py [--quick] [--out runs/detection]

Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import time
from typing import Dict, List

import torch

from captum_slingshot.checks import audit_layer, available_checks
from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.evaluation import fv_similarity
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam, render
from captum_slingshot.metrics.preservation import auroc
from captum_slingshot.models import MNISTCNN, pretrained_mnist_cnn
from captum_slingshot.paths import atomic_path, models_dir
from captum_slingshot.transforms import GradientSlingshot, load_target, packaged_target

FAST = dict(gamma=1.0, loss="direction", lr=1e-3, trajectory_strategy="gc", aim_radius=19.5)
SUITE = [
    # name, base model seed, unit, target, settings, steps, slingshot seed
    ("d-u0-cross", 0, 0, "cross", FAST, 1000, 0),
    ("d-u3-fake", 0, 3, "fake", FAST, 1000, 1),
    ("d-u7-cross-m1", 1, 7, "cross", FAST, 1000, 2),
    ("d-u5-fake-tr", 0, 5, "fake", dict(FAST, transform_robust="paper_mnist", trajectory_strategy="gc_tr"), 1000, 3),
    ("p-u1-cross", 0, 1, "cross", dict(gamma=10.0, loss="gradient", lr=5e-4, trajectory_strategy="gc", aim_radius=19.5), 2000, 4),
    ("t-u2-fake-tunnel", 1, 2, "fake", dict(gamma=10.0, loss="gradient", lr=1e-3), 1500, 5),
]
QUICK_SUITE = [("q-u0-cross", 0, 0, "cross", FAST, 300, 0)]
PARAM = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)


def manipulated_model(spec, natural, progress: bool) -> MNISTCNN:
    """The manipulated model of one suite entry (trained once, then loaded from the cache)."""
    name, base_seed, unit, target, settings, steps, seed = spec
    key = json.dumps([base_seed, unit, target, sorted(settings.items()), steps, seed])
    path = models_dir() / "detection" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.pt"
    model = MNISTCNN().eval()
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    base = pretrained_mnist_cnn(epochs=1, seed=base_seed, progress=progress)
    gs = GradientSlingshot(layer="logits", neuron_selector=unit, target=load_target(packaged_target(target), PARAM.shape),
                           param=PARAM, sigma=0.1, alpha=0.8, w=0.0, steps=steps, seed=seed, progress=progress,
                           **settings)
    result = gs.fit(base, natural)
    with atomic_path(path) as tmp:
        torch.save(result.model.state_dict(), tmp)
    model.load_state_dict(result.model.state_dict())
    return model


def tpr_at_fpr(pos: torch.Tensor, neg: torch.Tensor, fpr: float = 0.05) -> float:
    """Share of positives above the threshold that lets through at most ``fpr`` of negatives."""
    thr = torch.quantile(neg.double(), 1 - fpr)
    return float((pos.double() > thr).double().mean())


def main(argv=None) -> Dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced suite (one short manipulation, one clean model)")
    ap.add_argument("--heldout", type=int, default=2000, help="natural images given to the checks")
    ap.add_argument("--n-starts", type=int, default=4, help="FV starts per strategy in the checks")
    ap.add_argument("--out", default="runs/detection")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    progress = not args.no_progress
    suite = QUICK_SUITE if args.quick else SUITE
    clean_seeds = [0] if args.quick else [0, 1, 2]

    natural = normalize_mnist(load_mnist("train").tensors[0])
    held = load_mnist("heldout")
    data = (normalize_mnist(held.tensors[0][: args.heldout]), held.tensors[1][: args.heldout])
    checks = sorted(available_checks())
    models = [(f"clean-s{s}", pretrained_mnist_cnn(epochs=1, seed=s, progress=progress), None) for s in clean_seeds]
    t0 = time.perf_counter()
    models += [(spec[0], manipulated_model(spec, natural, progress), spec[2]) for spec in suite]
    t_manip = time.perf_counter() - t0
    # did each manipulation work? GC FV (the paper's protocol, 20 starts) against its target
    success = {}
    for spec, (name, model, unit) in zip(suite, models[len(clean_seeds):]):
        fv = render(model, "logits", unit, PARAM, "gc", n_starts=20, seed=1)
        sim = fv_similarity(fv.images, load_target(packaged_target(spec[3]), PARAM.shape), lpips=False)
        success[name] = sim
        print(f"{name}: GC FV of logit {unit} vs '{spec[3]}': SSIM {sim['ssim']:.3f}, MSE {sim['mse']:.4f}", flush=True)

    rows: List[dict] = []
    t0 = time.perf_counter()
    for name, model, unit in models:
        rep = audit_layer(model, "logits", param=PARAM, data=data, checks=checks, n_starts=args.n_starts,
                          lpips=False, progress=False)
        for i, u in enumerate(rep.units):
            row = {"model": name, "unit": u, "manipulated": int(u == unit), "combined": float(rep.combined[i]),
                   "flagged": int(bool(rep.flagged_mask[i])),
                   "fv_ssim_to_target": success[name]["ssim"] if u == unit else ""}
            for c in checks:
                row[c] = float(rep.scores[c][i])
                row[f"{c}_z"] = float(rep.z[c][i])
            rows.append(row)
        print(f"{name}: flagged {rep.flagged}" + ("" if unit is None else f" (manipulated: {unit})"), flush=True)
    t_audit = (time.perf_counter() - t0) / len(models)

    os.makedirs(args.out, exist_ok=True)
    with atomic_path(os.path.join(args.out, "units.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    labels = torch.tensor([r["manipulated"] for r in rows])
    pos, neg = labels == 1, labels == 0
    metrics: Dict[str, float] = {}
    print(f"\n{int(pos.sum())} manipulated units, {int(neg.sum())} clean units")
    print(f"{'score':<26} {'AUROC':>7} {'TPR@5%FPR':>10}")
    for c in checks + ["combined"]:
        for kind in (["z", "raw"] if c != "combined" else ["z"]):
            col = c if (kind == "raw" or c == "combined") else f"{c}_z"
            s = torch.tensor([r[col] for r in rows])
            a, t = auroc(s, labels, 1), tpr_at_fpr(s[pos], s[neg])
            tag = c if c == "combined" else f"{c}_{kind}"
            print(f"{tag:<26} {a:7.3f} {t:10.2f}")
            metrics[f"detection_auroc_{tag}"] = a
            metrics[f"detection_tpr5_{tag}"] = t
    flagged = torch.tensor([r["flagged"] for r in rows]).bool()
    clean_model_units = torch.tensor([r["model"].startswith("clean") for r in rows])
    metrics["audit_tpr"] = float(flagged[pos].double().mean())
    metrics["audit_fpr"] = float(flagged[neg].double().mean())
    metrics["audit_flags_in_clean_models"] = float(flagged[clean_model_units].sum())
    metrics["seconds_per_manipulation_model"] = t_manip / max(1, len(suite))
    metrics["seconds_per_layer_audit"] = t_audit
    print(f"audit flags: {metrics['audit_tpr']:.2f} of manipulated units, {metrics['audit_fpr']:.3f} of clean units, "
          f"{int(metrics['audit_flags_in_clean_models'])} units of clean models")
    with atomic_path(os.path.join(args.out, "metrics.json")) as tmp:
        with open(tmp, "w") as f:
            json.dump(metrics, f, indent=2)
    for k, v in metrics.items():
        print(f"metric {k} {v:.4f}")
    return metrics


if __name__ == "__main__":
    main()
