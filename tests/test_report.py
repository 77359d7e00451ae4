import pytest
import torch
from PIL import Image

from captum_slingshot.figures import fv_grid


def test_fv_grid_writes_a_png(tmp_path):
    path = fv_grid({"a": torch.rand(3, 1, 8, 8), "b": torch.rand(2, 3, 8, 8)}, str(tmp_path / "g.png"),
                   col_labels=["x", "y", "z"], title="t")
    with Image.open(path) as img:
        assert img.size[0] > img.size[1] > 100
    assert list(tmp_path.iterdir()) == [tmp_path / "g.png"]


def test_fv_grid_rejects_empty(tmp_path):
    with pytest.raises(ValueError, match="rows is empty"):
        fv_grid({}, str(tmp_path / "g.png"))
