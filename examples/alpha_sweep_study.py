"""A comparison study: how the preservation weight alpha trades target similarity, accuracy and detection.

For each ``--alphas`` value, logit 0 of the paper's MNIST CNN is slung to the cross (Gradient
Slingshot with on-policy GC trajectories, direction loss, gamma 1, ``--steps`` steps); then:

* **target similarity**: SSIM / MSE of the GC FV (paper protocol, ``--starts`` starts) to the cross;
* **preservation**: held-out accuracy, AUROC of logit 0 for zeros, Jaccard of the top-100;
* **detection**: the audit of the ``logits`` layer (all default checks) — the manipulated unit's
  combined robust z, its rank in the layer, and whether it is flagged.

Writes ``study.csv`` and ``study.png`` (the three figures against alpha) to ``--out``.

Run:  python examples/alpha_sweep_study.py [--alphas 0.5,0.8,0.95] [--steps 1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os


from captum_slingshot.checks import audit_layer
from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.evaluation import evaluate_manipulation
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam
from captum_slingshot.models import pretrained_mnist_cnn
from captum_slingshot.figures import save_png
from captum_slingshot.paths import atomic_path
from captum_slingshot.transforms import (
    Aim, FieldDirection, GradientSlingshot, Preservation, Run, Sampling, Trajectories, load_target, packaged_target,
)

FIELDS = ["alpha", "ssim", "mse", "accuracy", "accuracy_drop", "auroc", "jaccard_top_k", "combined_z", "rank", "flagged"]


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alphas", default="0.5,0.8,0.95", help="comma-separated preservation weights")
    ap.add_argument("--steps", type=int, default=1000, help="slingshot steps per alpha")
    ap.add_argument("--starts", type=int, default=20, help="FV starts for the target similarity")
    ap.add_argument("--heldout", type=int, default=2000, help="held-out images (preservation and audit data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/alpha_sweep")
    args = ap.parse_args(argv)
    try:
        alphas = [float(a) for a in args.alphas.split(",")]
    except ValueError:
        ap.error(f"--alphas must be comma-separated numbers, got {args.alphas!r}")

    model = pretrained_mnist_cnn(epochs=1, seed=0)
    param = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    target = load_target(packaged_target("cross"), param.shape)
    natural = normalize_mnist(load_mnist("train").tensors[0])
    held = load_mnist("heldout")
    heldout = (normalize_mnist(held.tensors[0][: args.heldout]), held.tensors[1][: args.heldout])
    rows = []
    for alpha in alphas:
        gs = GradientSlingshot("logits", 0, target, param, loss=FieldDirection(), aim=Aim(radius=19.5),
                               sampling=Sampling(trajectories=Trajectories("gc")), preservation=Preservation(alpha=alpha),
                               run=Run(steps=args.steps, seed=args.seed))
        manipulated = gs.fit(model, natural).model.eval()
        ev = evaluate_manipulation(manipulated, model, "logits", 0, target, param, heldout, n_starts=args.starts,
                                   seed=1000 + args.seed, lpips=False)
        rep = audit_layer(manipulated, "logits", param=param, data=heldout[0], seed=args.seed,
                          progress=False)
        z = rep.combined
        rows.append({"alpha": alpha, "ssim": ev["ssim"], "mse": ev["mse"], "accuracy": ev["accuracy"],
                     "accuracy_drop": ev["accuracy_drop"], "auroc": ev["auroc"], "jaccard_top_k": ev["jaccard_top_k"],
                     "combined_z": float(z[0]), "rank": int((z > z[0]).sum()) + 1, "flagged": int(0 in rep.flagged)})
        r = rows[-1]
        print(f"alpha {alpha:.3g}: SSIM {r['ssim']:.3f} MSE {r['mse']:.4f} | acc {100 * r['accuracy']:.2f} % "
              f"(drop {100 * r['accuracy_drop']:.2f}) AUROC {r['auroc']:.4f} Jaccard {r['jaccard_top_k']:.2f} | "
              f"audit z {r['combined_z']:.2f} (rank {r['rank']}/10, {'flagged' if r['flagged'] else 'not flagged'})",
              flush=True)
    _write(rows, args.out)
    print(f"wrote {os.path.join(args.out, 'study.csv')} and study.png")
    return rows


def _write(rows, out) -> None:
    import matplotlib.pyplot as plt  # Agg backend: captum_slingshot.report sets it

    with atomic_path(os.path.join(out, "study.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
    a = [r["alpha"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    axes[0].plot(a, [r["ssim"] for r in rows], "o-")
    axes[0].set_title("FV SSIM to target")
    axes[1].plot(a, [100 * r["accuracy"] for r in rows], "o-")
    axes[1].set_title("held-out accuracy %")
    axes[2].plot(a, [r["combined_z"] for r in rows], "o-")
    axes[2].set_title("audit combined z of the unit")
    for ax in axes:
        ax.set_xlabel("alpha (preservation weight)")
    fig.tight_layout()
    save_png(fig, os.path.join(out, "study.png"))


if __name__ == "__main__":
    main()
