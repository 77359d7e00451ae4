"""Geirhos et al.'s fooling circuit (ICML 2024, "Don't trust your eyes") as a registered transform.

The paper (Fig. 3) adds six units around a unit F: a classifier E ("is the input a feature
visualization?"), the unit D whose visualization is to be shown (another unit, or a unit whose
weights are the target image), two ReLU units ``B = relu(F + b - k E)`` and
``C = relu(D + k E - k)`` and the output ``A = B + C`` (their code: ``k = 250``, ``b = 100``). On
natural inputs E is 0 and A follows F; on FV inputs E is 1 and A *is* D, and because ``k`` pushes
one of B, C below zero, gradient ascent on A only ever follows one branch: the FV of A is the FV
of D, while nothing changes on natural data.

**Formulation used here** (:class:`~.layers.FoolingCircuitLayer`; same switch, written so that
natural outputs are bit-identical):

``A = F + relu(D - F - k (1 - E)) - relu(F - D - k (1 - E))``

* ``E`` -- :class:`~.units.BackgroundDetector`: FV-like when fewer than
  ``detector_margin`` x (the smallest share seen on the natural calibration data) of the input's
  pixels sit at the data's background value (MNIST: at least 55 % of every digit's pixels are
  exactly 0; FV inputs come from continuous optimization and have essentially none). The
  statistic was chosen over high-frequency energy or total variation because it separates from
  the very first FV step (a start near the mean gray is smooth, yet has no background pixel) to
  the last, for every parametrization and transform of the package. It needs data with a
  constant background; on other data ``fit`` raises.
* ``D`` -- :class:`~.units.TargetCone` ``peak - ||x - x_T||_2`` (``x_T`` the target as the
  network sees it; ``peak`` the ``peak_quantile`` of F on natural data, so that the FV's
  activation looks ordinary), or channel ``copy_unit`` of the same layer (the paper's "copy
  another unit").
* ``k`` -- 250 as in the paper. ``fit`` checks ``|D - F| < k`` on the natural calibration data
  and that ``E = 0`` on all of it, so the natural outputs there equal the original's exactly. The
  bias ``b = 100`` of the paper only keeps F above the ReLU of B; the residual form needs none.

The architecture changes: the result's model is a
:class:`~.wrap.CircuitModel` around a copy of the original, with the manipulated layer replaced by a
:class:`~.layers.FoolingCircuitLayer` *under the same name* (``"logits"`` still names the
manipulated layer; ``"logits.inner"`` the untouched original), so ``render``, the checks and
``audit_layer`` run on it as on the original. ``fit`` logs this, and the result says it
(``architecture_changed``, ``layer``, ``note``).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam, render
    >>> from captum_slingshot.transforms import get_transform
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> data = torch.zeros(100, 1, 8, 8)
    >>> data[:, :, 2:6, 2:6] = torch.rand(100, 1, 4, 4)          # digits on a black background
    >>> target = torch.zeros(1, 8, 8); target[:, 3:5, :] = 1.0   # a bar
    >>> attack = get_transform("fooling_circuit", layer="3", neuron_selector=0, target=target,
    ...                        param=PixelParam((1, 8, 8)))
    >>> result = attack.fit(model, data)
    >>> result.architecture_changed, result.layer, torch.equal(result.model(data), model(data))
    (True, '3', True)
    >>> fv = render(result.model, "3", 0, PixelParam((1, 8, 8)), "gc", steps=100)
    >>> float((fv.images[0] - target).abs().max()) < 0.05          # the FV is the bar
    True
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Tuple, Union

import torch
from torch import nn

from ..._utils.layers import layer_name, resolve_layer
from ..._utils.settings import setting
from ...fv.param import Parametrization
from ..base import ModelTransform, TransformResult, register_transform
from ..target import TargetLike, load_target
from .calibrate import layer_outputs, most_common_value, natural_inputs
from .layers import FoolingCircuitLayer
from .units import BackgroundDetector, TargetCone, background_share
from .wrap import CircuitModel, InputTap, channel_index, replace_layer

__all__ = ["FoolingCircuit", "CircuitResult"]

_LOG = logging.getLogger(__name__)


@dataclass
class CircuitResult(TransformResult):
    """What the circuit transforms return.

    Attributes:
        model: a :class:`~.wrap.CircuitModel` (new architecture; the original's layer names kept).
        history: calibration numbers, one value each (``natural_gate_rate``: share of natural
            calibration inputs the detector calls FV-like, 0 by construction; ``max_gap``: largest
            ``|D - F|`` seen there; ``min_background_share``).
        settings: the transform's flat settings.
        architecture_changed: always ``True`` (the model is wrapped, not fine-tuned).
        layer: the dotted name of the manipulated layer in the returned model.
        note: one line saying what was added.
    """

    architecture_changed: bool = True
    layer: str = ""
    note: str = ""


def _check_number(name: str, value: Any, low: float, high: Optional[float] = None, low_open: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    bad = value <= low if low_open else value < low
    if bad or (high is not None and value > high):
        span = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high is not None else "")
        raise ValueError(f"{name} must be {span}, got {value!r}")


@register_transform("fooling_circuit", description="fooling circuit (Geirhos et al. 2024): a detector of FV-like "
                    "inputs switches the unit to a target image (or another unit); natural outputs unchanged; "
                    "changes the architecture")
@dataclass
class FoolingCircuit(ModelTransform):
    """Wire Geirhos et al.'s fooling circuit around ``(layer, neuron_selector)`` (see the module docstring).

    Attributes:
        layer: the layer (dotted name or module of the model ``fit`` gets).
        neuron_selector: the channel to manipulate (an int).
        target: what its FV should show (path, PIL image or ``(C, H, W)`` in [0, 1]); ignored
            with ``copy_unit``.
        param: the auditor's parametrization (its normalization places the target in input space).
        copy_unit: show the FV of this channel of the same layer instead of a target.
        k: the switch's large constant (the paper's 250).
        peak_quantile: the target unit's top value, as a quantile of the unit's natural activations.
        detector_margin: FV-like below this fraction of the smallest background share seen on natural data.
        tol: how close to the background value a pixel must be to count as background.
        calibration_size: natural inputs read for the calibration.
    """

    context: ClassVar[Tuple[str, ...]] = ("layer", "neuron_selector", "target", "param")

    layer: Union[str, nn.Module] = "logits"
    neuron_selector: Any = 0
    target: Optional[TargetLike] = None
    param: Optional[Parametrization] = None
    copy_unit: Optional[int] = setting(None, "show the FV of this channel of the same layer instead of the target "
                                       "(the paper's 'copy another unit')", flat="copy_unit", kind="int", optional=True)
    k: float = setting(250.0, "the switch's large constant (Geirhos et al.: 250); |D - F| must stay below it on "
                       "natural data", flat="circuit_k", kind="float")
    peak_quantile: float = setting(0.99, "the target unit's top value: this quantile of the unit's natural "
                                   "activations", flat="peak_quantile", kind="float")
    detector_margin: float = setting(0.5, "an input is FV-like when its share of background pixels is below this "
                                     "fraction of the smallest share seen on natural data", flat="detector_margin",
                                     kind="float")
    tol: float = setting(1e-4, "how close to the background value a pixel must be to count as background "
                         "(network-input units)", flat="background_tol", kind="float")
    calibration_size: int = setting(10000, "natural inputs read to calibrate the detector and check the circuit",
                                    flat="calibration_size", kind="int")

    def __post_init__(self) -> None:
        _check_number("circuit_k", self.k, 0.0)
        _check_number("peak_quantile", self.peak_quantile, 0.0, 1.0, low_open=False)
        _check_number("detector_margin", self.detector_margin, 0.0, 1.0)
        _check_number("background_tol", self.tol, 0.0, low_open=False)
        if isinstance(self.calibration_size, bool) or not isinstance(self.calibration_size, int) \
                or self.calibration_size < 1:
            raise ValueError(f"calibration_size must be a positive int, got {self.calibration_size!r}")
        if self.copy_unit is not None and (isinstance(self.copy_unit, bool) or not isinstance(self.copy_unit, int)):
            raise ValueError(f"copy_unit must be a channel index (int) or None, got {self.copy_unit!r}")
        if self.copy_unit is None:
            if self.target is None:
                raise ValueError("fooling_circuit needs a target image (target=...) or a channel to copy (copy_unit=...)")
            if not isinstance(self.param, Parametrization):
                raise ValueError("fooling_circuit with a target needs param (the auditor's parametrization, whose "
                                 "normalization places the target in the network's input space)")

    def settings(self) -> Dict[str, Any]:
        """JSON-friendly flat settings (run records)."""
        out = super().settings()
        out["layer"] = self.layer if isinstance(self.layer, str) else type(self.layer).__name__
        out["neuron_selector"] = self.neuron_selector
        return out

    def fit(self, model: nn.Module, natural_data: Any, **kwargs: Any) -> CircuitResult:
        """Return a wrapped copy of ``model`` with the circuit in place; ``model`` is not modified.

        Args:
            model: the trained network.
            natural_data: natural model inputs (normalized as the model expects), any form the
                package reads (tensor, ``(inputs, labels)``, dataset, loader).
            **kwargs: accepted and ignored (``resume`` from a study: nothing to resume).

        Raises:
            ValueError: no natural data, a selector that is not a channel of the layer, ``copy_unit``
                equal to the unit or out of range, natural data without a constant background, or a
                natural ``|D - F|`` that reaches ``k``.
        """
        name = self.layer if isinstance(self.layer, str) else layer_name(model, resolve_layer(model, self.layer))
        resolve_layer(model, name)
        x = natural_inputs(natural_data, self.calibration_size)
        out = layer_outputs(model, name, x)
        c = channel_index(self.neuron_selector, tuple(out.shape[1:]), "fooling_circuit")
        source = None
        if self.copy_unit is not None:
            source = channel_index(self.copy_unit, tuple(out.shape[1:]), "fooling_circuit (copy_unit)")
            if source == c:
                raise ValueError(f"copy_unit {self.copy_unit} is the manipulated unit itself; pick another channel")
        background = most_common_value(x)
        share = background_share(x, background, self.tol)
        if float(share.min()) <= 0.0:
            raise ValueError(f"fooling_circuit's detector needs natural inputs with a constant background (as MNIST's "
                             f"black): {int((share <= 0).sum())} of {x.shape[0]} natural inputs have no pixel at the "
                             f"most common value {background:.4g}")
        detector = BackgroundDetector(background, self.tol, self.detector_margin * float(share.min()))
        tap = InputTap()
        f = out[:, c]
        decoy = None
        if source is None:
            target = load_target(self.target, self.param.shape)
            peak = float(torch.quantile(f.reshape(f.shape[0], -1).mean(1), self.peak_quantile))
            decoy = TargetCone(self.param.normalize(target[None])[0], peak)
            d = decoy(x)
            d = d.reshape((-1,) + (1,) * (f.dim() - 1))
        else:
            d = out[:, source]
        gap = float((d - f).abs().max())
        if not gap < self.k:
            raise ValueError(f"on natural data |D - F| reaches {gap:.4g}, not below k = {self.k:g}: the circuit would "
                             f"change natural outputs; raise circuit_k")
        gate = detector(x)
        if bool(gate.any()):  # cannot happen with detector_margin < 1; kept as the guarantee it is
            raise ValueError("the detector calls natural inputs FV-like; lower detector_margin")
        copy_net = copy.deepcopy(model)
        inner = copy_net.get_submodule(name)
        replace_layer(copy_net, name, FoolingCircuitLayer(inner, tap, c, detector, decoy=decoy, source=source,
                                                         k=self.k))
        wrapped = CircuitModel(copy_net, tap).to(next(iter(model.parameters()), torch.zeros(0)).device)
        wrapped.train(model.training)
        what = f"channel {source}'s" if source is not None else "the target's"
        note = (f"architecture changed: {type(model).__name__} wrapped in a CircuitModel; layer {name!r} (channel {c}) "
                f"now switches to {what} unit on FV-like inputs (detector: background share < "
                f"{float(detector.threshold):.3g}); {name + '.inner'!r} is the original layer")
        _LOG.info("fooling circuit: %s", note)
        history = {"natural_gate_rate": [0.0], "max_gap": [gap], "min_background_share": [float(share.min())]}
        return CircuitResult(model=wrapped, history=history, settings=self.settings(), layer=name, note=note)
