"""Glue for Captum's own metrics and attributions.

``captum.metrics.sensitivity_max`` calls ``explanation_func`` with the inputs *always packed
in a tuple*, even when you passed one tensor, and needs a *tuple* of batch-first tensors back:
it iterates over the explanation of the unperturbed inputs, so a plain tensor is taken row
by row (a shape error, or with a batch of one a silently wrong number). A function written
for one tensor also receives ``(x,)``: ``model(x)`` fails, and tensor-like code such as
``inputs * 2`` turns the 1-tuple into ``(x, x)``. And it runs the explanation under
``torch.no_grad()``, so a hand-written gradient explanation fails (Captum's own attribution
methods re-enable gradients internally). Our checks with
``return_details=True`` return ``(scores, details_dict)``, which Captum cannot take either.
:func:`captum_explanation` wraps such a function so both ends are what Captum expects.

:func:`neuron_gradient` is the unit's input gradient computed with Captum's
``NeuronGradient``, the field that :func:`captum_slingshot.checks.slingshot_field` fits.

Example:
    >>> import torch
    >>> from captum.metrics import sensitivity_max
    >>> from captum_slingshot.interop import captum_explanation
    >>> double = lambda x: x * 2                  # written for one tensor
    >>> x = torch.ones(2, 3)
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> sensitivity_max(captum_explanation(double), x, n_perturb_samples=4).shape
    torch.Size([2])
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Tuple, Union

import torch
from torch import Tensor, nn

from .fv.units import NeuronSelector, resolve_layer

__all__ = ["captum_explanation", "neuron_gradient"]


def captum_explanation(fn: Callable[..., Any]) -> Callable[..., Tuple[Tensor, ...]]:
    """Make ``fn(inputs, **kwargs)`` safe as ``explanation_func`` of ``captum.metrics``.

    Inputs: a 1-tuple is unpacked into its tensor before ``fn`` sees it (longer tuples are
    passed as they are), and ``fn`` runs with gradients enabled. Outputs: always a tuple of
    tensors; ``(tensor, dict)`` (a check's
    ``return_details=True``) keeps the tensor; anything that is not batch-first (a 0-d
    tensor, a tensor whose first dimension differs from the inputs') is a clear error instead
    of a silently wrong metric.

    Example:
        >>> import torch
        >>> from captum_slingshot.interop import captum_explanation
        >>> f = captum_explanation(lambda x: (x.sum(1), {"details": 1}))
        >>> f((torch.ones(4, 3),))
        (tensor([3., 3., 3., 3.]),)
    """

    @functools.wraps(fn)
    def wrapped(inputs: Any, *args: Any, **kwargs: Any):
        if isinstance(inputs, tuple) and len(inputs) == 1:
            inputs = inputs[0]
        batch = (inputs[0] if isinstance(inputs, tuple) else inputs).shape[0]
        with torch.enable_grad():
            out = fn(inputs, *args, **kwargs)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
            out = out[0]
        parts = out if isinstance(out, tuple) else (out,)
        for p in parts:
            if not isinstance(p, Tensor) or p.dim() == 0 or p.shape[0] != batch:
                shape = tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__
                raise ValueError(
                    f"{getattr(fn, '__name__', 'explanation_func')} returned {shape} for a batch of {batch}; "
                    "captum.metrics needs one explanation per input, batch first"
                )
        return tuple(parts)

    return wrapped


def neuron_gradient(model: nn.Module, layer: Union[nn.Module, str], neuron_selector: NeuronSelector,
                    inputs: Tensor) -> Tensor:
    """The unit's input gradient at ``inputs`` via Captum's ``NeuronGradient``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from captum_slingshot.interop import neuron_gradient
        >>> model = nn.Sequential(nn.Linear(3, 2))
        >>> torch.equal(neuron_gradient(model, model[0], 1, torch.zeros(5, 3))[0], model[0].weight[1].detach())
        True
    """
    from captum.attr import NeuronGradient

    return NeuronGradient(model, resolve_layer(model, layer)).attribute(inputs, neuron_selector=neuron_selector).detach()
