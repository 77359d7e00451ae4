"""Mixed precision (``Run(precision=...)``): the forward passes under autocast, the losses in float32."""

import pytest
import torch
from torch import nn

from captum_slingshot.fv import PixelParam
from captum_slingshot.transforms import GradientSlingshot, Preservation, Run


def _fit(precision):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.Tanh(),
                          nn.Linear(16, 4)).eval()
    data = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    gs = GradientSlingshot("5", 1, torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(2)),
                           PixelParam((1, 8, 8)), preservation=Preservation(batch_size=8),
                           run=Run(steps=20, progress=False, precision=precision))
    return model, gs.fit(model, data)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_like_float32(precision):
    model, low = _fit(precision)
    _, full = _fit(None)
    assert all(torch.isfinite(torch.tensor(low.history["loss"])))
    assert all(p.dtype == torch.float32 for p in low.model.parameters())  # the weights stay float32
    # the same run within low-precision rounding ...
    l0, l1 = torch.tensor(low.history["loss"]), torch.tensor(full.history["loss"])
    assert torch.allclose(l0, l1, rtol=0.05, atol=1e-3)
    # ... but a low-precision one: the forward passes ran under autocast
    assert not torch.equal(l0, l1)
    assert "precision" in {o.name for o in GradientSlingshot.options()}  # a flat option: CLI and study files
    assert sum(float((a - b).abs().max()) for a, b in zip(low.model.parameters(), model.parameters())) > 0


def test_precision_is_checked_and_does_not_block_a_resume():
    with pytest.raises(ValueError, match="precision"):
        Run(steps=1, precision="fp8")
    from captum_slingshot.transforms.checkpoints import RUN_ONLY

    assert "precision" in RUN_ONLY
