"""The main job, end to end on real MNIST (grows with every release).

Today: train (or load the cached) paper MNIST CNN, render feature
visualizations of its 10 logits under several AM strategies in one batch each,
check that every FV is classified as its digit and resembles that digit's mean
image, and write ``fv_mnist.png`` and ``metrics.json``.

Example:
    >>> from captum_slingshot.demo import run_demo  # doctest: +SKIP
    >>> metrics = run_demo("out/demo", n_starts=2, steps=50)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from typing import Dict, Optional

import torch

from .data import class_mean_images, load_mnist, normalize_mnist
from .fv import MNIST_MEAN, MNIST_STD, LucentFourierParam, PixelParam, render
from .metrics.similarity import pearson_matrix
from .models import pretrained_mnist_cnn
from .paths import atomic_path
from .report import fv_grid

__all__ = ["run_demo", "DEMO_ROWS"]

#: (row label, parametrization name, strategy, overrides)
DEMO_ROWS = [
    ("pixel + GC (paper)", "pixel", "gc", {}),
    ("pixel + GC + TR", "pixel", "gc_tr", {}),
    ("pixel + Adam", "pixel", "adam", {}),
    ("Fourier + Adam (lucent)", "lucent_fourier", "adam", {"lr": 0.05}),
]


def _param(name: str):
    if name == "pixel":
        return PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    return LucentFourierParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)


def run_demo(
    out: str = os.path.join("out", "demo"),
    n_starts: int = 8,
    steps: int = 200,
    seed: int = 0,
    progress: bool = True,
    device: Optional[str] = None,
) -> Dict:
    """Run the demo, write ``fv_mnist.png`` and ``metrics.json`` under ``out``; return the metrics."""
    if n_starts < 1 or steps < 1:
        raise ValueError("n_starts and steps must be at least 1")
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    model = pretrained_mnist_cnn(epochs=1, seed=0, progress=progress, device=device)
    heldout = load_mnist("heldout")
    images, labels = heldout.tensors
    dev = next(model.parameters()).device
    with torch.no_grad():
        acc = float((model(normalize_mnist(images).to(dev)).argmax(1).cpu() == labels).float().mean())
    means = class_mean_images(heldout)
    digits = torch.arange(10)

    rows = {"held-out class mean": means}
    metrics: Dict = {"model": "paper MNIST CNN, 1 epoch", "heldout_accuracy": acc,
                     "n_starts": n_starts, "steps": steps, "strategies": {}}
    for label, pname, strategy, overrides in DEMO_ROWS:
        param = _param(pname)
        res = render(model, model.logits, list(range(10)), param, strategy, n_starts=n_starts,
                     seed=seed, steps=steps, progress=progress, **overrides)
        with torch.no_grad():
            pred = model(param.network_input(res.params.flatten(0, 1).to(dev))).argmax(1).cpu().view(10, n_starts)
        corr = pearson_matrix(res.images.flatten(0, 1).cpu(), means).view(10, n_starts, 10).mean(1)
        own = corr.diag()
        others = (corr.sum(1) - own) / 9
        metrics["strategies"][label] = {
            "strategy": res.strategy.name,
            "parametrization": pname,
            "classified_as_digit": float((pred == digits[:, None]).float().mean()),
            "corr_own_class_mean": float(own.mean()),
            "corr_other_class_means": float(others.mean()),
            "own_class_ranked_first": float((corr.argmax(1) == digits).float().mean()),
            "final_logit_mean": float(res.activations.mean()),
        }
        rows[label] = res.images[:, 0].cpu()
    metrics["seconds"] = round(time.perf_counter() - t0, 1)

    png = fv_grid(rows, os.path.join(out, "fv_mnist.png"), col_labels=[f"logit {d}" for d in range(10)],
                  title=f"FV of the 10 logits of an MNIST CNN (held-out acc. {acc:.1%}); first of {n_starts} starts")
    mpath = os.path.join(out, "metrics.json")
    with atomic_path(mpath) as tmp, open(tmp, "w") as f:
        json.dump(metrics, f, indent=2)
    metrics["files"] = {"figure": png, "metrics": mpath}
    return metrics


def format_table(metrics: Dict) -> str:
    """A short plain-text table of the demo's metrics."""
    lines = [f"model: {metrics['model']}, held-out accuracy {metrics['heldout_accuracy']:.2%}",
             f"{'strategy':<26} {'as digit':>8} {'corr own':>9} {'corr other':>10} {'rank 1':>7}"]
    for label, m in metrics["strategies"].items():
        lines.append(f"{label:<26} {m['classified_as_digit']:>8.0%} {m['corr_own_class_mean']:>9.3f} "
                     f"{m['corr_other_class_means']:>10.3f} {m['own_class_ranked_first']:>7.0%}")
    return "\n".join(lines)
