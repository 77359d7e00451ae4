"""Layer-wise relevance propagation that can be differentiated: a graph from the map back to the weights.

Captum's ``LRP`` writes ``.data`` in place inside its hooks, so its maps cannot be trained against
(Captum issue #361). :func:`lrp` computes the same relevances explicitly: one forward pass records
every leaf module's input and output in execution order; relevance starts at the target logit and
walks back through the recorded modules, each linear, convolution or pooling layer redistributing
it by its rule,

``R_in = a * grad_a(z_rho(a), grad_outputs=R_out / (z_rho + eps * sign(z_rho)))``,

with ``create_graph=True`` so that the result is differentiable in the inputs and the weights.
``z_rho`` is the layer itself (``rule="epsilon"``, Captum's ``EpsilonRule``) or the layer with its
weights clamped at zero (``rule="zplus"``, Captum's ``Alpha1_Beta0_Rule``: only positive weights
carry relevance); pooling layers always use the epsilon rule (max pooling: the winner takes all),
ReLU, Tanh, Dropout, Flatten and Identity pass relevance on unchanged. The model must be a chain:
each recorded module reads what the previous one wrote (reshapes in ``forward`` are fine).

Example:
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False)).eval()
    >>> x = torch.randn(5, 4)
    >>> r = lrp(model, x, target=1)
    >>> r.shape, bool(torch.allclose(r.sum(1), model(x)[:, 1], atol=1e-5))   # without biases: conserved
    (torch.Size([5, 4]), True)
    >>> r.requires_grad   # a graph back to the weights
    True
"""

from __future__ import annotations

from typing import Any, List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._utils.modes import eval_mode

__all__ = ["lrp", "LRP_RULES", "PASS_THROUGH", "REDISTRIBUTING"]

LRP_RULES = ("epsilon", "zplus")
#: modules that pass relevance on unchanged
PASS_THROUGH = (nn.ReLU, nn.Tanh, nn.Dropout, nn.Flatten, nn.Identity, nn.LeakyReLU)
#: modules that redistribute relevance by a rule
REDISTRIBUTING = (nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm2d)


def _rho(module: nn.Module, a: Tensor, rule: str) -> Tensor:
    """The layer's output under the rule (the z+ rule clamps linear and conv weights at zero)."""
    if rule == "zplus" and isinstance(module, (nn.Linear, nn.Conv2d)):
        w = module.weight.clamp(min=0)
        if isinstance(module, nn.Linear):
            return F.linear(a, w, module.bias)
        return module._conv_forward(a, w, module.bias)  # noqa: SLF001 (torch's own conv with given weights)
    return module(a)


def lrp(model: nn.Module, inputs: Tensor, target: Union[int, Tensor], rule: str = "epsilon",
        epsilon: float = 1e-9) -> Tensor:
    """Relevance of every input element for ``target``, shape of ``inputs``, with a graph to the weights.

    Args:
        model: a chain of supported modules (see the module notes); run in eval mode.
        inputs: ``(B, ...)``.
        target: the class (an int, or one per input ``(B,)``).
        rule: ``"epsilon"`` or ``"zplus"``.
        epsilon: the stabilizer added (with the sign of ``z``) to every denominator.

    Raises:
        ValueError: an unknown rule, a module LRP has no rule for, or a model that is not a chain.
    """
    if rule not in LRP_RULES:
        raise ValueError(f"rule must be one of {LRP_RULES}, got {rule!r}")
    records: List[Tuple[nn.Module, Tensor, Tensor]] = []

    def hook(module: nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        records.append((module, args[0], output))

    leaves = [m for m in model.modules() if not list(m.children())]
    for m in leaves:
        if not isinstance(m, PASS_THROUGH + REDISTRIBUTING):
            raise ValueError(f"LRP has no rule for {type(m).__name__}; supported: "
                             f"{', '.join(t.__name__ for t in PASS_THROUGH + REDISTRIBUTING)}")
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with eval_mode(model), torch.enable_grad():
            x = inputs if inputs.requires_grad else inputs.detach().requires_grad_(True)
            logits = model(x)
            if logits.dim() != 2:
                raise ValueError(f"lrp needs logits of shape (batch, classes), got {tuple(logits.shape)}")
            index = torch.as_tensor(target, device=logits.device).long().reshape(-1, 1).expand(logits.shape[0], 1)
            relevance = torch.zeros_like(logits).scatter(1, index, logits.gather(1, index))
            for module, a, z in reversed(records):
                if relevance.numel() != z.numel():
                    raise ValueError(f"LRP needs a chain of modules: {type(module).__name__}'s output has "
                                     f"{z.numel()} values, the relevance reaching it {relevance.numel()}")
                relevance = relevance.reshape(z.shape)
                if isinstance(module, PASS_THROUGH):
                    relevance = relevance.reshape(a.shape)
                    continue
                z_rho = _rho(module, a, rule)
                sign = torch.where(z_rho >= 0, torch.ones_like(z_rho), -torch.ones_like(z_rho))
                s = relevance / (z_rho + epsilon * sign)
                (c,) = torch.autograd.grad(z_rho, a, grad_outputs=s, create_graph=True)
                relevance = a * c
            if relevance.numel() != x.numel():
                raise ValueError("LRP needs a chain of modules from the input to the logits")
            return relevance.reshape(x.shape)
    finally:
        for h in handles:
            h.remove()
