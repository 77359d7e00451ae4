"""Using the defense checks inside a Captum workflow.

On real MNIST: the paper's CNN, and a copy whose logit 0 is slung to the cross (Gradient
Slingshot, ``--steps`` steps). Then, side by side for the clean and the manipulated model:

1. Captum's ``LayerActivation`` on ``model.logits`` gives exactly the unit activations our
   metrics use (same layer / ``neuron_selector`` conventions), so its output can feed them:
   here the top-100 natural images of logit 0 and their Jaccard overlap before/after.
2. A check called like a ``captum.metrics`` function: ``activation_excess(model, layer,
   neuron_selector, param=..., data=...)``, one score per unit (the FV's activation against
   the unit's natural range).
3. Captum's ``NeuronGradient`` gives the unit's input-gradient field around the FV start;
   ``fit_attractor`` (the core of the ``slingshot_field`` check) fits ``g ≈ gamma (q* - q)``.
4. ``captum.metrics.sensitivity_max`` of the ``NeuronGradient`` explanation of logit 0 on
   natural zeros, through :func:`captum_slingshot.interop.captum_explanation`, which handles
   the tuple conventions that otherwise break or silently falsify the metric.

Run:  python examples/captum_interop.py [--steps 1000]
"""

from __future__ import annotations

import argparse

import torch
from captum.attr import LayerActivation, NeuronGradient
from captum.metrics import sensitivity_max

from captum_slingshot.checks import activation_excess, fit_attractor
from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam, render
from captum_slingshot.interop import captum_explanation
from captum_slingshot.metrics import TopK, jaccard, unit_activations
from captum_slingshot.models import pretrained_mnist_cnn
from captum_slingshot.transforms import (
    Aim, FieldDirection, GradientSlingshot, Run, Sampling, Trajectories, load_target, packaged_target,
)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000, help="slingshot steps (1000: FV lands on the cross)")
    ap.add_argument("--heldout", type=int, default=2000, help="held-out images used as natural data")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)

    clean = pretrained_mnist_cnn(epochs=1, seed=0)
    param = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    target = load_target(packaged_target("cross"), param.shape)
    held = load_mnist("heldout")
    x, y = normalize_mnist(held.tensors[0][: args.heldout]), held.tensors[1][: args.heldout]
    gs = GradientSlingshot("logits", 0, target, param, loss=FieldDirection(), aim=Aim(radius=19.5),
                           sampling=Sampling(trajectories=Trajectories("gc")), run=Run(steps=args.steps, seed=args.seed))
    manipulated = gs.fit(clean, normalize_mnist(load_mnist("train").tensors[0])).model.eval()
    models = {"clean": clean, "manipulated": manipulated}
    out: dict = {}

    # 1. Captum's LayerActivation == our unit activations; top-100 natural images from it
    tops = {}
    for name, m in models.items():
        with torch.no_grad():
            captum_acts = LayerActivation(m, m.logits).attribute(x)[:, 0]
        ours = unit_activations(m, m.logits, 0, x)
        assert torch.allclose(captum_acts, ours, atol=1e-5), "Captum and captum_slingshot disagree on the unit"
        top = torch.topk(captum_acts, 100)
        tops[name] = TopK(values=top.values, indices=top.indices)
    out["jaccard_top100"] = jaccard(tops["clean"], tops["manipulated"])

    for name, m in models.items():
        # 2. a check with captum.metrics' shape: one score per unit
        excess = activation_excess(m, m.logits, list(range(10)), param=param, data=x, seed=args.seed)
        # 3. the unit's gradient field near the FV start, from Captum's NeuronGradient
        fv = render(m, m.logits, 0, param, "gc", n_starts=4, seed=args.seed)
        direction = fv.params.mean(0).flatten()
        direction = direction / direction.norm().clamp_min(1e-12)
        t = torch.linspace(0.0, 20.0, 48)[:, None]
        q = (t * direction).view(-1, *param.param_shape)
        grads = NeuronGradient(m, m.logits).attribute(param.network_input(q), neuron_selector=0)
        fit = fit_attractor(q.flatten(1), grads.flatten(1))
        # 4. sensitivity of the NeuronGradient explanation on natural zeros
        zeros = x[y == 0][:16]
        saliency = captum_explanation(lambda inp, m=m: NeuronGradient(m, m.logits).attribute(inp, neuron_selector=0))
        sens = sensitivity_max(saliency, zeros, perturb_radius=0.1, n_perturb_samples=8)
        out[name] = {
            "activation_excess": [round(float(v), 3) for v in excess],
            "field_gamma": float(fit["gamma"]), "field_r2": float(fit["r2"]),
            "fv_activation": float(fv.activations.mean()),
            "sensitivity_max_logit0_on_zeros": float(sens.mean()),
        }

    print(f"Captum LayerActivation matches captum_slingshot's unit activations; "
          f"Jaccard of logit 0's top-100 natural images, clean vs manipulated: {out['jaccard_top100']:.2f}")
    print(f"{'':<12} {'excess logit0':>13} {'max excess others':>18} {'FV act':>7} {'field gamma':>11} "
          f"{'field R2':>8} {'sens_max':>8}")
    for name in models:
        r = out[name]
        print(f"{name:<12} {r['activation_excess'][0]:13.2f} {max(r['activation_excess'][1:]):18.2f} "
              f"{r['fv_activation']:7.1f} {r['field_gamma']:11.3f} {r['field_r2']:8.3f} "
              f"{r['sensitivity_max_logit0_on_zeros']:8.3f}")
    return out


if __name__ == "__main__":
    main()
