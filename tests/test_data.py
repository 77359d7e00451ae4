"""captum_slingshot.data and captum_slingshot.paths on the real MNIST files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from captum_slingshot.data import (
    MNIST_MEAN,
    MNIST_RAW_FILES,
    MNIST_STD,
    class_mean_image,
    class_mean_images,
    denormalize_mnist,
    load_mnist,
    normalize_mnist,
    paper_split,
)
from captum_slingshot.paths import cache_dir, data_dir, models_dir


# --- paths -------------------------------------------------------------------------------------


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPTUM_SLINGSHOT_HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home"
    assert data_dir() == tmp_path / "home" / "data"
    assert models_dir() == tmp_path / "home" / "models"
    assert not (tmp_path / "home").exists()  # reading the location creates nothing


def test_cache_dir_default(monkeypatch):
    monkeypatch.delenv("CAPTUM_SLINGSHOT_HOME", raising=False)
    assert cache_dir() == Path.home() / ".cache" / "captum_slingshot"
    monkeypatch.setenv("CAPTUM_SLINGSHOT_HOME", "~/elsewhere")
    assert cache_dir() == Path.home() / "elsewhere"


# --- the paper's split -------------------------------------------------------------------------


def test_paper_split_sizes_and_partition():
    train_idx, heldout_idx = paper_split()
    assert (len(train_idx), len(heldout_idx)) == (48_000, 12_000)
    together = torch.cat([train_idx, heldout_idx])
    assert torch.equal(together.sort().values, torch.arange(60_000))


def test_paper_split_is_deterministic_and_seeded():
    a_train, a_held = paper_split()
    b_train, b_held = paper_split()
    assert torch.equal(a_train, b_train) and torch.equal(a_held, b_held)
    c_train, _ = paper_split(seed=43)
    assert not torch.equal(a_train, c_train)


def test_paper_split_matches_random_split_of_the_papers_code():
    train, held = torch.utils.data.random_split(
        range(60_000), [48_000, 12_000], generator=torch.Generator().manual_seed(42)
    )
    train_idx, heldout_idx = paper_split()
    assert train_idx.tolist() == list(train.indices)
    assert heldout_idx.tolist() == list(held.indices)


def test_paper_split_rejects_tiny_input():
    with pytest.raises(ValueError, match="at least 2"):
        paper_split(1)


# --- load_mnist --------------------------------------------------------------------------------


@pytest.mark.parametrize("split,n", [("train", 48_000), ("heldout", 12_000), ("test", 10_000)])
def test_load_mnist_shapes_and_range(split, n):
    images, labels = load_mnist(split).tensors
    assert images.shape == (n, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert set(labels.unique().tolist()) == set(range(10))


def test_load_mnist_test_is_the_official_test_set(mnist_test):
    # The first official test digits are 7, 2, 1, 0, 4.
    assert mnist_test.tensors[1][:5].tolist() == [7, 2, 1, 0, 4]


def test_load_mnist_train_and_heldout_follow_paper_split():
    import torchvision

    raw = torchvision.datasets.MNIST(str(data_dir()), train=True, download=False)
    train_idx, heldout_idx = paper_split()
    train_images, train_labels = load_mnist("train").tensors
    held_images, held_labels = load_mnist("heldout").tensors
    for k in (0, 1, 47_999):
        assert torch.equal(train_images[k, 0], raw.data[train_idx[k]].float() / 255)
        assert int(train_labels[k]) == int(raw.targets[train_idx[k]])
    assert torch.equal(held_labels, raw.targets[heldout_idx])
    assert torch.equal(held_images[-1, 0], raw.data[heldout_idx[-1]].float() / 255)


def test_normalization_constants_match_the_training_data():
    images = load_mnist("train").tensors[0]
    assert abs(float(images.mean()) - MNIST_MEAN[0]) < 2e-3
    assert abs(float(images.std()) - MNIST_STD[0]) < 2e-3
    normalized = normalize_mnist(images[:1000])
    assert torch.allclose(denormalize_mnist(normalized), images[:1000], atol=1e-6)


def test_load_mnist_returns_fresh_tensors():
    first = load_mnist("test")
    first.tensors[0].zero_()
    first.tensors[1].zero_()
    second = load_mnist("test")
    assert float(second.tensors[0].max()) == 1.0
    assert second.tensors[1][0] == 7


def test_load_mnist_unknown_split():
    with pytest.raises(ValueError, match="train, heldout, test"):
        load_mnist("validation")


def test_load_mnist_missing_files_say_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="make data") as err:
        load_mnist("test", root=tmp_path)
    assert str(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte") in str(err.value)


def test_load_mnist_truncated_file_is_reported(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_RAW_FILES:
        (raw / name).write_bytes(b"\0" * 16)
    with pytest.raises(FileNotFoundError, match=r"has 16 bytes, expected 7840016"):
        load_mnist("test", root=tmp_path)


def test_load_mnist_reads_an_explicit_root(tmp_path):
    (tmp_path / "MNIST").mkdir()
    (tmp_path / "MNIST" / "raw").symlink_to(data_dir() / "MNIST" / "raw")
    assert len(load_mnist("test", root=tmp_path)) == 10_000
    assert len(load_mnist("test", root=str(tmp_path))) == 10_000


# --- class means -------------------------------------------------------------------------------


def test_class_mean_images_of_mnist(mnist_test):
    images, labels = mnist_test.tensors
    means = class_mean_images(mnist_test)
    assert means.shape == (10, 1, 28, 28) and means.dtype == torch.float32
    assert torch.allclose(means[3], images[labels == 3].mean(0), atol=1e-6)
    assert torch.equal(class_mean_image(mnist_test, 3), means[3])
    # Class means are meaningful templates: nearest-mean classification is far above chance.
    dists = torch.cdist(images.flatten(1), means.flatten(1))
    accuracy = (dists.argmin(1) == labels).float().mean()
    assert accuracy > 0.75


def test_class_mean_images_accepts_pairs_and_plain_datasets():
    images = torch.arange(8.0).view(4, 1, 1, 2)
    labels = torch.tensor([0, 1, 0, 1])
    expected = torch.tensor([[[[2.0, 3.0]]], [[[4.0, 5.0]]]])
    assert torch.equal(class_mean_images((images, labels), num_classes=2), expected)
    as_list = [(images[i], int(labels[i])) for i in range(4)]
    assert torch.equal(class_mean_images(as_list, num_classes=2), expected)


def test_class_mean_images_errors():
    images = torch.zeros(3, 1, 2, 2)
    with pytest.raises(ValueError, match=r"No examples of class\(es\) \[2\]"):
        class_mean_images((images, torch.tensor([0, 1, 1])), num_classes=3)
    with pytest.raises(ValueError, match=r"Labels must lie in \[0, 2\)"):
        class_mean_images((images, torch.tensor([0, 1, 5])), num_classes=2)
    with pytest.raises(ValueError, match="digit must lie"):
        class_mean_image((images, torch.tensor([0, 1, 1])), digit=10)


def test_photo_crops_are_seeded_split_and_checked():
    from captum_slingshot.data import photo_crops

    x, y = photo_crops(3, "train", size=24, seed=1, photos=("astronaut", "stereo_motorcycle"))
    again, _ = photo_crops(3, "train", size=24, seed=1, photos=("astronaut", "stereo_motorcycle"))
    held, _ = photo_crops(3, "heldout", size=24, seed=1, photos=("astronaut", "stereo_motorcycle"))
    assert x.shape == (6, 3, 24, 24) and y.tolist() == [0, 0, 0, 1, 1, 1] and torch.equal(x, again)
    assert not torch.equal(x, held) and 0 <= float(x.min()) and float(x.max()) <= 1
    with pytest.raises(ValueError, match="split must be 'train' or 'heldout'"):
        photo_crops(1, "test")
    with pytest.raises(ValueError, match="skimage.data has no photo 'mona_lisa'"):
        photo_crops(1, photos=("mona_lisa",))
    with pytest.raises(ValueError, match="is not an RGB image"):
        photo_crops(1, photos=("camera",))


def test_photo_crops_band_picks_the_rows_and_is_checked():
    from captum_slingshot.data import photo_crops
    from captum_slingshot.data.photos import _crops

    photos = ("astronaut",)  # 512 rows: the band (0.6, 0.75) is rows 307-384
    default, _ = photo_crops(2, "heldout", size=24, seed=1, photos=photos)
    same, _ = photo_crops(2, "heldout", size=24, seed=1, photos=photos, band=(0.75, 1.0))
    assert torch.equal(default, same)  # the split's own rows, spelled out
    import skimage.data

    img = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1).float() / 255
    for _, crop, _ in _crops(4, "train", 1, photos, band=(0.6, 0.75)):
        side = crop.shape[-1]
        rows = [y0 for y0 in range(307, 384 - side + 1)
                if any(torch.equal(crop[0], img[:, y0:y0 + side, x0:x0 + side]) for x0 in range(0, 512 - side + 1))]
        assert rows, "a band crop must come from the band's rows"
    for bad in ((0.8, 0.6), (-0.1, 0.5), (0.5, 1.2), "top"):
        with pytest.raises(ValueError, match="band must"):
            photo_crops(1, band=bad, photos=photos)
    with pytest.raises(ValueError, match="widen the band"):
        photo_crops(1, band=(0.5, 0.55), photos=photos)


def test_photo_crops_columns_pick_a_tile_and_are_checked():
    import skimage.data

    from captum_slingshot.data import photo_crops
    from captum_slingshot.data.photos import _crops

    photos = ("astronaut",)  # 512 x 512: the tile band (0.25, 0.5) x columns (0.5, 0.75) is rows 128-256, cols 256-384
    default, _ = photo_crops(2, "train", size=24, seed=3, photos=photos)
    spelled, _ = photo_crops(2, "train", size=24, seed=3, photos=photos, columns=(0.0, 1.0))
    assert torch.equal(default, spelled)  # every column, spelled out
    img = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1).float() / 255
    for _, crop, _ in _crops(4, "train", 1, photos, band=(0.25, 0.5), columns=(0.5, 0.75)):
        side = crop.shape[-1]
        assert side <= 128
        where = [(y0, x0) for y0 in range(128, 256 - side + 1) for x0 in range(256, 384 - side + 1)
                 if torch.equal(crop[0], img[:, y0:y0 + side, x0:x0 + side])]
        assert where, "a tile crop must come from the tile's rows and columns"
    for bad in ((0.8, 0.6), (-0.1, 0.5), (0.5, 1.2), "left"):
        with pytest.raises(ValueError, match="columns must"):
            photo_crops(1, columns=bad, photos=photos)
    with pytest.raises(ValueError, match="widen them"):
        photo_crops(1, columns=(0.5, 0.55), photos=photos)
