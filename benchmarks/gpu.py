"""Big models on one GPU: FV throughput, slingshot step cost and memory, audit time.

Every part runs its baseline side by side in this one process, on the same device, the same model
(torchvision's, random weights: no download) and the same sizes, and prints the ratio:

(a) **FV starts/s**, ResNet-50 at 224 px, channel 0 of ``layer4``, lucent's Fourier
    parametrization, Adam lr 0.05, no transforms: one batched :func:`captum_slingshot.fv.render`
    call with ``--starts`` starts against sequential calls of lucent's own ``render_vis`` (through
    our shim, :mod:`captum_slingshot.compat.lucent`) with the same parametrization and optimizer;
(b) **slingshot s/step and peak memory**, ResNet-50 (``layer4`` channel 0, the paper's gradient
    form: double backward) and ViT-B/16 (the CLS token's feature 0 after encoder layer 11, the
    activation form the slingshot picks for transformers), manipulation and natural batches of
    ``--batch``, timed per step inside ``fit`` after a warm-up step; against a plain training step
    on the same batches (cross-entropy on the natural batch, the unit on the synthetic one);
(c) **audit time for a 512-channel layer** (ResNet-50 ``layer2``, the default checks, 2 starts):
    against one batched GC render of the same units with the same starts and steps.

On CUDA, times are taken after ``torch.cuda.synchronize()`` and peak memory is
``torch.cuda.max_memory_allocated`` (reset before each part); on CPU peak memory is the process's
resident high-water mark so far (``ru_maxrss``, cumulative over the parts).

Usage::

    python benchmarks/gpu.py [--quick] [--small] [--device cuda] [--parts fv,slingshot,audit] [--threads N]

``--quick`` is the same at fewer starts and steps (about a minute on an H200); ``--small`` is
CPU-sized (32 px, a few starts and steps, 16 of the layer's units in the audit) so that the script
runs in CI and cannot rot; its numbers say nothing about a GPU. Ends with ``metric <name> <value>``
lines.
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
import torchvision

from captum_slingshot.checks import audit_layer
from captum_slingshot.compat import lucent
from captum_slingshot.fv import IMAGENET_MEAN, IMAGENET_STD, LucentFourierParam, Token, capture_layer, render
from captum_slingshot.fv import select_neuron
from captum_slingshot.transforms import GradientSlingshot, Preservation, Run, Sampling


class Sizes(NamedTuple):
    """How big each part is."""

    px: int
    fv_starts: int
    fv_lucent_starts: int
    fv_steps: int
    sling_steps: int
    batch: int
    audit_units: Optional[int]  # None: every channel of the layer
    audit_steps: int
    audit_chunk: int


FULL = Sizes(px=224, fv_starts=64, fv_lucent_starts=8, fv_steps=128, sling_steps=10, batch=32, audit_units=None,
             audit_steps=64, audit_chunk=256)
QUICK = Sizes(px=224, fv_starts=32, fv_lucent_starts=4, fv_steps=48, sling_steps=5, batch=16, audit_units=None,
              audit_steps=16, audit_chunk=256)
SMALL = Sizes(px=32, fv_starts=4, fv_lucent_starts=2, fv_steps=4, sling_steps=1, batch=2, audit_units=8,
              audit_steps=2, audit_chunk=64)


class Clock:
    """Wall time on one device (synchronized on CUDA) and its peak memory."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mb(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux

    @property
    def memory_kind(self) -> str:
        return "CUDA max_memory_allocated" if self.cuda else "process max RSS so far"


