"""The main job, end to end on real MNIST: a model, a fabricated explanation, and the audit.

1. Train (or load the cached) paper MNIST CNN.
2. Manipulate logit 0 toward the ``cross`` target with the Gradient Slingshot (the paper's
   tunnel and preservation settings with on-policy trajectory samples, the direction loss and
   FV-path preservation of the other logits, so that only logit 0's FV changes; the
   manipulated model is cached too, keyed by its settings).
3. Render FV of logit 0 before and after under the paper's protocol for each AM strategy
   (pixel + GC, + TR, Adam, lucent's Fourier parametrization with Adam) and with lucent's own
   ``render_vis``; score each against the target.
4. Measure what the manipulation kept (accuracy, AUROC, top-100 Jaccard).
5. Audit the ``logits`` layer of both models with :func:`captum_slingshot.checks.audit_layer`.
6. Write ``report.png``, ``metrics.json`` and ``report.html`` (the manipulated model's audit as a page).

Example:
    >>> from captum_slingshot.experiments.demo import run_demo  # doctest: +SKIP
    >>> metrics = run_demo("out/demo", n_starts=2, steps=50, manipulation_steps=100)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Dict, Optional

import torch

from ..checks import audit_layer
from ..compat import lucent
from ..data import load_mnist, normalize_mnist
from ..evaluation import evaluate_manipulation, fv_similarity
from ..fv import MNIST_MEAN, MNIST_STD, LucentFourierParam, PixelParam, render
from ..models import MNISTCNN, pretrained_mnist_cnn
from ..paths import models_dir, save_state_dict, write_text
from ..transforms import (
    Aim, FieldDirection, FVPaths, GradientSlingshot, LayerMSE, Optimizer, Preservation, Run, Sampling, Trajectories,
    load_target, packaged_target,
)
from .demo_figure import demo_report

__all__ = ["run_demo", "demo_slingshot", "DEMO_ROWS", "format_table"]

#: (row label, parametrization name, strategy, overrides)
DEMO_ROWS = [
    ("pixel + GC (paper)", "pixel", "gc", {}),
    ("pixel + GC + TR", "pixel", "gc_tr", {}),
    ("pixel + Adam", "pixel", "adam", {}),
    ("Fourier + Adam", "lucent_fourier", "adam", {"lr": 0.05}),
]
UNIT = 0
TARGET = "cross"


def _param(name: str):
    if name == "pixel":
        return PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    return LucentFourierParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)


def demo_slingshot(steps: int = 1000, seed: int = 0, progress: bool = True) -> GradientSlingshot:
    """The demo's attack on logit 0 (the same as ``captum-slingshot manipulate --steps 1000 --gamma 1
    --loss direction --lr 1e-3 --trajectory-strategy gc --aim-radius 19.5 --preserve-fv 1``).

    Example:
        >>> demo_slingshot(steps=10, progress=False).settings()["preserve_fv"]
        1.0
    """
    param = _param("pixel")
    return GradientSlingshot(
        "logits", UNIT, load_target(packaged_target(TARGET), param.shape), param,
        loss=FieldDirection(),                                  # the field's direction: scale-free, |grad| >= 1
        aim=Aim(radius=19.5),                                   # within reach of 200 clipped SGD steps of lr 0.1
        sampling=Sampling(sigma=0.1, trajectories=Trajectories("gc")),   # the paper's tunnel + the auditor's paths
        preservation=Preservation(alpha=0.8, loss=LayerMSE(w=0.0), fv_paths=FVPaths(weight=1.0)),
        optimizer=Optimizer(lr=1e-3),
        run=Run(steps=steps, seed=seed, progress=progress),
    )


def _manipulate(model: MNISTCNN, steps: int, seed: int, progress: bool) -> MNISTCNN:
    gs = demo_slingshot(steps, seed, progress)
    key = hashlib.sha256(json.dumps(gs.settings(), sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = models_dir() / "demo" / f"mnist_cnn-logit{UNIT}-{TARGET}-{key}.pt"
    device = next(model.parameters()).device
    manipulated = MNISTCNN().to(device).eval()
    if path.is_file():
        manipulated.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        return manipulated
    result = gs.fit(model, normalize_mnist(load_mnist("train").tensors[0]))
    save_state_dict(result.model, path)
    manipulated.load_state_dict(result.model.state_dict())
    return manipulated


def _lucent_fv(model, n: int, steps: int, seed: int) -> torch.Tensor:
    """Lucent's own render_vis on an MNIST model: gray Fourier image, MNIST normalization, 28 px."""
    mean, std = MNIST_MEAN[0], MNIST_STD[0]
    imgs = lucent.render_vis(
        model, lucent.objective(model, "logits", UNIT),
        lucent.param_f_from(lucent.native_image(28, batch=n, channels=1, decorrelate=False)),
        transforms=[lambda x: (x - mean) / std], preprocess=False, fixed_image_size=28,
        thresholds=(steps,), seed=seed,
    )
    return torch.from_numpy(imgs[-1]).permute(0, 3, 1, 2).float()


