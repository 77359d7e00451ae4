"""Detection matrix: every registered FV attack against every defense check and the default audit.

Each **attack family** (a matrix row) is run on real models, and every check (a column) scores
every unit of the attacked layer; the manipulated unit is a positive, every other unit of that
layer and every unit of the clean models of other seeds a negative. Scores are the robust
z-scores the audit computes within each layer (no labels, no clean reference), so negatives of
different layers pool. A cell is the share of a family's manipulated units that a check flags at
the threshold that lets through at most 1 % of the negatives (TPR at FPR <= 0.01); the column
``audit`` is the default audit's pooled score (``DEFAULT_CHECKS``, Stouffer) thresholded the same
way, ``audit@3.5`` the default audit as shipped (flag at z > 3.5).

**The split, written down before any result was seen** (and not changed after):

* *tuned* -- the families the audit's defaults (checks, pooling, threshold) were chosen on:
  the Gradient Slingshot variants (``slingshot_gc``, ``slingshot_tr``, ``slingshot_adam``,
  ``slingshot_paper``: the paper's gradient loss, gamma 10) and Nanfack et al.'s
  ``activation_max_attack`` (``push_down``, ``push_up``, ``fairwash``);
* *held out* -- never used to choose a default: ``proxpulse``, ``fooling_circuit``,
  ``silent_units``;
* *adaptive* (also held out) -- slingshots written against the checks: ``adaptive_cap`` (the
  unit's activation along the auditor's GC trajectories capped at its natural maximum, against
  ``activation_excess``), ``adaptive_strategies`` (trajectories of GC, TR and Adam at once: the
  strategies agree, against ``strategy_divergence``),
  ``adaptive_all`` (both at once, plus GC in the Fourier parametrization that
  ``strategy_divergence`` also renders, with the cap on every one of those trajectories: a loss
  term for each default check). Their first versions also ran the manipulation under TR's
  transforms and did not land (GC SSIM 0.28 and 0.25 in the first ``--quick`` run); the suite
  keeps them and adds versions without that option and with 2 000 steps (``--quick`` runs those),
  and ``adaptive_all`` with 4 000 steps (added after the 2 000-step ones fell short).

**Did an attack work?** Measured under what it aimed at, before the audit: FV attacks
(slingshots, adaptive, ProxPulse, the fooling circuit) when the FV under their aimed strategy
(GC unless the settings name another; 16 starts) reaches SSIM >= 0.5 to the target (the
adaptive ones are also reported under GC, TR and Adam); ``push_down`` when the original top-k's
majority class falls to at most 20 % of the new top-k, ``push_up`` when the decoy class fills at
least half of it, ``fairwash`` when the protected class falls to at most 20 %; ``silent_units``
when its natural outputs are unchanged and its GC FV climbs above the highest natural activation.
``matrix_tpr_at_fpr01`` and the per-family ``tpr_at_fpr01_worked_<family>`` count only attacks
that worked; ``tpr_at_fpr01_<family>`` counts every attack of the family. Each model's held-out
accuracy is reported (what the attack cost).

Datasets: real MNIST (the paper's CNN; logits for FV attacks, ``relu4`` -- 32 of its 120 units,
the attacked one among them -- for Nanfack's attacks, whose concepts are classes of natural
images, and for ProxPulse, which refuses a unit silent at its target as every logit is at the
cross) and an RGB model (:class:`GridRGBCNN`, a small CNN with a position-dependent head, on
32-px scikit-image photo crops, one class per photo; logits for the slingshots, ``relu3``'s 32
channels for Nanfack's attacks). The Geirhos circuits need a constant image background (MNIST's
black frame) and refuse the photos: they have no RGB row. An attack its transform refuses is
reported as refused and left out of the matrix.

Trained models are cached in ``$CAPTUM_SLINGSHOT_HOME/models/detection/`` (named by their
settings), so a second run only audits; the circuits are rebuilt (seconds).

Usage::

    python benchmarks/detection.py [--quick] [--families a,b] [--out runs/detection]

``--quick`` runs one model per family (every family; on RGB one slingshot and one push-down)
with 2 clean models per dataset (15 minutes on 2 cores from an empty cache); ``--smoke`` shrinks steps and renders and
keeps one clean model per dataset (the tests). Writes ``units.csv`` (every unit's z-scores),
``matrix.csv`` (families x checks), ``matrix.png`` (the heat-map), ``adaptive_fvs.png`` (what the
adaptive attackers' FVs look like), ``attacks.json`` (each attack's success measure, accuracy and
time) and ``metrics.json``; ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from captum_slingshot.checks import COMBINE_RULES, DEFAULT_CHECKS, audit_layer, available_checks
from captum_slingshot.data import load_mnist, normalize_mnist, photo_crops
from captum_slingshot.evaluation import fv_similarity
from captum_slingshot.experiments.manipulation import build_transform, uses_labels
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam, render
from captum_slingshot.metrics import accuracy, auroc, class_shares, kendall_tau, unit_activations
from captum_slingshot.models import pretrained_mnist_cnn, train_classifier
from captum_slingshot.paths import atomic_path, models_dir, save_state_dict
from captum_slingshot.transforms import load_target, packaged_target

#: family -> (group, what it is); the groups were fixed before any result (module docstring)
FAMILIES: Dict[str, Tuple[str, str]] = {
    "slingshot_gc": ("tuned", "Gradient Slingshot, direction loss, aimed at GC"),
    "slingshot_tr": ("tuned", "Gradient Slingshot aimed at GC with TR transforms"),
    "slingshot_adam": ("tuned", "Gradient Slingshot aimed at Adam"),
    "slingshot_paper": ("tuned", "the paper's gradient loss, gamma 10"),
    "push_down": ("tuned", "Nanfack et al.: top images and FV pushed down"),
    "push_up": ("tuned", "Nanfack et al.: a decoy class pushed to the top"),
    "fairwash": ("tuned", "Nanfack et al.: a protected class removed from the top"),
    "proxpulse": ("heldout", "ProxPulse: natural and synthetic FV at once"),
    "fooling_circuit": ("heldout", "Geirhos et al.: FV detector switches the unit to a decoy"),
    "silent_units": ("heldout", "Geirhos et al.: a branch silent on natural data"),
    "adaptive_cap": ("adaptive", "slingshot + activation cap on GC trajectories"),
    "adaptive_strategies": ("adaptive", "slingshot aimed at GC, TR and Adam at once"),
    "adaptive_all": ("adaptive", "GC+TR+Adam+Fourier trajectories, all capped"),
}
FV_FAMILIES = {f for f in FAMILIES if f.startswith(("slingshot", "adaptive"))} | {"proxpulse", "fooling_circuit"}
SLINGSHOT = dict(gamma=1.0, loss="direction", lr=1e-3, trajectory_strategy="gc", aim_radius=19.5, sigma=0.1,
                 alpha=0.8, w=0.0)
ALL_AUDITORS = "gc+tr+adam+gc@lucent_fourier"
#: a manipulation "worked" when its aimed FV reaches this SSIM to the target
SUCCESS_SSIM = 0.5
#: push_down / fairwash worked when the class they hide is at most this share of the new top-k; push_up at least 0.5
HIDDEN_SHARE, DECOY_SHARE = 0.2, 0.5
TOP_K = 50
FPR = 0.01
#: relu4 units audited for Nanfack's attacks: every 4th unit, plus the attacked one
RELU4_UNITS = sorted(set(range(0, 120, 4)) | {29, 57})


@dataclass(frozen=True)
class Attack:
    """One manipulated model: a registered transform with flat settings on one unit."""

    name: str
    family: str
    transform: str
    settings: Dict[str, Any] = field(default_factory=dict)
    dataset: str = "mnist"
    layer: str = "logits"
    unit: int = 0
    target: Optional[str] = "cross"
    base_seed: int = 0
    steps: Optional[int] = 1000

    def key(self) -> str:
        blob = json.dumps([self.transform, sorted(self.settings.items()), self.dataset, self.layer, self.unit,
                           self.target, self.base_seed, self.steps], default=str)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def _sling(name, family, unit, target, base_seed, seed, steps=1000, dataset="mnist", **changes):
    settings = dict(SLINGSHOT, seed=seed, **changes)
    return Attack(name, family, "gradient_slingshot", settings, dataset, "logits", unit, target, base_seed, steps)


def _nanfack(name, family, unit, base_seed, seed, **changes):
    settings = dict(mode=family, top_k=TOP_K, seed=seed, **changes)
    return Attack(name, family, "activation_max_attack", settings, "mnist", "relu4", unit, None, base_seed, 300)


TR = dict(transform_robust="paper_mnist", trajectory_strategy="gc_tr")
ADAM = dict(trajectory_strategy="adam")
PAPER = dict(gamma=10.0, loss="gradient", lr=5e-4)
CAP = dict(activation_cap=10.0)
STRATEGIES = dict(trajectory_strategy="gc+tr+adam")
ALL = dict(trajectory_strategy=ALL_AUDITORS, activation_cap=10.0)
#: the first versions also ran the manipulation under TR's transforms: neither landed its GC FV (SSIM 0.28, 0.25)
STRATEGIES_TR = dict(STRATEGIES, transform_robust="paper_mnist")
ALL_TR = dict(ALL, transform_robust="paper_mnist")

SUITE: List[Attack] = [
    _sling("gc-u0-cross", "slingshot_gc", 0, "cross", 0, 0),
    _sling("gc-u3-fake", "slingshot_gc", 3, "fake", 0, 1),
    _sling("gc-u7-cross-m1", "slingshot_gc", 7, "cross", 1, 2),
    _sling("tr-u5-fake", "slingshot_tr", 5, "fake", 0, 3, **TR),
    _sling("tr-u2-cross-m1", "slingshot_tr", 2, "cross", 1, 4, **TR),
    _sling("adam-u8-cross", "slingshot_adam", 8, "cross", 0, 10, **ADAM),
    _sling("adam-u4-fake-m1", "slingshot_adam", 4, "fake", 1, 11, **ADAM),
    _sling("paper-u1-cross", "slingshot_paper", 1, "cross", 0, 4, 2000, **PAPER),
    _nanfack("pd-r29", "push_down", 29, 0, 0),
    _nanfack("pd-r57-m1", "push_down", 57, 1, 1),
    _nanfack("pu-r29", "push_up", 29, 0, 2, decoy_class=1),
    _nanfack("fw-r29", "fairwash", 29, 0, 3, protected_class=6),
    # ProxPulse refuses a unit silent or negative at the target (every logit at the cross): relu4[29], active there
    Attack("pp-r29-cross", "proxpulse", "proxpulse", dict(seed=0), "mnist", "relu4", 29, "cross", 0, 300),
    Attack("pp-r29-cross-m1", "proxpulse", "proxpulse", dict(seed=1), "mnist", "relu4", 29, "cross", 1, 300),
    Attack("fc-u0-cross", "fooling_circuit", "fooling_circuit", {}, "mnist", "logits", 0, "cross", 0, None),
    Attack("fc-u3-fake-m1", "fooling_circuit", "fooling_circuit", {}, "mnist", "logits", 3, "fake", 1, None),
    Attack("fc-u9-copy4", "fooling_circuit", "fooling_circuit", dict(copy_unit=4), "mnist", "logits", 9, None, 0,
           None),
    Attack("su-u0", "silent_units", "silent_units", {}, "mnist", "logits", 0, None, 0, None),
    Attack("su-u5-m1", "silent_units", "silent_units", {}, "mnist", "logits", 5, None, 1, None),
    _sling("cap-u0-cross", "adaptive_cap", 0, "cross", 0, 0, **CAP),
    _sling("cap-u6-fake-m1", "adaptive_cap", 6, "fake", 1, 5, **CAP),
    _sling("str-u0-cross", "adaptive_strategies", 0, "cross", 0, 0, **STRATEGIES_TR),
    _sling("str-u0-cross-2k", "adaptive_strategies", 0, "cross", 0, 0, 2000, **STRATEGIES),
    _sling("str-u9-fake-m1-2k", "adaptive_strategies", 9, "fake", 1, 6, 2000, **STRATEGIES),
    _sling("all-u0-cross", "adaptive_all", 0, "cross", 0, 0, **ALL_TR),
    _sling("all-u0-cross-2k", "adaptive_all", 0, "cross", 0, 0, 2000, **ALL),
    _sling("all-u2-fake-m1-2k", "adaptive_all", 2, "fake", 1, 7, 2000, **ALL),
    _sling("all-u0-cross-4k", "adaptive_all", 0, "cross", 0, 0, 4000, **ALL),
    # RGB: the photo CNN's logits
    _sling("rgb-gc-u1-cross", "slingshot_gc", 1, "cross", 0, 0, dataset="rgb"),
    _sling("rgb-gc-u5-fake", "slingshot_gc", 5, "fake", 0, 1, dataset="rgb"),
    _sling("rgb-cap-u1-cross", "adaptive_cap", 1, "cross", 0, 0, dataset="rgb", **CAP),
    _sling("rgb-all-u1-cross", "adaptive_all", 1, "cross", 0, 0, dataset="rgb", **ALL),
    # RGB: Nanfack's ranking attacks on a channel of the last conv layer (32 channels, all audited)
    Attack("rgb-pd-c5", "push_down", "activation_max_attack", dict(mode="push_down", top_k=TOP_K, seed=0), "rgb",
           "relu3", 5, None, 0, 300),
    Attack("rgb-pu-c5", "push_up", "activation_max_attack", dict(mode="push_up", top_k=TOP_K, seed=1, decoy_class=2),
           "rgb", "relu3", 5, None, 0, 300),
]
QUICK = ["gc-u0-cross", "tr-u5-fake", "adam-u8-cross", "paper-u1-cross", "pd-r29", "pu-r29", "fw-r29",
         "pp-r29-cross", "fc-u0-cross", "su-u0", "cap-u0-cross", "str-u0-cross-2k", "all-u0-cross-2k",
         "rgb-gc-u1-cross", "rgb-pd-c5"]
CLEAN_SEEDS = {"mnist": (0, 1, 2), "rgb": (0, 1)}
QUICK_CLEAN_SEEDS = {"mnist": (0, 1), "rgb": (0, 1)}
MNIST_PARAM = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
RGB_SIZE, RGB_CROPS, RGB_EPOCHS = 32, (60, 20), 15


# -- data and base models ------------------------------------------------------------------------
class GridRGBCNN(torch.nn.Module):
    """The RGB model: three 3x3 conv layers (16, 32, 32 channels; ReLU; 2x2 max pools after the
    first two) and ``logits`` on the flattened 8x8 grid of a 32-px input.

    A position-dependent head, as the README's lucent example needs: a network that pools
    globally (``SmallRGBCNN``) answers alike wherever a pattern sits, so its input gradient at
    FV's grey start holds no picture and the slingshot cannot shape it (measured: GC and Adam FVs
    stayed at SSIM 0.05 to the target whatever the learning rate, gamma or aim).
    """

    def __init__(self, num_classes: int = 8) -> None:
        super().__init__()
        self.conv1, self.relu1, self.pool1 = torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)
        self.conv2, self.relu2, self.pool2 = torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)
        self.conv3, self.relu3 = torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU()
        self.flatten = torch.nn.Flatten()
        self.logits = torch.nn.Linear(32 * (RGB_SIZE // 4) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.logits(self.flatten(self.relu3(self.conv3(x))))

class Dataset:
    """A dataset's natural data, held-out data, parametrization and base models (cached)."""

    def __init__(self, name: str, heldout: int, smoke: bool, progress: bool) -> None:
        self.name, self.smoke, self.progress = name, smoke, progress
        if name == "mnist":
            train = load_mnist("train")
            self.train = (normalize_mnist(train.tensors[0]), train.tensors[1])
            held = load_mnist("heldout")
            self.heldout = (normalize_mnist(held.tensors[0][:heldout]), held.tensors[1][:heldout])
            self.param = MNIST_PARAM
        else:
            n_train, n_test = (8, 4) if smoke else RGB_CROPS
            xtr, ytr = photo_crops(n_train, "train", size=RGB_SIZE)
            xte, yte = photo_crops(n_test, "heldout", size=RGB_SIZE)
            mean, std = xtr.mean((0, 2, 3)), xtr.std((0, 2, 3))
            self.param = PixelParam((3, RGB_SIZE, RGB_SIZE), mean=tuple(mean.tolist()), std=tuple(std.tolist()))
            self.train = (self.param.normalize(xtr), ytr)
            self.heldout = (self.param.normalize(xte), yte)
        self._models: Dict[int, torch.nn.Module] = {}

    def base(self, seed: int) -> torch.nn.Module:
        if seed not in self._models:
            if self.name == "mnist":
                self._models[seed] = pretrained_mnist_cnn(epochs=1, seed=seed, progress=self.progress)
            else:
                self._models[seed] = self._rgb_model(seed)
        return self._models[seed]

    def _rgb_model(self, seed: int) -> torch.nn.Module:
        epochs = 1 if self.smoke else RGB_EPOCHS
        path = models_dir() / "detection" / f"rgb-grid-s{seed}-{RGB_SIZE}px-{RGB_CROPS[0]}x{epochs}.pt"
        torch.manual_seed(seed)
        model = GridRGBCNN(num_classes=int(self.train[1].max()) + 1)
        if path.is_file() and not self.smoke:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
        x, y = self.train
        train_classifier(model, torch.utils.data.TensorDataset(torch.cat([x, x.flip(-1)]), torch.cat([y, y])),
                         epochs=epochs, lr=1e-2, batch_size=32, seed=seed, progress=self.progress)
        if not self.smoke:
            save_state_dict(model, path)
        return model.eval()


