"""Small helpers shared by the checks: selectors, eval mode, layer probes, per-row activations."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..fv.param import Parametrization
from ..fv.render import model_device, render
from ..fv.units import LayerCapture, check_selector, layer_name, resolve_layer, select_neuron

__all__ = ["as_selector_list", "unbatch", "eval_mode", "probe_layer", "layer_units", "row_activations",
           "optional_batch", "fv_of_units", "display_inputs"]


def as_selector_list(neuron_selector: Any) -> Tuple[List[Any], bool]:
    """``(selectors, single)``: a list of selectors and whether a single one was given."""
    if isinstance(neuron_selector, list):
        if not neuron_selector:
            raise ValueError("neuron_selector list is empty")
        return list(neuron_selector), False
    return [neuron_selector], True


def unbatch(t: Any, single: bool) -> Any:
    """Drop the leading unit dimension of a tensor (or of every tensor in a dict) for a single unit."""
    if not single:
        return t
    if isinstance(t, Tensor):
        return t[0]
    if isinstance(t, dict):
        return {k: unbatch(v, single) for k, v in t.items()}
    if isinstance(t, list):
        return t[0]
    return t


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode; restore every module's training flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def probe_layer(model: nn.Module, layer: Union[nn.Module, str], param: Parametrization,
                selectors: Sequence[Any] = ()) -> torch.Size:
    """Output shape (no batch dim) of ``layer`` for one FV input; checks the selectors fit it."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(param, Parametrization):
        raise TypeError(f"param must be a Parametrization from captum_slingshot.fv, got {type(param).__name__}")
    layer_mod = resolve_layer(model, layer)
    device = model_device(model)
    q = torch.zeros((1,) + param.param_shape, device=device)
    with eval_mode(model), torch.no_grad(), LayerCapture(model, layer_mod) as cap:
        try:
            out = cap.run(param.network_input(q))
        except RuntimeError as err:
            if type(err).__name__ == "LayerNotReachedError":
                raise
            raise ValueError(
                f"the model cannot take inputs from parametrization {param!r}: {err}"
            ) from err
    desc = f"layer {layer_name(model, layer_mod)!r}"
    for s in selectors:
        check_selector(s, out.shape[1:], desc)
    return out.shape[1:]


def layer_units(model: nn.Module, layer: Union[nn.Module, str], param: Parametrization) -> List[int]:
    """All units of a layer as int selectors: its channels (dim 1 of the output)."""
    shape = probe_layer(model, layer, param)
    if len(shape) == 0:
        raise ValueError("the layer outputs one scalar per example; pass units explicitly")
    return list(range(int(shape[0])))


def row_activations(out: Tensor, selectors: Sequence[Any], unit_of_row: Sequence[int]) -> Tensor:
    """Activation of every row of a layer output for its own unit (``selectors[unit_of_row[r]]``)."""
    parts, start = [], 0
    for r in range(1, len(unit_of_row) + 1):
        if r == len(unit_of_row) or unit_of_row[r] != unit_of_row[start]:
            parts.append(select_neuron(out[start:r], selectors[unit_of_row[start]]))
            start = r
    return torch.cat(parts)


def optional_batch(max_examples_per_batch: Optional[int], default: int) -> int:
    """The batch size to use, validated."""
    b = default if max_examples_per_batch is None else int(max_examples_per_batch)
    if b < 1:
        raise ValueError(f"max_examples_per_batch must be at least 1, got {max_examples_per_batch}")
    return b


def fv_of_units(model: nn.Module, layer_mod: nn.Module, selectors: Sequence[Any], param: Parametrization,
                strategy: Any, n_starts: int, seed: int, steps: Optional[int], progress: bool,
                fv: Optional[Any] = None) -> Any:
    """The FV of ``selectors`` a check scores: ``fv`` if given (checked to be of these units), else a render."""
    if fv is None:
        overrides = {} if steps is None else {"steps": int(steps)}
        return render(model, layer_mod, list(selectors), param, strategy, n_starts=n_starts, seed=seed,
                      progress=progress, **overrides)
    if fv.activations.dim() != 2 or fv.activations.shape[0] != len(selectors):
        raise ValueError(f"fv must be a render of these {len(selectors)} units (activations (U, n_starts)), "
                         f"got activations of shape {tuple(fv.activations.shape)}")
    return fv


def display_inputs(param: Parametrization, x: Tensor) -> Tensor:
    """Natural model inputs back to images in [0, 1] (undo ``param``'s normalization)."""
    mean = torch.as_tensor(param.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.as_tensor(param.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x * std + mean).clamp(0.0, 1.0)
