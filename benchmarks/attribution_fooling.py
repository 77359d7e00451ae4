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
* **RGB** (skipped by ``--quick``): ``SmallRGBCNN`` (width 16) trained on scikit-image photo crops
  (64 px, one class per photo; train crops from the top 75 % of each photo, test crops from the
  bottom 25 %), every mode x trained interpreter with the MNIST settings (not re-tuned; at most
  1 500 steps); active fooling swaps photos 0 and 1 on composites of two crops.

Usage::

    python benchmarks/attribution_fooling.py [--quick] [--out runs/attribution_fooling]

``--quick``: one attack seed, 500 test inputs, no RGB part (21 minutes on 2 cores; the full run 74).
Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_slingshot.attributions import make_interpreter, normalize_maps
from captum_slingshot.checks import audit_attributions
from captum_slingshot.data import load_mnist, normalize_mnist, photo_crops, two_class_composites
from captum_slingshot.evaluation import evaluate_fooling
from captum_slingshot.metrics import auroc
from captum_slingshot.models import SmallRGBCNN, pretrained_mnist_cnn, train_classifier
from captum_slingshot.transforms import AttributionFooling
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
ADAPTIVE = ("location", "grad_cam+lrp_epsilon", dict(lr=1e-3, fooling_weight=20.0, steps=2000))
CLEAN_STEPS = 800


def fool(base: nn.Module, natural: Tuple[Tensor, Tensor], mode: str, interpreter: str, settings: Dict[str, Any],
         seed: int, classes: Tuple[int, int] = CLASSES) -> nn.Module:
    s = dict(settings)
    attack = AttributionFooling(mode=mode, interpreter=interpreter, fooling_weight=s.pop("fooling_weight"),
                                classes=classes if mode == "active" else None,
                                training=Training(seed=seed, progress=True, batch_size=32, **s))
    return attack.fit(base, natural).model.eval()


