"""Batched feature visualization: many starts and many units in one batch.

:func:`render` optimizes ``n_starts`` random starts for each unit at once.
Every start is independent of the others: its initial value and its random
transforms come from its own seeded generator, gradients are taken of the
*sum* of activations (so one start's gradient does not depend on the batch),
clipping is per start, and Adam is element-wise. A batched render of ``N``
starts therefore equals ``N`` single-start renders with the same seeds, up to
floating-point differences of batched kernels. Work runs on the model's own
device; the model's training flags are restored and no hook is left behind.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import render, PixelParam
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    >>> param = PixelParam((1, 28, 28))
    >>> res = render(model, model[3], 7, param, "gc", n_starts=4, seed=0, steps=20)
    >>> res.images.shape, res.activations.shape, res.trajectory.shape
    (torch.Size([4, 1, 28, 28]), torch.Size([4]), torch.Size([4, 20]))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._utils.devices import model_device
from .._utils.hooks import LayerCapture, LayerNotReachedError
from .._utils.layers import first_conv_in_channels, layer_name, resolve_layer
from .._utils.modes import eval_mode
from .._utils.selectors import NeuronSelector, as_selector_list, check_selector
from .optimize import network_input, optimize
from .param import Parametrization
from .strategies import AMStrategy, get_strategy

__all__ = ["FVResult", "render", "derive_seeds", "model_device", "network_input"]


@dataclass
class FVResult:
    """What :func:`render` returns.

    With a single ``neuron_selector`` the leading unit dimension is absent.

    Attributes:
        images: final images in ``[0, 1]``, ``([U,] N, C, H, W)``.
        activations: the unit's activation at the final image, without random
            transforms (what an auditor reads off), ``([U,] N)``.
        trajectory: the activation the optimizer saw at every step (with the
            step's transform), ``([U,] N, steps)``.
        params: final ``q``, ``([U,] N, *param_shape)``.
        seeds: the per-start seeds (shared by all units).
        strategy: the :class:`AMStrategy` used.
        layer: dotted name of the layer.
        neuron_selectors: the units' selectors.
    """

    images: Tensor
    activations: Tensor
    trajectory: Tensor
    params: Tensor
    seeds: List[int]
    strategy: AMStrategy
    layer: str
    neuron_selectors: List[Any] = field(default_factory=list)


def derive_seeds(n: int, seed: Optional[int] = 0, generator: Optional[torch.Generator] = None) -> List[int]:
    """``n`` per-start seeds from an int seed or a ``torch.Generator``.

    Start ``i`` gets the same seed whatever ``n`` is, so a larger render
    extends a smaller one.
    """
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    return [int(s) for s in torch.randint(0, 2**62, (n,), generator=generator)]


def _validate(model, cap, param, selectors, q_probe, transform, u_probe, layer_desc):
    expected = first_conv_in_channels(model)
    if expected is not None and expected != param.channels:
        raise ValueError(
            f"the parametrization makes {param.channels}-channel images but the model's first "
            f"conv layer takes {expected} channels; build the parametrization with shape "
            f"({expected}, H, W)"
        )
    with torch.no_grad():
        inputs = network_input(param, q_probe, transform, u_probe)
        try:
            out = cap.run(inputs)
        except LayerNotReachedError:
            raise
        except RuntimeError as err:
            raise ValueError(
                f"the model cannot take inputs of shape {tuple(inputs.shape)} "
                f"(parametrization {param!r}, transforms {transform!r}): {err}. "
                "Use an image size and channel count the model was built for, or a "
                "strategy whose transforms/resize keep that size."
            ) from err
    for s in selectors:
        check_selector(s, out.shape[1:], layer_desc)


def render(
    model: nn.Module,
    layer: Union[nn.Module, str],
    neuron_selector: Union[NeuronSelector, List[NeuronSelector]],
    param: Parametrization,
    strategy: Union[str, AMStrategy] = "gc",
    n_starts: int = 1,
    seed: Optional[int] = 0,
    seeds: Optional[Sequence[int]] = None,
    generator: Optional[torch.Generator] = None,
    init_sd: float = 0.01,
    q0: Optional[Tensor] = None,
    max_examples_per_batch: Optional[int] = None,
    progress: bool = False,
    **strategy_overrides: Any,
) -> FVResult:
    """Feature visualization of one or several units, many starts at once.

    Args:
        model: the network; it receives ``param.network_input(q)`` (normalized).
        layer: module of ``model`` (or its dotted name) whose output holds the unit.
        neuron_selector: Captum-style selector, or a ``list`` of them to render
            several units of the same layer in one batch.
        param: the parametrization (image size, channels, normalization).
        strategy: an :class:`AMStrategy` or a registry name (``"gc"``, ``"tr"``,
            ``"adam_gc_tr"``, ``"lucent"`` ...).
        n_starts: random starts per unit.
        seed: int seed from which the per-start seeds are derived.
        seeds: explicit per-start seeds (overrides ``seed``/``generator``).
        generator: ``torch.Generator`` to draw the per-start seeds from.
        init_sd: standard deviation of the ``N(0, sd^2)`` starts.
        q0: explicit starts ``(n_starts, *param.param_shape)`` (then ``seeds``
            still drive the random transforms).
        max_examples_per_batch: optimize at most this many starts at a time
            (results are the same, memory is bounded).
        progress: show a tqdm bar.
        **strategy_overrides: e.g. ``lr=0.05, steps=100``.

    Returns:
        :class:`FVResult`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(param, Parametrization):
        raise TypeError(f"param must be a Parametrization, got {type(param).__name__}")
    if int(n_starts) < 1:
        raise ValueError(f"n_starts must be at least 1, got {n_starts}")
    n_starts = int(n_starts)
    strat = get_strategy(strategy, **strategy_overrides)
    selectors, single = as_selector_list(neuron_selector)
    layer_mod = resolve_layer(model, layer)
    lname = layer_name(model, layer_mod)
    if seeds is None:
        seeds = derive_seeds(n_starts, seed, generator)
    seeds = [int(s) for s in seeds]
    if len(seeds) != n_starts:
        raise ValueError(f"got {len(seeds)} seeds for n_starts={n_starts}")
    if q0 is not None and tuple(q0.shape) != (n_starts,) + param.param_shape:
        raise ValueError(f"q0 must have shape {(n_starts,) + param.param_shape}, got {tuple(q0.shape)}")

    device = model_device(model)
    transform = strat.build_transforms((param.height, param.width))
    n_random = transform.n_random if transform is not None else 0

    # per-start random streams: the start, then all transform draws
    starts, uniforms = [], []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        starts.append(torch.randn(param.param_shape, generator=g) * init_sd)
        uniforms.append(torch.rand(strat.steps, n_random, generator=g))
    q_init = torch.stack(starts) if q0 is None else q0.detach().to("cpu", torch.float32)
    u_all = torch.stack(uniforms)  # (N, steps, n_random)

    n_units = len(selectors)
    with eval_mode(model), LayerCapture(model, layer_mod, stop=True) as cap:
        _validate(
            model, cap, param, selectors, q_init[:1].to(device),
            transform, u_all[:1, 0].to(device) if strat.steps else torch.rand(1, n_random, device=device),
            f"layer {lname!r}",
        )
        chunk = max_examples_per_batch or n_starts * n_units
        if chunk < 1:
            raise ValueError("max_examples_per_batch must be at least 1")
        # rows ordered unit-major: row = j * n_starts + i
        rows = [(j, i) for j in range(n_units) for i in range(n_starts)]
        q_out, a_out, t_out = [], [], []
        bar = tqdm(total=strat.steps * len(rows), disable=not progress, desc=f"FV {strat.name}", unit="start-step")

        def on_step(step: int, acts: Tensor) -> None:
            bar.update(acts.shape[0])
            if not bar.disable and step % 10 == 0:
                bar.set_postfix(act=f"{acts.mean().item():.3g}")

        try:
            for c0 in range(0, len(rows), chunk):
                part = rows[c0 : c0 + chunk]
                trace = optimize(
                    cap, param, selectors, q_init[[i for _, i in part]].to(device), strat,
                    unit_of_row=[j for j, _ in part], uniforms=u_all[[i for _, i in part]].to(device),
                    transform=transform, on_step=on_step,
                )
                q_out.append(trace.params)
                a_out.append(trace.activations)
                t_out.append(trace.trajectory)
        finally:
            bar.close()

    q = torch.cat(q_out)
    with torch.no_grad():
        images = param.image(q)
    acts = torch.cat(a_out)
    traj = torch.cat(t_out)
    shape = (n_units, n_starts)
    if single:
        shape = (n_starts,)
    return FVResult(
        images=images.reshape(shape + images.shape[1:]),
        activations=acts.reshape(shape),
        trajectory=traj.reshape(shape + (strat.steps,)),
        params=q.reshape(shape + q.shape[1:]),
        seeds=seeds,
        strategy=strat,
        layer=lname,
        neuron_selectors=selectors,
    )
