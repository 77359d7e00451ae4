import pytest
import torch
from torch import nn

from captum_slingshot.fv import (
    STRATEGIES,
    Direction,
    LayerNotReachedError,
    LucentFourierParam,
    PixelParam,
    MNIST_MEAN,
    MNIST_STD,
    count_hooks,
    render,
)

from .conftest import make_gray_cnn, make_rgb_cnn

GRAY = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
RGB = LucentFourierParam((3, 20, 20))


def _params_for(strategy):
    # lucent's strategy upsamples to 224 px, which only the RGB model (global pooling) takes
    if strategy == "lucent":
        return make_rgb_cnn(), "3", 2, LucentFourierParam((3, 16, 16)), 4
    return make_gray_cnn(), "7", 3, GRAY, 15


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_batched_equals_single_start_renders(strategy):
    model, layer, unit, param, steps = _params_for(strategy)
    batched = render(model, layer, unit, param, strategy, n_starts=4, seed=11, steps=steps)
    assert batched.images.shape == (4,) + param.shape
    assert batched.trajectory.shape == (4, steps)
    for i, s in enumerate(batched.seeds):
        single = render(model, layer, unit, param, strategy, n_starts=1, seeds=[s], steps=steps)
        torch.testing.assert_close(single.params[0], batched.params[i], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(single.activations[0], batched.activations[i], atol=1e-4, rtol=1e-4)
    assert count_hooks(model) == 0


def test_optimization_increases_the_activation(gray_cnn):
    res = render(gray_cnn, "7", 3, GRAY, "adam", n_starts=5, seed=0, steps=60, lr=0.05)
    assert (res.trajectory[:, -1] > res.trajectory[:, 0] + 1.0).all()
    assert (res.activations > res.trajectory[:, 0]).all()


def test_same_seed_same_images_and_different_seed_different(rgb_cnn):
    a = render(rgb_cnn, "3", 1, RGB, "adam_gc_tr", n_starts=3, seed=5, steps=8)
    b = render(rgb_cnn, "3", 1, RGB, "adam_gc_tr", n_starts=3, seed=5, steps=8)
    c = render(rgb_cnn, "3", 1, RGB, "adam_gc_tr", n_starts=3, seed=6, steps=8)
    assert torch.equal(a.images, b.images) and a.seeds == b.seeds
    assert (a.images - c.images).abs().max() > 1e-3
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    d = render(rgb_cnn, "3", 1, RGB, "gc", n_starts=2, generator=g1, steps=3)
    e = render(rgb_cnn, "3", 1, RGB, "gc", n_starts=2, generator=g2, steps=3)
    assert torch.equal(d.images, e.images)


def test_gradient_clipping_is_per_start(gray_cnn):
    # one SGD step of lr 1 with clip 1 moves every start by at most 1, however large its gradient
    def steep(h):  # a unit with gradients far above norm 1
        return 1000.0 * h[:, 3]

    q0 = torch.zeros(3, 1, 28, 28)
    q0[0] = torch.randn(1, 28, 28) * 5
    unclipped = render(gray_cnn, "7", steep, GRAY, "none", n_starts=3, q0=q0, lr=1.0, steps=1)
    assert ((unclipped.params - q0).flatten(1).norm(dim=1) > 2.0).all()
    res = render(gray_cnn, "7", steep, GRAY, "gc", n_starts=3, q0=q0, lr=1.0, steps=1)
    moved = (res.params - q0).flatten(1).norm(dim=1)
    torch.testing.assert_close(moved, torch.ones(3), atol=1e-4, rtol=0)
    # the clipped step points the same way as the unclipped one
    cos = torch.nn.functional.cosine_similarity((res.params - q0).flatten(1), (unclipped.params - q0).flatten(1))
    assert (cos > 0.9999).all()


def test_several_units_in_one_batch_equal_separate_renders(gray_cnn):
    units = [0, 3, (2, 1, 1)]
    together = render(gray_cnn, "3", units, GRAY, "gc_tr", n_starts=2, seed=1, steps=10)
    assert together.images.shape == (3, 2, 1, 28, 28)
    for j, unit in enumerate(units):
        alone = render(gray_cnn, "3", unit, GRAY, "gc_tr", n_starts=2, seed=1, steps=10)
        torch.testing.assert_close(alone.params, together.params[j], atol=1e-4, rtol=1e-4)


def test_max_examples_per_batch_gives_the_same_result(gray_cnn):
    full = render(gray_cnn, "7", [1, 2], GRAY, "adam_tr", n_starts=3, seed=2, steps=6)
    chunked = render(gray_cnn, "7", [1, 2], GRAY, "adam_tr", n_starts=3, seed=2, steps=6, max_examples_per_batch=2)
    torch.testing.assert_close(full.params, chunked.params, atol=1e-5, rtol=1e-5)


def test_direction_and_callable_units(gray_cnn):
    v = torch.randn(8)
    res = render(gray_cnn, "3", [Direction(v), lambda h: h[:, 2, 3, 3]], GRAY, "adam", n_starts=2, steps=5)
    assert res.activations.shape == (2, 2)


def test_training_flags_restored_and_no_hooks_left():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 26 * 26, 3))
    model.train()
    model[1].eval()
    render(model, "3", 0, GRAY, "gc", n_starts=2, steps=2)
    assert model.training and model[0].training and not model[1].training
    assert count_hooks(model) == 0


def test_runs_on_the_models_device(gray_cnn):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = gray_cnn.to(device)
    res = render(model, "7", 3, GRAY, "gc", n_starts=2, steps=2)
    assert res.images.device.type == device


def test_clear_errors(gray_cnn, rgb_cnn):
    with pytest.raises(ValueError, match="unknown layer 'fc9'"):
        render(gray_cnn, "fc9", 0, GRAY, steps=1)
    with pytest.raises(ValueError, match="out of range for layer '7'"):
        render(gray_cnn, "7", 10, GRAY, steps=1)
    with pytest.raises(ValueError, match="out of range"):
        render(gray_cnn, "3", (8,), GRAY, steps=1)

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.spare = make_gray_cnn(), nn.Linear(10, 2)

        def forward(self, x):
            return self.body(x)

    with pytest.raises(LayerNotReachedError, match="never reached"):
        render(TwoHeads(), "spare", 0, GRAY, steps=1)
    with pytest.raises(ValueError, match="cannot take inputs of shape \\(1, 1, 32, 32\\)"):
        render(gray_cnn, "7", 0, PixelParam((1, 32, 32)), steps=1)
    with pytest.raises(ValueError, match="3-channel images but the model's first conv layer takes 1"):
        render(gray_cnn, "7", 0, LucentFourierParam((3, 28, 28)), steps=1)
    with pytest.raises(ValueError, match="cannot take inputs"):
        render(gray_cnn, "7", 0, GRAY, "tr", transforms="lucent_standard", steps=1)
    with pytest.raises(ValueError, match="n_starts"):
        render(gray_cnn, "7", 0, GRAY, n_starts=0)
    assert count_hooks(gray_cnn) == 0
