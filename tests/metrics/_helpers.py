"""Small models and data forms shared by the metric tests."""

import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def conv_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 6)
    )


def images(n=37, seed=1):
    return torch.randn(n, 3, 8, 8, generator=gen(seed))


class ListDataset(Dataset):
    """A plain map-style dataset of (x, y) items (not a TensorDataset)."""

    def __init__(self, x, y=None):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] if self.y is None else (self.x[i], int(self.y[i]))


class Stream(IterableDataset):
    def __init__(self, x):
        self.x = x

    def __iter__(self):
        return iter(self.x)


class Counter(nn.Module):
    """Identity that counts its forward calls and records the training flag it saw."""

    def __init__(self):
        super().__init__()
        self.calls, self.modes = 0, []

    def forward(self, x):
        self.calls += 1
        self.modes.append(self.training)
        return x


class Boom(nn.Module):
    def forward(self, x):
        raise AssertionError("the forward should have stopped before this layer")


# ------------------------------------------------------------------------------------ accuracy
