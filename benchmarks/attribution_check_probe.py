"""A development suite for attribution checks, kept apart from the reported one, and the candidate checks
tried on it.

``attribution_fooling.py`` reports the audit on its own suite (base CNN of seed 0, active fooling of
classes 3 and 8, attack seeds 0 and 1, the first 200 test digits). A new check must not be designed on that
suite, so this one is different in every draw: the paper's MNIST CNN of training seed 3 (a second clean base:
seed 4), attacks of seed 5 with ``attribution_fooling.SETTINGS`` (active fooling swaps classes 1 and 7),
cross-entropy-only fine-tunes of both bases (``CLEAN_STEPS``), test digits 5000-5199, the reference a CNN of
seed 2 (as in the report: it is the trusted model, not a measured one). Clean: the two bases and their
fine-tunes; fooled: active, top-k and centre-of-mass fooling of Grad-CAM and of LRP (location fooling is
flagged by every audit so far and left out).

What it measures (each score with its direction declared before it was run; AUROC of fooled against clean,
per interpreter, where a score belongs to one):

* ``audit``: :func:`~captum_slingshot.checks.audit_attributions`' combined z, with Grad-CAM at the last
  convolution (the default) and at the ReLU after it (``interpreter_layer="relu2"``, Selvaraju et al.'s rectified
  feature maps).
* ``gradcam``: the share of inputs whose Grad-CAM map has no positive relevance, and the rank correlation of
  each model's Grad-CAM map with its base's, at both layers: how much a fine-tune moves the map.
* ``noise``: weight-noise stability: the rank correlation of a model's map with the maps of
  ``NOISE_DRAWS`` copies whose every parameter tensor got Gaussian noise of ``NOISE_SCALE`` x its standard
  deviation (low: suspicious, the hypothesis being that a fooled map sits in a fragile optimum).
* ``contrast``: on the same mosaics, the share of the map of the input's class on its own half minus the share
  of the partner's class's map there; per input the mean over partners (low: suspicious; a model that tells the
  two classes apart by place scores above 0, a swap below).
* ``partner``: partner consistency on ``mosaic_focus``'s mosaics: the map of an input's class on its own half,
  set beside a partner of each other class; per input the smallest rank correlation with the mean of the
  other partners' maps (low: suspicious, the hypothesis being that active fooling changes the map beside one
  partner class only).
* ``comparative`` (round 4): the audit against the model before the fine-tune, ``original=`` the model's base,
  with the checks that need it only (``explanation_drift``, ``class_swap``), Grad-CAM at ``relu2``, and as
  ``reference`` the auditor's own cross-entropy fine-tune of that base (seed ``AUDITOR_SEED``). Its suite is
  the fine-tunes only (an untouched base has nothing to drift from): the two CE fine-tunes above, the
  ``EXTRA_CLEAN`` fine-tunes (more seeds, and distillation to the base), and the six attacks.
* ``length`` (a control, after round 4's reported run): clean fine-tunes longer than the reference
  (``LONG_CLEAN``) against the 800-step reference, and the seed-3 fine-tunes against a reference of
  ``LONG_REFERENCE_STEPS`` steps: how much of the comparative z is the fine-tune's length.

Usage::

    python benchmarks/attribution_check_probe.py [--quick] [--out runs/attribution_check_probe]

``--quick``: the Grad-CAM attacks and the seed-3 clean models only (one extra fine-tune), 100 digits. Models are cached in ``--out``.
Ends with ``metric <name> <value>`` lines. ``CS_THREADS=1`` sets torch's thread count.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import pathlib
import time
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor, nn

from captum_slingshot.attributions import make_interpreter
from captum_slingshot.checks import audit_attributions
from captum_slingshot.checks.attribution import explanation_maps, focus_mosaics, own_half_share
from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.metrics import auroc, rank_correlation
from captum_slingshot.models import pretrained_mnist_cnn

BASE_SEED, SECOND_BASE_SEED, REFERENCE_SEED, ATTACK_SEED = 3, 4, 2, 5
PAIR = (1, 7)
INPUTS = (5000, 5200)
ATTACKS = (("active", "grad_cam"), ("active", "lrp_epsilon"), ("topk", "grad_cam"), ("topk", "lrp_epsilon"),
           ("center_mass", "grad_cam"), ("center_mass", "lrp_epsilon"))
INTERPRETERS = ("grad_cam", "lrp_epsilon", "saliency")
NOISE_SCALE, NOISE_DRAWS = 0.05, 3
#: the ReLU after the MNIST CNN's last convolution
RECTIFIED = "relu2"
#: (preservation loss, base seed, fine-tune seed) of the clean fine-tunes added for the comparative audit
EXTRA_CLEAN = (("ce", 3, 11), ("ce", 3, 12), ("ce", 4, 11), ("distill", 3, 13), ("distill", 4, 13))
#: the seed of the auditor's own cross-entropy fine-tune of each base: the comparative audit's reference
AUDITOR_SEED = 10
COMPARATIVE_CHECKS = ("explanation_drift", "class_swap")
#: the length control (measured after round 4's reported run, chose nothing): clean cross-entropy fine-tunes of
#: base seed 3 that run longer than the reference, (steps, seed), and the length of a second, longer reference
LONG_CLEAN, LONG_REFERENCE_STEPS = ((1500, 15), (4000, 14)), 4000


def _sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"{name}_bench", pathlib.Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def noisy_copy(model: nn.Module, scale: float, seed: int) -> nn.Module:
    """A copy of ``model`` with Gaussian noise of ``scale`` x each parameter tensor's standard deviation."""
    g = torch.Generator().manual_seed(seed)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            if p.numel() > 1:
                p.add_(torch.randn(p.shape, generator=g) * scale * p.std())
    return out.eval()


