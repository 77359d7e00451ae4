"""Detection benchmark: do the defense checks find slingshotted units among clean ones?

Suite, all on real MNIST with the paper's CNN:

* **clean units**: the 10 logits of clean models (training seeds 0, 1, 2) and the 9 logits
  that were not manipulated in every manipulated model;
* **manipulated units**: one logit per manipulated model (12), slung by the Gradient Slingshot
  with varied units, targets (``cross``, ``fake``), base models, seeds and settings: the
  direction loss with GC trajectory sampling (alpha 0.5, 0.8, 0.95; 1000 and 2000 steps), the
  same aimed at TR with the transform-robust option (the paper's MNIST TR set), aimed at Adam,
  the paper's gradient loss (gamma 10), and the paper's tunnel-only sampling. Some of these
  attacks fail to move the FV (tunnel-only, alpha 0.95, some units): they still count as
  manipulated, and the figures are also reported for the units whose aimed FV reached the
  target (SSIM >= 0.5, "worked").

Manipulated models are cached in ``$CAPTUM_SLINGSHOT_HOME/models/detection/`` (named by their
settings), so a second run only audits. Every model's ``logits`` layer is audited with
:func:`captum_slingshot.checks.audit_layer` (all registered checks, 2 000 held-out images as
natural data). Reported per check (on the robust z-scores the audit computes within each
layer, and on raw scores) and for each pooling rule over the audit's ``DEFAULT_CHECKS``: AUROC
between manipulated and clean units, TPR at 5 % FPR; and what the default audit (default
checks, pooling and threshold) flags. ``--quick`` runs a reduced
suite (used by the tests).

Usage::

    python benchmarks/detection.py [--quick] [--out runs/detection]

Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import inspect
import json
import os
import time
from typing import Dict, List

import torch

from captum_slingshot.checks import audit_layer, available_checks
from captum_slingshot.checks.audit import COMBINE_RULES, DEFAULT_CHECKS
from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.evaluation import fv_similarity
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam, render
from captum_slingshot.metrics import auroc
from captum_slingshot.models import MNISTCNN, pretrained_mnist_cnn
from captum_slingshot.paths import atomic_path, models_dir, save_state_dict
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
    ("d-u4-fake-m2", 2, 4, "fake", FAST, 1000, 6),
    ("d-u9-cross-m2", 2, 9, "cross", FAST, 1000, 7),
    ("d-u6-cross-a95-m1", 1, 6, "cross", dict(FAST, alpha=0.95), 1000, 8),
    ("d-u0-cross-a5-m2", 2, 0, "cross", dict(FAST, alpha=0.5), 1000, 9),
    ("a-u8-cross-adam", 0, 8, "cross", dict(FAST, trajectory_strategy="adam"), 1000, 10),
    ("d-u2-fake-2k-m1", 1, 2, "fake", FAST, 2000, 11),
    # stealthier: the other logits keep their FV paths (preserve_fv), no collateral anomalies
    ("s-u0-cross-pfv", 0, 0, "cross", dict(FAST, preserve_fv=1.0), 1000, 0),
    ("s-u3-cross-pfv-m1", 1, 3, "cross", dict(FAST, preserve_fv=1.0), 1000, 12),
]
QUICK_SUITE = [("q-u0-cross", 0, 0, "cross", FAST, 300, 0)]
PARAM = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
#: a manipulation "worked" when its aimed FV reaches this SSIM to the target
SUCCESS_SSIM = 0.5
DEFAULT_COMBINE = inspect.signature(audit_layer).parameters["combine"].default
DEFAULT_THRESHOLD = inspect.signature(audit_layer).parameters["threshold"].default


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
    kwargs = dict(sigma=0.1, alpha=0.8, w=0.0)
    kwargs.update(settings)
    # the suite is data: each entry's settings are the flat names the command line and study files use
    gs = GradientSlingshot.from_settings("logits", unit, load_target(packaged_target(target), PARAM.shape), PARAM,
                                         steps=steps, seed=seed, progress=progress, **kwargs)
    result = gs.fit(base, natural)
    save_state_dict(result.model, path)
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
    # did each manipulation work? The FV under the strategy it was aimed at (GC unless the spec
    # names another), 20 starts, against its target
    success = {}
    for spec, (name, model, unit) in zip(suite, models[len(clean_seeds):]):
        aimed = spec[4].get("trajectory_strategy") or "gc"
        fv = render(model, "logits", unit, PARAM, aimed, n_starts=20, seed=1)
        sim = fv_similarity(fv.images, load_target(packaged_target(spec[3]), PARAM.shape), lpips=False)
        success[name] = dict(sim, strategy=aimed)
        print(f"{name}: {aimed} FV of logit {unit} vs '{spec[3]}': SSIM {sim['ssim']:.3f}, MSE {sim['mse']:.4f}",
              flush=True)

    rows: List[dict] = []
    t0 = time.perf_counter()
    for name, model, unit in models:
        rep = audit_layer(model, "logits", param=PARAM, data=data, checks=checks, n_starts=args.n_starts,
                          lpips=False, progress=False)
        # the default audit (DEFAULT_CHECKS, default rule and threshold) from the same z-scores
        default_z = torch.stack([rep.z[c] for c in DEFAULT_CHECKS])
        combined = {rule: fn(default_z) for rule, fn in COMBINE_RULES.items()}
        flagged_units = [u for i, u in enumerate(rep.units) if combined[DEFAULT_COMBINE][i] > DEFAULT_THRESHOLD]
        for i, u in enumerate(rep.units):
            row = {"model": name, "unit": u, "manipulated": int(u == unit),
                   "combined": float(combined[DEFAULT_COMBINE][i]), "flagged": int(u in flagged_units),
                   "fv_ssim_to_target": success[name]["ssim"] if u == unit else "",
                   "aimed_strategy": success[name]["strategy"] if u == unit else ""}
            for rule in COMBINE_RULES:
                row[f"combined_{rule}"] = float(combined[rule][i])
            for c in checks:
                row[c] = float(rep.scores[c][i])
                row[f"{c}_z"] = float(rep.z[c][i])
            rows.append(row)
        print(f"{name}: flagged {flagged_units}" + ("" if unit is None else f" (manipulated: {unit})"), flush=True)
    t_audit = (time.perf_counter() - t0) / len(models)

    os.makedirs(args.out, exist_ok=True)
    with atomic_path(os.path.join(args.out, "units.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    labels = torch.tensor([r["manipulated"] for r in rows])
    pos, neg = labels == 1, labels == 0
    worked = torch.tensor([r["manipulated"] == 1 and r["fv_ssim_to_target"] >= SUCCESS_SSIM for r in rows])
    metrics: Dict[str, float] = {}
    print(f"\n{int(pos.sum())} manipulated units ({int(worked.sum())} whose FV reached the target, SSIM >= "
          f"{SUCCESS_SSIM}), {int(neg.sum())} clean units; combined = {DEFAULT_COMBINE} of {list(DEFAULT_CHECKS)}")
    print(f"{'score':<30} {'AUROC':>7} {'TPR@5%FPR':>10} {'AUROC (worked)':>15} {'TPR (worked)':>13}")
    columns = [(f"{c}_{kind}", c if kind == "raw" else f"{c}_z") for c in checks for kind in ("z", "raw")]
    columns += [(f"combined_{rule}", f"combined_{rule}") for rule in COMBINE_RULES]
    for tag, col in columns:
        s = torch.tensor([r[col] for r in rows])
        a, t = auroc(s, labels, 1), tpr_at_fpr(s[pos], s[neg])
        metrics[f"detection_auroc_{tag}"] = a
        metrics[f"detection_tpr5_{tag}"] = t
        if worked.any():  # no "worked" figures when no attack of the suite reached its target
            keep = worked | neg
            aw, tw = auroc(s[keep], labels[keep], 1), tpr_at_fpr(s[worked], s[neg])
            metrics[f"detection_auroc_worked_{tag}"] = aw
            metrics[f"detection_tpr5_worked_{tag}"] = tw
            print(f"{tag:<30} {a:7.3f} {t:10.2f} {aw:15.3f} {tw:13.2f}")
        else:
            print(f"{tag:<30} {a:7.3f} {t:10.2f} {'-':>15} {'-':>13}")
    for kind in ("auroc", "tpr5", "auroc_worked", "tpr5_worked"):  # the default audit's rule
        if f"detection_{kind}_combined_{DEFAULT_COMBINE}" in metrics:
            metrics[f"detection_{kind}_combined"] = metrics[f"detection_{kind}_combined_{DEFAULT_COMBINE}"]
    flagged = torch.tensor([r["flagged"] for r in rows]).bool()
    clean_model_units = torch.tensor([r["model"].startswith("clean") for r in rows])
    metrics["audit_tpr"] = float(flagged[pos].double().mean())
    if worked.any():
        metrics["audit_tpr_worked"] = float(flagged[worked].double().mean())
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
