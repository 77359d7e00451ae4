"""Feature visualization of a real MNIST classifier: the paper's protocol recovers each digit."""

import torch

from captum_slingshot.data import class_mean_images
from captum_slingshot.fv import MNIST_MEAN, MNIST_STD, PixelParam, count_hooks, render
from captum_slingshot.metrics.similarity import pearson_matrix


def test_logit_fv_is_classified_as_its_digit_and_looks_like_it(mnist_cnn, mnist_heldout):
    param = PixelParam((1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    # the paper's protocol: N(0, 0.01^2) starts, SGD lr 0.1 with gradient clipping, 200 steps
    res = render(mnist_cnn, mnist_cnn.logits, list(range(10)), param, "gc", n_starts=3, seed=0)
    assert res.images.shape == (10, 3, 1, 28, 28)
    with torch.no_grad():
        predicted = mnist_cnn(res.params.flatten(0, 1)).argmax(1).view(10, 3)
    assert (predicted == torch.arange(10)[:, None]).all(), predicted
    # each digit's FV correlates best with that digit's mean held-out image
    corr = pearson_matrix(res.images.flatten(0, 1), class_mean_images(mnist_heldout)).view(10, 3, 10).mean(1)
    assert (corr.argmax(1) == torch.arange(10)).all(), corr
    own = corr.diag()
    others = (corr.sum(1) - own) / 9
    assert (own > others + 0.1).all()
    assert count_hooks(mnist_cnn) == 0
