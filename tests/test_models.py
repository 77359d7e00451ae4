"""captum_slingshot.models: architectures, training loop and the cached pretrained MNIST CNN."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from captum_slingshot import models as models_mod
from captum_slingshot.data import normalize_mnist
from captum_slingshot.models import (
    MNISTCNN,
    VGG,
    SmallRGBCNN,
    pretrained_mnist_cnn,
    train_classifier,
    vgg,
    vgg_stage_depths,
)
from captum_slingshot.paths import data_dir, models_dir


def count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def accuracy(model: nn.Module, dataset: TensorDataset) -> float:
    images, labels = dataset.tensors
    with torch.no_grad():
        predictions = torch.cat([model(normalize_mnist(x)).argmax(1) for x in images.split(2048)])
    return float((predictions == labels).float().mean())


# --- MNISTCNN ----------------------------------------------------------------------------------


def test_mnist_cnn_architecture(torch_seed):
    model = MNISTCNN()
    assert [n for n, _ in model.named_children()] == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
        "fc1", "relu3", "fc2", "relu4", "fc3", "relu5", "logits",
    ]  # fmt: skip
    assert (model.conv1.in_channels, model.conv1.out_channels) == (1, 16)
    assert (model.conv2.in_channels, model.conv2.out_channels) == (16, 32)
    assert model.conv1.kernel_size == model.conv2.kernel_size == (5, 5)
    linear = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linear == [(512, 256), (256, 120), (120, 84), (84, 10)]
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_mnist_cnn_layers_are_hookable(torch_seed):
    model = MNISTCNN().eval()
    seen = {}
    handle = model.fc3.register_forward_hook(lambda m, i, o: seen.setdefault("fc3", o))
    try:
        logits = model(torch.randn(2, 1, 28, 28))
    finally:
        handle.remove()
    assert seen["fc3"].shape == (2, 84)
    assert torch.allclose(model.logits(model.relu5(seen["fc3"])), logits)


def test_mnist_cnn_rejects_wrong_size():
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\), got \(1, 1, 36, 36\)"):
        MNISTCNN()(torch.zeros(1, 1, 36, 36))


# --- VGG ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "depth,stages",
    [(6, (1, 1, 1, 1, 1)), (9, (1, 1, 2, 2, 2)), (11, (2, 2, 2, 2, 2)),
     (14, (2, 2, 3, 3, 3)), (17, (2, 2, 4, 4, 4)), (12, (2, 2, 3, 2, 2))],
)  # fmt: skip
def test_vgg_depth_gives_depth_minus_one_conv_layers(depth, stages):
    assert vgg_stage_depths(depth) == stages
    model = vgg(depth, width=2)
    assert count(model, nn.Conv2d) == depth - 1
    assert count(model, nn.BatchNorm2d) == depth - 1
    assert count(model, nn.Linear) == 2
    assert model.stage_depths == stages


def test_vgg_width_channels_and_head(torch_seed):
    model = vgg(9, width=4, in_channels=1, num_classes=7, batch_norm=False)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 16, 32, 32, 32, 32]
    assert convs[0].in_channels == 1
    assert count(model, nn.BatchNorm2d) == 0
    assert (model.fc.in_features, model.logits.out_features) == (32, 7)
    assert hasattr(model.features, "conv3_2") and hasattr(model.features, "pool5")
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    assert model(torch.randn(2, 1, 64, 48)).shape == (2, 7)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(depth=5), "VGG depth must be an int >= 6"),
        (dict(depth=9.0), "VGG depth must be an int >= 6"),
        (dict(depth=9, width=0), "width must be a positive int, got 0"),
        (dict(depth=9, in_channels=-1), "in_channels must be a positive int"),
        (dict(depth=9, num_classes=0), "num_classes must be a positive int"),
    ],
)
def test_vgg_bad_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vgg(**kwargs)


def test_vgg_bad_stage_depths_and_input():
    with pytest.raises(ValueError, match="stage_depths needs 5 positive entries"):
        VGG(stage_depths=(1, 1, 1))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) with H, W >= 32, got \(1, 3, 16, 16\)"):
        vgg(9, width=2)(torch.zeros(1, 3, 16, 16))


# --- SmallRGBCNN -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(64, 64), (32, 32), (40, 56)])
def test_small_rgb_cnn_any_size(size, torch_seed):
    model = SmallRGBCNN(width=8).eval()
    assert count(model, nn.Conv2d) == 4
    assert model(torch.randn(2, 3, *size)).shape == (2, 10)


def test_small_rgb_cnn_errors():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*got \(1, 1, 64, 64\)"):
        SmallRGBCNN()(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="width must be a positive int"):
        SmallRGBCNN(width=0)


# --- train_classifier --------------------------------------------------------------------------


def _toy_data(n: int = 512) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 8, 8, generator=g)
    return TensorDataset(x, (x.mean((1, 2, 3)) > 0).long())


def _toy_model(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))


def test_train_classifier_learns_and_is_deterministic():
    data = _toy_data()
    a, b = _toy_model(0), _toy_model(0)
    losses_a = train_classifier(a, data, epochs=3, lr=0.05, batch_size=32, seed=5, progress=False)
    losses_b = train_classifier(b, data, epochs=3, lr=0.05, batch_size=32, seed=5, progress=False)
    assert len(losses_a) == 3 and losses_a[-1] < losses_a[0] * 0.7
    assert losses_a == losses_b
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not a.training  # left in eval mode
    c = _toy_model(0)
    train_classifier(c, data, epochs=1, lr=0.05, batch_size=32, seed=6, progress=False)
    d = _toy_model(0)
    train_classifier(d, data, epochs=1, lr=0.05, batch_size=32, seed=5, progress=False)
    assert not torch.equal(c[1].weight, d[1].weight)  # the seed sets the data order


def test_train_classifier_restores_thread_count():
    before = torch.get_num_threads()
    train_classifier(_toy_model(0), _toy_data(64), num_threads=1, progress=False)
    assert torch.get_num_threads() == before


def test_train_classifier_accepts_a_plain_dataset():
    data = _toy_data(64)
    as_list = [(data.tensors[0][i], int(data.tensors[1][i])) for i in range(64)]
    losses = train_classifier(_toy_model(0), as_list, epochs=2, batch_size=16, progress=False)
    assert len(losses) == 2


@pytest.mark.parametrize(
    "kwargs,message",
    [(dict(epochs=0), "epochs must be a positive int"),
     (dict(batch_size=0), "batch_size must be a positive int"),
     (dict(lr=0.0), "lr must be positive"),
     (dict(num_threads=0), "num_threads must be a positive int")],
)  # fmt: skip
def test_train_classifier_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_classifier(_toy_model(0), _toy_data(8), progress=False, **kwargs)


# --- pretrained_mnist_cnn ----------------------------------------------------------------------


def test_pretrained_mnist_cnn_accuracy(mnist_cnn, mnist_heldout, mnist_test):
    assert isinstance(mnist_cnn, MNISTCNN) and not mnist_cnn.training
    assert accuracy(mnist_cnn, mnist_heldout) > 0.95
    assert accuracy(mnist_cnn, mnist_test) > 0.95


def test_pretrained_mnist_cnn_is_cached(mnist_cnn):
    files = sorted(p.name for p in models_dir().iterdir())
    assert "mnist_cnn-v1-e1-s0-lr0.001-m0.9-bs16.pt" in files
    assert not [f for f in files if f.endswith(".tmp")]  # atomic write left no temp file
    again = pretrained_mnist_cnn(epochs=1, seed=0, progress=False)
    assert again is not mnist_cnn and not again.training
    for (name, a), b in zip(mnist_cnn.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


def _use_fresh_home(monkeypatch, home) -> None:
    """Point CAPTUM_SLINGSHOT_HOME at an empty dir that still sees the real MNIST files."""
    mnist = data_dir() / "MNIST"
    (home / "data").mkdir()
    (home / "data" / "MNIST").symlink_to(mnist)
    monkeypatch.setenv("CAPTUM_SLINGSHOT_HOME", str(home))


def test_pretrained_cache_key_and_bad_file(monkeypatch, tmp_path):
    """Settings key the cache file; an unreadable file is replaced after a warning."""
    _use_fresh_home(monkeypatch, tmp_path)
    assert models_mod._mnist_weights_path(2, 3) != models_mod._mnist_weights_path(1, 3)
    assert models_mod._mnist_weights_path(1, 4) != models_mod._mnist_weights_path(1, 3)

    calls = []

    def fake_train(model, dataset, **kwargs):  # skip the 20 s of training
        calls.append((len(dataset), kwargs))
        return [0.0]

    monkeypatch.setattr(models_mod, "train_classifier", fake_train)
    path = models_mod._mnist_weights_path(1, 7)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable cached weights"):
        model = pretrained_mnist_cnn(epochs=1, seed=7, progress=False)
    assert calls == [(48_000, dict(epochs=1, seed=7, device=torch.device("cpu"), progress=False,
                                   num_threads=1, lr=1e-3, momentum=0.9, batch_size=16))]
    reloaded = pretrained_mnist_cnn(epochs=1, seed=7, progress=False)
    assert len(calls) == 1  # second call loads the file written by the first
    assert torch.equal(reloaded.conv1.weight, model.conv1.weight)
    assert path.stat().st_mode & 0o044  # readable like any other file, not mkstemp's 0600


def test_pretrained_initialization_does_not_touch_global_rng(monkeypatch, tmp_path, torch_seed):
    _use_fresh_home(monkeypatch, tmp_path)
    monkeypatch.setattr(models_mod, "train_classifier", lambda *a, **k: [0.0])
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = pretrained_mnist_cnn(epochs=1, seed=11, progress=False)  # trains (faked)
    pretrained_mnist_cnn(epochs=1, seed=11, progress=False)  # loads the cached file
    assert torch.equal(torch.rand(3), expected)
    models_mod._mnist_weights_path(1, 11).unlink()
    b = pretrained_mnist_cnn(epochs=1, seed=11, progress=False)
    assert torch.equal(a.fc1.weight, b.fc1.weight)  # same seed, same initial weights


def test_mnist_cnn_fixture_is_usable_for_gradients(mnist_cnn, mnist_test):
    model = copy.deepcopy(mnist_cnn)
    x = normalize_mnist(mnist_test.tensors[0][:4]).requires_grad_(True)
    model(x)[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
