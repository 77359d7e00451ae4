"""Shared fixtures: real MNIST data and the paper's MNIST CNN (trained once, then cached).

The data come from ``$CAPTUM_SLINGSHOT_HOME/data/MNIST/raw`` (``make data`` puts them there);
the CNN is trained on first use (about 25 s on an idle core) and cached under
``$CAPTUM_SLINGSHOT_HOME/models``.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from captum_slingshot.data import load_mnist
from captum_slingshot.models import MNISTCNN, pretrained_mnist_cnn


@pytest.fixture(scope="session")
def mnist_cnn() -> MNISTCNN:
    """The paper's MNIST CNN after 1 epoch (seed 0), eval mode, on CPU.

    Shared by the whole session: do not train or modify it in place; ``copy.deepcopy`` it first.
    """
    return pretrained_mnist_cnn(epochs=1, seed=0, progress=False)


@pytest.fixture(scope="session")
def mnist_test() -> TensorDataset:
    """The official MNIST test set: 10 000 images (N, 1, 28, 28) in [0, 1] and labels."""
    return load_mnist("test")


@pytest.fixture(scope="session")
def mnist_heldout() -> TensorDataset:
    """The paper's held-out 20 % of the MNIST training set (12 000 images)."""
    return load_mnist("heldout")


@pytest.fixture
def torch_seed() -> int:
    """Seed the global torch RNG for a test (restored afterwards) and return the seed."""
    seed = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield seed


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, mnist_cnn):
    """``captum-slingshot demo`` with small FV settings but enough manipulation steps (500) for its audit to
    flag logit 0 (pooled z about 15; 60 steps do not): the output folder and what it printed."""
    import contextlib
    import io

    from captum_slingshot.cli import main

    out = tmp_path_factory.mktemp("demo") / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["demo", "--out", str(out), "--starts", "2", "--steps", "30", "--manipulation-steps", "500",
                     "--no-progress"])
    assert code == 0
    return out, printed.getvalue()
