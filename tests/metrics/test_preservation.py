"""The preservation metrics together: a copy keeps every metric, a perturbed copy moves them."""

import torch

from captum_slingshot.fv import count_hooks
from captum_slingshot.metrics import (
    accuracy,
    jaccard,
    top_k_activating,
)

from ._helpers import conv_model, images


def test_preservation_of_an_unchanged_and_a_perturbed_model():
    """End to end: a copy keeps every metric; a perturbed copy moves them the expected way."""
    model, x = conv_model(), images(60, seed=7)
    with torch.no_grad():
        y = model(x).argmax(1)
    copy = conv_model()
    assert accuracy(copy, (x, y)) == 1.0
    top_a = top_k_activating(model, "2", 1, x, k=15)
    assert jaccard(top_a, top_k_activating(copy, "2", 1, x, k=15)) == 1.0
    other = conv_model(seed=123)
    assert accuracy(other, (x, y)) < 1.0
    assert jaccard(top_a, top_k_activating(other, "2", 1, x, k=15)) < 1.0
    assert all(count_hooks(m) == 0 for m in (model, copy, other))
