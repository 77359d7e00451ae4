"""Natural data from an image folder (torchvision's ImageFolder layout), from any Dataset or DataLoader,
and the scikit-image photos written as such a folder; every user error says what is wrong and what to do."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from captum_slingshot.data import (
    Preprocess, dataset_tensors, image_folder, image_folder_dataset, photo_crops, write_photo_folder,
)

PHOTOS = ("astronaut", "chelsea", "coffee")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes x 3 crops of their own sizes (48-160 px)."""
    return write_photo_folder(tmp_path_factory.mktemp("photos") / "photos", 3, photos=PHOTOS)


def test_photo_folder_holds_the_crops_of_photo_crops(tmp_path):
    root = write_photo_folder(tmp_path / "p", 2, "heldout", size=24, seed=3, photos=PHOTOS)
    x, y = image_folder(root, Preprocess(mean=(0.0,) * 3, std=(1.0,) * 3)).tensors
    ref, ref_y = photo_crops(2, "heldout", size=24, seed=3, photos=PHOTOS)
    order = [0, 2, 4, 1, 3, 5]  # classes interleaved
    assert torch.equal(y, ref_y[order])
    assert (x - ref[order]).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit PNG quantization only


def test_image_folder_reads_resizes_crops_and_normalizes(folder):
    pre = Preprocess(resize=40, crop=32)
    ds = image_folder_dataset(folder, pre)
    assert ds.classes == sorted(PHOTOS) and len(ds) == 9
    x, y = image_folder(folder, pre).tensors
    assert x.shape == (9, 3, 32, 32) and y.tolist() == [0, 1, 2] * 3
    assert torch.equal(x[0], ds[0][0])
    first = image_folder(folder, pre, limit=4).tensors
    assert torch.equal(first[0], x[:4]) and first[1].tolist() == [0, 1, 2, 0]
    # a DataLoader over the lazy dataset gives the same inputs
    loaded, labels = dataset_tensors(DataLoader(ds, batch_size=4))
    assert loaded.shape == (9, 3, 32, 32) and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_images_of_different_sizes_need_a_crop(folder):
    with pytest.raises(ValueError, match=r"images of different sizes after the preprocessing: .*give a crop"):
        image_folder(folder)  # square crops of their own sizes, no resize or crop


def test_layout_errors_say_how_to_fix_them(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match="image folder .*missing does not exist"):
        image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no class subfolders and no images: an image folder is laid out as"):
        image_folder(tmp_path / "empty")
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(next((folder / "coffee").iterdir()), loose / "a.png")
    with pytest.raises(ValueError, match=r"holds 1 image\(s\) \(a.png\) but no class subfolders.*move the images"):
        image_folder(loose)
    (loose / "cats").mkdir()
    (loose / "dogs").mkdir()
    shutil.copy(loose / "a.png", loose / "dogs" / "a.png")
    with pytest.raises(ValueError, match=r"class folder\(s\) cats hold\(s\) image files"):
        image_folder(loose)


def test_an_unreadable_image_is_named(tmp_path, folder):
    root = tmp_path / "broken"
    shutil.copytree(folder, root)
    (root / "coffee" / "zz_broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=r"cannot read the image .*coffee/zz_broken.png .*replace or delete the file"):
        image_folder(root, Preprocess(resize=40, crop=32))


def test_dataset_tensors_of_every_kind():
    x, y = torch.rand(5, 2), torch.tensor([0, 1, 0, 1, 1])
    for data in (x, (x, y), TensorDataset(x, y), [(x[i], int(y[i])) for i in range(5)], DataLoader(TensorDataset(x, y), 2)):
        got, labels = dataset_tensors(data, limit=3)
        assert torch.equal(got, x[:3])
        assert labels is None if data is x else labels.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="items 0 and 1 have different shapes"):
        dataset_tensors([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(TypeError, match="expected a tensor"):
        dataset_tensors(42)
