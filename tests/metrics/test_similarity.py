import pytest
import torch

from captum_slingshot.metrics.similarity import pearson_matrix


def test_pearson_matrix_values():
    x = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    c = pearson_matrix(x, torch.cat([x, 2 * x + 1, -x]))
    torch.testing.assert_close(c[:, :3].diag(), torch.ones(3))
    torch.testing.assert_close(c[:, 3:6].diag(), torch.ones(3))
    torch.testing.assert_close(c[:, 6:].diag(), -torch.ones(3))
    assert (c[0, 1:3].abs() < 0.9).all()


def test_pearson_matrix_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        pearson_matrix(torch.rand(2, 4), torch.rand(2, 5))
