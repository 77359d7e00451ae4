"""``captum-slingshot demo``: the whole story on real MNIST (attack, FVs, preservation, audit, report)."""

from __future__ import annotations

import argparse
import os
from typing import List

NAME = "demo"


def add_parser(sub: argparse._SubParsersAction, argv: List[str]) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="the whole story on real MNIST: a model, a fabricated FV, and the audit that finds it",
        description="Train (or reuse the cached) paper MNIST CNN, manipulate logit 0 toward the "
        "cross with the Gradient Slingshot (cached too), render FVs of logit 0 before and after "
        "under each AM strategy and with lucent's render_vis, measure what the model kept, audit "
        "the logits layer of both models, and write report.png, report.html (the audit as a page) and "
        "metrics.json.",
        epilog="example: captum-slingshot demo --out out/demo --starts 8",
    )
    p.add_argument("--out", default=os.path.join("out", "demo"), help="output folder (default: out/demo)")
    p.add_argument("--starts", type=int, default=8, help="FV starts per strategy (default 8)")
    p.add_argument("--steps", type=int, default=200, help="FV optimization steps (default 200)")
    p.add_argument("--manipulation-steps", type=int, default=1000,
                   help="Gradient Slingshot steps (default 1000, about a minute on one core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def run(args: argparse.Namespace, argv: List[str]) -> int:
    from ...experiments.demo import format_table, run_demo

    metrics = run_demo(args.out, n_starts=args.starts, steps=args.steps, seed=args.seed,
                       progress=not args.no_progress, device=args.device, manipulation_steps=args.manipulation_steps)
    print(format_table(metrics))
    files = metrics["files"]
    print(f"\nwrote {files['figure']}, {files['html']} and {files['metrics']} ({metrics['seconds']['total']} s)")
    return 0
