"""The ``captum-slingshot`` command.

Subcommands: ``demo`` (attack and audit on a real MNIST CNN), ``manipulate`` (the Gradient Slingshot attack on a
model, from flags and/or a YAML file), ``render`` (FVs of units under several AM strategies),
``audit`` (the defense checks on a layer) and ``study`` (a grid of transforms × settings × checks
over models, from a YAML file, to CSV and plots). ``captum-slingshot COMMAND --help`` shows an example.
User errors print one ``error: ...`` line and exit with status 1 (set ``CAPTUM_SLINGSHOT_DEBUG=1``
for the traceback); argument errors exit with status 2.

Example:
    $ captum-slingshot demo --out out/demo
    $ captum-slingshot manipulate --steps 500 --trajectory-strategy gc --aim-radius 19.5 --out out/attack
    $ captum-slingshot audit --weights out/attack/model.pt --out out/audit
    $ captum-slingshot study --config examples/study_alpha_units.yaml --out out/study
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import List, Optional

from .cli_loading import CLIError
from .cli_settings import MANIPULATE_OPTIONS, MODEL_OPTIONS, PARAM_OPTIONS, add_options, merge_settings, read_config

__all__ = ["main", "build_parser"]

_RAW = argparse.RawDescriptionHelpFormatter

_MANIPULATE_EPILOG = """\
examples:
  # the paper's attack on logit 0 of the cached MNIST CNN (target: the packaged cross)
  captum-slingshot manipulate --steps 500 --trajectory-strategy gc --aim-radius 19.5 --out out/attack

  # settings from a YAML file (keys = flag names with _ for -), flags override it
  captum-slingshot manipulate --config settings.yaml --gamma 20 --out out/attack

  # your own model: an import path called with no arguments, plus a state dict
  captum-slingshot manipulate --model mypkg.nets:make_net --weights net.pt --layer fc \\
      --data inputs.pt --shape 3,32,32 --target target.png --out out/attack

settings.yaml:
  steps: 500
  gamma: 10.0
  trajectory_strategy: gc
  aim_radius: 19.5
  target: cross

writes DIR/model.pt (the manipulated state dict: torch.load(path, weights_only=True)) and
DIR/run.json (settings, model source, loss history summary, command line, versions).
"""

_RENDER_EPILOG = """\
example:
  captum-slingshot render --units 0,3,7 --strategies gc,tr,adam --starts 4 --steps 100 --out out/fv
  captum-slingshot render --weights out/attack/model.pt --out out/fv_attacked

