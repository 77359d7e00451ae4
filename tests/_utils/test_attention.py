"""math_attention: the fused attention kernels have no double backward; the math kernel has."""

import torch
from torch import nn

from captum_slingshot._utils.attention import has_attention, math_attention


def _double_backward(attn, x):
    (g,) = torch.autograd.grad(attn(x, x, x, need_weights=False)[0].sum(), x, create_graph=True)
    g.pow(2).sum().backward()
    return x.grad


def test_math_attention_allows_double_backward_where_the_default_kernel_may_not():
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 5, 8, requires_grad=True)
    with math_attention():
        grad = _double_backward(attn, x)
    assert grad is not None and torch.isfinite(grad).all()
    with math_attention(enabled=False):  # a no-op context: whatever the default kernel does
        try:
            _double_backward(attn, x.detach().requires_grad_(True))
        except RuntimeError as err:
            assert "not implemented" in str(err)


def test_has_attention():
    assert has_attention(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True))
    assert not has_attention(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(2, 2)))
