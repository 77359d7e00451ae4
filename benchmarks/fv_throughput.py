"""Throughput of the batched FV engine against sequential lucent ``render_vis`` calls.

Both sides run in this one process, one after the other, on the same model,
unit, parametrization, optimizer, learning rate and number of steps:

(a) the paper's MNIST CNN, logit 0, pixel parametrization, SGD lr 0.1 with
    gradient clipping to norm 1 (the paper's GC protocol);
(b) a small RGB CNN at 64 px, channel 0 of its last conv layer, lucent's
    Fourier parametrization, Adam lr 0.05 (lucent's optimizer), once without
    transforms and once with lucent's standard transforms (resized back to
    64 px, since the model is small).

The lucent side is ``N`` calls of lucent's own, unmodified ``render_vis`` (through
our shim, which only removes its leaked hooks); the batched side is one
:func:`captum_slingshot.fv.render` call with ``N`` starts.

Usage::

    python benchmarks/fv_throughput.py [--starts 100] [--steps 200]

Ends with ``metric <name> <value>`` lines.
"""

from __future__ import annotations

import argparse
import time

import torch

from captum_slingshot.compat import lucent
from captum_slingshot.fv import LucentFourierParam, PixelParam, MNIST_MEAN, MNIST_STD, render
from captum_slingshot.models import MNISTCNN, SmallRGBCNN


class ClippedSGD(torch.optim.SGD):
    """SGD that clips the gradient of its (single-start) parameter first: the paper's GC."""

    def __init__(self, params, lr: float, max_norm: float = 1.0) -> None:
        super().__init__(params, lr=lr)
        self.max_norm = max_norm

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            torch.nn.utils.clip_grad_norm_(group["params"], self.max_norm)
        super().step()
        return loss


def _normalize(mean, std):
    m = torch.tensor(mean)[:, None, None]
    s = torch.tensor(std)[:, None, None]
    return lambda x: (x - m.to(x.device)) / s.to(x.device)


def bench_mnist(starts: int, steps: int):
    torch.manual_seed(0)
    model = MNISTCNN().eval()
    param = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)

    t0 = time.perf_counter()
    ours = render(model, model.logits, 0, param, "gc", n_starts=starts, seed=0, steps=steps, lr=0.1)
    t_ours = time.perf_counter() - t0

    obj = lucent.objective(model, model.logits, 0)
    t0 = time.perf_counter()
    for i in range(starts):
        lucent.render_vis(
            model, obj, lucent.param_f_from(param, seed=i),
            optimizer=lambda ps: ClippedSGD(ps, lr=0.1, max_norm=1.0),
            transforms=[_normalize(MNIST_MEAN, MNIST_STD)], preprocess=False,
            fixed_image_size=28, thresholds=(steps,), seed=i,
        )
    t_lucent = time.perf_counter() - t0
    return t_ours, t_lucent, float(ours.activations.mean())


def bench_rgb(starts: int, steps: int, with_transforms: bool):
    torch.manual_seed(0)
    model = SmallRGBCNN(width=16).eval()
    param = LucentFourierParam((3, 64, 64))
    strategy = "lucent" if with_transforms else "adam"

    t0 = time.perf_counter()
    render(model, model.relu4, 0, param, strategy, n_starts=starts, seed=0, steps=steps, lr=0.05, resize_to=64 if with_transforms else None)
    t_ours = time.perf_counter() - t0

    obj = lucent.objective(model, model.relu4, 0)
    t0 = time.perf_counter()
    for i in range(starts):
        lucent.render_vis(
            model, obj, lucent.native_image(64),
            transforms=lucent.standard_transforms() if with_transforms else [],
            fixed_image_size=64, thresholds=(steps,), seed=i,
        )
    t_lucent = time.perf_counter() - t0
    return t_ours, t_lucent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.starts} starts x {args.steps} steps")

    a_ours, a_lucent, act = bench_mnist(args.starts, args.steps)
    print(f"(a) MNIST CNN, pixel, SGD+GC:        batched {a_ours:7.2f} s | lucent x{args.starts} {a_lucent:7.2f} s | speed-up {a_lucent / a_ours:6.1f}x")
    b_ours, b_lucent = bench_rgb(args.starts, args.steps, with_transforms=False)
    print(f"(b) RGB CNN 64px, Fourier, Adam:     batched {b_ours:7.2f} s | lucent x{args.starts} {b_lucent:7.2f} s | speed-up {b_lucent / b_ours:6.1f}x")
    c_ours, c_lucent = bench_rgb(args.starts, args.steps, with_transforms=True)
    print(f"(b') same + lucent standard transforms: batched {c_ours:7.2f} s | lucent x{args.starts} {c_lucent:7.2f} s | speed-up {c_lucent / c_ours:6.1f}x")

    print(f"metric fv_mnist_pixel_gc_batched_s {a_ours:.3f}")
    print(f"metric fv_mnist_pixel_gc_lucent_s {a_lucent:.3f}")
    print(f"metric fv_mnist_pixel_gc_speedup {a_lucent / a_ours:.2f}")
    print(f"metric fv_rgb64_fourier_adam_batched_s {b_ours:.3f}")
    print(f"metric fv_rgb64_fourier_adam_lucent_s {b_lucent:.3f}")
    print(f"metric fv_rgb64_fourier_adam_speedup {b_lucent / b_ours:.2f}")
    print(f"metric fv_rgb64_fourier_lucent_tr_batched_s {c_ours:.3f}")
    print(f"metric fv_rgb64_fourier_lucent_tr_lucent_s {c_lucent:.3f}")
    print(f"metric fv_rgb64_fourier_lucent_tr_speedup {c_lucent / c_ours:.2f}")


if __name__ == "__main__":
    main()
