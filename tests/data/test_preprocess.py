"""captum_slingshot.data.preprocess: the model's preprocessing, given once, as torchvision's presets do it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captum_slingshot.data import Preprocess, denormalize, load_mnist, normalize, normalize_mnist


def _photo(h=300, w=411, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8"))


@pytest.mark.parametrize("name", ["resnet18", "vit_b_16", "efficientnet_b3"])
def test_from_torchvision_weights_matches_the_weights_own_transforms_exactly(name):
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    pre = Preprocess.from_torchvision_weights(weights)
    assert pre == Preprocess.from_torchvision_weights(name) == Preprocess.from_torchvision_weights(str(weights))
    img = _photo()
    assert torch.equal(pre(img), weights.transforms()(img))
    assert pre.param("pixel").shape == (3, pre.crop, pre.crop) and pre.param("pixel").mean == pre.mean


def test_imagenet_recipe_and_tensor_batches():
    pre = Preprocess.imagenet(64)
    assert (pre.resize, pre.crop, pre.shape()) == (73, 64, (3, 64, 64))
    x = torch.rand(2, 3, 80, 120)
    out = pre(x)
    assert out.shape == (2, 3, 64, 64)
    assert torch.allclose(pre.denormalize(out), pre.image(x), atol=1e-6)
    single = pre(x[0])
    assert torch.allclose(single, out[0], atol=1e-6)


def test_mnist_preprocessing_is_normalize_mnist_bit_for_bit():
    x = load_mnist("test").tensors[0][:64]
    assert torch.equal(Preprocess.mnist()(x), normalize_mnist(x))
    assert Preprocess.mnist().channels == 1 and Preprocess.mnist().shape() is None


def test_grayscale_images_are_read_as_one_channel_for_one_mean():
    img = _photo(40, 50)
    assert Preprocess(crop=32, mean=(0.5,), std=(0.5,))(img).shape == (1, 32, 32)
    assert Preprocess(crop=32)(img).shape == (3, 32, 32)


def test_generic_normalize_and_its_errors():
    x = torch.rand(4, 3, 5, 5)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.4, 0.3)
    assert torch.allclose(denormalize(normalize(x, mean, std), mean, std), x, atol=1e-6)
    with pytest.raises(ValueError, match=r"the images have 3 channel\(s\) .* but mean/std have 2 entries"):
        normalize(x, (0.1, 0.2), (0.5, 0.4))
    with pytest.raises(ValueError, match="preprocessing's mean/std have 3 entries"):
        Preprocess(mean=mean, std=std)(torch.rand(1, 8, 8))


@pytest.mark.parametrize("kwargs,message", [
    ({"resize": 0}, "resize must be a positive number of pixels"),
    ({"crop": 2.5}, "crop must be a positive number of pixels"),
    ({"mean": (0.5,)}, "give both mean and std"),
    ({"mean": (0.5, 0.5), "std": (0.5,)}, "mean has 2 entries but std has 1"),
    ({"mean": (0.5,), "std": (0.0,)}, "std must be positive"),
    ({"interpolation": "lanczos"}, "interpolation must be one of bilinear, bicubic, nearest"),
])
def test_bad_preprocessing_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Preprocess(**kwargs)


def test_unknown_torchvision_weights_and_shape_errors():
    with pytest.raises(ValueError, match="unknown torchvision weights 'resnet81'"):
        Preprocess.from_torchvision_weights("resnet81")
    with pytest.raises(ValueError, match="no crop to take it from"):
        Preprocess().param("pixel")