def run_demo(
    out: str = os.path.join("out", "demo"),
    n_starts: int = 8,
    steps: int = 200,
    seed: int = 0,
    progress: bool = True,
    device: Optional[str] = None,
    manipulation_steps: int = 1000,
) -> Dict:
    """Run the demo; write ``report.png`` and ``metrics.json`` under ``out``; return the metrics."""
    if n_starts < 1 or steps < 1 or manipulation_steps < 1:
        raise ValueError("n_starts, steps and manipulation_steps must be at least 1")
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    model = pretrained_mnist_cnn(epochs=1, seed=0, progress=progress, device=device)
    manipulated = _manipulate(model, manipulation_steps, seed, progress)
    t_manip = time.perf_counter() - t0
    dev = next(model.parameters()).device
    held = load_mnist("heldout")
    heldout = (normalize_mnist(held.tensors[0]).to(dev), held.tensors[1].to(dev))
    pixel = _param("pixel")
    target = load_target(packaged_target(TARGET), pixel.shape)

    metrics: Dict = {"model": "paper MNIST CNN, 1 epoch", "unit": f"logits[{UNIT}]", "target": TARGET,
                     "manipulation_steps": manipulation_steps, "n_starts": n_starts, "steps": steps, "fv": {}}
    rows = {}
    for label, pname, strategy, overrides in DEMO_ROWS:
        param = _param(pname)
        pair, entry = [], {"strategy": strategy, "parametrization": pname}
        for tag, m in (("before", model), ("after", manipulated)):
            res = render(m, "logits", UNIT, param, strategy, n_starts=n_starts, seed=seed, steps=steps,
                         progress=progress, **overrides)
            sim = fv_similarity(res.images.cpu(), target, lpips=False)
            entry[tag] = {"ssim": sim["ssim"], "mse": sim["mse"], "activation": float(res.activations.mean())}
            pair.append(res.images.cpu())
            if tag == "after" and strategy == "gc" and pname == "pixel":
                paper_fv = res
        metrics["fv"][label] = entry
        rows[label] = tuple(pair)
    lucent_pair, entry = [], {"strategy": "lucent render_vis (Adam 0.05, Fourier, 28 px)", "parametrization": "lucent"}
    for tag, m in (("before", model), ("after", manipulated)):
        imgs = _lucent_fv(m, n_starts, steps, seed)
        sim = fv_similarity(imgs, target, lpips=False)
        entry[tag] = {"ssim": sim["ssim"], "mse": sim["mse"]}
        lucent_pair.append(imgs)
    metrics["fv"]["lucent render_vis"] = entry
    rows["lucent render_vis"] = tuple(lucent_pair)

    kept = evaluate_manipulation(manipulated, model, "logits", UNIT, target, pixel, heldout, fv=paper_fv,
                                 lpips=True)
    metrics["preservation"] = {k: kept[k] for k in ("accuracy_original", "accuracy", "auroc_original", "auroc",
                                                    "jaccard_top_k", "lpips", "ssim", "mse")}
    data = heldout[0][:2000]
    audits = {name: audit_layer(m, "logits", param=pixel, data=data, seed=seed, progress=progress)
              for name, m in (("original", model), ("manipulated", manipulated))}
    metrics["audit"] = {name: {"flagged": rep.flagged, "checks": rep.checks,
                               "combined_z": [round(float(v), 3) for v in rep.combined]}
                        for name, rep in audits.items()}
    rep = audits["manipulated"]
    top = rep.figure_rows(rep.units.index(UNIT)).get("top natural")
    top_images = top if top is not None else torch.zeros(0, 1, 28, 28)
    metrics["seconds"] = {"manipulation (0 when cached)": round(t_manip, 1),
                          "total": round(time.perf_counter() - t0, 1)}

    png = demo_report(
        os.path.join(out, "report.png"), target, rows, top_images[:8], rep.z, rep.combined, rep.threshold,
        rep.flagged, UNIT,
        title=(f"Gradient Slingshot on logit {UNIT} of an MNIST CNN: accuracy {kept['accuracy_original']:.1%} → "
               f"{kept['accuracy']:.1%}; audit flags {rep.flagged}"),
    )
    mpath = write_text(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=2))
    page = rep.to_html(os.path.join(out, "report.html"),
                       title=f"Audit of the demo's manipulated MNIST CNN (logit {UNIT} slung to the {TARGET})")
    metrics["files"] = {"figure": png, "metrics": mpath, "html": page}
    return metrics


def format_table(metrics: Dict) -> str:
    """A short plain-text table of the demo's metrics."""
    p = metrics["preservation"]
    lines = [f"{metrics['model']}: logit {UNIT} slung to '{metrics['target']}' in {metrics['manipulation_steps']} steps; "
             f"held-out accuracy {p['accuracy_original']:.2%} -> {p['accuracy']:.2%}, AUROC {p['auroc_original']:.4f} -> "
             f"{p['auroc']:.4f}, top-100 Jaccard {p['jaccard_top_k']:.2f}",
             f"{'FV of logit 0':<28} {'SSIM to target before':>21} {'after':>6} {'MSE before':>11} {'after':>6}"]
    for label, m in metrics["fv"].items():
        lines.append(f"{label:<28} {m['before']['ssim']:>21.3f} {m['after']['ssim']:>6.3f} "
                     f"{m['before']['mse']:>11.4f} {m['after']['mse']:>6.4f}")
    for name, a in metrics["audit"].items():
        lines.append(f"audit of the {name} model's logits: flagged {a['flagged']}")
    return "\n".join(lines)
