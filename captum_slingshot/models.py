"""Reference models of the paper and a plain training loop.

Every model expects *normalized* input (e.g. :func:`captum_slingshot.data.normalize_mnist` for
MNIST); the feature-visualization engine normalizes the images it optimizes before the forward
pass, so pass the matching normalization to it rather than folding it into the model. Layers are
named submodules (``model.conv1``, ``model.fc3``, ``model.logits``, ...) so that a unit can be
addressed by module (Captum style) or by name (lucent style, ``"fc3"``).

Example:
    >>> import torch
    >>> from captum_slingshot.models import MNISTCNN, SmallRGBCNN, vgg
    >>> MNISTCNN()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> vgg(9, width=4)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> SmallRGBCNN()(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .data import load_mnist, normalize_mnist
from ._utils.registry import Registry
from .paths import models_dir, save_state_dict

__all__ = [
    "MNISTCNN",
    "VGG",
    "vgg",
    "vgg_stage_depths",
    "SmallRGBCNN",
    "train_classifier",
    "pretrained_mnist_cnn",
    "MODELS",
    "available_models",
]


class MNISTCNN(nn.Module):
    """The paper's 6-layer MNIST CNN (2 conv + 4 fully connected layers).

    ``conv1`` (1→16, 5×5) → ``relu1`` → ``pool1`` (2×2) → ``conv2`` (16→32, 5×5) → ``relu2`` →
    ``pool2`` → ``flatten`` → ``fc1`` (512→256) → ``relu3`` → ``fc2`` (256→120) → ``relu4`` →
    ``fc3`` (120→84) → ``relu5`` → ``logits`` (84→10).

    Input: normalized MNIST images ``(N, 1, 28, 28)``, i.e. ``(x - 0.1307) / 0.3081`` for ``x``
    in [0, 1]. Output: ``(N, 10)`` logits. Every ReLU is its own module, so post-activation
    outputs can be hooked per layer.

    Example:
        >>> import torch
        >>> from captum_slingshot.models import MNISTCNN
        >>> model = MNISTCNN().eval()
        >>> model(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 10])
        >>> [name for name, _ in model.named_children()][-3:]
        ['fc3', 'relu5', 'logits']
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=5)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(32 * 4 * 4, 256)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(256, 120)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(120, 84)
        self.relu5 = nn.ReLU()
        self.logits = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.flatten(x)
        if x.shape[1] != self.fc1.in_features:
            raise ValueError(f"MNISTCNN expects input of shape (N, 1, 28, 28), got {shape}.")
        x = self.relu3(self.fc1(x))
        x = self.relu4(self.fc2(x))
        x = self.relu5(self.fc3(x))
        return self.logits(x)


# Channels of the 5 conv stages, in multiples of `width` (VGG's 64-128-256-512-512 at width 64).
_VGG_STAGE_MULTIPLIERS = (1, 2, 4, 8, 8)
# Where conv layers beyond one per stage go: stages 3, 4, 5, then 1, 2 (which never get more than
# two, as in every VGG config), then 3, 4, 5 in turn. Reproduces VGG configs A, B, D and E.
_VGG_FIRST_EXTRAS = (2, 3, 4, 0, 1)
_VGG_LATER_EXTRAS = (2, 3, 4)
_VGG_MIN_DEPTH = len(_VGG_STAGE_MULTIPLIERS) + 1


