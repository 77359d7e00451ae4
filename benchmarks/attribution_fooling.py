"""Attribution fooling benchmark: Heo et al.'s four modes on real MNIST (and an RGB model), the
fooling success rate on held-out inputs, transfer to the interpreters not trained against, the
accuracy cost, and whether the attribution audit tells fooled models from clean ones.

Protocol, fixed before the reported runs:

* **Attacks.** Every mode (``location`` onto the frame, ``topk``, ``center_mass``, ``active`` on
  classes 3 and 8) x the trained interpreter (``grad_cam`` on the last convolution, and
  ``lrp_epsilon``), fine-tuning the paper's MNIST CNN (the cached ``pretrained_mnist_cnn``, seed 0)
  with cross-entropy on the paper's training split. The settings of :data:`SETTINGS` (learning
  rate, ``lambda``, steps) were chosen on the *held-out* split (12 000 images of the MNIST
  training set); everything reported here is measured on the MNIST **test** set, never used for
  choosing.
* **Scores.** FSR per interpreter with the thresholds of :mod:`captum_slingshot.metrics.fooling`
  (location: share of relevance in the region >= (1 + region area) / 2; top-k: overlap with the
  original's top 10 % <= 0.3; centre of mass: moved >= 0.15 of the diagonal; active: the swapped
  maps correlate more with the other class's original map than with their own). Transfer: the mean
  FSR over the interpreters not trained against (grad_cam, lrp_epsilon, saliency,
  input_x_gradient). Accuracy drop: points on the test set (negative: the fine-tune improved the
  one-epoch CNN).
* **Detection.** :func:`captum_slingshot.checks.audit_attributions` (default interpreters and
  checks, declared ``min_scale``; nothing tuned) against a trusted reference, a clean CNN of
  training seed 2. Score of a model: the maximum combined z over interpreters. Clean models: the
  base CNNs of seeds 0 and 1 and cross-entropy-only fine-tunes of them (same optimizer, 800
  steps); fooled models: every attack above. ``attribution_check_auroc`` separates those two sets.
  **Held out**: the adaptive attack on the disagreement check (``location``, trained against
  ``grad_cam+lrp_epsilon`` together) is reported on its own, never pooled or used for a choice.
* **Detection, round 2** (fixed before any result of it). The first round missed both active attacks
  on MNIST and RGB (they change maps on two-class images only; the checks looked at single inputs).
  Round 2 adds ``mosaic_focus`` (Quantus' Focus on two-image mosaics, the worst partner class; its
  layout and declared ``min_scale`` 0.05 as in its module, nothing tuned) to the audit's defaults;
  everything else is unchanged, and the numbers of round 1 stay in the README's history. **Held
  out**: the adaptive attack on ``mosaic_focus`` (:data:`ADAPTIVE_FOCUS`): active fooling of
  Grad-CAM trained on composites stacked *top over bottom* (:func:`stacked_composites`), a layout the
  check does not use; its FSR is measured on held-out stacked composites and on the side-by-side ones
  (does the swap carry over to the check's layout?), with its audit z. Reported on its own.
* **Detection, round 4: against the model before the fine-tune** (designed on the development suite of
  ``attribution_check_probe.py``, fixed before its first result here). Every model of this suite is a fine-tune
  of a base the auditor holds, so the audit can compare with it: ``audit_attributions(..., original=base)``
  with only the checks that need it (:data:`COMPARATIVE_CHECKS`: ``explanation_drift``, ``class_swap``, their
  declared ``min_scale``), Grad-CAM at the ReLU after the last convolution (:data:`RECTIFIED`), the default
  interpreters, and as reference the auditor's own preservation-only fine-tune of the same base (seed
  :data:`AUDITOR_SEED`). Clean models: the fine-tunes above and :data:`COMPARATIVE_CLEAN`'s (distillation to
  the base, and one more seed) of both bases; an untouched base is left out (it has nothing to drift from).
  Fooled: every attack. ``comparative_check_auroc`` (RGB: ``rgb_comparative_check_auroc``). **Held out**:
  both adaptive attacks above are scored against the original too, on their own (``adaptive_focus``, trained
  on stacked composites, is the adaptive attack on ``class_swap``, whose mosaics are side by side), and so is
  the adaptive attack on ``explanation_drift`` (:data:`ADAPTIVE_CLASS`: top-k fooling of LRP on the images
  of one class only, whose maps are a tenth of the audit's inputs).
* **RGB** (skipped by ``--quick``): ``SmallRGBCNN`` (width 16) trained on scikit-image photo crops
  (64 px, one class per photo) and their mirror images, SGD then Adam until it stops moving
  (:data:`RGB_SETTLE_STEPS`). :data:`RGB_SPLIT` crops per photo from disjoint tiles of each photo
  (:data:`RGB_TILES`, a Latin square on a 4 x 4 grid): train (8 tiles), *validation* (4) and held-out
  *test* (4), so that no split shares a pixel with another and none is a part of the photo the model
  never saw. Every mode x trained interpreter; active fooling swaps photos 0 and 1 on composites of
  two crops. The fooling runs keep the predictions on the model's own training data (cross-entropy to
  its labels). The settings of
  :data:`RGB_SETTINGS` (preservation, learning rate, ``lambda``, steps) were chosen on the
  validation crops by ``--tune-rgb`` (grid :data:`RGB_GRID`, scored after each of
  :data:`RGB_CHECKPOINTS` steps; rule: validation FSR >= 0.9, else >= 0.8, with a validation
  accuracy drop <= 1 point, the model that kept most validation predictions winning); the RGB
  numbers reported are measured once on the held-out test crops, never used for choosing. The RGB
  attribution audit (:func:`rgb_detection`, ``rgb_attribution_check_auroc``) is MNIST's, untouched:
  reference an RGB model of seed 2, clean models of seeds 0 and 1 and their preservation-only
  fine-tunes, 200 held-out crops. The base model depends on torch's thread count:
  the reported numbers use ``CS_THREADS=1``.

Usage::

    python benchmarks/attribution_fooling.py [--quick] [--out runs/attribution_fooling]
    python benchmarks/attribution_fooling.py --mnist-only     # the full MNIST part (both attack seeds), no RGB
    python benchmarks/attribution_fooling.py --rgb-only [--cells topk/grad_cam,active]   # the RGB part alone
    python benchmarks/attribution_fooling.py --tune-rgb [--cells ...]    # the RGB grid, validation crops only
    python benchmarks/attribution_fooling.py --rgb-only --attack-seed 1 --out runs/rgb_seed1   # a replicate
    python benchmarks/attribution_fooling.py --rgb-audit-only --out runs/rgb_seed1   # the RGB audit of those models
    python benchmarks/attribution_fooling.py --comparative-figure runs/mnist/results.json \
        runs/rgb/results_rgb_audit.json runs/rgb_seed1/results_rgb_audit.json --out docs   # round 4's figure

``--quick``: one attack seed, 500 test inputs, no RGB part (21 minutes on 2 cores). The reported MNIST numbers
use ``CS_THREADS=1`` (``--mnist-only``, 28 minutes beside two RGB processes): at another thread count the fooled
models differ in their last bits and so do the audit's scores (the first run, at torch's default, had AUROC 1.0; one
thread gives 0.92). ``--cells``
picks cells of ``--rgb-only`` / ``--tune-rgb`` (``mode/interpreter``, a mode or an interpreter).
``CS_THREADS=1`` sets torch's thread count (for shared machines). The RGB base models (seed 0, and the audit's seeds
1 and 2) are cached under ``models_dir()`` by seed, data, schedule and thread count (:func:`rgb_model`), so a second
run, or ``--rgb-audit-only`` on the fooled models a ``--rgb-only`` run saved, skips their 20 minutes of training.
Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from captum_slingshot.attributions import make_interpreter, normalize_maps
from captum_slingshot.checks import audit_attributions
from captum_slingshot.data import SKIMAGE_PHOTOS, load_mnist, normalize_mnist, photo_crops, two_class_composites
from captum_slingshot.evaluation import evaluate_fooling
from captum_slingshot.metrics import accuracy, auroc
from captum_slingshot.models import SmallRGBCNN, pretrained_mnist_cnn, train_classifier
from captum_slingshot.transforms import AttributionFooling
from captum_slingshot.transforms.finetune import keep_loss
from captum_slingshot.transforms.fooling import Training

INTERPRETERS = ("grad_cam", "lrp_epsilon", "saliency", "input_x_gradient")
CLASSES = (3, 8)
RGB_CLASSES = (0, 1)
#: (mode, trained interpreter) -> lr, lambda, steps; chosen on the MNIST held-out split
SETTINGS: Dict[Tuple[str, str], Dict[str, Any]] = {
    ("location", "grad_cam"): dict(lr=1e-3, fooling_weight=20.0, steps=4000),
    ("location", "lrp_epsilon"): dict(lr=1e-3, fooling_weight=10.0, steps=1500),
    ("topk", "grad_cam"): dict(lr=1e-3, fooling_weight=1.0, steps=800),
    ("topk", "lrp_epsilon"): dict(lr=1e-3, fooling_weight=10.0, steps=1500),
    ("center_mass", "grad_cam"): dict(lr=1e-3, fooling_weight=5.0, steps=800),
    ("center_mass", "lrp_epsilon"): dict(lr=1e-3, fooling_weight=2.0, steps=800),
    ("active", "grad_cam"): dict(lr=1e-3, fooling_weight=1.0, steps=800),
    ("active", "lrp_epsilon"): dict(lr=1e-3, fooling_weight=10.0, steps=800),
}
#: the RGB model's crops per photo: train, validation and held-out test, spread evenly over the split's tiles
#: (:data:`RGB_TILES`). Validation is for ``--tune-rgb``, test only for the report. Round 3 (commit e24004d) held out
#: bands of the photos' height instead (train 20-75 %, validation the top 20 %, test the bottom 25 %): there the base
#: model reached 78.7 % / 85.3 %, and a fine-tune *without any fooling* already lost 4.7 held-out points and changed
#: 6 % of the predictions, so the 2-point budget measured the shift to an unseen band, not the attacks
RGB_SPLIT = (120, 40, 40)
#: each photo is cut into RGB_TILE_GRID x RGB_TILE_GRID tiles, given to the splits as a Latin square: in every row
#: and every column of tiles two are train, one validation and one held-out test, so that the held-out crops come
#: from the photos' whole extent (no band of the photo that the model never saw) and share no pixel with the others
RGB_TILE_GRID = 4
RGB_TILES: Dict[str, Tuple[Tuple[int, int], ...]] = {
    "train": tuple((r, (r + k) % RGB_TILE_GRID) for r in range(RGB_TILE_GRID) for k in (1, 3)),
    "val": tuple((r, (r + 2) % RGB_TILE_GRID) for r in range(RGB_TILE_GRID)),
    "test": tuple((r, r) for r in range(RGB_TILE_GRID)),
}
#: epochs of the RGB model (SGD lr 1e-2, batch 32) over the train crops and their mirror images (an earlier
#: validation split: 0.925 with 15 epochs on the crops alone, 0.938 with 30, 0.988 like this), then
#: RGB_SETTLE_STEPS of Adam (lr 1e-3, batch 32, cross-entropy, the fine-tunes' optimizer) until the model stops
#: moving. Without them the model was not converged: a plain cross-entropy fine-tune of 100 steps, no fooling at all,
#: changed 21 % of its validation predictions (and raised validation accuracy from 61.6 to 73.8 %), so the fooling
#: runs' accuracy cost was partly unfinished training. In a probe settling 3 x 1 000 steps: validation accuracy
#: 81.6 %, and a further 300-step distillation-only fine-tune kept 96.6 % of the validation predictions
#: (cross-entropy only: 94.1 %); the benchmark's single 3 000-step run reaches 78.7 %. On the tiles (round 4):
#: validation 93.1 % (train 99.9 %); a 300-step cross-entropy fine-tune without fooling keeps 98.1 % of the
#: validation predictions (accuracy unchanged), a 300-step distillation one only 93.1 % (-3.75 points): the base
#: model is so sure of its training data that the KL term's gradient is mostly noise, which Adam scales up to full
#: steps. Hence round 4's grid keeps the predictions with cross-entropy only
RGB_EPOCHS = 30
RGB_SETTLE_STEPS = 3000
#: ``--tune-rgb``'s grid: (preservation, lr, lambda), each scored on the validation crops after each checkpoint's
#: steps (up to RGB_MAX_STEPS of the trained interpreter). The fooling runs keep the predictions on the train crops
#: and their mirror images, the data the base model was trained on. History: round 1 (lr 1e-3, lambda 30 / 10 / 3,
#: cross-entropy, same-region validation) chose lambda 30 at 200 steps for location/grad_cam and topk/grad_cam and
#: showed lambda 30 costing 4 to 18 validation points elsewhere; round 2 ((1e-3, 10) and (3e-4, 10), cross-entropy)
#: gave the earlier RGB_SETTINGS, which lost 2.2 to 14.1 held-out points in 7 of 8 cells. Round 3 (this grid, the
#: banded validation, the settled base model, the mirrored preservation data and the rule below) was fixed before
#: any of its results (two false starts were stopped after their first rows: a validation band at 55-75 %, and an
#: unsettled base model; they showed the base model at 62-66 % on a shifted band and its accuracy moving by +-8
#: points between checkpoints). Round 4 (this grid, the tiles, the same checkpoints and rule) was fixed before any of
#: its fooling results; the only results seen were the base model's and the two controls' on the validation tiles
RGB_GRID: Tuple[Tuple[str, float, float], ...] = (("ce", 1e-3, 10.0), ("ce", 1e-3, 30.0), ("ce", 3e-4, 30.0))
RGB_CHECKPOINTS = (100, 200, 300, 500, 750, 1000)
RGB_MAX_STEPS = {"grad_cam": 1000, "lrp_epsilon": 750}
#: the rule: a run stops at its first checkpoint with validation FSR >= RGB_TARGET_FSR (a margin for the shift to
#: the held-out band) and a validation accuracy drop of at most RGB_MAX_VAL_DROP points (half the 2-point budget: a
#: margin for the shift); of those the model that moved least wins (the highest share of validation predictions kept,
#: then fewer steps); else the same with FSR >= RGB_MIN_FSR; else a miss. (A rule of 98 % agreement was dropped
#: before any fooling result: a fine-tune without fooling kept only 94-97 % of the predictions on round 3's band)
RGB_TARGET_FSR, RGB_MIN_FSR, RGB_MAX_VAL_DROP = 0.9, 0.8, 1.0
#: the control reported next to the attacks: the attacks' fine-tune with the preservation loss only (no fooling)
RGB_CONTROL_STEPS, RGB_CONTROL_PRESERVE = 300, "ce"
#: held-out crops the RGB attribution audit looks at (MNIST's audit: 200 test digits)
RGB_AUDIT_INPUTS = 200
#: (mode, trained interpreter) -> preservation, lr, lambda, steps of the RGB attacks: chosen by ``--tune-rgb`` on
#: the RGB *validation* crops with the rule above, never on the held-out crops the report measures. "miss": no
#: setting of the grid passed on validation (the fallback of :func:`_choose`). Round 4 (the tiles), every cell tuned
#: over the whole grid (active/lrp_epsilon's (3e-4, 30) point in a separate run: its best checkpoint, 500 steps, val
#: FSR 0.925 with a drop of +2.50, did not pass); round 3's choices and held-out numbers: commit e24004d
RGB_SETTINGS: Dict[Tuple[str, str], Dict[str, Any]] = {
    ("location", "grad_cam"): dict(preserve="ce", lr=3e-4, fooling_weight=30.0, steps=500),  # val FSR 0.903, agreement 0.962, acc drop -2.19
    ("topk", "grad_cam"): dict(preserve="ce", lr=1e-3, fooling_weight=30.0, steps=1000),  # val FSR 0.938, agreement 0.969, acc drop -2.19
    ("center_mass", "grad_cam"): dict(preserve="ce", lr=1e-3, fooling_weight=10.0, steps=1000),  # val FSR 0.994, agreement 0.941, acc drop +0.94
    ("active", "grad_cam"): dict(preserve="ce", lr=1e-3, fooling_weight=30.0, steps=500),  # val FSR 1.000, agreement 0.966, acc drop +0.00
    ("location", "lrp_epsilon"): dict(preserve="ce", lr=1e-3, fooling_weight=30.0, steps=500),  # val FSR 0.822, agreement 0.934, acc drop +1.88: miss
    ("topk", "lrp_epsilon"): dict(preserve="ce", lr=1e-3, fooling_weight=30.0, steps=750),  # val FSR 0.984, agreement 0.934, acc drop +2.19: miss
    ("center_mass", "lrp_epsilon"): dict(preserve="ce", lr=1e-3, fooling_weight=30.0, steps=750),  # val FSR 0.816, agreement 0.919, acc drop +1.88: miss
    ("active", "lrp_epsilon"): dict(preserve="ce", lr=1e-3, fooling_weight=10.0, steps=750),  # val FSR 0.900, agreement 0.947, acc drop -0.94
}
ADAPTIVE = ("location", "grad_cam+lrp_epsilon", dict(lr=1e-3, fooling_weight=20.0, steps=2000))
#: the held-out attack on ``mosaic_focus``: active fooling of Grad-CAM (SETTINGS' active/grad_cam setting) trained
#: on composites stacked top over bottom, which the check's side-by-side mosaics do not show
ADAPTIVE_FOCUS = ("active", "grad_cam", dict(SETTINGS[("active", "grad_cam")]))
#: the held-out attack on the audit against the original (round 4): top-k fooling of LRP (its SETTINGS) trained on
#: the images of one class only (``fooling_data``), so that the maps of the other nine classes stay near the
#: original's and dilute ``explanation_drift``'s mean; its FSR is measured on the held-out images of that class
ADAPTIVE_CLASS = ("topk", "lrp_epsilon", dict(SETTINGS[("topk", "lrp_epsilon")]), 3)
#: round 5's held-out attack on the audit against the original, fixed before any result of it: ADAPTIVE_CLASS plus
#: the hold term (``hold_weight``, as large as lambda), which holds the LRP maps of the other nine classes at the
#: original's, so that the fooling stays in class 3 (ADAPTIVE_CLASS's spread to every class: FSR 0.996 on the others)
ADAPTIVE_HOLD = ("topk", "lrp_epsilon", dict(SETTINGS[("topk", "lrp_epsilon")], hold_weight=10.0), 3)
CLEAN_STEPS = 800
#: round 4 of detection, the audit against the model before the fine-tune (designed on
#: ``attribution_check_probe.py``'s development suite, fixed before its first result here): its checks, the seed of
#: the auditor's own cross-entropy fine-tune of each base (its reference), and the clean fine-tunes it adds to each
#: base's cross-entropy fine-tune, as (preservation loss, fine-tune seed)
COMPARATIVE_CHECKS = ("explanation_drift", "class_swap")
AUDITOR_SEED = 100
COMPARATIVE_CLEAN = (("distill", 101), ("ce", 102))
#: the ReLU after each model's last convolution: the comparative audit's Grad-CAM layer (rectified feature maps)
RECTIFIED = {"MNISTCNN": "relu2", "SmallRGBCNN": "relu4"}


def fool(base: nn.Module, natural: Tuple[Tensor, Tensor], mode: str, interpreter: str, settings: Dict[str, Any],
         seed: int, classes: Tuple[int, int] = CLASSES, callback: Any = None, progress: bool = True,
         fooling_data: Optional[Tensor] = None) -> nn.Module:
    """``base`` fooled in ``mode`` against ``interpreter``; ``fooling_data``: active fooling's two-class images
    (default: side-by-side composites of ``natural``). ``settings`` may also give a passive mode's fooled
    ``classes`` and a ``hold_weight`` (:class:`AttributionFooling`'s)."""
    s = dict(settings)
    passive_classes = s.pop("classes", None)
    attack = AttributionFooling(mode=mode, interpreter=interpreter, fooling_weight=s.pop("fooling_weight"),
                                preserve=s.pop("preserve", "ce"), hold_weight=s.pop("hold_weight", 0.0),
                                classes=classes if mode == "active" else passive_classes,
                                training=Training(seed=seed, progress=progress, batch_size=32, **s))
    return attack.fit(base, natural, fooling_data=fooling_data, callback=callback).model.eval()


def clean_finetune(base: nn.Module, natural: Tuple[Tensor, Tensor], steps: int, seed: int,
                   preserve: str = "ce", lr: float = 1e-3, optimizer: str = "adam") -> nn.Module:
    """The control: the same fine-tune (Adam or SGD as the attacks', ``lr`` 1e-3 like theirs, batch 32, eval mode)
    with the preservation loss only (``"ce"``: cross-entropy to the labels; ``"distill"``: KL to ``base``'s
    softmax)."""
    import copy

    from captum_slingshot.transforms.fooling.config import make_optimizer

    model = copy.deepcopy(base).eval()
    opt = make_optimizer(Training(lr=lr, optimizer=optimizer), model.parameters())
    g = torch.Generator().manual_seed(seed)
    x, y = natural
    for _ in range(steps):
        idx = torch.randint(0, len(x), (32,), generator=g)
        loss = keep_loss(preserve, model, base, x[idx], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def check_score(model: nn.Module, inputs: Tensor, reference: nn.Module) -> Tuple[float, Dict[str, Any]]:
    """The audit's score of ``model`` (the largest combined z) and its report: flagged rows, the table, and each
    check's largest z over the interpreters (``"by_check"``)."""
    rep = audit_attributions(model, inputs, reference=reference)
    by_check = {c: float(rep.z[c].max()) for c in rep.checks}
    raw = {c: {"model": rep.scores[c].tolist(), "reference": rep.details[c]["reference"].tolist()} for c in rep.checks}
    return float(rep.combined.max()), {"flagged": rep.flagged, "rows": rep.table, "by_check": by_check,
                                       "scores": raw}


def comparative_score(model: nn.Module, inputs: Tensor, original: nn.Module,
                      auditor: nn.Module) -> Tuple[float, Dict[str, float]]:
    """Round 4's score of ``model``, a fine-tune of ``original``: the largest combined z of the audit against
    ``original`` (:data:`COMPARATIVE_CHECKS`, Grad-CAM at :data:`RECTIFIED`) with the auditor's own fine-tune of
    ``original`` as reference; and each check's largest z."""
    rep = audit_attributions(model, inputs, reference=auditor, original=original, checks=COMPARATIVE_CHECKS,
                             interpreter_layer=RECTIFIED[type(original).__name__])
    return float(rep.combined.max()), {c: round(float(rep.z[c].max()), 2) for c in rep.checks}


def comparative_clean(bases: Dict[int, nn.Module], first: Dict[int, nn.Module], data: Tuple[Tensor, Tensor],
                      steps: int, preserve: str = "ce") -> Dict[str, Tuple[int, nn.Module]]:
    """The clean fine-tunes of round 4's suite, ``{label: (base seed, model)}``: ``first`` (each base's
    ``preserve``-only fine-tune the audit's earlier rounds use) and :data:`COMPARATIVE_CLEAN`'s, ``steps`` each."""
    out = {f"{preserve} fine-tune of seed {s}": (s, m) for s, m in first.items()}
    for s, b in bases.items():
        for loss, ft_seed in COMPARATIVE_CLEAN:
            out[f"{loss} fine-tune {ft_seed} of seed {s}"] = (s, clean_finetune(b, data, steps, ft_seed, preserve=loss))
    return out


def comparative_figure(path: str, panels: Dict[str, Tuple[Dict[str, float], Dict[str, float]]],
                       threshold: float = 3.5) -> str:
    """Round 4's scores as a strip per suite: ``panels`` maps a title to ``(fooled, clean)``, each ``{label: z}``;
    fooled models in red (labelled), clean fine-tunes in blue, the audit's flag threshold dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.2), squeeze=False)
    for ax, (title, (fooled, clean)) in zip(axes[0], panels.items()):
        for row, (scores, color) in enumerate(((clean, "tab:blue"), (fooled, "tab:red"))):
            ys = sorted(scores.items(), key=lambda kv: kv[1])
            for k, (label, z) in enumerate(ys):
                x = row + 0.5 * (k / max(len(ys) - 1, 1) - 0.5)
                ax.scatter([x], [z], color=color, s=28, zorder=3)
                if row == 1:  # neighbours (by z) labelled on alternate sides
                    right = k % 2 == 0
                    ax.annotate(label, (x, z), fontsize=6.5, xytext=(5 if right else -5, -2), textcoords="offset points",
                                ha="left" if right else "right")
        ax.axhline(threshold, color="gray", ls="--", lw=1)
        ax.text(-0.3, threshold + 0.2, f"flag at {threshold}", fontsize=8, color="gray")
        ax.set_xticks([0, 1], [f"clean fine-tunes ({len(clean)})", f"fooled ({len(fooled)})"])
        ax.set_xlim(-0.45, 2.1)
        ax.set_ylabel("largest combined z against the original")
        ax.set_title(title, fontsize=10)
    fig.suptitle("Audit against the model before the fine-tune (explanation_drift + class_swap)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def comparative_panels(paths: List[str]) -> Dict[str, Tuple[Dict[str, float], Dict[str, float]]]:
    """:func:`comparative_figure`'s panels from saved runs: an MNIST ``results.json`` (every attack seed) and any
    number of RGB ``results_rgb_audit.json`` / ``results_rgb.json`` (one attack seed each, pooled; a fooled model is
    labelled with its run's folder; the clean fine-tunes, the same in every run, are drawn once)."""
    panels: Dict[str, Tuple[Dict[str, float], Dict[str, float]]] = {}
    for path in paths:
        with open(path) as f:
            r = json.load(f)
        if "comparative_clean" in r:
            panels["MNIST CNN"] = ({k.replace("/seed", " s"): v["comparative_z"] for k, v in r["attacks"].items()},
                                   {k: v["comparative_z"] for k, v in r["comparative_clean"].items()})
        elif "rgb/comparative" in r:
            fooled, clean = panels.setdefault("RGB SmallRGBCNN", ({}, {}))
            run = os.path.basename(os.path.dirname(os.path.abspath(path)))
            fooled.update({f"{k} ({run})": v[0] for k, v in r["rgb/comparative"]["fooled"].items()})
            clean.update({k: v[0] for k, v in r["rgb/comparative"]["clean"].items()})  # the same models in each run
        else:
            raise SystemExit(f"{path} holds no round-4 scores (comparative_clean or rgb/comparative): run the "
                             "benchmark's MNIST part or --rgb-audit-only first")
    return panels


def _by_check(audit: Dict[str, Any]) -> str:
    short = {"interpreter_disagreement": "dis", "input_dependence": "dep", "fixed_pattern": "pat",
             "mosaic_focus": "focus", "explanation_drift": "drift", "class_swap": "swap"}
    return " ".join(f"{short.get(c, c)} {z:.1f}" for c, z in audit["by_check"].items())


def stacked_composites(images: Tensor, labels: Tensor, classes: Tuple[int, int], n: int, seed: int,
                       background: float) -> Tensor:
    """:func:`two_class_composites` with the two images one *above* the other (the adaptive attack on
    ``mosaic_focus``): the side-by-side composites of the transposed images, transposed back."""
    comp, _ = two_class_composites(images.transpose(-1, -2), labels, classes, n, seed=seed, background=background)
    return comp.transpose(-1, -2).contiguous()


def class_map_similarity(model: nn.Module, composites: Tensor, classes: Tuple[int, int],
                         interpreters: Tuple[str, ...] = INTERPRETERS) -> Dict[str, float]:
    """``{interpreter: mean Spearman rho}`` between ``model``'s maps of the two classes on the same two-class
    composites: how alike the explanations active fooling swaps were before it (near 1, a "swap" moves the maps
    little; its FSR asks only that each map end nearer the other class's original than its own)."""
    from captum_slingshot.checks.attribution import explanation_maps
    from captum_slingshot.metrics import rank_correlation

    out = {}
    for name in interpreters:
        func = make_interpreter(name, model).heatmap
        first, second = (explanation_maps(func, composites, torch.full((len(composites),), c), 256) for c in classes)
        out[name] = float(rank_correlation(first, second).mean())
    return out


def transfer(fsr: Dict[str, float], trained: str) -> float:
    others = [v for k, v in fsr.items() if k not in trained.split("+")]
    return sum(others) / len(others)


def figure(path: str, base: nn.Module, fooled: Dict[Tuple[str, str], nn.Module], x: Tensor, composite: Tensor,
           classes: Tuple[int, int] = CLASSES, names: Optional[Tuple[str, ...]] = None, show: Any = None,
           title: str = "Attribution fooling on the MNIST CNN (test input): original map vs the fooled models' maps",
           composite_left: Optional[int] = None) -> str:
    """One row per trained interpreter: the input, the original map, the fooled map of every mode. ``names``: the
    classes' names (default: digits); ``show``: how an input ``(C, H, W)`` is drawn (default: its first channel, gray);
    ``composite_left``: the class in the composite's left half (its title then names the sides)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = ("location", "topk", "center_mass", "active")
    interps = ("grad_cam", "lrp_epsilon")
    label = (lambda c: names[c]) if names is not None else (lambda c: f"digit {c}")
    draw = show if show is not None else (lambda img: img[0].numpy())
    fig, axes = plt.subplots(len(interps), 2 + 2 * len(modes) - 2, figsize=(2.0 * 8, 2.5 * len(interps)))
    for r, name in enumerate(interps):
        cols: List[Tuple[str, Tensor]] = []
        with torch.no_grad():
            pred = base(x).argmax(1)
        orig = make_interpreter(name, base).heatmap(x, pred).detach()
        cols.append((f"input ({label(int(pred))})", draw(x[0])))
        cols.append(("original " + name, normalize_maps(orig)[0].numpy()))
        for mode in modes:
            m = fooled.get((mode, name))
            if m is None:
                continue
            if mode == "active":
                c = torch.tensor([classes[0]])
                if composite_left is None:
                    head = f"composite ({label(classes[0])} and {label(classes[1])})"
                else:
                    right = classes[1] if composite_left == classes[0] else classes[0]
                    head = f"composite ({label(composite_left)} | {label(right)})"
                cols.append((head, draw(composite[0])))
                cols.append((f"composite, {label(classes[0])}: original", normalize_maps(
                    make_interpreter(name, base).heatmap(composite, c).detach())[0].numpy()))
                cols.append((f"{label(classes[0])}: fooled", normalize_maps(
                    make_interpreter(name, m).heatmap(composite, c).detach())[0].numpy()))
            else:
                cols.append((f"{mode}: fooled",
                             normalize_maps(make_interpreter(name, m).heatmap(x, pred).detach())[0].numpy()))
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(cols):
                head, img = cols[c]
                ax.imshow(img, cmap="gray" if head.startswith(("input", "composite (")) else "inferno")
                ax.set_title(head, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cells(spec: Optional[str]) -> List[Tuple[str, str]]:
    """The (mode, interpreter) cells named by ``--cells`` (``mode/interpreter``, a mode or an interpreter, comma
    separated; default: all eight)."""
    cells = list(SETTINGS)
    if not spec:
        return cells
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    picked = [c for c in cells if any(t in (c[0], c[1], f"{c[0]}/{c[1]}") for t in tokens)]
    if not picked:
        raise SystemExit(f"--cells {spec!r} names no cell; cells: {', '.join(f'{m}/{i}' for m, i in cells)}")
    return picked


def _grid(spec: Optional[str]) -> Optional[List[Tuple[str, float, float]]]:
    """The RGB_GRID points named by ``--grid`` (``preserve:lr:lambda``, comma separated; default: all)."""
    if not spec:
        return None
    picked = []
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        try:
            keep, lr, weight = token.split(":")
            point = (keep, float(lr), float(weight))
        except ValueError:
            raise SystemExit(f"--grid: {token!r} is not preserve:lr:lambda") from None
        if point not in RGB_GRID:
            raise SystemExit(f"--grid: {token!r} is not a point of RGB_GRID {RGB_GRID}")
        picked.append(point)
    return picked


def rgb_tile_crops(n_per_photo: int, split: str, seed: int) -> Tuple[Tensor, Tensor]:
    """``n_per_photo`` crops of every photo from the tiles of ``split`` (:data:`RGB_TILES`): the same number from each
    of its tiles, each tile with its own seed, so that no two splits share a pixel."""
    tiles = RGB_TILES[split]
    if n_per_photo % len(tiles):
        raise ValueError(f"{split}: {n_per_photo} crops per photo do not divide over its {len(tiles)} tiles")
    g = RGB_TILE_GRID
    xs, ys = zip(*(photo_crops(n_per_photo // len(tiles), "train" if split == "train" else "heldout", size=64,
                               seed=seed + 100 * k, band=(r / g, (r + 1) / g), columns=(c / g, (c + 1) / g))
                   for k, (r, c) in enumerate(tiles)))
    return torch.cat(xs), torch.cat(ys)


def data_digest(data: Tuple[Tensor, Tensor]) -> str:
    """16 hex digits of SHA-256 over ``(inputs, labels)``: names a model cached for that training data."""
    import hashlib

    return hashlib.sha256(data[0].numpy().tobytes() + data[1].numpy().tobytes()).hexdigest()[:16]


def cached_model(path: Any, model: nn.Module, build: Any) -> nn.Module:
    """``model`` with the state dict saved at ``path``; else ``build()`` (the trained model), saved there atomically
    (a run stopped halfway leaves no file)."""
    if os.path.isfile(path):
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    model = build().eval()
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return model


def rgb_model(train: Tuple[Tensor, Tensor], seed: int, smoke: bool) -> nn.Module:
    """``SmallRGBCNN`` (width 16) of training seed ``seed``: SGD for RGB_EPOCHS, then RGB_SETTLE_STEPS of Adam.
    Cached under ``models_dir()`` (one file per seed, training data, schedule and torch thread count, on which the
    weights depend): each run of the RGB part trains up to three of them, 7 minutes each on one thread."""
    from captum_slingshot.paths import models_dir

    epochs, settle = (1, 5) if smoke else (RGB_EPOCHS, RGB_SETTLE_STEPS)
    path = models_dir() / (f"attribution_bench_rgb_seed{seed}_e{epochs}_s{settle}_t{torch.get_num_threads()}_"
                           f"{data_digest(train)}.pt")
    torch.manual_seed(seed)
    model = SmallRGBCNN(num_classes=int(train[1].max()) + 1, width=16)

    def build() -> nn.Module:
        train_classifier(model, torch.utils.data.TensorDataset(*train), epochs=epochs, lr=1e-2,
                         batch_size=32, seed=seed, progress=False)
        return clean_finetune(model, train, settle, seed=seed)  # settle: see RGB_SETTLE_STEPS

    return cached_model(path, model, build)


def rgb_setup(smoke: bool) -> Dict[str, Any]:
    """The RGB model and its three splits (see the module docstring): ``SmallRGBCNN`` (width 16) trained on
    ``RGB_SPLIT[0]`` crops per photo of the train tiles and their mirror images (also the fooling runs' natural data,
    ``"train"``); validation: ``RGB_SPLIT[1]`` crops per photo of the validation tiles (for ``--tune-rgb``); test:
    ``RGB_SPLIT[2]`` crops per photo of the held-out tiles (only for the report)."""
    n_train, n_val, n_test = (8, 4, 4) if smoke else RGB_SPLIT
    xtr, ytr = rgb_tile_crops(n_train, "train", seed=0)
    xva, yva = rgb_tile_crops(n_val, "val", seed=1)
    xte, yte = rgb_tile_crops(n_test, "test", seed=0)
    mean, std = xtr.mean((0, 2, 3), keepdim=True), xtr.std((0, 2, 3), keepdim=True)
    xtr, xva, xte = (xtr - mean) / std, (xva - mean) / std, (xte - mean) / std
    train = (torch.cat([xtr, xtr.flip(-1)]), torch.cat([ytr, ytr]))
    model = rgb_model(train, seed=0, smoke=smoke)
    background = float(xtr.min())
    out: Dict[str, Any] = {"model": model.eval(), "train": train, "mean": mean, "std": std}
    for split, (xs, ys) in (("val", (xva, yva)), ("test", (xte, yte))):
        out[split] = (xs, ys)
        out[f"{split}_composites"], out[f"{split}_composites_left"] = two_class_composites(
            xs, ys, RGB_CLASSES, len(xs) // 2, seed=1, background=background)
        out[f"{split}_accuracy"] = accuracy(model, (xs, ys))
    return out


def agreement(model: nn.Module, original: nn.Module, x: Tensor) -> float:
    """The share of ``x`` on which ``model`` predicts the class ``original`` predicts."""
    with torch.no_grad():
        return float((model(x).argmax(1) == original(x).argmax(1)).float().mean())


def _passes(row: Dict[str, Any], fsr: float) -> bool:
    return row["fsr"] >= fsr and row["acc_drop"] <= RGB_MAX_VAL_DROP


def _choose(rows: List[Dict[str, Any]]) -> Tuple[Optional[Dict[str, Any]], str]:
    """The rule of ``--tune-rgb``: of the checkpoints with validation FSR >= RGB_TARGET_FSR (else >= RGB_MIN_FSR)
    and accuracy drop <= RGB_MAX_VAL_DROP, the highest agreement; ties: fewer steps, then the higher FSR.
    If nothing passes (a miss): of the settings with FSR >= RGB_MIN_FSR the one with the highest agreement, else
    the highest FSR."""
    for target, why in ((RGB_TARGET_FSR, f"FSR >= {RGB_TARGET_FSR}"), (RGB_MIN_FSR, f"FSR >= {RGB_MIN_FSR} only")):
        ok = [r for r in rows if _passes(r, target)]
        if ok:
            return min(ok, key=lambda r: (-r["agreement"], r["steps"], -r["fsr"])), why
    if not rows:
        return None, "no run"
    miss = f"MISS: no setting with FSR >= {RGB_MIN_FSR} and validation accuracy drop <= {RGB_MAX_VAL_DROP}"
    high = [r for r in rows if r["fsr"] >= RGB_MIN_FSR]
    if high:
        return min(high, key=lambda r: (-r["agreement"], r["steps"], -r["fsr"])), miss
    return max(rows, key=lambda r: (r["fsr"], -r["steps"])), miss


def tune_rgb(smoke: bool, cells: List[Tuple[str, str]], out_dir: str,
             grid: Optional[List[Tuple[str, float, float]]] = None) -> Dict[str, Any]:
    """``--tune-rgb``: per cell, fine-tune with every (preservation, lr, lambda) of RGB_GRID and score the
    trained-against interpreter on the *validation* crops after each of RGB_CHECKPOINTS steps (the run with
    ``steps=k`` is exactly the first ``k`` steps of a longer run: batch ``k`` depends only on the seed and ``k``).
    A run stops at its first checkpoint that passes at RGB_TARGET_FSR; :func:`_choose` picks among all rows, so the
    choice does not depend on the grid's order. The held-out crops are never touched."""
    t_all = time.perf_counter()
    rgb = rgb_setup(smoke)
    base, natural = rgb["model"], rgb["train"]
    print(f"RGB base model: validation accuracy {rgb['val_accuracy']:.3f} ({len(rgb['val'][1])} crops)", flush=True)
    grid = list(RGB_GRID if grid is None else grid)
    checkpoints = (2, 4) if smoke else RGB_CHECKPOINTS
    report: Dict[str, Any] = {"val_accuracy": rgb["val_accuracy"], "grid": {
        "preserve_lr_lambda": [list(p) for p in grid], "checkpoints": list(checkpoints), "max_steps": RGB_MAX_STEPS,
        "target_fsr": RGB_TARGET_FSR, "min_fsr": RGB_MIN_FSR, "max_val_drop": RGB_MAX_VAL_DROP}, "cells": {}}
    print(f"{'mode':12s} {'trained':12s} {'keep':7s} {'lr':>7s} {'lambda':>6s} {'steps':>5s}  val FSR  agreement  "
          "acc drop  [s]", flush=True)
    for mode, name in cells:
        rows: List[Dict[str, Any]] = []
        for preserve, lr, weight in grid:
            limit = RGB_MAX_STEPS[name] if not smoke else checkpoints[-1]
            stops = [k for k in checkpoints if k <= limit]
            t0 = time.perf_counter()

            def score(step: int, rec: Dict[str, float], model: nn.Module) -> Optional[bool]:
                if step + 1 not in stops:
                    return None
                ev = evaluate_fooling(model.eval(), base, rgb["val"], mode, (name,), classes=RGB_CLASSES,
                                      fooling_inputs=rgb["val_composites"] if mode == "active" else None)
                row = dict(mode=mode, interpreter=name, preserve=preserve, lr=lr, fooling_weight=weight,
                           steps=step + 1, fsr=ev["fsr"][name], agreement=agreement(model, base, rgb["val"][0]),
                           acc_drop=ev["accuracy_drop"], empty=ev["empty"][name],
                           seconds=round(time.perf_counter() - t0, 1))
                rows.append(row)
                print(f"{mode:12s} {name:12s} {preserve:7s} {lr:7.0e} {weight:6g} {step + 1:5d}  {row['fsr']:7.3f}  "
                      f"{row['agreement']:9.3f}  {row['acc_drop']:+8.2f}  [{row['seconds']:.0f}]", flush=True)
                return False if _passes(row, RGB_TARGET_FSR) else None

            fool(base, natural, mode, name, dict(preserve=preserve, lr=lr, fooling_weight=weight, steps=stops[-1]),
                 seed=0, classes=RGB_CLASSES, callback=score, progress=False)
        chosen, why = _choose(rows)
        report["cells"][f"{mode}/{name}"] = {"rows": rows, "chosen": chosen, "rule": why}
        if chosen is not None:
            print(f"  -> {mode}/{name}: {chosen['preserve']}, lr {chosen['lr']:g}, lambda {chosen['fooling_weight']:g}, "
                  f"steps {chosen['steps']} (val FSR {chosen['fsr']:.3f}, agreement {chosen['agreement']:.3f}, acc drop "
                  f"{chosen['acc_drop']:+.2f}; {why})",
                  flush=True)
    report["seconds"] = round(time.perf_counter() - t_all, 1)
    with open(os.path.join(out_dir, "rgb_tuning.json"), "w") as f:
        json.dump(report, f, indent=2, default=str)
    print("RGB_SETTINGS chosen on the validation split:")
    for key, cell in report["cells"].items():
        c = cell["chosen"]
        if c is not None:
            mode, name = key.split("/")
            print(f"    ({mode!r}, {name!r}): dict(preserve={c['preserve']!r}, lr={c['lr']:g}, "
                  f"fooling_weight={c['fooling_weight']:g}, steps={c['steps']}),  # val FSR {c['fsr']:.3f}, agreement "
                  f"{c['agreement']:.3f}, acc drop {c['acc_drop']:+.2f}; {cell['rule']}")
    print(f"tuning took {report['seconds']:.0f} s", flush=True)
    return report


def rgb_part(smoke: bool, out: Dict[str, Any], metrics: Dict[str, float],
             cells: Optional[List[Tuple[str, str]]] = None, out_dir: Optional[str] = None, seed: int = 0) -> None:
    """The RGB attacks with :data:`RGB_SETTINGS` and attack seed ``seed``, measured once on the held-out crops (the
    test tiles). With ``out_dir``: each fooled model is saved in ``out_dir/rgb_models/`` (with its settings), and
    ``rgb_attribution_fooling.png`` shows the maps of every cell fooled here or saved there by an earlier call with the
    same settings (so that ``--cells`` runs in parallel processes make one figure)."""
    rgb = rgb_setup(smoke)
    model, (xte, yte) = rgb["model"], rgb["test"]
    out["rgb/base"] = {"val_accuracy": rgb["val_accuracy"], "test_accuracy": rgb["test_accuracy"],
                       "n_test": int(len(yte))}
    print(f"RGB base model: validation accuracy {rgb['val_accuracy']:.3f}, held-out accuracy "
          f"{rgb['test_accuracy']:.3f} ({len(yte)} crops)", flush=True)
    control = clean_finetune(model, rgb["train"], 5 if smoke else RGB_CONTROL_STEPS, seed=0,
                             preserve=RGB_CONTROL_PRESERVE)
    out["rgb/control"] = {"steps": 5 if smoke else RGB_CONTROL_STEPS, "agreement": agreement(control, model, xte),
                          "accuracy_drop": 100 * (rgb["test_accuracy"] - accuracy(control, (xte, yte)))}
    metrics["rgb_agreement_control"] = out["rgb/control"]["agreement"]
    print(f"RGB control ({RGB_CONTROL_PRESERVE} only, {out['rgb/control']['steps']} steps, no fooling): agreement "
          f"{out['rgb/control']['agreement']:.3f}, acc drop {out['rgb/control']['accuracy_drop']:+.2f}", flush=True)
    similar = out["rgb/active_originals"] = class_map_similarity(model, rgb["test_composites"], RGB_CLASSES)
    print(f"RGB: the original's maps of photos {RGB_CLASSES} on the held-out composites, rank correlation with each "
          f"other: " + ", ".join(f"{k} {v:+.2f}" for k, v in similar.items()), flush=True)
    fooled: Dict[Tuple[str, str], nn.Module] = {}
    saved = os.path.join(out_dir, "rgb_models") if out_dir else None
    for mode, name in cells or list(RGB_SETTINGS):
        s = RGB_SETTINGS[(mode, name)]
        t0 = time.perf_counter()
        s = dict(s, steps=5) if smoke else dict(s)
        m = fooled[(mode, name)] = fool(model, rgb["train"], mode, name, s, seed=seed, classes=RGB_CLASSES)
        if saved:
            os.makedirs(saved, exist_ok=True)
            torch.save({"settings": s, "seed": seed, "state_dict": m.state_dict()},
                       os.path.join(saved, f"{mode}_{name}.pt"))
        ev = evaluate_fooling(m, model, (xte, yte), mode, (name,) + tuple(i for i in INTERPRETERS if i != name),
                              classes=RGB_CLASSES, fooling_inputs=rgb["test_composites"] if mode == "active" else None)
        ev.update(settings=s, agreement=agreement(m, model, xte), seconds=round(time.perf_counter() - t0, 1))
        out[f"rgb/{mode}/{name}"] = ev
        metrics[f"rgb_fsr_{mode}_{name}_trained"] = ev["fsr"][name]
        metrics[f"rgb_fsr_{mode}_{name}_transfer"] = transfer(ev["fsr"], name)
        metrics[f"rgb_acc_drop_{mode}_{name}"] = ev["accuracy_drop"]
        metrics[f"rgb_agreement_{mode}_{name}"] = ev["agreement"]
        print(f"RGB {mode:12s} {name:12s} FSR {ev['fsr'][name]:.3f} transfer {transfer(ev['fsr'], name):.3f} "
              f"acc {ev['accuracy_original']:.3f} -> {ev['accuracy']:.3f} ({ev['accuracy_drop']:+.2f}, agreement "
              f"{ev['agreement']:.3f}) "
              f"[{s.get('preserve', 'ce')}, lr {s['lr']:g}, lambda {s['fooling_weight']:g}, {s['steps']} steps; {ev['seconds']:.0f} s; "
              f"empty maps {ev['empty'][name]:.3f}]", flush=True)
    if out_dir:
        fooled = saved_rgb_models(out_dir, rgb["model"], fooled, smoke, seed)
        rgb_figure(out_dir, rgb, fooled)
    if len(fooled) == len(RGB_SETTINGS):
        rgb_detection(rgb, fooled, smoke, out, metrics)


def saved_rgb_models(out_dir: str, base: nn.Module, fooled: Dict[Tuple[str, str], nn.Module],
                     smoke: bool, seed: int = 0) -> Dict[Tuple[str, str], nn.Module]:
    """``fooled`` and the models saved in ``out_dir/rgb_models`` with today's :data:`RGB_SETTINGS` and attack seed
    ``seed``."""
    import copy

    fooled = dict(fooled)
    for key, s in RGB_SETTINGS.items():
        path = os.path.join(out_dir, "rgb_models", f"{key[0]}_{key[1]}.pt")
        if key in fooled or not os.path.isfile(path):
            continue
        state = torch.load(path, weights_only=True)
        if state["settings"] == (dict(s, steps=5) if smoke else dict(s)) and state.get("seed", 0) == seed:
            m = copy.deepcopy(base)
            m.load_state_dict(state["state_dict"])
            fooled[key] = m.eval()
    return fooled


def rgb_figure(out_dir: str, rgb: Dict[str, Any], fooled: Dict[Tuple[str, str], nn.Module]) -> str:
    """``rgb_attribution_fooling.png``: :func:`figure` on the first held-out crop of photo ``RGB_CLASSES[1]``."""
    base = rgb["model"]
    xte, yte = rgb["test"]
    mean, std = rgb["mean"], rgb["std"]
    names = tuple(SKIMAGE_PHOTOS)
    return figure(os.path.join(out_dir, "rgb_attribution_fooling.png"), base, fooled,
                  xte[yte == RGB_CLASSES[1]][:1], rgb["test_composites"][:1], classes=RGB_CLASSES, names=names,
                  show=lambda img: (img[None] * std + mean)[0].clamp(0, 1).permute(1, 2, 0).numpy(),
                  title="Attribution fooling on the RGB photo CNN (held-out crop): original map vs the fooled "
                        "models' maps", composite_left=int(rgb["test_composites_left"][0]))


def rgb_detection(rgb: Dict[str, Any], fooled: Dict[Tuple[str, str], nn.Module], smoke: bool, out: Dict[str, Any],
                  metrics: Dict[str, float]) -> None:
    """The attribution audit on the RGB models, exactly as on MNIST and with nothing tuned on RGB (fixed before its
    first result): reference a base model of training seed 2; clean: the base models of seeds 0 and 1 and
    RGB_CONTROL_STEPS-step fine-tunes of each with the preservation loss only; fooled: every RGB attack; inputs:
    RGB_AUDIT_INPUTS held-out crops (a seeded draw over all photos and tiles); score: the largest combined z."""
    train, (xte, _) = rgb["train"], rgb["test"]
    n = min(len(xte), 20 if smoke else RGB_AUDIT_INPUTS)
    inputs = xte[torch.randperm(len(xte), generator=torch.Generator().manual_seed(0))[:n]]
    reference = rgb_model(train, seed=2, smoke=smoke)
    clean: Dict[str, nn.Module] = {}
    bases = {0: rgb["model"], 1: rgb_model(train, seed=1, smoke=smoke)}
    first: Dict[int, nn.Module] = {}
    steps = 5 if smoke else RGB_CONTROL_STEPS
    for seed, base in bases.items():
        clean[f"base seed {seed}"] = base
        clean[f"{RGB_CONTROL_PRESERVE} fine-tune of seed {seed}"] = first[seed] = clean_finetune(
            base, train, steps, seed=seed, preserve=RGB_CONTROL_PRESERVE)
    fooled_audit = {f"{m}/{i}": check_score(model, inputs, reference) for (m, i), model in fooled.items()}
    clean_audit = {label: check_score(model, inputs, reference) for label, model in clean.items()}
    fooled_z = {k: v[0] for k, v in fooled_audit.items()}
    clean_z = {k: v[0] for k, v in clean_audit.items()}
    for k, (z, audit) in list(fooled_audit.items()) + list(clean_audit.items()):
        print(f"RGB audit {k:32s} z {z:5.1f}  [{_by_check(audit)}]", flush=True)
    value = auroc(torch.tensor(list(fooled_z.values()) + list(clean_z.values())),
                  torch.tensor([1] * len(fooled_z) + [0] * len(clean_z)), 1)
    out["rgb/detection"] = {"fooled": fooled_z, "clean": clean_z, "auroc": value, "n_inputs": n,
                            "by_check": {k: v[1]["by_check"] for k, v in {**fooled_audit, **clean_audit}.items()}}
    metrics["rgb_attribution_check_auroc"] = value
    print(f"RGB attribution audit (reference: seed 2, {n} held-out crops): fooled z "
          + ", ".join(f"{k} {v:.1f}" for k, v in fooled_z.items()) + "; clean z "
          + ", ".join(f"{k} {v:.1f}" for k, v in clean_z.items()) + f"; AUROC {value:.3f}", flush=True)

    # round 4: against the model before the fine-tune, the auditor's own fine-tune of it as reference
    auditor = {s: clean_finetune(b, train, steps, seed=AUDITOR_SEED, preserve=RGB_CONTROL_PRESERVE)
               for s, b in bases.items()}
    fooled_c = {f"{m}/{i}": comparative_score(model, inputs, bases[0], auditor[0]) for (m, i), model in fooled.items()}
    clean_c = {label: comparative_score(model, inputs, bases[s], auditor[s]) for label, (s, model)
               in comparative_clean(bases, first, train, steps, RGB_CONTROL_PRESERVE).items()}
    for k, (z, by_check) in list(fooled_c.items()) + list(clean_c.items()):
        print(f"RGB audit against the original {k:32s} z {z:5.1f}  [{_by_check({'by_check': by_check})}]", flush=True)
    value = auroc(torch.tensor([v[0] for v in fooled_c.values()] + [v[0] for v in clean_c.values()]),
                  torch.tensor([1] * len(fooled_c) + [0] * len(clean_c)), 1)
    out["rgb/comparative"] = {"fooled": fooled_c, "clean": clean_c, "auroc": value}
    metrics["rgb_comparative_check_auroc"] = value
    print(f"RGB audit against the original (round 4): AUROC {value:.3f}", flush=True)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one attack seed, 500 test inputs, no RGB part")
    ap.add_argument("--smoke", action="store_true", help="5 steps per attack, 40 inputs: checks the script runs "
                    "(numbers meaningless; used by the tests)")
    ap.add_argument("--rgb-only", action="store_true", help="only the RGB part (RGB_SETTINGS, held-out crops)")
    ap.add_argument("--tune-rgb", action="store_true", help="only the RGB grid search on the validation crops "
                    "(prints the table and the chosen settings; never touches the held-out crops)")
    ap.add_argument("--cells", default=None, help="with --rgb-only / --tune-rgb: the cells to run, comma separated "
                    "(mode/interpreter, a mode or an interpreter; default all)")
    ap.add_argument("--grid", default=None, help="with --tune-rgb: a subset of RGB_GRID, comma separated "
                    "preserve:lr:lambda (e.g. ce:1e-3:10,ce:1e-3:30)")
    ap.add_argument("--attack-seed", type=int, default=0, help="with --rgb-only: the attacks' seed (default 0, the "
                    "reported one; use another --out per seed)")
    ap.add_argument("--mnist-only", action="store_true", help="the full MNIST part (both attack seeds), no RGB")
    ap.add_argument("--adaptive-only", action="store_true", help="only MNIST's clean models and held-out adaptive "
                    "attacks with their audit scores (no fooling table, no figure, no RGB)")
    ap.add_argument("--rgb-audit-only", action="store_true", help="only the RGB attribution audit, on the fooled "
                    "models an earlier --rgb-only run saved in --out (same RGB_SETTINGS and --attack-seed)")
    ap.add_argument("--comparative-figure", nargs="+", metavar="RESULTS", default=None,
                    help="only draw round 4's figure (to --out/attribution_comparative_audit.png) from saved runs' "
                    "results: an MNIST results.json and RGB results_rgb_audit.json files")
    ap.add_argument("--out", default="runs/attribution_fooling")
    args = ap.parse_args(argv)
    if args.comparative_figure:
        os.makedirs(args.out, exist_ok=True)
        path = comparative_figure(os.path.join(args.out, "attribution_comparative_audit.png"),
                                  comparative_panels(args.comparative_figure))
        print(f"wrote {path}")
        return {}
    if os.environ.get("CS_THREADS"):
        torch.set_num_threads(int(os.environ["CS_THREADS"]))
    if args.tune_rgb or args.rgb_only or args.rgb_audit_only:
        os.makedirs(args.out, exist_ok=True)
        t_start = time.perf_counter()
        if args.tune_rgb:
            tune_rgb(args.smoke, _cells(args.cells), args.out, _grid(args.grid))
            return {}
        results: Dict[str, Any] = {"rgb_settings": {f"{m}/{i}": v for (m, i), v in RGB_SETTINGS.items()}}
        metrics: Dict[str, float] = {}
        if args.rgb_audit_only:
            rgb = rgb_setup(args.smoke)
            fooled = saved_rgb_models(args.out, rgb["model"], {}, args.smoke, args.attack_seed)
            missing = [f"{m}/{i}" for m, i in RGB_SETTINGS if (m, i) not in fooled]
            if missing:
                raise SystemExit(f"--rgb-audit-only: {args.out}/rgb_models lacks models of today's RGB_SETTINGS and "
                                 f"attack seed {args.attack_seed} for {', '.join(missing)}; run --rgb-only first")
            rgb_detection(rgb, fooled, args.smoke, results, metrics)
        else:
            rgb_part(args.smoke, results, metrics, _cells(args.cells), out_dir=args.out, seed=args.attack_seed)
        metrics["seconds"] = time.perf_counter() - t_start
        results["metrics"] = metrics
        with open(os.path.join(args.out, "results_rgb_audit.json" if args.rgb_audit_only else "results_rgb.json"),
                  "w") as f:
            json.dump(results, f, indent=2, default=str)
        for k, v in metrics.items():
            print(f"metric {k} {v:.4f}")
        return metrics
    settings, adaptive, clean_steps = SETTINGS, ADAPTIVE, CLEAN_STEPS
    if args.smoke:
        args.quick = True
        settings = {key: dict(s, steps=5) for key, s in SETTINGS.items()}
        adaptive = (ADAPTIVE[0], ADAPTIVE[1], dict(ADAPTIVE[2], steps=5))
        clean_steps = 5
    os.makedirs(args.out, exist_ok=True)
    t_start = time.perf_counter()
    seeds = (0,) if args.quick else (0, 1)
    n_test = 40 if args.smoke else 500 if args.quick else 2000

    train = load_mnist("train").tensors
    natural = (normalize_mnist(train[0]), train[1])
    xt, yt = load_mnist("test").tensors
    test = (normalize_mnist(xt[:n_test]), yt[:n_test])
    xall = normalize_mnist(xt)
    composites, left = two_class_composites(xall, yt, CLASSES, n_test // 2, seed=1, background=float(xall.min()))
    audit_inputs = test[0][:20 if args.smoke else 200]

    bases = {s: pretrained_mnist_cnn(seed=s, progress=False) for s in (0, 1)}
    reference = pretrained_mnist_cnn(seed=2, progress=False)
    base = bases[0]
    results: Dict[str, Any] = {"settings": {f"{m}/{i}": v for (m, i), v in settings.items()}, "attacks": {}}
    metrics: Dict[str, float] = {}
    fooled_scores: List[float] = []
    fooled_models: Dict[Tuple[str, str], nn.Module] = {}

    auditor = {s: clean_finetune(b, natural, clean_steps, AUDITOR_SEED) for s, b in bases.items()}
    comparative_fooled: List[float] = []
    similar = results["active_originals"] = class_map_similarity(base, composites, CLASSES)
    print(f"the original's maps of classes {CLASSES} on the held-out composites, rank correlation with each other "
          f"(what active fooling swaps): " + ", ".join(f"{k} {v:+.2f}" for k, v in similar.items()), flush=True)
    print(f"{'mode':12s} {'trained':12s} seed  FSR trained  transfer  acc orig -> fooled (drop)  check z")
    for (mode, name), s in ({} if args.adaptive_only else settings).items():
        for seed in seeds:
            t0 = time.perf_counter()
            m = fool(base, natural, mode, name, s, seed)
            ev = evaluate_fooling(m, base, test, mode, (name,) + tuple(i for i in INTERPRETERS if i != name),
                                  classes=CLASSES, fooling_inputs=composites if mode == "active" else None)
            z, audit = check_score(m, audit_inputs, reference)
            fooled_scores.append(z)
            cz, cby = comparative_score(m, audit_inputs, base, auditor[0])
            comparative_fooled.append(cz)
            ev.update(check_z=z, audit=audit, comparative_z=cz, comparative_by_check=cby,
                      seconds=round(time.perf_counter() - t0, 1))
            results["attacks"][f"{mode}/{name}/seed{seed}"] = ev
            tr = transfer(ev["fsr"], name)
            print(f"{mode:12s} {name:12s} {seed:4d}  {ev['fsr'][name]:11.3f}  {tr:8.3f}  "
                  f"{ev['accuracy_original']:.4f} -> {ev['accuracy']:.4f} ({ev['accuracy_drop']:+.2f})  {z:7.2f}  "
                  f"[{_by_check(audit)}; {ev['seconds']:.0f} s; empty maps {ev['empty'][name]:.3f}]; against the "
                  f"original z {cz:.2f} [{_by_check({'by_check': cby})}]", flush=True)
            if seed == seeds[0]:
                fooled_models[(mode, name)] = m
                metrics[f"fsr_{mode}_{name}_trained"] = ev["fsr"][name]
                metrics[f"fsr_{mode}_{name}_transfer"] = tr
                metrics[f"acc_drop_{mode}_{name}"] = ev["accuracy_drop"]

    clean_scores: List[float] = []
    first: Dict[int, nn.Module] = {}
    for s, b in bases.items():
        first[s] = clean_finetune(b, natural, clean_steps, s)
        for label, model in ((f"base seed {s}", b), (f"CE fine-tune of seed {s}", first[s])):
            z, audit = check_score(model, audit_inputs, reference)
            clean_scores.append(z)
            results.setdefault("clean", {})[label] = {"check_z": z, "audit": audit}
            print(f"clean: {label:26s} check z {z:7.2f}  flagged {audit['flagged']}  [{_by_check(audit)}]", flush=True)
    if fooled_scores:
        labels = [1] * len(fooled_scores) + [0] * len(clean_scores)
        metrics["attribution_check_auroc"] = auroc(torch.tensor(fooled_scores + clean_scores), torch.tensor(labels), 1)
    comparative_clean_scores: List[float] = []
    for label, (s, model) in comparative_clean(bases, first, natural, clean_steps).items():
        cz, cby = comparative_score(model, audit_inputs, bases[s], auditor[s])
        comparative_clean_scores.append(cz)
        results.setdefault("comparative_clean", {})[label] = {"comparative_z": cz, "by_check": cby}
        print(f"clean: {label:30s} against the original z {cz:6.2f}  [{_by_check({'by_check': cby})}]", flush=True)
    if comparative_fooled:
        metrics["comparative_check_auroc"] = auroc(torch.tensor(comparative_fooled + comparative_clean_scores),
                                                   torch.tensor([1] * len(comparative_fooled)
                                                                + [0] * len(comparative_clean_scores)), 1)
        print(f"audit against the original (round 4): fooled z {min(comparative_fooled):.2f}.."
              f"{max(comparative_fooled):.2f}, clean z {min(comparative_clean_scores):.2f}.."
              f"{max(comparative_clean_scores):.2f}; AUROC {metrics['comparative_check_auroc']:.3f}", flush=True)

    def held_out(model: nn.Module, key: str, ev: Dict[str, Any], t0: float) -> Dict[str, Any]:
        """A held-out attack's audit scores, each set against its own clean models (``{key}_check_auroc``,
        ``{key}_comparative_auroc``), never pooled; kept with its evaluation ``ev`` as ``results[key]``."""
        z, audit = check_score(model, audit_inputs, reference)
        cz, cby = comparative_score(model, audit_inputs, base, auditor[0])
        metrics[f"{key}_check_auroc"] = auroc(torch.tensor([z] + clean_scores), torch.tensor(
            [1] + [0] * len(clean_scores)), 1)
        metrics[f"{key}_comparative_auroc"] = auroc(torch.tensor([cz] + comparative_clean_scores), torch.tensor(
            [1] + [0] * len(comparative_clean_scores)), 1)
        print(f"{key} (held out) against the original: z {cz:.2f} [{_by_check({'by_check': cby})}]", flush=True)
        results[key] = dict(ev, check_z=z, audit=audit, comparative_z=cz, comparative_by_check=cby,
                            seconds=round(time.perf_counter() - t0, 1))
        return results[key]

    mode, name, s = adaptive  # held out: never pooled, never used for a choice
    t0 = time.perf_counter()
    m = fool(base, natural, mode, name, s, seeds[0])
    ev = evaluate_fooling(m, base, test, mode, INTERPRETERS)
    ev = held_out(m, "adaptive", ev, t0)
    z, audit = ev["check_z"], ev["audit"]
    metrics["adaptive_fsr_grad_cam"] = ev["fsr"]["grad_cam"]
    metrics["adaptive_fsr_lrp_epsilon"] = ev["fsr"]["lrp_epsilon"]
    print(f"adaptive (held out): {mode} against {name}: FSR grad_cam {ev['fsr']['grad_cam']:.3f}, lrp_epsilon "
          f"{ev['fsr']['lrp_epsilon']:.3f}, saliency {ev['fsr']['saliency']:.3f}; acc drop {ev['accuracy_drop']:+.2f}; "
          f"check z {z:.2f} [{_by_check(audit)}] (flagged rows {audit['flagged']})", flush=True)

    mode, name, s = ADAPTIVE_FOCUS  # held out: never pooled, never used for a choice
    t0 = time.perf_counter()
    s = dict(s, steps=5) if args.smoke else s
    train_stacked = stacked_composites(natural[0], natural[1], CLASSES, 2000, seed=0,
                                       background=float(natural[0].min()))
    m = fool(base, natural, mode, name, s, seeds[0], fooling_data=train_stacked)
    stacked = stacked_composites(xall, yt, CLASSES, n_test // 2, seed=1, background=float(xall.min()))
    ev = {"stacked": evaluate_fooling(m, base, test, mode, INTERPRETERS, classes=CLASSES, fooling_inputs=stacked),
          "side_by_side": evaluate_fooling(m, base, test, mode, INTERPRETERS, classes=CLASSES,
                                           fooling_inputs=composites)}
    scored = held_out(m, "adaptive_focus", ev, t0)
    z, audit = scored["check_z"], scored["audit"]
    metrics["adaptive_focus_fsr_stacked"] = ev["stacked"]["fsr"][name]
    metrics["adaptive_focus_fsr_side_by_side"] = ev["side_by_side"]["fsr"][name]
    print(f"adaptive on mosaic_focus (held out): active {name} on stacked composites: FSR stacked "
          f"{ev['stacked']['fsr'][name]:.3f}, side by side {ev['side_by_side']['fsr'][name]:.3f}; acc drop "
          f"{ev['stacked']['accuracy_drop']:+.2f}; check z {z:.2f} [{_by_check(audit)}] (flagged rows "
          f"{audit['flagged']})", flush=True)

    for key, (mode, name, s, cls) in (("adaptive_class", ADAPTIVE_CLASS), ("adaptive_hold", ADAPTIVE_HOLD)):
        # held out: never pooled, never used for a choice; adaptive_hold also holds the other classes' maps
        t0 = time.perf_counter()
        s = dict(s, steps=5) if args.smoke else s
        if "hold_weight" in s:
            s = dict(s, classes=(cls,))
        m = fool(base, natural, mode, name, s, seeds[0], fooling_data=natural[0][natural[1] == cls])
        ev = {"class": evaluate_fooling(m, base, (test[0][test[1] == cls], test[1][test[1] == cls]), mode,
                                        INTERPRETERS),
              "other_classes": evaluate_fooling(m, base, (test[0][test[1] != cls], test[1][test[1] != cls]), mode,
                                                INTERPRETERS)}
        scored = held_out(m, key, ev, t0)
        z, audit = scored["check_z"], scored["audit"]
        metrics[f"{key}_fsr"] = ev["class"]["fsr"][name]
        metrics[f"{key}_fsr_other_classes"] = ev["other_classes"]["fsr"][name]
        print(f"{key}, adaptive on explanation_drift (held out): {mode} {name} on class {cls} only"
              f"{', other classes held' if 'hold_weight' in s else ''}: FSR on held-out class {cls} "
              f"{ev['class']['fsr'][name]:.3f}, on the other classes {ev['other_classes']['fsr'][name]:.3f}; acc drop "
              f"{ev['class']['accuracy_drop']:+.2f} (class {cls}) / {ev['other_classes']['accuracy_drop']:+.2f} "
              f"(others); check z {z:.2f} [{_by_check(audit)}]; against the original z {scored['comparative_z']:.2f}",
              flush=True)

    if fooled_models:
        fig = figure(os.path.join(args.out, "attribution_fooling.png"), base, fooled_models, test[0][:1],
                     composites[:1], composite_left=int(left[0]))
        print(f"wrote {fig}")
    if args.smoke or not (args.quick or args.mnist_only or args.adaptive_only):
        rgb_part(args.smoke, results, metrics, out_dir=args.out)

    metrics["seconds"] = time.perf_counter() - t_start
    results["metrics"] = metrics
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2, default=str)
    for k, v in metrics.items():
        print(f"metric {k} {v:.4f}")
    return metrics


if __name__ == "__main__":
    main()
