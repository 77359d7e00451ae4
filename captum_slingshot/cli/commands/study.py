"""``captum-slingshot study``: a grid of transforms x settings x checks over models, to CSV, JSON and a plot."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import List

NAME = "study"

EPILOG = """\
example:
  captum-slingshot study --config study.yaml --out out/study
  captum-slingshot study --config study.yaml --out out/study --resume   # after a crash or a new grid value

study.yaml:
  models:                    # keys of manipulate's model options, plus name and heldout
    - name: mnist            #   (heldout: mnist or a .pt file of (inputs, labels))
      model: mnist_cnn
  transforms:
    - name: gradient_slingshot
      settings:              # fixed: any of the transform's settings (manipulate's flags), plus unit and target
        steps: 1000
        trajectory_strategy: gc
        aim_radius: 19.5
        loss: direction
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
in DIR/study.csv with the same settings are skipped), DIR/study.png (the metrics against each
swept setting) and DIR/study.html (the cells, sortable, and the plot, in one page).
"""


def add_parser(sub: argparse._SubParsersAction, argv: List[str]) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        help="a comparison study: transforms x settings x checks over models, to CSV and plots",
        description=textwrap.fill("Run a grid of manipulations (every model x transform x combination of the swept "
                                  "settings) and measure, for each, how much the unit's FV looks like the target, "
                                  "what the model kept on held-out data, and whether the audit of the layer finds "
                                  "the unit. One row per cell.", 100),
    )
    p.add_argument("--config", required=True, metavar="FILE", help="the study (YAML, see below); an unknown key at "
                   "any level is an error")
    p.add_argument("--out", default=os.path.join("out", "study"), metavar="DIR",
                   help="output folder (default: out/study)")
    p.add_argument("--resume", action="store_true", help="keep the rows of DIR/study.csv whose cell has the same "
                   "settings and run only the other cells")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    return p


def run(args: argparse.Namespace, argv: List[str]) -> int:
    from ...experiments.study import format_rows, load_study_spec, run_study, swept_keys

    spec = load_study_spec(args.config)
    res = run_study(spec, args.out, resume=args.resume, progress=args.progress,
                    warn=lambda msg: print(msg, file=sys.stderr))
    print(format_rows(res["rows"], swept_keys(spec)))
    files = res["files"]
    print(f"\n{len(res['rows'])} rows ({res['ran']} run, {res['resumed']} kept from an earlier run) in {res['seconds']} s")
    shown = [files["html"], files["csv"], files["json"]] + ([files["figure"]] if "figure" in files else [])
    print(f"wrote {', '.join(shown[:-1])} and {shown[-1]}")
    return 0
