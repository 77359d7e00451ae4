"""The paper's MNIST experiment: logit 0 of the 6-layer CNN slung to the cross.

Loads (or trains once, ~25 s) the paper's MNIST CNN on the paper's training split,
manipulates logit 0 toward ``cross.jpg`` with the Gradient Slingshot and, every
``--eval-every`` steps, evaluates with the paper's protocol (``--starts`` FV runs
from N(0, 0.01^2), SGD lr 0.1 with gradient clipping, 200 steps): LPIPS (AlexNet),
SSIM and MSE to the target, held-out accuracy, AUROC of logit 0 for class 0, and
the Jaccard overlap of the top-100 activating held-out images with the original
model's. Writes to ``--out``:

* ``curve.csv`` / ``curve.png`` — the figures against training steps and seconds,
* ``results.json`` — settings, the evaluation before and at every point,
* ``fv_before_after.png`` — the target and FVs of the original and final model,
* ``manipulated.pt`` — the final state dict (load with ``weights_only=True``).

Presets (every setting can be overridden by its flag):

* ``paper``: the paper's table (pixel, sigma 0.1 tunnel, gamma 10, alpha 0.8, w 0,
  AdamW lr 1e-3, wd 1e-3, batch 32/32) plus this library's two additions that make
  it converge: the bowl aimed at the best image within the auditor's reach
  (``aim_radius`` = lr·steps of clipped SGD, minus 2.5 %) and on-policy samples from the
  auditor's GC trajectories;
* ``fast`` (default): the same with the direction loss and gamma 1.

Run:  python examples/paper_mnist_reproduction.py [--preset fast] [--epochs 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time

import torch

from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.evaluation import evaluate_manipulation
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam, render
from captum_slingshot.models import MNISTCNN, pretrained_mnist_cnn
from captum_slingshot.paths import atomic_path
from captum_slingshot.figures import fv_grid, save_png
from captum_slingshot.transforms import (
    Aim, Bowl, FieldDirection, FieldMSE, GradientSlingshot, Optimizer, Preservation, Run, Sampling, Trajectories,
    load_target, packaged_target,
)

PRESETS = {
    "paper": dict(gamma=10.0, loss="gradient", lr=1e-3),
    "fast": dict(gamma=1.0, loss="direction", lr=1e-3),
}
FIELDS = ["step", "seconds", "ssim", "mse", "lpips", "accuracy", "auroc", "jaccard_top_k", "activation"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    ap.add_argument("--epochs", type=float, default=2.0, help="training length in epochs of the 48k training split")
    ap.add_argument("--steps", type=int, default=None, help="training length in steps (overrides --epochs)")
    ap.add_argument("--eval-every", type=int, default=250, help="evaluate every N steps")
    ap.add_argument("--starts", type=int, default=100, help="FV runs per evaluation (paper: 100)")
    ap.add_argument("--heldout", type=int, default=12000, help="held-out images used for the preservation figures")
    ap.add_argument("--gamma", type=float), ap.add_argument("--lr", type=float)
    ap.add_argument("--loss", choices=["gradient", "direction", "activation"])
    ap.add_argument("--alpha", type=float, default=0.8), ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--no-trajectory", action="store_true", help="the paper's tunnel sampling only")
    ap.add_argument("--no-aim", action="store_true", help="aim at the target itself, out of the auditor's reach")
    ap.add_argument("--no-lpips", action="store_true", help="skip LPIPS (faster)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/paper_mnist")
    args = ap.parse_args(argv)
    settings = dict(PRESETS[args.preset])
    settings.update({k: getattr(args, k) for k in ("gamma", "lr", "loss") if getattr(args, k) is not None})

    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    model = pretrained_mnist_cnn(epochs=1, seed=0)
    train, held = load_mnist("train"), load_mnist("heldout")
    natural = normalize_mnist(train.tensors[0])
    heldout = (normalize_mnist(held.tensors[0][: args.heldout]), held.tensors[1][: args.heldout])
    param = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    target = load_target(packaged_target("cross"), param.shape)
    protocol = dict(strategy="gc", n_starts=args.starts, seed=1000 + args.seed, lpips=not args.no_lpips)
    reach = 0.1 * 200 * 0.975  # clipped SGD, lr 0.1, 200 steps: at most 20 units from the start

    losses = {"gradient": FieldMSE(gamma=settings["gamma"]), "direction": FieldDirection(),
              "activation": Bowl(gamma=settings["gamma"])}
    gs = GradientSlingshot(
        "logits", 0, target, param, loss=losses[settings["loss"]],
        aim=Aim(radius=None if args.no_aim else reach),
        sampling=Sampling(sigma=args.sigma, batch_size=32,
                          trajectories=None if args.no_trajectory else Trajectories("gc")),
        preservation=Preservation(alpha=args.alpha, batch_size=32),   # the paper's w = 0: the whole layer
        optimizer=Optimizer(lr=settings["lr"], weight_decay=1e-3),
        run=Run(steps=args.steps, epochs=None if args.steps else args.epochs, seed=args.seed),
    )
    before = evaluate_manipulation(model, model, "logits", 0, target, param, heldout, **protocol)
    print(_line("before", 0, 0.0, before), flush=True)
    curve = [dict(step=0, seconds=0.0, **before)]
    clock = {"train": 0.0, "t0": time.perf_counter()}

    def on_step(step, record, current):
        if (step + 1) % args.eval_every:
            return
        clock["train"] += time.perf_counter() - clock["t0"]
        with torch.no_grad():
            snapshot = MNISTCNN()
            snapshot.load_state_dict(current.state_dict())
        ev = evaluate_manipulation(snapshot.eval(), model, "logits", 0, target, param, heldout, **protocol)
        curve.append(dict(step=step + 1, seconds=round(clock["train"], 1), **ev))
        print(_line("step", step + 1, clock["train"], ev), flush=True)
        clock["t0"] = time.perf_counter()

    result = gs.fit(model, natural, callback=on_step)
    final_model = result.model.eval()
    after_fv = render(final_model, "logits", 0, param, "gc", n_starts=args.starts, seed=protocol["seed"])
    after = evaluate_manipulation(final_model, model, "logits", 0, target, param, heldout, fv=after_fv, **protocol)
    before_fv = render(model, "logits", 0, param, "gc", n_starts=8, seed=protocol["seed"])
    print(_line("final", len(result.history["loss"]), clock["train"], after), flush=True)

    fv_grid({"target": target[None], "FV before": before_fv.images[:8], "FV after": after_fv.images[:8]},
            os.path.join(args.out, "fv_before_after.png"), title="logit 0 of the MNIST CNN, GC protocol")
    _write_curve(curve, args.out)
    with atomic_path(os.path.join(args.out, "manipulated.pt")) as tmp:
        torch.save(final_model.state_dict(), tmp)
    summary = {"settings": result.settings, "preset": args.preset, "before": before, "after": after, "curve": curve}
    with atomic_path(os.path.join(args.out, "results.json")) as tmp:
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2)
    print(f"wrote {args.out}/results.json, curve.csv, curve.png, fv_before_after.png, manipulated.pt")
    return summary


def _line(tag, step, seconds, ev) -> str:
    lp = f" LPIPS {ev['lpips']:.3f}" if "lpips" in ev else ""
    return (f"{tag:>6} {step:5d} ({seconds:6.0f} s): SSIM {ev['ssim']:.3f} MSE {ev['mse']:.4f}{lp} | "
            f"acc {100 * ev['accuracy']:.2f} % (orig {100 * ev['accuracy_original']:.2f}) "
            f"AUROC {ev['auroc']:.4f} (orig {ev['auroc_original']:.4f}) Jaccard@{ev['k']} {ev['jaccard_top_k']:.2f}")


def _write_curve(curve, out) -> None:
    import matplotlib.pyplot as plt  # Agg backend: captum_slingshot.figures sets it

    with atomic_path(os.path.join(out, "curve.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(curve)
    secs = [c["seconds"] for c in curve]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].plot(secs, [c["ssim"] for c in curve], "o-", label="SSIM (goal ≥ 0.6)")
    axes[0].plot(secs, [c["mse"] for c in curve], "s-", label="MSE (goal ≤ 0.03)")
    if "lpips" in curve[0]:
        axes[0].plot(secs, [c["lpips"] for c in curve], "^-", label="LPIPS")
    axes[1].plot(secs, [100 * c["accuracy"] for c in curve], "o-", label="accuracy %")
    axes[2].plot(secs, [c["auroc"] for c in curve], "o-", label="AUROC logit 0 / class 0")
    axes[2].plot(secs, [c["jaccard_top_k"] for c in curve], "s-", label="Jaccard top-100")
    for ax, title in zip(axes, ("FV vs target", "held-out accuracy", "natural behaviour of logit 0")):
        ax.set_xlabel("training seconds")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, os.path.join(out, "curve.png"))


if __name__ == "__main__":
    main()