def vgg_stage_depths(depth: int) -> Tuple[int, ...]:
    """Conv layers per stage for a VGG of the given depth (``depth - 1`` conv layers in all).

    Example:
        >>> from captum_slingshot.models import vgg_stage_depths
        >>> vgg_stage_depths(9), vgg_stage_depths(11), vgg_stage_depths(14)
        ((1, 1, 2, 2, 2), (2, 2, 2, 2, 2), (2, 2, 3, 3, 3))
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < _VGG_MIN_DEPTH:
        raise ValueError(
            f"VGG depth must be an int >= {_VGG_MIN_DEPTH} (one conv layer in each of the 5 "
            f"stages plus the classifier), got {depth!r}. The paper's CIFAR-10 model is depth 9."
        )
    counts = [1] * len(_VGG_STAGE_MULTIPLIERS)
    for i in range(depth - _VGG_MIN_DEPTH):
        if i < len(_VGG_FIRST_EXTRAS):
            counts[_VGG_FIRST_EXTRAS[i]] += 1
        else:
            later = i - len(_VGG_FIRST_EXTRAS)
            counts[_VGG_LATER_EXTRAS[later % len(_VGG_LATER_EXTRAS)]] += 1
    return tuple(counts)


class VGG(nn.Module):
    """A VGG-style classifier for 32×32 inputs (any size >= 32 works).

    ``features``: 5 stages of 3×3 conv (+ batch norm) + ReLU layers named ``conv{s}_{i}``,
    ``bn{s}_{i}``, ``relu{s}_{i}``, each stage closed by ``pool{s}`` (2×2 max pool); stage ``s``
    has ``width * (1, 2, 4, 8, 8)[s-1]`` channels. Then ``avgpool`` (global average),
    ``flatten``, ``fc`` (8·width → 8·width), ``relu_fc`` and ``logits``. This is the head of the
    paper's CIFAR-10 VGG. Build one with :func:`vgg`.

    Input: normalized images ``(N, in_channels, H, W)`` with ``H, W >= 32``.

    Example:
        >>> import torch
        >>> from captum_slingshot.models import VGG
        >>> model = VGG(stage_depths=(1, 1, 2, 2, 2), width=8)
        >>> model(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        stage_depths: Tuple[int, ...] = (1, 1, 2, 2, 2),
        width: int = 64,
        in_channels: int = 3,
        num_classes: int = 10,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        _check_positive_ints(width=width, in_channels=in_channels, num_classes=num_classes)
        if len(stage_depths) != len(_VGG_STAGE_MULTIPLIERS) or min(stage_depths) < 1:
            raise ValueError(
                f"stage_depths needs {len(_VGG_STAGE_MULTIPLIERS)} positive entries (one per "
                f"stage), got {tuple(stage_depths)}."
            )
        self.stage_depths = tuple(stage_depths)
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        channels = in_channels
        for s, (n_conv, mult) in enumerate(zip(stage_depths, _VGG_STAGE_MULTIPLIERS), start=1):
            out = width * mult
            for i in range(1, n_conv + 1):
                layers[f"conv{s}_{i}"] = nn.Conv2d(channels, out, kernel_size=3, padding=1)
                if batch_norm:
                    layers[f"bn{s}_{i}"] = nn.BatchNorm2d(out)
                layers[f"relu{s}_{i}"] = nn.ReLU()
                channels = out
            layers[f"pool{s}"] = nn.MaxPool2d(2)
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, channels)
        self.relu_fc = nn.ReLU()
        self.logits = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image_input(type(self).__name__, x, self.features[0].in_channels, 32)
        x = self.flatten(self.avgpool(self.features(x)))
        return self.logits(self.relu_fc(self.fc(x)))


