"""Feature visualization of a real MNIST classifier's logits, with the paper's protocol.

Renders ``--starts`` FVs of each of the 10 logits of the paper's MNIST CNN
(trained on real MNIST, cached after the first run) in one batch (pixel
parametrization, N(0, 0.01^2) starts, SGD lr 0.1 with gradient clipping,
200 steps), then reports per digit how often the FV is classified as that
digit and how its Pearson correlation with the digit's mean held-out image
compares to the other digits' means.

Run:  python examples/fv_mnist_logits.py [--starts 100] [--steps 200] [--strategy gc]
"""

from __future__ import annotations

import argparse

import torch

from captum_slingshot.data import class_mean_images, load_mnist
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam, render
from captum_slingshot.metrics.similarity import pearson_matrix
from captum_slingshot.models import pretrained_mnist_cnn


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--strategy", default="gc")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    model = pretrained_mnist_cnn(epochs=1, seed=0)
    param = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    res = render(model, model.logits, list(range(10)), param, args.strategy,
                 n_starts=args.starts, seed=args.seed, steps=args.steps, progress=True)
    with torch.no_grad():
        pred = model(res.params.flatten(0, 1)).argmax(1).view(10, args.starts)
    means = class_mean_images(load_mnist("heldout"))
    corr = pearson_matrix(res.images.flatten(0, 1), means).view(10, args.starts, 10)  # (digit, start, mean)
    print(f"{'digit':>5} {'as digit':>9} {'corr own':>9} {'best other':>10} {'mean other':>10}")
    summary = {}
    for d in range(10):
        c = corr[d].mean(0)
        others = torch.cat([c[:d], c[d + 1:]])
        hit = float((pred[d] == d).float().mean())
        summary[d] = dict(classified=hit, own=float(c[d]), best_other=float(others.max()), mean_other=float(others.mean()))
        print(f"{d:>5} {hit:>9.0%} {c[d]:>9.3f} {others.max():>10.3f} {others.mean():>10.3f}")
    own = corr.mean(1).diagonal().mean()
    print(f"mean over digits: own {own:.3f} vs other {(corr.mean(1).sum(1).sum() - corr.mean(1).diagonal().sum()) / 90:.3f}")
    return summary


if __name__ == "__main__":
    main()
