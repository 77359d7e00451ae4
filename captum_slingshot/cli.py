"""The ``captum-slingshot`` command.

Example:
    $ captum-slingshot demo --out out/demo
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="captum-slingshot",
        description="Feature visualization you can audit (Gradient Slingshots, Captum plugin).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="render FVs of a real MNIST CNN under several AM strategies",
        description="Train (or reuse the cached) paper MNIST CNN on real MNIST, render feature "
        "visualizations of its 10 logits under several AM strategies, and write fv_mnist.png "
        "and metrics.json.",
        epilog="example: captum-slingshot demo --out out/demo --starts 8",
    )
    demo.add_argument("--out", default=os.path.join("out", "demo"), help="output folder (default: out/demo)")
    demo.add_argument("--starts", type=int, default=8, help="random starts per logit (default 8)")
    demo.add_argument("--steps", type=int, default=200, help="optimization steps (default 200)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            from .demo import format_table, run_demo

            metrics = run_demo(args.out, n_starts=args.starts, steps=args.steps, seed=args.seed,
                               progress=not args.no_progress, device=args.device)
            print(format_table(metrics))
            print(f"\nwrote {metrics['files']['figure']} and {metrics['files']['metrics']} "
                  f"({metrics['seconds']} s)")
            return 0
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"captum-slingshot {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