def vgg(
    depth: int = 9,
    width: int = 64,
    in_channels: int = 3,
    num_classes: int = 10,
    batch_norm: bool = True,
) -> VGG:
    """Build a VGG with ``depth - 1`` conv layers for 32 px inputs.

    ``depth`` counts the conv layers plus the classifier head, as the paper names its CIFAR-10
    model "VGG-9": depth 9 gives 8 conv layers in stages ``(1, 1, 2, 2, 2)`` (VGG config A), 11
    gives ``(2, 2, 2, 2, 2)`` (config B), 14 gives ``(2, 2, 3, 3, 3)`` (config D), 17 gives
    ``(2, 2, 4, 4, 4)`` (config E); other depths >= 6 add layers to stages 3, 4, 5, 1, 2, then
    3, 4, 5 in turn (:func:`vgg_stage_depths`).

    Args:
        depth: number of conv layers + 1; at least 6.
        width: channels of the first stage (64 in VGG); later stages have 2, 4, 8, 8 times as many.
        in_channels: input channels (3 for RGB).
        num_classes: size of the ``logits`` layer.
        batch_norm: add ``BatchNorm2d`` after every conv (the paper's VGG-9 uses it).

    Raises:
        ValueError: ``depth`` < 6 or not an int, or a non-positive ``width`` / ``in_channels``
            / ``num_classes``.

    Example:
        >>> import torch
        >>> from captum_slingshot.models import vgg
        >>> model = vgg(depth=9, width=8, num_classes=10)
        >>> sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        8
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return VGG(vgg_stage_depths(depth), width, in_channels, num_classes, batch_norm)


class SmallRGBCNN(nn.Module):
    """A small 4-conv-layer RGB classifier for 64 px inputs (any size >= 8 works).

    ``conv1`` (3→w) → ``relu1`` → ``pool1`` → ``conv2`` (w→2w) → ``relu2`` → ``pool2`` →
    ``conv3`` (2w→4w) → ``relu3`` → ``pool3`` → ``conv4`` (4w→4w) → ``relu4`` → ``avgpool``
    (global average, hence any input size) → ``flatten`` → ``logits`` (4w→num_classes); all
    convs 3×3 with padding 1. Cheap enough for CPU tests of Fourier-domain feature visualization.

    Input: normalized RGB images ``(N, 3, H, W)``; 64 px by design, any ``H, W >= 8`` runs.

    Example:
        >>> import torch
        >>> from captum_slingshot.models import SmallRGBCNN
        >>> model = SmallRGBCNN(width=16)
        >>> model(torch.zeros(2, 3, 64, 64)).shape, model(torch.zeros(2, 3, 40, 48)).shape
        (torch.Size([2, 10]), torch.Size([2, 10]))
    """

    def __init__(self, num_classes: int = 10, width: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        _check_positive_ints(width=width, in_channels=in_channels, num_classes=num_classes)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(2 * width, 4 * width, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.pool3 = nn.MaxPool2d(2)
        self.conv4 = nn.Conv2d(4 * width, 4 * width, 3, padding=1)
        self.relu4 = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.logits = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image_input(type(self).__name__, x, self.conv1.in_channels, 8)
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.pool3(self.relu3(self.conv3(x)))
        x = self.relu4(self.conv4(x))
        return self.logits(self.flatten(self.avgpool(x)))


def _check_positive_ints(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _check_image_input(model: str, x: torch.Tensor, channels: int, min_size: int) -> None:
    if x.dim() != 4 or x.shape[1] != channels or min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"{model} expects input of shape (N, {channels}, H, W) with H, W >= {min_size}, "
            f"got {tuple(x.shape)}."
        )


def train_classifier(
    model: nn.Module,
    dataset: Dataset,
    epochs: int = 1,
    lr: float = 1e-3,
    momentum: float = 0.9,
    batch_size: int = 64,
    seed: int = 0,
    device: Optional[Union[str, torch.device]] = None,
    progress: bool = True,
    num_threads: Optional[int] = None,
) -> List[float]:
    """Train ``model`` in place with SGD + momentum and cross-entropy; leave it in eval mode.

    The paper trains its MNIST CNN this way (SGD, lr 1e-3, momentum 0.9). The data order is
    drawn from a generator seeded with ``seed``, so two runs from the same initial weights give
    the same model. Inputs must already be normalized.

    Args:
        model: classifier returning logits ``(N, num_classes)``.
        dataset: yields ``(input, label)`` pairs, e.g. a ``TensorDataset``.
        epochs: passes over ``dataset``.
        lr, momentum: SGD settings.
        batch_size: examples per step; the last, smaller batch is kept.
        seed: seed of the shuffling order.
        device: where to train; default: the device of the model's parameters.
        progress: show a tqdm progress bar.
        num_threads: torch intra-op threads while training, restored afterwards; ``None`` keeps
            the current setting. Small models train faster with 1 thread when other processes
            share the cores (MNIST CNN, batch 16, 2 busy cores: 15 ms/step vs 43 ms with 2).

    Returns:
        The mean training loss of each epoch.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> from captum_slingshot.models import train_classifier
        >>> model = torch.nn.Linear(2, 2)
        >>> x = torch.randn(256, 2)
        >>> data = TensorDataset(x, (x[:, 0] > 0).long())
        >>> losses = train_classifier(model, data, epochs=3, lr=0.1, progress=False)
        >>> losses[-1] < losses[0]
        True
    """
    from tqdm.auto import tqdm

    _check_positive_ints(epochs=epochs, batch_size=batch_size)
    if num_threads is not None:
        _check_positive_ints(num_threads=num_threads)
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}.")
    if device is None:
        device = next(model.parameters()).device
    model.to(device).train()
    generator = torch.Generator().manual_seed(seed)
    loader = _batches(dataset, batch_size, generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        for epoch in range(epochs):
            total, count = 0.0, 0
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress,
                       leave=False)
            for inputs, labels in bar:
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(inputs), labels)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(labels)
                count += len(labels)
                bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
            history.append(total / count)
    finally:
        torch.set_num_threads(previous_threads)
        model.eval()
    return history


def _batches(dataset: Dataset, batch_size: int, generator: torch.Generator) -> DataLoader:
    """Shuffled batches; a TensorDataset is indexed a whole batch at a time (much faster)."""
    if isinstance(dataset, TensorDataset):
        sampler = torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(dataset, generator=generator), batch_size, False
        )
        return DataLoader(dataset, sampler=sampler, batch_size=None)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


# Bump when the architecture or the training recipe changes, so stale caches are not reused.
_MNIST_RECIPE = "v1"
# The paper's optimizer (SGD, lr 1e-3, momentum 0.9). Batch 16 rather than 64 so that a single
# epoch gets past 96 % held-out accuracy (batch 64: ~86 %, batch 32: ~93 % after one epoch).
_MNIST_TRAINING = dict(lr=1e-3, momentum=0.9, batch_size=16)


def pretrained_mnist_cnn(
    epochs: int = 1,
    seed: int = 0,
    device: Optional[Union[str, torch.device]] = None,
    progress: bool = True,
) -> MNISTCNN:
    """The paper's MNIST CNN trained on the paper's training split, cached on disk.

    The first call initializes the weights from ``seed``, trains for ``epochs`` on the
    normalized ``load_mnist("train")`` split (SGD lr 1e-3, momentum 0.9, batch 16, one torch
    thread; about 25 s per epoch on an idle CPU core) and saves the state dict under
    ``models_dir()``; later calls load it (``torch.load(weights_only=True)``). The file name
    encodes the settings.

    Args:
        epochs: training epochs (1 gives about 96 % held-out accuracy).
        seed: seed of the weight initialization and of the data order.
        device: device of the returned model (training happens there too); default CPU.
        progress: show a progress bar while training.

    Returns:
        An ``MNISTCNN`` in eval mode.

    Example:
        >>> from captum_slingshot.models import pretrained_mnist_cnn
        >>> model = pretrained_mnist_cnn(epochs=1, seed=0, progress=False)
        >>> model.training
        False
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    path = _mnist_weights_path(epochs, seed)
    if path.is_file():
        model = _seeded_mnist_cnn(seed)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.to(device).eval()
        except Exception as err:  # unreadable or incompatible file: retrain and overwrite
            warnings.warn(
                f"Ignoring unreadable cached weights {path} ({err}); retraining.", stacklevel=2
            )
    model = _seeded_mnist_cnn(seed)
    images, labels = load_mnist("train").tensors
    train_classifier(
        model,
        TensorDataset(normalize_mnist(images), labels),
        epochs=epochs,
        seed=seed,
        device=device,
        progress=progress,
        num_threads=1,
        **_MNIST_TRAINING,
    )
    save_state_dict(model, path)
    return model.eval()


