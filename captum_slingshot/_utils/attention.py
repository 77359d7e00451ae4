"""Transformers: telling them apart, and attention that can be differentiated twice.

``nn.MultiheadAttention`` calls :func:`torch.nn.functional.scaled_dot_product_attention`, whose
fused kernels (flash and memory-efficient attention on CUDA, the flash kernel on CPU) have no
double backward: ``torch.autograd.grad(..., create_graph=True)`` through them, then ``backward``,
fails with "derivative for aten::_scaled_dot_product_flash_attention_for_cpu_backward is not
implemented". :func:`math_attention` selects the plain math kernel, made of ordinary matmuls and
a softmax, which can. The kernel is chosen when the forward runs, so only the forward and the
first ``autograd.grad`` need to be inside the context; the later ``backward`` may be outside.
First-order work (rendering, auditing) keeps the fast kernels.

Example:
    >>> import torch
    >>> from torch import nn
    >>> attn = nn.MultiheadAttention(8, 2, batch_first=True)
    >>> has_attention(nn.Sequential(attn)), has_attention(nn.Linear(2, 2))
    (True, False)
    >>> x = torch.randn(1, 3, 8, requires_grad=True)
    >>> with math_attention():
    ...     (g,) = torch.autograd.grad(attn(x, x, x, need_weights=False)[0].sum(), x, create_graph=True)
    >>> g.pow(2).sum().backward()      # a double backward, outside the context
    >>> x.grad.shape
    torch.Size([1, 3, 8])
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

__all__ = ["math_attention", "has_attention"]


@contextlib.contextmanager
def math_attention(enabled: bool = True) -> Iterator[None]:
    """Within the context, ``scaled_dot_product_attention`` uses the math kernel (double backward works).

    ``enabled=False`` is a no-op context. Models without attention are unaffected either way.
    """
    if not enabled:
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield


def has_attention(model: nn.Module) -> bool:
    """Whether ``model`` is a transformer: it contains an ``nn.MultiheadAttention`` (torchvision's ViTs do)."""
    return any(isinstance(m, nn.MultiheadAttention) for m in model.modules())
