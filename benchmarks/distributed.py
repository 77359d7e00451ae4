"""Steps per second of the Gradient Slingshot on 1 vs 2 CPU processes (torchrun, gloo), side by side.

The VGG-9 slingshot of ``benchmarks/slingshot_step.py`` (paper Fourier parametrization, 32 px, logit 3,
natural and manipulation batches of 32 -- the *global* batches: each of 2 processes takes 16) is fitted
under ``torchrun`` in three layouts, alternating in rounds so machine noise hits all alike:

* ``1x2``: one process with 2 torch threads (the baseline: the same 2 cores, no communication);
* ``2x1``: two processes with 1 thread each (gloo all-reduce of the gradients every step);
* ``1x1``: one process with 1 thread (how much one core does alone: the scaling reference).

Each worker times ``--steps`` steps after a warm-up fit and also times the gradient all-reduce on
its own (the same flat buffer, ``--steps`` times), so the report says how much of a distributed
step is communication. Launch overhead (process start, imports, the process group) is not timed.

Usage::

    python benchmarks/distributed.py [--quick] [--steps 20] [--rounds 3] [--width 32]

Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = {"1x2": (1, 2), "2x1": (2, 1), "1x1": (1, 1)}


def worker(steps: int, width: int) -> None:
    import torch.distributed as dist

    from captum_slingshot.distributed import init_from_env
    from captum_slingshot.fv import PaperFourierParam
    from captum_slingshot.models import vgg
    from captum_slingshot.transforms import GradientSlingshot, Preservation, Run, Sampling

    shard = init_from_env(backend="gloo")
    torch.manual_seed(0)
    model = vgg(depth=9, width=width, num_classes=10).eval()
    param = PaperFourierParam((3, 32, 32))
    natural = torch.randn((256,) + param.shape, generator=torch.Generator().manual_seed(1))
    target = torch.rand(param.shape, generator=torch.Generator().manual_seed(0))

    def fit(n: int) -> float:
        gs = GradientSlingshot("logits", 3, target, param, sampling=Sampling(batch_size=32),
                               preservation=Preservation(batch_size=32), run=Run(steps=n, progress=False))
        t0 = time.perf_counter()
        gs.fit(model, natural)
        return time.perf_counter() - t0

    fit(2)  # warm-up
    seconds = fit(steps)
    comm = 0.0
    if shard.world_size > 1:
        flat = torch.randn(sum(p.numel() for p in model.parameters()))
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            dist.all_reduce(flat)
        comm = (time.perf_counter() - t0) / steps
    if shard.is_main:
        print("RESULT " + json.dumps({"s_per_step": seconds / steps, "allreduce_s": comm,
                                      "params": sum(p.numel() for p in model.parameters())}), flush=True)


def launch(layout: str, steps: int, width: int) -> dict:
    procs, threads = LAYOUTS[layout]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
           __file__, "--worker", "--steps", str(steps), "--width", str(width)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"layout {layout} failed (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 steps, 2 rounds (unless given)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per run (default 20)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds; medians reported (default 3)")
    ap.add_argument("--width", type=int, default=32, help="VGG-9 width (the paper's CIFAR model: 64)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.steps = args.steps or (8 if args.quick else 20)
    args.rounds = args.rounds or (2 if args.quick else 3)
    if args.worker:
        worker(args.steps, args.width)
        return
    runs = {k: [] for k in LAYOUTS}
    for r in range(args.rounds):
        for layout in LAYOUTS:
            res = launch(layout, args.steps, args.width)
            runs[layout].append(res)
            print(f"round {r + 1}: {layout:4s} {res['s_per_step'] * 1e3:8.1f} ms/step"
                  + (f"  (all-reduce {res['allreduce_s'] * 1e3:.1f} ms)" if res["allreduce_s"] else ""), flush=True)
    med = {k: statistics.median(x["s_per_step"] for x in v) for k, v in runs.items()}
    comm = statistics.median(x["allreduce_s"] for x in runs["2x1"])
    params = runs["1x1"][0]["params"]
    sps = {k: 1.0 / v for k, v in med.items()}
    print(f"VGG-9 width {args.width} ({params / 1e6:.2f} M parameters), global batches 32/32:")
    for k in LAYOUTS:
        print(f"  {k}: {sps[k]:.2f} steps/s")
    print(f"  2 processes vs 1 process on the same 2 cores: {sps['2x1'] / sps['1x2']:.2f}x; "
          f"vs one core alone: {sps['2x1'] / sps['1x1']:.2f}x (2.0 would be perfect scaling)")
    print(f"  gradient all-reduce (gloo, {params * 4 / 1e6:.1f} MB): {comm * 1e3:.1f} ms per step = "
          f"{comm / med['2x1']:.1%} of a distributed step; the rest is each process's half of the work")
    print(f"metric steps_per_s_1proc_2threads {sps['1x2']:.4f}")
    print(f"metric steps_per_s_2proc_1thread {sps['2x1']:.4f}")
    print(f"metric steps_per_s_1proc_1thread {sps['1x1']:.4f}")
    print(f"metric distributed_speedup_2proc_vs_1proc {sps['2x1'] / sps['1x2']:.4f}")
    print(f"metric distributed_scaling_vs_1thread {sps['2x1'] / sps['1x1']:.4f}")
    print(f"metric allreduce_share {comm / med['2x1']:.4f}")


if __name__ == "__main__":
    main()
