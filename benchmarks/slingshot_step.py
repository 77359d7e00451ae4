"""Cost of one Gradient Slingshot step against one plain training step.

Both sides run in this process on the same model, the same natural batch and
the same synthetic (tunnel) batch, alternating in rounds so machine noise hits
both alike:

* **plain step**: forward the natural batch (cross-entropy to labels) and the
  synthetic batch (the unit's activation), one backward, AdamW step;
* **GS step**: :class:`GradientSlingshot` as shipped — the manipulation loss
  with its double backward pass on the synthetic batch, the preservation loss
  against the frozen original (no graph), clipping, AdamW step; timed through
  ``fit(steps=N)`` so every bit of the real loop is included. A third column
  adds the on-policy trajectory sampling (``trajectory_strategy="gc"``).

Models: the paper's MNIST CNN (pixel parametrization, logit 0) and a small
VGG-9 (width 16, 32 px RGB, batch norm, Fourier parametrization, logit 3).
Target of the issue: GS step ≤ 2.5× the plain step.

Usage::

    python benchmarks/slingshot_step.py [--steps 30] [--rounds 5] [--threads 1]

Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from captum_slingshot.fv import PaperFourierParam, PixelParam
from captum_slingshot.models import MNISTCNN, vgg
from captum_slingshot.transforms import GradientSlingshot, Preservation, Run, Sampling, Trajectories


def plain_steps(model, unit, param, natural, labels, synthetic_q, steps):
    """``steps`` ordinary training steps over the same natural + synthetic batches."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(steps):
        logits = model(natural)
        out = model(param.network_input(synthetic_q))
        loss = F.cross_entropy(logits, labels) - out[:, unit].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()


def gs_steps(model, layer, unit, param, natural, steps, trajectory):
    target = torch.rand(param.shape, generator=torch.Generator().manual_seed(0))
    gs = GradientSlingshot(layer, unit, target, param,
                           sampling=Sampling(batch_size=len(natural),
                                             trajectories=Trajectories("gc", refresh=50) if trajectory else None),
                           preservation=Preservation(batch_size=len(natural)), run=Run(steps=steps, progress=False))
    gs.fit(model, natural)


def bench(name, make_model, layer, unit, param, batch, steps, rounds):
    torch.manual_seed(0)
    model = make_model().eval()
    natural = torch.randn((batch,) + param.shape)
    labels = torch.randint(0, 10, (batch,))
    q = torch.rand((batch,) + param.param_shape) * 0.5
    runs = {"plain": lambda: plain_steps(make_model().eval(), unit, param, natural, labels, q, steps),
            "gs": lambda: gs_steps(model, layer, unit, param, natural, steps, False),
            "gs_traj": lambda: gs_steps(model, layer, unit, param, natural, steps, True)}
    for fn in runs.values():  # warm-up
        fn()
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) / steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{name}: plain {med['plain'] * 1e3:.1f} ms/step, GS {med['gs'] * 1e3:.1f} ms/step "
          f"({med['gs'] / med['plain']:.2f}x), GS + trajectory sampling {med['gs_traj'] * 1e3:.1f} ms/step "
          f"({med['gs_traj'] / med['plain']:.2f}x)", flush=True)
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50, help="steps per timed run (trajectory refresh every 50)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported")
    ap.add_argument("--batch", type=int, default=32, help="natural and synthetic batch size (paper: 32/32)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mnist = bench("MNIST CNN", MNISTCNN, "logits", 0, PixelParam((1, 28, 28)), args.batch, args.steps, args.rounds)
    small_vgg = bench("VGG-9 w16", lambda: vgg(depth=9, width=16, num_classes=10), "logits", 3,
                      PaperFourierParam((3, 32, 32)), args.batch, args.steps, args.rounds)
    for tag, med in (("mnist_cnn", mnist), ("vgg9_w16", small_vgg)):
        print(f"metric slingshot_step_ratio_{tag} {med['gs'] / med['plain']:.3f}")
        print(f"metric slingshot_step_traj_ratio_{tag} {med['gs_traj'] / med['plain']:.3f}")
        print(f"metric slingshot_step_ms_{tag} {med['gs'] * 1e3:.2f}")


if __name__ == "__main__":
    main()
