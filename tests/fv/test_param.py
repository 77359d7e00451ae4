import pytest
import torch

from captum_slingshot.compat import lucent
from captum_slingshot.fv.param import (
    LucentFourierParam,
    LucentPixelParam,
    PaperFourierParam,
    PixelParam,
    make_param,
    MNIST_MEAN,
    MNIST_STD,
)

SHAPES = [(3, 32, 32), (3, 31, 33), (1, 28, 28), (1, 27, 29)]


def _lucent_param(shape, fft, seed=0):
    """Lucent's own (params, image_f) on the CPU."""
    c, h, w = shape
    torch.manual_seed(seed)
    with lucent.lucent_devices("cpu"):
        if c == 3:
            return lucent.native_image(w, h, batch=2, fft=fft, decorrelate=True)()
        return lucent.native_image(w, h, batch=2, fft=fft, channels=1)()


def _lucent_image(shape, fft, seed=0):
    params, image_f = _lucent_param(shape, fft, seed)
    return params[0].detach(), image_f().detach()


@pytest.mark.parametrize("shape", SHAPES)
def test_lucent_fourier_matches_lucent(shape):
    q, expected = _lucent_image(shape, fft=True)
    ours = LucentFourierParam(shape)
    assert tuple(q.shape[1:]) == ours.param_shape
    torch.testing.assert_close(ours.image(q), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_lucent_fourier_matches_lucent_far_from_start(shape):
    params, image_f = _lucent_param(shape, fft=True, seed=3)
    with torch.no_grad():
        params[0].mul_(200.0)  # lucent's image_f reads this very tensor
    expected = image_f().detach()
    assert expected.std() > 0.05
    torch.testing.assert_close(LucentFourierParam(shape).image(params[0].detach()), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_lucent_pixel_matches_lucent(shape):
    q, expected = _lucent_image(shape, fft=False)
    torch.testing.assert_close(LucentPixelParam(shape).image(q), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cls", [LucentFourierParam, LucentPixelParam, PixelParam])
@pytest.mark.parametrize("shape", SHAPES)
def test_inverse_round_trip_any_image(cls, shape):
    x = torch.rand((3,) + shape, generator=torch.Generator().manual_seed(1)) * 0.98 + 0.01
    p = cls(shape)
    torch.testing.assert_close(p.image(p.inverse(x)), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_paper_fourier_round_trip_on_reachable_images(shape):
    p = PaperFourierParam(shape)
    q = p.sample_init(3, seeds=[1, 2, 3], sd=0.5, dtype=torch.float64)
    x = p.image(q)
    assert 0.05 < x.std() < 0.5  # a real image, not a constant
    torch.testing.assert_close(p.image(p.inverse(x)), x, atol=1e-9, rtol=0)


def test_paper_fourier_drops_nyquist():
    p = PaperFourierParam((3, 32, 32))
    assert p.param_shape == (3, 32, 16, 2)
    # an image made only of the horizontal Nyquist frequency is not reachable
    y = torch.zeros(1, 3, 32, 32)
    y[..., ::2] = 1.0
    x = torch.sigmoid(y - 0.5)
    assert (p.image(p.inverse(x)) - x).abs().max() > 0.1


def test_pixel_param_is_the_normalized_image():
    p = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    q = torch.randn(2, 1, 28, 28)
    assert torch.equal(p.network_input(q), q)
    torch.testing.assert_close(p.inverse(p.image(q.clamp(-0.3, 2.0))), q.clamp(-0.3, 2.0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["pixel", "lucent_pixel", "lucent_fourier", "paper_fourier"])
@pytest.mark.parametrize("shape", [(3, 6, 6), (1, 5, 7)])
def test_gradcheck(name, shape):
    p = make_param(name, shape)
    q = (p.sample_init(2, seeds=[0, 1], sd=0.3).double()).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: p.network_input(t), (q,))
    x = (p.image(q.detach()).clamp(0.05, 0.95)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: p.inverse(t), (x,))


def test_sample_init_per_start_seeds_do_not_depend_on_batch():
    p = LucentFourierParam((3, 16, 16))
    batch = p.sample_init(3, seeds=[5, 6, 7])
    single = p.sample_init(1, seeds=[6])
    assert torch.equal(batch[1], single[0])
    assert batch.std().item() == pytest.approx(0.01, rel=0.2)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="unknown parametrization"):
        make_param("fourier2", (3, 8, 8))
    with pytest.raises(ValueError, match="grayscale \\(1\\) or RGB \\(3\\)"):
        LucentFourierParam((4, 8, 8))
    p = LucentFourierParam((3, 8, 8))
    with pytest.raises(ValueError, match="strictly inside"):
        p.inverse(torch.ones(1, 3, 8, 8))
    with pytest.raises(ValueError, match="expected images of shape"):
        p.inverse(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        p.inverse(torch.full((1, 3, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="expects q of shape"):
        p.image(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="mean/std"):
        PixelParam((3, 8, 8), mean=(0.1, 0.2), std=(1, 1))