def _seeded_mnist_cnn(seed: int) -> MNISTCNN:
    """A fresh MNISTCNN initialized from ``seed``; the global RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MNISTCNN()


def _mnist_weights_path(epochs: int, seed: int) -> Path:
    t = _MNIST_TRAINING
    name = (
        f"mnist_cnn-{_MNIST_RECIPE}-e{epochs}-s{seed}"
        f"-lr{t['lr']:g}-m{t['momentum']:g}-bs{t['batch_size']}.pt"
    )
    return models_dir() / name


#: name -> model factory (called with no arguments); what ``--model NAME`` and study files name
MODELS: Registry = Registry("model")
MODELS.register("mnist_cnn", MNISTCNN, description="the paper's 6-layer MNIST CNN (1x28x28 inputs, 10 logits)")
MODELS.register("vgg9", lambda: vgg(9), description="VGG-9 for 32 px RGB inputs (10 logits), the paper's CIFAR model")
MODELS.register("small_rgb_cnn", SmallRGBCNN, description="a small RGB CNN for 64 px inputs (10 logits)")


def available_models() -> dict:
    """Registered model factories: ``{name: one-line description}``.

    Example:
        >>> list(available_models())
        ['mnist_cnn', 'small_rgb_cnn', 'vgg9']
    """
    return MODELS.describe()