def _build(make: Callable[[], torch.nn.Module], device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return make().eval().to(device)


def _normalize(mean: Sequence[float], std: Sequence[float]) -> Callable[[torch.Tensor], torch.Tensor]:
    m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    return lambda x: (x - m.to(x.device)) / s.to(x.device)


# -- (a) FV throughput -----------------------------------------------------------------------------------
def bench_fv(model, param, size: Sizes, clock: Clock) -> Dict[str, float]:
    layer, unit = model.layer4, 0
    # warm-up at the timed batch shapes (CPU kernels are prepared per shape; CUDA libraries load lazily)
    render(model, layer, unit, param, "adam", n_starts=size.fv_starts, seed=0, steps=1, lr=0.05)
    t0 = clock.now()
    render(model, layer, unit, param, "adam", n_starts=size.fv_starts, seed=0, steps=size.fv_steps, lr=0.05)
    t_ours = clock.now() - t0

    obj = lucent.objective(model, layer, unit)
    norm = _normalize(IMAGENET_MEAN, IMAGENET_STD)

    def lucent_run(i: int, steps: int) -> None:
        lucent.render_vis(model, obj, lucent.param_f_from(param, seed=i),
                          optimizer=lambda ps: torch.optim.Adam(ps, lr=0.05), transforms=[norm], preprocess=False,
                          fixed_image_size=size.px, thresholds=(steps,), seed=i)

    lucent_run(0, 1)  # warm-up
    t0 = clock.now()
    for i in range(size.fv_lucent_starts):
        lucent_run(i, size.fv_steps)
    t_lucent = clock.now() - t0
    ours, theirs = size.fv_starts / t_ours, size.fv_lucent_starts / t_lucent
    print(f"(a) FV ResNet-50 {size.px}px, Fourier, Adam, {size.fv_steps} steps: batched {ours:8.2f} starts/s "
          f"({size.fv_starts} starts) | lucent sequential {theirs:8.2f} starts/s ({size.fv_lucent_starts} starts) | "
          f"speed-up {ours / theirs:6.1f}x", flush=True)
    return {"fv_resnet50_starts_per_s": ours, "fv_resnet50_lucent_starts_per_s": theirs,
            "fv_resnet50_speedup": ours / theirs}


# -- (b) slingshot step ----------------------------------------------------------------------------------
def plain_step_s(model, layer, unit, param, natural, labels, q, steps: int, clock: Clock) -> float:
    """Median seconds of an ordinary training step on the same batches (after one warm-up step)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    times: List[float] = []
    for _ in range(steps + 1):
        t0 = clock.now()
        act = select_neuron(capture_layer(model, layer, param.network_input(q)), unit)
        loss = F.cross_entropy(model(natural), labels) - act.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(clock.now() - t0)
    return statistics.median(times[1:])


def slingshot_step(model, layer, unit, param, natural, steps: int, clock: Clock):
    """Median seconds per slingshot step inside ``fit`` (the first step left out), peak memory, the loss that ran."""
    target = torch.rand(param.shape, generator=torch.Generator().manual_seed(0))
    gs = GradientSlingshot(layer, unit, target, param, sampling=Sampling(batch_size=len(natural)),
                           preservation=Preservation(batch_size=len(natural)), run=Run(steps=steps + 1, progress=False))
    stamps: List[float] = []
    clock.reset_peak()
    stamps.append(clock.now())
    result = gs.fit(model, natural, callback=lambda step, rec, m: stamps.append(clock.now()))
    diffs = [b - a for a, b in zip(stamps[1:], stamps[2:])]
    return statistics.median(diffs), clock.peak_mb(), result.settings["loss"]


def bench_slingshot(name, model, layer, unit, param, size: Sizes, clock: Clock) -> Dict[str, float]:
    g = torch.Generator().manual_seed(0)
    natural = torch.randn((size.batch,) + param.shape, generator=g).to(clock.device)
    labels = torch.randint(0, 1000, (size.batch,), generator=g).to(clock.device)
    q = (torch.randn((size.batch,) + param.param_shape, generator=g) * 0.01).to(clock.device)
    s_step, peak, loss = slingshot_step(model, layer, unit, param, natural, size.sling_steps, clock)
    clock.reset_peak()
    plain = plain_step_s(copy.deepcopy(model), layer, unit, param, natural, labels, q, size.sling_steps, clock)
    plain_peak = clock.peak_mb()
    print(f"(b) slingshot {name} {size.px}px, batch {size.batch}/{size.batch}, {loss} loss: {s_step:8.3f} s/step, "
          f"peak {peak:8.0f} MB | plain step {plain:8.3f} s, peak {plain_peak:8.0f} MB | ratio {s_step / plain:5.2f}x "
          f"({clock.memory_kind})", flush=True)
    return {f"slingshot_{name}_s_per_step": s_step, f"slingshot_{name}_plain_s_per_step": plain,
            f"slingshot_{name}_step_ratio": s_step / plain, f"slingshot_{name}_peak_mem_mb": peak,
            f"slingshot_{name}_plain_peak_mem_mb": plain_peak}


# -- (c) audit ---------------------------------------------------------------------------------------
def bench_audit(model, param, size: Sizes, clock: Clock) -> Dict[str, float]:
    layer = "layer2"  # 512 channels
    n_channels = model.layer2[-1].conv3.out_channels
    units = list(range(n_channels if size.audit_units is None else min(size.audit_units, n_channels)))
    data = torch.randn((64,) + param.shape, generator=torch.Generator().manual_seed(1)).to(clock.device)
    kwargs = dict(n_starts=2, steps=size.audit_steps)
    render(model, layer, units, param, "gc", seed=0, max_examples_per_batch=size.audit_chunk, n_starts=2, steps=1)
    t0 = clock.now()
    render(model, layer, units, param, "gc", seed=0, max_examples_per_batch=size.audit_chunk, **kwargs)
    t_render = clock.now() - t0
    t0 = clock.now()
    report = audit_layer(model, layer, param=param, data=data, units=units, max_examples_per_batch=size.audit_chunk,
                         progress=False, **kwargs)
    t_audit = clock.now() - t0
    print(f"(c) audit ResNet-50 {layer} ({len(units)} of {n_channels} channels, checks {', '.join(report.checks)}, "
          f"2 starts x {size.audit_steps} steps): {t_audit:8.2f} s | one GC render of the units {t_render:8.2f} s | "
          f"ratio {t_audit / t_render:5.2f}x", flush=True)
    return {"audit_resnet50_layer2_s": t_audit, "audit_resnet50_layer2_units": float(len(units)),
            "audit_resnet50_layer2_render_s": t_render, "audit_resnet50_layer2_ratio": t_audit / t_render}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer starts and steps (about a minute on an H200)")
    ap.add_argument("--small", action="store_true", help="CPU-sized: 32 px, a few starts and steps (a smoke run)")
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ap.add_argument("--parts", default="fv,slingshot,audit", help="comma-separated parts to run")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = ap.parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> Dict[str, float]:
    """The parts ``args`` asks for; returns the metrics (also printed)."""
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    size = SMALL if args.small else QUICK if args.quick else FULL
    parts = set(args.parts.split(","))
    unknown = parts - {"fv", "slingshot", "audit"}
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}: choose among fv, slingshot, audit")
    clock = Clock(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}; {size}", flush=True)
    param = LucentFourierParam((3, size.px, size.px), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    t_start = time.perf_counter()
    metrics: Dict[str, float] = {}
    resnet = _build(torchvision.models.resnet50, device)
    if "fv" in parts:
        metrics.update(bench_fv(resnet, param, size, clock))
    if "slingshot" in parts:
        metrics.update(bench_slingshot("resnet50", resnet, "layer4", 0, param, size, clock))
        vit = _build(lambda: torchvision.models.vit_b_16(image_size=size.px), device)
        layer = "encoder.layers.encoder_layer_11"
        metrics.update(bench_slingshot("vit_b_16", vit, layer, Token(0), param, size, clock))
        del vit
    if "audit" in parts:
        metrics.update(bench_audit(resnet, param, size, clock))
    metrics["total_s"] = time.perf_counter() - t_start
    for key, value in metrics.items():
        print(f"metric {key} {value:.4g}")
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