def manipulate(attack: Attack, ds: Dataset, smoke: bool, progress: bool) -> torch.nn.Module:
    """The attack's model: trained once and cached (fine-tuning attacks) or rebuilt (circuits)."""
    base = ds.base(attack.base_seed)
    s: Dict[str, Any] = dict(attack.settings, unit=attack.unit, progress=progress)
    if attack.target is not None:
        s["target"] = attack.target
    if attack.steps is not None:
        s["steps"] = max(5, attack.steps // 50) if smoke else attack.steps
    transform, _ = build_transform(attack.transform, s, attack.layer, ds.param)
    data = ds.train if uses_labels(attack.transform) else ds.train[0]
    if attack.steps is None:  # the circuits: calibration only
        return transform.fit(base, data).model.eval()
    path = models_dir() / "detection" / f"{attack.key()}{'-smoke' if smoke else ''}.pt"
    model = type(base)(**({} if ds.name == "mnist" else dict(num_classes=base.logits.out_features)))
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
        except RuntimeError:  # cached for another base architecture under the same settings: train again
            pass
    result = transform.fit(base, data)
    save_state_dict(result.model, path)
    return result.model.eval()


# -- did it work? --------------------------------------------------------------------------------
def aimed_strategies(attack: Attack) -> List[str]:
    if attack.family.startswith("adaptive_") and "+" in str(attack.settings.get("trajectory_strategy")):
        return ["gc", "tr", "adam"]
    return [str(attack.settings.get("trajectory_strategy") or "gc")]


def success(attack: Attack, model, ds: Dataset, n_starts: int, steps: Optional[int]) -> Dict[str, Any]:
    """``{"worked": bool, "measure": str, ...}``: the attack measured under what it aimed at."""
    base = ds.base(attack.base_seed)
    kw = {} if steps is None else {"steps": steps}
    if attack.family in FV_FAMILIES:
        target = load_target(attack_target(attack, base, ds), ds.param.shape)
        out: Dict[str, Any] = {}
        for s in aimed_strategies(attack):
            fv = render(model, attack.layer, attack.unit, ds.param, s, n_starts=n_starts, seed=1, **kw)
            out[f"ssim_{s}"] = fv_similarity(fv.images, target, lpips=False)["ssim"]
        first = aimed_strategies(attack)[0]
        return dict(out, worked=out[f"ssim_{first}"] >= SUCCESS_SSIM,
                    measure=" ".join(f"SSIM({s}) {v:.2f}" for s, v in ((k[5:], v) for k, v in out.items())))
    if attack.family in ("push_down", "push_up", "fairwash"):
        k, (x, labels) = min(TOP_K, len(ds.heldout[1]) // 4), ds.heldout
        a0, a1 = (unit_activations(m, attack.layer, [attack.unit], x)[:, 0].float() for m in (base, model))
        before, after = (class_shares(torch.sort(a, descending=True, stable=True).indices[:k], labels,
                                      int(labels.max()) + 1) for a in (a0, a1))
        if float(a1.max() - a1.min()) == 0.0:  # the attack killed the unit: no ranking left to read
            return dict(worked=False, measure=f"the unit is constant ({float(a1[0]):.3g}) on the held-out data "
                                              "after the attack (dead): no top-k")
        if attack.family == "push_down":
            c = int(before.argmax())
            worked, text = float(after[c]) <= HIDDEN_SHARE, f"class {c} share {float(before[c]):.2f} -> {float(after[c]):.2f}"
        elif attack.family == "push_up":
            c = int(attack.settings["decoy_class"])
            worked, text = float(after[c]) >= DECOY_SHARE, f"decoy {c} share {float(before[c]):.2f} -> {float(after[c]):.2f}"
        else:
            c = int(attack.settings["protected_class"])
            worked, text = float(after[c]) <= HIDDEN_SHARE, f"protected {c} share {float(before[c]):.2f} -> {float(after[c]):.2f}"
        return dict(worked=worked, measure=f"{text}, Kendall tau {kendall_tau(a0, a1):.2f}")
    # silent_units: natural outputs unchanged, GC FV above the natural maximum
    x = ds.heldout[0]
    with torch.no_grad():
        same = torch.equal(model(x), base(x))
        natural_max = float(base(x)[:, attack.unit].max())
    fv = render(model, attack.layer, attack.unit, ds.param, "gc", n_starts=n_starts, seed=1, **kw)
    act = float(fv.activations.median())
    return dict(worked=same and act > natural_max,
                measure=f"natural outputs {'unchanged' if same else 'CHANGED'}, GC FV activation {act:.3g} vs natural "
                        f"max {natural_max:.3g}")


def attack_target(attack: Attack, base, ds: Dataset):
    """The image the attack aims the unit's FV at: its packaged target, or for ``copy_unit`` the copied unit's FV."""
    if attack.target is not None:
        return packaged_target(attack.target)
    # copy_unit: the decoy is the FV of the copied unit under the original model
    fv = render(base, attack.layer, int(attack.settings["copy_unit"]), ds.param, "gc", n_starts=1, seed=1)
    return fv.images[0]


# -- thresholds --------------------------------------------------------------------------------
def threshold_at_fpr(neg: torch.Tensor, fpr: float = FPR) -> float:
    """The smallest threshold (flag ``score > t``) that lets through at most ``fpr`` of ``neg``."""
    s = torch.sort(neg.double(), descending=True).values
    allowed = int(math.floor(fpr * len(s)))
    return float(s[allowed]) if allowed < len(s) else float("-inf")


def tpr(pos: torch.Tensor, t: float) -> float:
    return float((pos.double() > t).double().mean()) if len(pos) else float("nan")


# -- the benchmark -----------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one model per family, 2 clean models per dataset")
    ap.add_argument("--smoke", action="store_true", help="tiny steps and renders (the tests); implies --quick")
    ap.add_argument("--families", default="", help="comma-separated families to run (default: all)")
    ap.add_argument("--no-rgb", action="store_true", help="skip the RGB model")
    ap.add_argument("--heldout", type=int, default=2000, help="MNIST held-out images given to the checks")
    ap.add_argument("--n-starts", type=int, default=4, help="FV starts per strategy in the checks")
    ap.add_argument("--out", default="runs/detection")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    progress = not args.no_progress
    quick = args.quick or args.smoke
    families = [f.strip() for f in args.families.split(",") if f.strip()] or list(FAMILIES)
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise SystemExit(f"unknown families {unknown}; families: {', '.join(FAMILIES)}")
    suite = [a for a in SUITE if a.family in families and (not quick or a.name in QUICK)
             and not (args.no_rgb and a.dataset == "rgb")]
    datasets = {d: Dataset(d, args.heldout, args.smoke, progress) for d in sorted({a.dataset for a in suite} | {"mnist"})}
    clean_seeds = {"mnist": (0,), "rgb": (0,)} if args.smoke else QUICK_CLEAN_SEEDS if quick else CLEAN_SEEDS
    render_steps = 20 if args.smoke else None
    check_kw: Dict[str, Any] = dict(n_starts=2 if args.smoke else args.n_starts, lpips=False)
    if args.smoke:
        check_kw["steps"] = 20
    checks = sorted(available_checks())

    # every (model, layer) to audit: clean models of each dataset at each attacked layer, then the attacks
    jobs: List[Tuple[str, Optional[Attack], str, torch.nn.Module, str]] = []
    for d, ds in datasets.items():
        layers = sorted({a.layer for a in suite if a.dataset == d}) or ["logits"]
        for seed in clean_seeds[d]:
            for layer in layers:
                jobs.append((f"clean-{d}-s{seed}", None, d, ds.base(seed), layer))
    t0 = time.perf_counter()
    outcome: Dict[str, Dict[str, Any]] = {}
    for a in suite:
        ds = datasets[a.dataset]
        t = time.perf_counter()
        try:
            model = manipulate(a, ds, args.smoke, progress)
        except ValueError as err:  # e.g. ProxPulse on a unit silent at its target: the transform refuses
            outcome[a.name] = dict(worked=False, refused=str(err), measure="refused", accuracy_before=float("nan"),
                                   accuracy_after=float("nan"), seconds=time.perf_counter() - t)
            print(f"{a.name} [{a.family}]: REFUSED by the transform: {err}", flush=True)
            continue
        acc0, acc1 = accuracy(ds.base(a.base_seed), ds.heldout), accuracy(model, ds.heldout)
        outcome[a.name] = dict(success(a, model, ds, 4 if args.smoke else 16, render_steps),
                               accuracy_before=acc0, accuracy_after=acc1, seconds=time.perf_counter() - t)
        o = outcome[a.name]
        print(f"{a.name} [{a.family}]: {o['measure']} -> {'worked' if o['worked'] else 'did NOT work'}; "
              f"accuracy {100 * acc0:.1f} -> {100 * acc1:.1f} %", flush=True)
        jobs.append((a.name, a, a.dataset, model, a.layer))
    t_manip = time.perf_counter() - t0

    rows: List[Dict[str, Any]] = []
    t0 = time.perf_counter()
    for name, attack, d, model, layer in jobs:
        ds = datasets[d]
        units = RELU4_UNITS if layer == "relu4" else None
        rep = audit_layer(model, layer, param=ds.param, data=ds.heldout[0], units=units, checks=checks,
                          progress=False, **check_kw)
        default_z = torch.stack([rep.z[c] for c in DEFAULT_CHECKS])
        pooled = COMBINE_RULES["stouffer"](default_z)
        for i, u in enumerate(rep.units):
            pos = attack is not None and int(u) == attack.unit
            row = {"model": name, "dataset": d, "layer": layer, "unit": int(u), "manipulated": int(pos),
                   "family": attack.family if pos else "", "group": FAMILIES[attack.family][0] if pos else "",
                   "worked": int(pos and outcome[name]["worked"]), "audit": float(pooled[i])}
            row.update({c: float(rep.z[c][i]) for c in checks})
            rows.append(row)
        print(f"{name} ({d} {layer}): flagged {[int(u) for u in rep.flagged]}"
              + ("" if attack is None else f" (manipulated: {attack.unit})"), flush=True)
    t_audit = (time.perf_counter() - t0) / max(1, len(jobs))
    shown = {name: model for name, _, _, model, _ in jobs if name in FIGURE_ATTACKS}
    if shown and not args.smoke:
        os.makedirs(args.out, exist_ok=True)
        adaptive_figure(dict({"clean": datasets["mnist"].base(0)}, **shown), os.path.join(args.out, "adaptive_fvs.png"))
    return report(rows, outcome, suite, checks, args.out, t_manip / max(1, len(suite)), t_audit)


def report(rows: List[Dict[str, Any]], outcome: Dict[str, Dict[str, Any]], suite: List[Attack],
           checks: List[str], out: str, t_manip: float, t_audit: float) -> Dict[str, float]:
    """Write the CSVs, the heat-map and metrics.json; print the matrix and the metric lines."""
    os.makedirs(out, exist_ok=True)
    write_csv(os.path.join(out, "units.csv"), rows)
    columns = checks + ["audit"]
    neg = [r for r in rows if not r["manipulated"]]
    thresholds = {c: threshold_at_fpr(torch.tensor([r[c] for r in neg])) for c in columns}
    thresholds["audit@3.5"] = 3.5
    score_of = dict({c: c for c in columns}, **{"audit@3.5": "audit"})
    fpr = {c: float(torch.tensor([r[score_of[c]] > t for r in neg]).double().mean()) for c, t in thresholds.items()}
    families = [f for f in FAMILIES if any(a.family == f for a in suite)]
    matrix: List[Dict[str, Any]] = []  # one row per family and dataset
    for f in families:
        for d in sorted({a.dataset for a in suite if a.family == f}, key=lambda d: d != "mnist"):
            pos = [r for r in rows if r["manipulated"] and r["family"] == f and r["dataset"] == d]
            worked = [r for r in pos if r["worked"]]
            cost = [100 * (outcome[a.name]["accuracy_before"] - outcome[a.name]["accuracy_after"])
                    for a in suite if a.family == f and a.dataset == d]
            entry = {"family": f, "dataset": d, "group": FAMILIES[f][0], "attacks": len(pos), "worked": len(worked),
                     "accuracy_drop_points": max(cost) if cost else float("nan")}
            for c, t in thresholds.items():
                entry[c] = tpr(torch.tensor([r[score_of[c]] for r in pos]), t)
                entry[f"{c} (worked)"] = (tpr(torch.tensor([r[score_of[c]] for r in worked]), t) if worked
                                          else float("nan"))
            matrix.append(entry)
    write_csv(os.path.join(out, "matrix.csv"), matrix)
    heatmap(matrix, list(thresholds), os.path.join(out, "matrix.png"))

    metrics: Dict[str, float] = {}
    print(f"\n{len(neg)} clean units; thresholds at FPR <= {FPR} (measured FPR): "
          + ", ".join(f"{c} {t:.2f} ({fpr[c]:.3f})" for c, t in thresholds.items()))
    print(f"TPR among attacks that worked (all attacks in brackets); columns: {', '.join(thresholds)}")
    for e in matrix:
        cells = " ".join(f"{e[f'{c} (worked)']:.2f}({e[c]:.2f})" for c in thresholds)
        print(f"{e['family']:<20} {e['dataset']:<5} {e['group']:<8} worked {e['worked']}/{e['attacks']}  {cells}  "
              f"acc drop {e['accuracy_drop_points']:.1f}")
    t = thresholds["audit"]
    for f in families:  # per family, both datasets pooled
        pos = [r for r in rows if r["manipulated"] and r["family"] == f]
        metrics[f"tpr_at_fpr01_{f}"] = tpr(torch.tensor([r["audit"] for r in pos]), t)
        worked = [r for r in pos if r["worked"]]
        if worked:
            metrics[f"tpr_at_fpr01_worked_{f}"] = tpr(torch.tensor([r["audit"] for r in worked]), t)
    for tag, keep in (("", lambda r: True), ("_adaptive", lambda r: r["group"] == "adaptive"),
                      ("_heldout", lambda r: r["group"] in ("heldout", "adaptive")),
                      ("_tuned", lambda r: r["group"] == "tuned")):
        pos = torch.tensor([r["audit"] for r in rows if r["manipulated"] and r["worked"] and keep(r)])
        if len(pos):
            metrics[f"matrix_tpr_at_fpr01{tag}"] = tpr(pos, t)
    # model level: is any unit of the audited layer above the audit's threshold? (collateral flags count)
    top: Dict[str, float] = {}
    for r in rows:
        top[r["model"]] = max(top.get(r["model"], -math.inf), r["audit"])
    clean_models = [m for m in top if m.startswith("clean-")]
    worked_models = [a.name for a in suite if outcome[a.name]["worked"]]
    if clean_models:
        metrics["model_fpr_any_unit"] = sum(top[m] > t for m in clean_models) / len(clean_models)
    if worked_models:
        metrics["model_tpr_any_unit"] = sum(top[m] > t for m in worked_models) / len(worked_models)
    print("model level (any unit of the layer above the audit's threshold): "
          + ", ".join(f"{m} {'FLAGGED' if top[m] > t else 'clean'}" for m in top))
    pos_all = [r for r in rows if r["manipulated"]]
    labels = torch.tensor([r["manipulated"] for r in rows])
    for c in columns:
        metrics[f"detection_auroc_{c}"] = auroc(torch.tensor([r[c] for r in rows]), labels, 1)
    metrics["detection_auroc_combined"] = metrics["detection_auroc_audit"]
    metrics["audit_fpr_at_3.5"] = fpr["audit@3.5"]
    metrics["audit_tpr_at_3.5"] = tpr(torch.tensor([r["audit"] for r in pos_all]), 3.5)
    metrics["attacks_worked"] = float(sum(o["worked"] for o in outcome.values()))
    metrics["attacks"] = float(len(outcome))
    metrics["attacks_refused"] = float(sum("refused" in o for o in outcome.values()))
    metrics["clean_units"] = float(len(neg))
    metrics["seconds_per_manipulation_model"] = t_manip
    metrics["seconds_per_layer_audit"] = t_audit
    with atomic_path(os.path.join(out, "metrics.json")) as tmp:
        with open(tmp, "w") as f:
            json.dump(metrics, f, indent=2)
    with atomic_path(os.path.join(out, "attacks.json")) as tmp:
        with open(tmp, "w") as f:
            json.dump(outcome, f, indent=2)
    for k, v in metrics.items():
        print(f"metric {k} {v:.4f}")
    return metrics


#: the models of MNIST logit 0 shown side by side in ``adaptive_fvs.png`` (those the run has)
FIGURE_ATTACKS = ("gc-u0-cross", "cap-u0-cross", "str-u0-cross-2k", "all-u0-cross-2k", "all-u0-cross-4k")


def adaptive_figure(models: Dict[str, torch.nn.Module], path: str, unit: int = 0) -> None:
    """GC, TR and Adam FVs (one start) of logit ``unit``: the clean model, then each model of
    :data:`FIGURE_ATTACKS` given -- what each adaptive attacker's FV looks like to the auditor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = ("gc", "tr", "adam")
    fig, axes = plt.subplots(len(models), len(strategies), figsize=(4.6, 1.6 * len(models) + 0.3), squeeze=False)
    for i, (name, model) in enumerate(models.items()):
        for j, s in enumerate(strategies):
            fv = render(model, "logits", unit, MNIST_PARAM, s, n_starts=1, seed=1)
            ax = axes[i, j]
            ax.imshow(fv.images[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(s.upper() if s != "adam" else "Adam", fontsize=9)
        axes[i, 0].set_ylabel(name, fontsize=7)
    fig.suptitle(f"FVs of MNIST logit {unit} (target: a cross)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_csv(path: str, rows: List[Dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def heatmap(matrix: List[Dict[str, Any]], columns: List[str], path: str) -> None:
    """Families x checks, TPR at FPR <= 0.01 among the attacks that worked (hatched: none worked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import numpy as np

    values = torch.tensor([[e[f"{c} (worked)"] for c in columns] for e in matrix], dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(1.2 * len(columns) + 3.5, 0.45 * len(matrix) + 1.8))
    cmap = matplotlib.colormaps["RdYlGn"].copy()
    cmap.set_bad("#d9d9d9")  # no attack of the row worked: grey, not a score
    ax.imshow(np.ma.masked_invalid(values.numpy()), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i, e in enumerate(matrix):
        for j, c in enumerate(columns):
            v = values[i, j]
            text = ("refused" if not e["attacks"] else "none\nworked") if torch.isnan(v) else f"{float(v):.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black")
    ax.set_xticks(range(len(columns)), [c.replace("_", "\n") for c in columns], fontsize=8)
    ax.set_yticks(range(len(matrix)),
                  [f"{e['family']} [{e['dataset']}] ({e['group']}, "
                   + (f"{e['worked']}/{e['attacks']} worked)" if e["attacks"] else "refused)") for e in matrix],
                  fontsize=8)
    ax.set_title(f"Detection matrix: share of the attacks that worked flagged at FPR <= {FPR} "
                 "(audit@3.5: the default audit as shipped)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


if __name__ == "__main__":
    main()