def clean_finetune(base: nn.Module, natural: Tuple[Tensor, Tensor], steps: int, seed: int) -> nn.Module:
    """The control: the same fine-tune (Adam 1e-3, batch 32, eval mode) with cross-entropy only."""
    import copy

    model = copy.deepcopy(base).eval()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    x, y = natural
    for _ in range(steps):
        idx = torch.randint(0, len(x), (32,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def check_score(model: nn.Module, inputs: Tensor, reference: nn.Module) -> Tuple[float, Dict[str, Any]]:
    rep = audit_attributions(model, inputs, reference=reference)
    return float(rep.combined.max()), {"flagged": rep.flagged, "rows": rep.table}


def transfer(fsr: Dict[str, float], trained: str) -> float:
    others = [v for k, v in fsr.items() if k not in trained.split("+")]
    return sum(others) / len(others)


def figure(path: str, base: nn.Module, fooled: Dict[Tuple[str, str], nn.Module], x: Tensor, composite: Tensor) -> str:
    """One row per trained interpreter: the input, the original map, the fooled map of every mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = ("location", "topk", "center_mass", "active")
    interps = ("grad_cam", "lrp_epsilon")
    fig, axes = plt.subplots(len(interps), 2 + 2 * len(modes) - 2, figsize=(2.0 * 8, 2.5 * len(interps)))
    for r, name in enumerate(interps):
        cols: List[Tuple[str, Tensor]] = []
        with torch.no_grad():
            pred = base(x).argmax(1)
        orig = make_interpreter(name, base).heatmap(x, pred).detach()
        cols.append(("input (digit %d)" % int(pred), x[0, 0]))
        cols.append(("original " + name, normalize_maps(orig)[0]))
        for mode in modes:
            m = fooled.get((mode, name))
            if m is None:
                continue
            if mode == "active":
                c = torch.tensor([CLASSES[0]])
                cols.append((f"composite ({CLASSES[0]} and {CLASSES[1]})", composite[0, 0]))
                cols.append((f"composite, class {CLASSES[0]}: original", normalize_maps(
                    make_interpreter(name, base).heatmap(composite, c).detach())[0]))
                cols.append((f"class {CLASSES[0]}: fooled", normalize_maps(
                    make_interpreter(name, m).heatmap(composite, c).detach())[0]))
            else:
                cols.append((f"{mode}: fooled", normalize_maps(make_interpreter(name, m).heatmap(x, pred).detach())[0]))
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(cols):
                title, img = cols[c]
                ax.imshow(img.numpy(), cmap="gray" if title.startswith(("input", "composite (")) else "inferno")
                ax.set_title(title, fontsize=8)
    fig.suptitle("Attribution fooling on the MNIST CNN (test input): original map vs the fooled models' maps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rgb_part(smoke: bool, out: Dict[str, Any], metrics: Dict[str, float]) -> None:
    torch.manual_seed(0)
    xtr, ytr = photo_crops(8 if smoke else 150, "train", size=64)
    xte, yte = photo_crops(4 if smoke else 40, "heldout", size=64)
    mean, std = xtr.mean((0, 2, 3), keepdim=True), xtr.std((0, 2, 3), keepdim=True)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    n_cls = int(ytr.max()) + 1
    model = SmallRGBCNN(num_classes=n_cls, width=16)
    train_classifier(model, torch.utils.data.TensorDataset(xtr, ytr), epochs=1 if smoke else 15, lr=1e-2,
                     batch_size=32, seed=0, progress=False)
    composites, _ = two_class_composites(xte, yte, RGB_CLASSES, len(xte) // 2, seed=1, background=float(xte.min()))
    for (mode, name), s in SETTINGS.items():
        t0 = time.perf_counter()
        s = dict(s, steps=5 if smoke else min(s["steps"], 1500))  # the MNIST settings, not re-tuned
        m = fool(model, (xtr, ytr), mode, name, s, seed=0, classes=RGB_CLASSES)
        ev = evaluate_fooling(m, model, (xte, yte), mode, (name,) + tuple(i for i in INTERPRETERS if i != name),
                              classes=RGB_CLASSES, fooling_inputs=composites if mode == "active" else None)
        out[f"rgb/{mode}/{name}"] = ev
        metrics[f"rgb_fsr_{mode}_{name}_trained"] = ev["fsr"][name]
        metrics[f"rgb_fsr_{mode}_{name}_transfer"] = transfer(ev["fsr"], name)
        metrics[f"rgb_acc_drop_{mode}_{name}"] = ev["accuracy_drop"]
        print(f"RGB {mode:12s} {name:12s} FSR {ev['fsr'][name]:.3f} transfer {transfer(ev['fsr'], name):.3f} "
              f"acc {ev['accuracy_original']:.3f} -> {ev['accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)",
              flush=True)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one attack seed, 500 test inputs, no RGB part")
    ap.add_argument("--smoke", action="store_true", help="5 steps per attack, 40 inputs: checks the script runs "
                    "(numbers meaningless; used by the tests)")
    ap.add_argument("--out", default="runs/attribution_fooling")
    args = ap.parse_args(argv)
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
    composites, _ = two_class_composites(xall, yt, CLASSES, n_test // 2, seed=1, background=float(xall.min()))
    audit_inputs = test[0][:20 if args.smoke else 200]

    bases = {s: pretrained_mnist_cnn(seed=s, progress=False) for s in (0, 1)}
    reference = pretrained_mnist_cnn(seed=2, progress=False)
    base = bases[0]
    results: Dict[str, Any] = {"settings": {f"{m}/{i}": v for (m, i), v in settings.items()}, "attacks": {}}
    metrics: Dict[str, float] = {}
    fooled_scores: List[float] = []
    fooled_models: Dict[Tuple[str, str], nn.Module] = {}

    print(f"{'mode':12s} {'trained':12s} seed  FSR trained  transfer  acc orig -> fooled (drop)  check z")
    for (mode, name), s in settings.items():
        for seed in seeds:
            t0 = time.perf_counter()
            m = fool(base, natural, mode, name, s, seed)
            ev = evaluate_fooling(m, base, test, mode, (name,) + tuple(i for i in INTERPRETERS if i != name),
                                  classes=CLASSES, fooling_inputs=composites if mode == "active" else None)
            z, audit = check_score(m, audit_inputs, reference)
            fooled_scores.append(z)
            ev.update(check_z=z, audit=audit, seconds=round(time.perf_counter() - t0, 1))
            results["attacks"][f"{mode}/{name}/seed{seed}"] = ev
            tr = transfer(ev["fsr"], name)
            print(f"{mode:12s} {name:12s} {seed:4d}  {ev['fsr'][name]:11.3f}  {tr:8.3f}  "
                  f"{ev['accuracy_original']:.4f} -> {ev['accuracy']:.4f} ({ev['accuracy_drop']:+.2f})  {z:7.2f}  "
                  f"[{ev['seconds']:.0f} s; empty maps {ev['empty'][name]:.3f}]", flush=True)
            if seed == seeds[0]:
                fooled_models[(mode, name)] = m
                metrics[f"fsr_{mode}_{name}_trained"] = ev["fsr"][name]
                metrics[f"fsr_{mode}_{name}_transfer"] = tr
                metrics[f"acc_drop_{mode}_{name}"] = ev["accuracy_drop"]

    clean_scores: List[float] = []
    for s, b in bases.items():
        for label, model in ((f"base seed {s}", b), (f"CE fine-tune of seed {s}", clean_finetune(b, natural,
                                                                                                  clean_steps, s))):
            z, audit = check_score(model, audit_inputs, reference)
            clean_scores.append(z)
            results.setdefault("clean", {})[label] = {"check_z": z, "audit": audit}
            print(f"clean: {label:26s} check z {z:7.2f}  flagged {audit['flagged']}", flush=True)
    labels = [1] * len(fooled_scores) + [0] * len(clean_scores)
    metrics["attribution_check_auroc"] = auroc(torch.tensor(fooled_scores + clean_scores), torch.tensor(labels), 1)

    mode, name, s = adaptive  # held out: never pooled, never used for a choice
    t0 = time.perf_counter()
    m = fool(base, natural, mode, name, s, seeds[0])
    ev = evaluate_fooling(m, base, test, mode, INTERPRETERS)
    z, audit = check_score(m, audit_inputs, reference)
    ev.update(check_z=z, audit=audit, seconds=round(time.perf_counter() - t0, 1))
    results["adaptive"] = ev
    metrics["adaptive_fsr_grad_cam"] = ev["fsr"]["grad_cam"]
    metrics["adaptive_fsr_lrp_epsilon"] = ev["fsr"]["lrp_epsilon"]
    metrics["adaptive_check_auroc"] = auroc(torch.tensor([z] + clean_scores), torch.tensor([1] + [0] * len(
        clean_scores)), 1)
    print(f"adaptive (held out): {mode} against {name}: FSR grad_cam {ev['fsr']['grad_cam']:.3f}, lrp_epsilon "
          f"{ev['fsr']['lrp_epsilon']:.3f}, saliency {ev['fsr']['saliency']:.3f}; acc drop {ev['accuracy_drop']:+.2f}; "
          f"check z {z:.2f} (flagged rows {audit['flagged']})", flush=True)

    fig = figure(os.path.join(args.out, "attribution_fooling.png"), base, fooled_models, test[0][:1], composites[:1])
    print(f"wrote {fig}")
    if args.smoke or not args.quick:
        rgb_part(args.smoke, results, metrics)

    metrics["seconds"] = time.perf_counter() - t_start
    results["metrics"] = metrics
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2, default=str)
    for k, v in metrics.items():
        print(f"metric {k} {v:.4f}")
    return metrics


if __name__ == "__main__":
    main()
