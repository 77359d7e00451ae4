import pytest
import torch

from captum_slingshot.fv.transforms import (
    Compose,
    Jitter,
    Pad,
    RandomAffine,
    RandomCrop,
    RandomRotate,
    RandomScale,
    Resize,
    TRANSFORM_SETS,
    make_transforms,
)


@pytest.mark.parametrize("name", sorted(TRANSFORM_SETS) + ["paper"])
@pytest.mark.parametrize("size", [(28, 28), (32, 32), (40, 36)])
def test_sets_are_per_example_and_differentiable(name, size):
    t = make_transforms(name, size)
    x = torch.rand(4, 3, *size, requires_grad=True)
    u = torch.rand(4, t.n_random, generator=torch.Generator().manual_seed(0))
    y = t(x, u)
    assert tuple(y.shape[-2:]) == t.output_size(size)
    # each example depends only on its own image and its own random numbers
    for i in range(4):
        torch.testing.assert_close(t(x[i : i + 1], u[i : i + 1]), y[i : i + 1], atol=1e-5, rtol=0)
    # different random numbers give different results
    assert (t(x, torch.rand(4, t.n_random)) - y).abs().max() > 1e-3
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_jitter_is_an_exact_integer_shift():
    x = torch.rand(1, 1, 16, 16)
    y = Jitter(8)(x, torch.tensor([[0.3, 0.9]]))  # dx = 2, dy = 7
    torch.testing.assert_close(y[:, :, 7:, 2:], x[:, :, :-7, :-2], atol=1e-5, rtol=0)
    assert y[:, :, :7].abs().max() == 0 and y[:, :, :, :2].abs().max() == 0


def test_pad_crop_and_fill():
    x = torch.zeros(2, 1, 10, 10)
    padded = Pad(3, value=0.5)(x, torch.empty(2, 0))
    assert padded.shape == (2, 1, 16, 16) and padded[0, 0, 0, 0] == 0.5
    crop = RandomCrop((10, 10))(padded, torch.tensor([[0.0, 0.0], [0.999, 0.999]]))
    assert crop[0, 0, 0, 0] == 0.5 and crop[0, 0, 9, 9] == 0.0  # top-left crop
    assert crop[1, 0, 9, 9] == 0.5 and crop[1, 0, 0, 0] == 0.0  # bottom-right crop


def test_rotation_and_zoom_fill_with_the_fill_value():
    x = torch.zeros(1, 1, 20, 20)
    y = RandomAffine((45.0, 45.0), fill=0.5)(x, torch.rand(1, 4))
    assert y[0, 0, 0, 0] == pytest.approx(0.5)  # corner uncovered after rotation
    assert y[0, 0, 10, 10] == pytest.approx(0.0)
    z = RandomScale([0.5])(torch.ones(1, 1, 20, 20), torch.rand(1, 1))
    assert z[0, 0, 0, 0] == 0 and z[0, 0, 10, 10] == pytest.approx(1.0)
    r = RandomRotate([0.0])(x + 1, torch.rand(1, 1))
    torch.testing.assert_close(r, x + 1)


def test_resize_and_compose():
    t = Compose([Pad(2), Resize((224, 224))])
    assert t.output_size((28, 28)) == (224, 224)
    assert t(torch.rand(1, 1, 28, 28), torch.empty(1, 0)).shape == (1, 1, 224, 224)
    with pytest.raises(ValueError, match="unknown transform set"):
        make_transforms("dream", (28, 28))
    with pytest.raises(ValueError, match="more than 1"):
        Jitter(1)
