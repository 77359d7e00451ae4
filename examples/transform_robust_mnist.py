"""What ``transform_robust`` buys against an auditor who uses transformation robustness (TR).

On the paper's MNIST CNN (logit 0 → ``cross``, pixel parametrization) three manipulations
with the same steps, seed and loss are compared:

* ``plain``: the recipe that works against the GC auditor (on-policy samples from GC
  trajectories, direction loss), no ``transform_robust``;
* ``plain_tr_traj``: the same, with on-policy samples from ``gc_tr`` (TR) trajectories,
  still without ``transform_robust`` (isolates the sampling from the loss);
* ``transform_robust``: on-policy samples from ``gc_tr`` trajectories and the manipulation
  loss taken through the paper's random MNIST transforms (``transform_robust="paper_mnist"``).

Each model is audited with the paper's TR protocol (``gc_tr``: clipped SGD lr 0.1, 200 steps,
random pad / affine / rotation / crop every step) and with plain GC, from ``--starts`` random
starts: SSIM, MSE and LPIPS (AlexNet) to the target, held-out accuracy. Writes
``results.json`` and ``fv_grid.png`` to ``--out``.

Run:  python examples/transform_robust_mnist.py [--steps 1000] [--starts 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time


from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.evaluation import evaluate_manipulation
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam, render
from captum_slingshot.models import pretrained_mnist_cnn
from captum_slingshot.paths import atomic_path
from captum_slingshot.figures import fv_grid
from captum_slingshot.transforms import (
    Aim, FieldDirection, GradientSlingshot, Optimizer, Preservation, Run, Sampling, Trajectories, load_target,
    packaged_target,
)

#: variant -> how the manipulation batch is drawn (the auditor's random transforms inside the loss or not,
#: trajectories of plain GC or of GC + TR)
VARIANTS = {
    "plain": Sampling(sigma=0.1, trajectories=Trajectories("gc")),
    "plain_tr_traj": Sampling(sigma=0.1, trajectories=Trajectories("gc_tr")),
    "transform_robust": Sampling(sigma=0.1, transform_robust="paper_mnist", trajectories=Trajectories("gc_tr")),
}
KEYS = ("ssim", "mse", "lpips", "accuracy", "accuracy_drop", "activation")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000, help="manipulation steps per variant")
    ap.add_argument("--starts", type=int, default=20, help="FV runs per evaluation")
    ap.add_argument("--heldout", type=int, default=2000, help="held-out images for accuracy")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/transform_robust_mnist")
    args = ap.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")

    os.makedirs(args.out, exist_ok=True)
    model = pretrained_mnist_cnn(epochs=1, seed=0, progress=False)
    natural = normalize_mnist(load_mnist("train").tensors[0])
    held = load_mnist("heldout")
    heldout = (normalize_mnist(held.tensors[0][: args.heldout]), held.tensors[1][: args.heldout])
    param = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    target = load_target(packaged_target("cross"), param.shape)
    protocols = {"gc_tr": "gc_tr", "gc": "gc"}

    def audit(m):
        out, fvs = {}, {}
        for label, strat in protocols.items():
            fv = render(m, "logits", 0, param, strat, n_starts=args.starts, seed=1000 + args.seed)
            ev = evaluate_manipulation(m, model, "logits", 0, target, param, heldout, strategy=strat,
                                       n_starts=args.starts, lpips=not args.no_lpips, fv=fv)
            out[label] = {k: ev[k] for k in KEYS if k in ev}
            fvs[label] = fv.images[:6]
        return out, fvs

    results = {"settings": {"steps": args.steps, "starts": args.starts, "seed": args.seed,
                            "loss": "direction", "gamma": 1.0, "lr": 1e-3, "alpha": 0.8, "sigma": 0.1,
                            "aim_radius": 0.1 * 200 * 0.975,
                            "variants": {n: {"transform_robust": VARIANTS[n].transform_robust,
                                             "trajectory_strategy": VARIANTS[n].trajectories.name} for n in names}}}
    results["original"], fvs0 = audit(model)
    rows = {"target": target[None], "original (gc_tr)": fvs0["gc_tr"]}
    print(_line("original", results["original"]), flush=True)
    for name in names:
        gs = GradientSlingshot(
            "logits", 0, target, param, loss=FieldDirection(), aim=Aim(radius=0.1 * 200 * 0.975),
            sampling=VARIANTS[name], preservation=Preservation(alpha=0.8), optimizer=Optimizer(lr=1e-3),
            run=Run(steps=args.steps, seed=args.seed, progress=False),
        )
        t0 = time.perf_counter()
        manipulated = gs.fit(model, natural).model.eval()
        seconds = time.perf_counter() - t0
        results[name], fvs = audit(manipulated)
        results[name]["train_seconds"] = round(seconds, 1)
        rows[f"{name} (gc_tr)"] = fvs["gc_tr"]
        print(_line(f"{name} ({seconds:.0f} s)", results[name]), flush=True)

    fv_grid(rows, os.path.join(args.out, "fv_grid.png"), title="MNIST logit 0, FV under the TR protocol (gc_tr)")
    with atomic_path(os.path.join(args.out, "results.json")) as tmp:
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
    print(f"wrote {args.out}/results.json, fv_grid.png")
    return results


def _line(tag, res) -> str:
    parts = []
    for label, ev in res.items():
        if not isinstance(ev, dict):
            continue
        lp = f" LPIPS {ev['lpips']:.3f}" if "lpips" in ev else ""
        parts.append(f"[{label}] SSIM {ev['ssim']:.3f} MSE {ev['mse']:.4f}{lp} acc {100 * ev['accuracy']:.2f} %")
    return f"{tag:>28}: " + "  ".join(parts)


if __name__ == "__main__":
    main()