def noise_stability(model: nn.Module, interpreter: str, x: Tensor, target: Tensor) -> float:
    """Mean rank correlation of the map with those of :data:`NOISE_DRAWS` noisy copies."""
    maps = explanation_maps(make_interpreter(interpreter, model).heatmap, x, target, 256)
    rhos = [rank_correlation(maps, explanation_maps(make_interpreter(interpreter, noisy_copy(model, NOISE_SCALE, k))
                                                    .heatmap, x, target, 256)).mean() for k in range(NOISE_DRAWS)]
    return float(torch.stack(rhos).mean())


def partner_consistency(model: nn.Module, interpreter: str, x: Tensor, target: Tensor) -> float:
    """Mean over inputs of the smallest rank correlation of the own-half map beside one partner with the mean of
    the own-half maps beside the others."""
    mosaics, owner, on_left = focus_mosaics(x, target)
    maps = explanation_maps(make_interpreter(interpreter, model).heatmap, mosaics, target[owner], 256)
    k = len(owner) // len(x)
    w = maps.shape[-1]
    own = torch.where(on_left[:, None, None], maps[..., : w // 2], maps[..., w - w // 2:]).reshape(len(x), k, -1,
                                                                                                    w // 2)
    others = (own.sum(1, keepdim=True) - own) / (k - 1)
    rho = rank_correlation(own.flatten(0, 1), others.flatten(0, 1)).reshape(len(x), k)
    return float(rho.min(1).values.mean())


def contrast(model: nn.Module, interpreter: str, x: Tensor, target: Tensor) -> float:
    """Mean over inputs and partners of (own class's share on the own half) - (partner class's share there)."""
    mosaics, owner, on_left = focus_mosaics(x, target)
    classes = target.unique()
    partner = torch.cat([classes[classes != target[i]] for i in range(len(x))])
    func = make_interpreter(interpreter, model).heatmap
    own = own_half_share(explanation_maps(func, mosaics, target[owner], 256), on_left)
    other = own_half_share(explanation_maps(func, mosaics, partner, 256), on_left)
    return float((own - other).mean())


def gradcam_state(model: nn.Module, base: nn.Module, x: Tensor, target: Tensor, layer: Optional[str]) -> Dict[str, float]:
    """Grad-CAM at ``layer``: the share of empty maps, and the rank correlation with ``base``'s maps."""
    maps = explanation_maps(make_interpreter("grad_cam", model, layer).heatmap, x, target, 256)
    ref = explanation_maps(make_interpreter("grad_cam", base, layer).heatmap, x, target, 256)
    return {"empty": float((maps.flatten(1).amax(1) <= 0).float().mean()),
            "rho_to_base": float(rank_correlation(maps, ref).mean())}


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Grad-CAM attacks, seed-3 clean models, 100 digits")
    ap.add_argument("--out", default="runs/attribution_check_probe")
    args = ap.parse_args(argv)
    if os.environ.get("CS_THREADS"):
        torch.set_num_threads(int(os.environ["CS_THREADS"]))
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    bench = _sibling("attribution_fooling")
    train = load_mnist("train").tensors
    natural = (normalize_mnist(train[0]), train[1])
    xt, _ = load_mnist("test").tensors
    start, stop = INPUTS
    x = normalize_mnist(xt)[start:start + 100 if args.quick else stop]

    reference = pretrained_mnist_cnn(seed=REFERENCE_SEED, progress=False)
    base = pretrained_mnist_cnn(seed=BASE_SEED, progress=False)
    bases = {BASE_SEED: base} if args.quick else {BASE_SEED: base,
                                                  SECOND_BASE_SEED: pretrained_mnist_cnn(seed=SECOND_BASE_SEED,
                                                                                         progress=False)}
    clean: Dict[str, nn.Module] = {}
    for seed, b in bases.items():
        clean[f"base seed {seed}"] = b
        clean[f"CE fine-tune of seed {seed}"] = bench.cached_model(
            os.path.join(args.out, f"ce_seed{seed}.pt"), copy.deepcopy(b),
            lambda: bench.clean_finetune(b, natural, bench.CLEAN_STEPS, seed))
    fooled: Dict[str, nn.Module] = {}
    for mode, name in ATTACKS:
        if args.quick and name != "grad_cam":
            continue
        fooled[f"{mode}/{name}"] = bench.cached_model(
            os.path.join(args.out, f"{mode}_{name}.pt"), copy.deepcopy(base),
            lambda: bench.fool(base, natural, mode, name, bench.SETTINGS[(mode, name)], ATTACK_SEED, classes=PAIR,
                               progress=False))
    extra: Dict[str, nn.Module] = {}
    for preserve, seed, ft_seed in EXTRA_CLEAN[:1] if args.quick else EXTRA_CLEAN:
        b = bases[seed]
        extra[f"{preserve} fine-tune {ft_seed} of seed {seed}"] = bench.cached_model(
            os.path.join(args.out, f"{preserve}_seed{seed}_ft{ft_seed}.pt"), copy.deepcopy(b),
            lambda: bench.clean_finetune(b, natural, bench.CLEAN_STEPS, ft_seed, preserve=preserve))
    auditor = {seed: bench.cached_model(os.path.join(args.out, f"auditor_seed{seed}.pt"), copy.deepcopy(b),
                                        lambda: bench.clean_finetune(b, natural, bench.CLEAN_STEPS, AUDITOR_SEED))
               for seed, b in bases.items()}
    print(f"suite ready: {len(clean)} clean, {len(fooled)} fooled models, {len(extra)} more clean fine-tunes "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)

    models = {**clean, **fooled}
    labels = torch.tensor([0] * len(clean) + [1] * len(fooled))
    rows: Dict[str, Dict[str, Any]] = {k: {} for k in models}
    for label, m in models.items():
        with torch.no_grad():
            target = m(x).argmax(1)
        own_base = bases[SECOND_BASE_SEED] if label.endswith(f"seed {SECOND_BASE_SEED}") else base
        r = rows[label]
        for layer, key in ((None, "conv"), (RECTIFIED, "relu")):
            rep = audit_attributions(m, x, reference=reference, interpreter_layer=layer)
            r[f"audit_{key}"] = float(rep.combined.max())
            r[f"audit_{key}_by_check"] = {c: round(float(rep.z[c].max()), 2) for c in rep.checks}
            r[f"gradcam_{key}"] = gradcam_state(m, own_base, x, target, layer)
        for name in INTERPRETERS:
            r[f"noise_{name}"] = noise_stability(m, name, x, target)
            r[f"partner_{name}"] = partner_consistency(m, name, x, target)
            r[f"contrast_{name}"] = contrast(m, name, x, target)
        print(f"{label:32s} audit z {r['audit_conv']:4.1f} (Grad-CAM at {RECTIFIED}: {r['audit_relu']:4.1f}); Grad-CAM "
              f"empty {r['gradcam_conv']['empty']:.2f} / {r['gradcam_relu']['empty']:.2f}, rho to base "
              f"{r['gradcam_conv']['rho_to_base']:+.2f} / {r['gradcam_relu']['rho_to_base']:+.2f}; noise "
              + " ".join(f"{n[:3]} {r[f'noise_{n}']:.3f}" for n in INTERPRETERS) + "; partner "
              + " ".join(f"{n[:3]} {r[f'partner_{n}']:.3f}" for n in INTERPRETERS) + "; contrast "
              + " ".join(f"{n[:3]} {r[f'contrast_{n}']:+.3f}" for n in INTERPRETERS), flush=True)

    comparative: Dict[str, float] = {}
    finetunes = {**{k: v for k, v in clean.items() if "fine-tune" in k}, **extra, **fooled}
    for label, m in finetunes.items():
        seed = SECOND_BASE_SEED if label.endswith(f"seed {SECOND_BASE_SEED}") else BASE_SEED
        rep = audit_attributions(m, x, reference=auditor[seed], original=bases[seed], interpreter_layer=RECTIFIED,
                                 checks=COMPARATIVE_CHECKS)
        comparative[label] = float(rep.combined.max())
        by_check = {c: round(float(rep.z[c].max()), 2) for c in rep.checks}
        rows.setdefault(label, {}).update(comparative=comparative[label], comparative_by_check=by_check)
        print(f"comparative audit {label:34s} z {comparative[label]:5.1f}  "
              + ", ".join(f"{c} {v:.1f}" for c, v in by_check.items()), flush=True)

    if not args.quick:  # the length control: longer benign fine-tunes, and a reference as long as the longest
        b = bases[BASE_SEED]
        long = {f"ce fine-tune of {n} steps": bench.cached_model(
            os.path.join(args.out, f"ce_seed{BASE_SEED}_steps{n}_ft{ft_seed}.pt"), copy.deepcopy(b),
            lambda: bench.clean_finetune(b, natural, n, ft_seed)) for n, ft_seed in LONG_CLEAN}
        long_ref = bench.cached_model(os.path.join(args.out, f"auditor_seed{BASE_SEED}_steps{LONG_REFERENCE_STEPS}.pt"),
                                      copy.deepcopy(b), lambda: bench.clean_finetune(b, natural, LONG_REFERENCE_STEPS,
                                                                                     AUDITOR_SEED))
        for label, m in {**long, **{k: v for k, v in finetunes.items() if not k.endswith(f"seed {SECOND_BASE_SEED}")}
                         }.items():
            rows.setdefault(label, {})
            for key, ref in (("length_800_ref", auditor[BASE_SEED]), ("length_long_ref", long_ref)):
                rows[label][key] = float(audit_attributions(m, x, reference=ref, original=b, interpreter_layer=RECTIFIED,
                                                            checks=COMPARATIVE_CHECKS).combined.max())
            print(f"length control {label:34s} z against the {bench.CLEAN_STEPS}-step reference "
                  f"{rows[label]['length_800_ref']:5.1f}, against the {LONG_REFERENCE_STEPS}-step one "
                  f"{rows[label]['length_long_ref']:5.1f}", flush=True)

    metrics: Dict[str, float] = {}
    metrics["probe_auroc_comparative"] = auroc(torch.tensor(list(comparative.values())),
                                               torch.tensor([int(k in fooled) for k in comparative]), 1)
    for key, sign in [("audit_conv", 1), ("audit_relu", 1)] + [(f"{p}_{n}", -1) for p in ("noise", "partner", "contrast")
                                                                for n in INTERPRETERS]:
        scores = torch.tensor([sign * rows[k][key] for k in models])
        metrics[f"probe_auroc_{key}"] = auroc(scores, labels, 1)
    for n in INTERPRETERS:  # how far clean models tell two classes apart by place on a mosaic
        metrics[f"probe_contrast_clean_{n}"] = sum(rows[k][f"contrast_{n}"] for k in clean) / len(clean)
    for key in ("conv", "relu"):
        fine = [rows[k][f"gradcam_{key}"] for k in clean if "fine-tune" in k]
        metrics[f"probe_gradcam_{key}_empty_clean_finetunes"] = sum(g["empty"] for g in fine) / len(fine)
        metrics[f"probe_gradcam_{key}_rho_clean_finetunes"] = sum(g["rho_to_base"] for g in fine) / len(fine)
    for label in rows:
        if "length_long_ref" in rows[label] and (label.startswith("ce fine-tune of ") or label.startswith("active")):
            tag = label.replace("ce fine-tune of ", "clean_").replace(" steps", "").replace("/", "_")
            metrics[f"probe_length_{tag}_z_800_ref"] = rows[label]["length_800_ref"]
            metrics[f"probe_length_{tag}_z_long_ref"] = rows[label]["length_long_ref"]
    metrics["seconds"] = time.perf_counter() - t0
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"rows": rows, "metrics": metrics}, f, indent=2)
    for k, v in metrics.items():
        print(f"metric {k} {v:.4f}")
    return metrics


if __name__ == "__main__":
    main()
