"""FV renders shared by the checks of one audit: each (strategy, parametrization, starts) once.

Several checks score the same feature visualizations (``strategy_divergence`` compares GC, TR and
Adam FVs; ``activation_excess`` reads the activations those same FVs reach; ``natural_gap``
compares the GC FV with natural images). A :class:`RenderCache` belongs to one model, layer and
list of units; a check that declares ``renders=True`` asks it for what it needs and the first
request renders, later ones reuse. :func:`~captum_slingshot.checks.audit_layer` passes one cache
to every such check; a check called on its own makes its own.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from captum_slingshot.fv import PixelParam, get_strategy
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> cache = RenderCache(model, "1", [0, 2], PixelParam((1, 4, 4)))
    >>> fv = cache.get(get_strategy("gc", steps=5), n_starts=2)
    >>> fv.images.shape, cache.get(get_strategy("gc", steps=5), n_starts=2) is fv, list(cache.results())
    (torch.Size([2, 2, 1, 4, 4]), True, ['gc'])
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from torch import nn

from .._utils.layers import resolve_layer
from ..fv.param import Parametrization
from ..fv.render import FVResult, render
from ..fv.strategies import AMStrategy

__all__ = ["RenderCache"]


class RenderCache:
    """FVs of one layer's units, rendered once per ``(strategy, parametrization, n_starts)``.

    Args:
        model: the network.
        layer: module of ``model`` or its dotted name.
        neuron_selectors: the units (every render has a leading unit dimension in this order).
        param: the auditor's parametrization (the default for :meth:`get`; renders in another one
            are labelled ``"strategy@parametrization"``).
        seed: seeds every render's starts and transforms.
        max_examples_per_batch: starts optimized at a time (results do not depend on it).
        progress: show tqdm bars while rendering.
    """

    def __init__(self, model: nn.Module, layer: Union[nn.Module, str], neuron_selectors: Sequence[Any],
                 param: Parametrization, *, seed: int = 0, max_examples_per_batch: Optional[int] = None,
                 progress: bool = False) -> None:
        self.model = model
        self.layer = resolve_layer(model, layer)
        self.units: List[Any] = list(neuron_selectors)
        self.param = param
        self.seed = int(seed)
        self.max_examples_per_batch = max_examples_per_batch
        self.progress = progress
        self._renders: Dict[Tuple[AMStrategy, Parametrization, int], FVResult] = {}
        self._labels: Dict[str, FVResult] = {}

    def label(self, strategy: AMStrategy, param: Optional[Parametrization] = None) -> str:
        """``"gc"`` for the auditor's parametrization, ``"gc@lucent_fourier"`` for another."""
        if param is None or param == self.param:
            return strategy.name
        return f"{strategy.name}@{param.name or type(param).__name__}"

    def get(self, strategy: AMStrategy, param: Optional[Parametrization] = None, n_starts: int = 4) -> FVResult:
        """The FV of every unit under ``strategy`` in ``param`` (default: the auditor's) with ``n_starts`` starts."""
        p = self.param if param is None else param
        key = (strategy, p, int(n_starts))
        if key not in self._renders:
            fv = render(self.model, self.layer, list(self.units), p, strategy, n_starts=int(n_starts), seed=self.seed,
                        max_examples_per_batch=self.max_examples_per_batch, progress=self.progress)
            self._renders[key] = fv
            self._labels.setdefault(self.label(strategy, p), fv)
        return self._renders[key]

    def results(self) -> Dict[str, FVResult]:
        """``{label: FVResult}`` of what was rendered, the first render per label, in request order."""
        return dict(self._labels)

    def check_for(self, model: nn.Module, layer: Union[nn.Module, str], neuron_selectors: Sequence[Any]) -> "RenderCache":
        """This cache, after checking it belongs to ``model``, ``layer`` and these units (a clear error if not)."""
        if model is not self.model or resolve_layer(model, layer) is not self.layer or list(neuron_selectors) != self.units:
            raise ValueError("renders is a RenderCache of another model, layer or list of units; build one with "
                             "RenderCache(model, layer, neuron_selectors, param) for these")
        return self

    @classmethod
    def for_check(cls, renders: Optional["RenderCache"], model: nn.Module, layer: Union[nn.Module, str],
                  neuron_selectors: Sequence[Any], param: Parametrization, seed: int,
                  max_examples_per_batch: Optional[int] = None, progress: bool = False) -> "RenderCache":
        """``renders`` checked to fit, or a new cache when it is ``None`` (a check called on its own)."""
        if renders is None:
            return cls(model, layer, neuron_selectors, param, seed=seed, max_examples_per_batch=max_examples_per_batch,
                       progress=progress)
        return renders.check_for(model, layer, neuron_selectors)

    def __repr__(self) -> str:
        return f"RenderCache(units={len(self.units)}, renders={list(self._labels)})"