writes DIR/fv.png (one row per strategy: the start with the highest activation, one column per
unit) and DIR/fv.json (every start's final activation, per strategy).
"""

_AUDIT_EPILOG = """\
example:
  captum-slingshot audit --weights out/attack/model.pt --layer logits --out out/audit
  captum-slingshot audit --checks slingshot_field,natural_gap --no-lpips --starts 2 --out out/audit

writes DIR/report.json, DIR/report.csv, DIR/summary.txt and DIR/figures/unit_*.png (flagged units),
and prints the summary and the flagged units.
"""


_STUDY_EPILOG = """\
example:
  captum-slingshot study --config study.yaml --out out/study
  captum-slingshot study --config study.yaml --out out/study --resume   # after a crash or a new grid value

study.yaml:
  models:                    # keys of manipulate's model options, plus name and heldout
    - name: mnist            #   (heldout: mnist or a .pt file of (inputs, labels))
      model: mnist_cnn
  transforms:
    - name: gradient_slingshot
      settings:              # fixed: any manipulate setting (target, gamma, steps, ...)
        steps: 1000
        trajectory_strategy: gc
        aim_radius: 19.5
        loss: direction
        gamma: 1.0
      grid:                  # swept: every combination
        alpha: [0.5, 0.8]
        unit: [0, 3]
  checks: [activation_excess, strategy_divergence]   # default: the audit's default checks
  evaluation: {starts: 20, heldout: 2000, strategy: gc}   # also steps, k, lpips, max_batch, seed
  audit: {threshold: 3.5}    # also combine, starts, steps, k, samples, lpips, max_batch, seed

For every model x transform x grid point: manipulate, then measure FV similarity to the target
(SSIM, MSE) under evaluation.strategy, held-out accuracy and its drop, and the audit of the layer
(the unit's z per check, combined z, rank, flagged); plus one unmanipulated baseline row per model
and unit. Writes DIR/study.csv and DIR/study.json after every cell (with --resume, cells already
in DIR/study.csv with the same settings are skipped) and DIR/study.png (the metrics against each
swept setting).
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    add_options(p.add_argument_group("model"), MODEL_OPTIONS)
    add_options(p.add_argument_group("parametrization"), PARAM_OPTIONS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="captum-slingshot",
        description="Feature visualization you can audit (Gradient Slingshots, Captum plugin).",
        epilog="run 'captum-slingshot COMMAND --help' for a command's options and an example",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="the whole story on real MNIST: a model, a fabricated FV, and the audit that finds it",
        description="Train (or reuse the cached) paper MNIST CNN, manipulate logit 0 toward the "
        "cross with the Gradient Slingshot (cached too), render FVs of logit 0 before and after "
        "under each AM strategy and with lucent's render_vis, measure what the model kept, audit "
        "the logits layer of both models, and write report.png and metrics.json.",
        epilog="example: captum-slingshot demo --out out/demo --starts 8",
    )
    demo.add_argument("--out", default=os.path.join("out", "demo"), help="output folder (default: out/demo)")
    demo.add_argument("--starts", type=int, default=8, help="FV starts per strategy (default 8)")
    demo.add_argument("--steps", type=int, default=200, help="FV optimization steps (default 200)")
    demo.add_argument("--manipulation-steps", type=int, default=1000,
                      help="Gradient Slingshot steps (default 1000, about a minute on one core)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")

    man = sub.add_parser(
        "manipulate", formatter_class=_RAW, epilog=_MANIPULATE_EPILOG,
        help="fine-tune a model with the Gradient Slingshot so FV of one unit shows a target image",
        description=textwrap.fill("Run the Gradient Slingshot attack: fine-tune a copy of a model so that feature "
        "visualization of one unit converges to a target image while the model behaves as before on "
        "natural data. Settings come from the flags and/or a YAML file (--config); flags win.", 100),
    )
    man.add_argument("--config", metavar="FILE", help="YAML file of settings (keys: the flag names below "
                     "with _ for -); an unknown key is an error")
    by_key = {o.key: o for o in MANIPULATE_OPTIONS}
    groups = [("model", [o.key for o in MODEL_OPTIONS]),
              ("data and target", ["data", "data_limit", "target", "unit"]),
              ("parametrization", [o.key for o in PARAM_OPTIONS])]
    grouped = {k for _, keys in groups for k in keys}
    groups.append(("gradient slingshot and output", [o.key for o in MANIPULATE_OPTIONS if o.key not in grouped]))
    for title, keys in groups:
        add_options(man.add_argument_group(title), [by_key[k] for k in keys], suppress=True)

    ren = sub.add_parser(
        "render", formatter_class=_RAW, epilog=_RENDER_EPILOG,
        help="render FVs of units of a model under several AM strategies (PNG grid + JSON)",
        description=textwrap.fill("Feature visualization of units of a layer under several activation-maximization "
        "strategies (gc, tr, adam, lucent ...), all random starts in one batch per strategy.", 100),
    )
    _add_common(ren)
    g = ren.add_argument_group("rendering")
    g.add_argument("--units", metavar="I,J,...", help="units (channels/features) to render (default: all "
                   "units of the layer)")
    g.add_argument("--strategies", default="gc,tr,adam", metavar="S,S,...",
                   help="AM strategies (default: gc,tr,adam; also none, gc_tr, adam_gc, adam_tr, lucent ...)")
    g.add_argument("--starts", type=int, default=1, metavar="N", help="random starts per unit (default 1)")
    g.add_argument("--steps", type=int, default=None, metavar="N", help="optimization steps (default: each "
                   "strategy's own, 200 for gc/tr/adam)")
    g.add_argument("--lr", type=float, default=None, help="learning rate for every strategy (default: each "
                   "strategy's own)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    g.add_argument("--out", default=os.path.join("out", "render"), metavar="DIR",
                   help="output folder (default: out/render)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")

    aud = sub.add_parser(
        "audit", formatter_class=_RAW, epilog=_AUDIT_EPILOG,
        help="audit every unit of a layer with the defense checks and flag the outliers",
        description=textwrap.fill("Run the defense checks on every unit of a layer and flag the units that stand out "
        "from their own layer (robust z-scores; no labels and no clean reference model needed).", 100),
    )
    _add_common(aud)
    g = aud.add_argument_group("audit")
    g.add_argument("--data", default=None, metavar="mnist|FILE",
                   help="natural inputs for natural_gap/activation_excess: 'mnist' (default for mnist_cnn) "
                   "or a .pt file with a tensor of normalized inputs")
    g.add_argument("--data-limit", type=int, default=None, metavar="N", help="use only the first N natural inputs")
    g.add_argument("--units", metavar="I,J,...", help="units to audit (default: every unit of the layer)")
    g.add_argument("--checks", default=None, metavar="C,C,...",
                   help="checks to run (default: activation_excess,strategy_divergence; also natural_gap, "
                   "slingshot_field)")
    g.add_argument("--threshold", type=float, default=3.5, help="flag units whose combined z exceeds this "
                   "(default 3.5)")
    g.add_argument("--combine", choices=("stouffer", "mean", "max"), default="stouffer",
                   help="pool the per-check z: stouffer = sum/sqrt(K) (default), mean, or max")
    g.add_argument("--starts", type=int, default=None, metavar="N", help="FV starts per unit in the checks "
                   "(default: each check's own, 4)")
    g.add_argument("--steps", type=int, default=None, metavar="N", help="FV steps in the checks (default: the "
                   "strategies' own)")
    g.add_argument("--k", type=int, default=None, help="top-k natural images for natural_gap (default 16)")
    g.add_argument("--samples", type=int, default=None, metavar="N", help="gradient samples per radius for "
                   "slingshot_field (default 96)")
    g.add_argument("--no-lpips", action="store_true", help="natural_gap without LPIPS (faster)")
    g.add_argument("--max-batch", type=int, default=None, metavar="N", help="at most N examples per batch")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    g.add_argument("--out", default=os.path.join("out", "audit"), metavar="DIR",
                   help="report folder (default: out/audit)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")

    stu = sub.add_parser(
        "study", formatter_class=_RAW, epilog=_STUDY_EPILOG,
        help="a comparison study: transforms x settings x checks over models, to CSV and plots",
        description=textwrap.fill("Run a grid of manipulations (every model x transform x combination of the swept "
        "settings) and measure, for each, how much the unit's FV looks like the target, what the model kept on "
        "held-out data, and whether the audit of the layer finds the unit. One row per cell.", 100),
    )
    stu.add_argument("--config", required=True, metavar="FILE", help="the study (YAML, see below); an unknown "
                     "key at any level is an error")
    stu.add_argument("--out", default=os.path.join("out", "study"), metavar="DIR",
                     help="output folder (default: out/study)")
    stu.add_argument("--resume", action="store_true", help="keep the rows of DIR/study.csv whose cell has the "
                     "same settings and run only the other cells")
    stu.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    return parser


def _run(args: argparse.Namespace, argv: List[str]) -> int:
    if args.command == "demo":
        from .demo import format_table, run_demo

        metrics = run_demo(args.out, n_starts=args.starts, steps=args.steps, seed=args.seed,
                           progress=not args.no_progress, device=args.device,
                           manipulation_steps=args.manipulation_steps)
        print(format_table(metrics))
        print(f"\nwrote {metrics['files']['figure']} and {metrics['files']['metrics']} "
              f"({metrics['seconds']['total']} s)")
        return 0
    if args.command == "manipulate":
        from .cli_commands import run_manipulate

        given = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
        from_file = read_config(args.config, MANIPULATE_OPTIONS) if args.config else {}
        run = run_manipulate(merge_settings(MANIPULATE_OPTIONS, from_file, given), argv)
        h = run["history"]
        last = h.get("loss", {})
        print(f"manipulated {run['settings']['layer']}[{run['settings']['neuron_selector']}] in {h['steps']} "
              f"steps ({run['seconds']} s): loss {last.get('first', float('nan')):.4g} -> "
              f"{last.get('last', float('nan')):.4g}")
        print(f"wrote {run['files']['model']} and {run['files']['run']}")
        return 0
    if args.command == "render":
        from .cli_commands import run_render

        doc = run_render(vars(args))
        for name, rec in doc["strategies"].items():
            acts = ", ".join(f"{u}: {a:.3g}" for u, a in zip(doc["units"], rec["best_activation"]))
            print(f"{name:<10} best activation per unit  {acts}")
        print(f"wrote {doc['files']['figure']} and {doc['files']['json']}")
        return 0
    if args.command == "audit":
        from .cli_commands import run_audit

        res = run_audit(vars(args), warn=lambda msg: print(msg, file=sys.stderr))
        print(res["summary"])
        print(f"\nflagged units: {res['flagged']}")
        files = res["files"]
        extra = f" and {len(files['figures'])} figures" if files["figures"] else ""
        print(f"wrote {files['json']}, {files['csv']}, {files['summary']}{extra}")
        return 0
    if args.command == "study":
        from .study import format_rows, load_study_spec, run_study, swept_keys

        spec = load_study_spec(args.config)
        res = run_study(spec, args.out, resume=args.resume, progress=args.progress,
                        warn=lambda msg: print(msg, file=sys.stderr))
        print(format_rows(res["rows"], swept_keys(spec)))
        files = res["files"]
        print(f"\n{len(res['rows'])} rows ({res['ran']} run, {res['resumed']} kept from an earlier run) in "
              f"{res['seconds']} s")
        shown = [files["csv"], files["json"]] + ([files["figure"]] if "figure" in files else [])
        print(f"wrote {', '.join(shown[:-1])} and {shown[-1]}")
        return 0
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _run(args, argv)
    except (CLIError, ValueError, TypeError, FileNotFoundError, OSError, RuntimeError) as err:
        if os.environ.get("CAPTUM_SLINGSHOT_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"captum-slingshot {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
