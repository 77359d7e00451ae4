"""What the command line and studies load: models, weights, natural data, parametrizations, targets.

Every problem a user can cause (a missing file, a weights file that is not a state dict, an
unknown torchvision name, an import path that does not import) is raised as :class:`SettingsError`
with a one-line message; the command line prints it and exits with status 1.

A model comes from one of three sources:

* a registered model name (:func:`~captum_slingshot.models.available_models`; ``mnist_cnn`` is the
  default): the paper's MNIST CNN, without weights the cached pretrained one
  (:func:`~captum_slingshot.models.pretrained_mnist_cnn`);
* ``package.module:factory``: any callable returning an ``nn.Module``, called with no arguments;
* a torchvision model name, built with ``weights=None`` (nothing is downloaded) and then given
  the weights file.

Weights files are read with ``torch.load(weights_only=True)`` only: a pickled whole model is
refused (save ``model.state_dict()`` instead).

Example:
    >>> from captum_slingshot.experiments.loading import load_model
    >>> load_model(torchvision="resnet81", weights="resnet.pt")
    Traceback (most recent call last):
    ...
    captum_slingshot.experiments.errors.SettingsError: unknown torchvision model 'resnet81'; close matches: resnet18, ...resnet34
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import sys
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .errors import SettingsError

__all__ = [
    "LoadedModel", "MNIST_CNN", "load_model", "read_state_dict", "load_weights_into", "import_object",
    "check_file", "torch_load", "load_tensor", "load_data", "build_param", "resolve_target", "default_layer",
    "split_names",
]

#: ``--model mnist_cnn`` means this factory
MNIST_CNN = "captum_slingshot.models:MNISTCNN"


@dataclass
class LoadedModel:
    """A model ready for FV (eval mode) and where it came from (JSON-friendly ``source``)."""

    model: nn.Module
    kind: str  # "mnist_cnn", "registered", "import" or "torchvision"
    source: Dict[str, Any] = field(default_factory=dict)


# -- weights -------------------------------------------------------------------------------------
def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] + ("…" if len(text) > 300 else "")


def check_file(path: str, what: str) -> str:
    """``path`` with ``~`` expanded, after checking that it is an existing file (a clear error naming ``what`` if not)."""
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        raise SettingsError(f"{what} file {path!r} does not exist")
    if not os.path.isfile(path):
        raise SettingsError(f"{what} {path!r} is not a file")
    return path


def torch_load(path: str, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors for files that are not PyTorch files."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        text = str(err)
        if zipfile.is_zipfile(path) and "global" in text.lower():
            raise SettingsError(
                f"{what} file {path!r} holds pickled Python objects, not tensors (a whole model saved "
                "with torch.save(model)?); it is not loaded for safety: save model.state_dict() instead"
            ) from None
        if not zipfile.is_zipfile(path):
            raise SettingsError(f"{what} file {path!r} is not a readable PyTorch file (not an archive written by "
                           "torch.save: corrupt, truncated or another format?)") from None
        raise SettingsError(f"{what} file {path!r} is not a readable PyTorch file ({type(err).__name__}: "
                       f"{_first_line(err)[:160]})") from None


def load_tensor(path: str, what: str) -> Tensor:
    """A tensor saved with ``torch.save(t, path)`` (for options that take a tensor, e.g. ``--input-aim``)."""
    obj = torch_load(check_file(path, what), what)
    if not isinstance(obj, Tensor):
        raise SettingsError(f"{what} file {path!r} holds a {type(obj).__name__}; expected a tensor saved with "
                            "torch.save(t, path)")
    return obj


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def read_state_dict(path: str) -> Dict[str, Tensor]:
    """Read a state dict (``torch.load(weights_only=True)``); a checkpoint holding one under
    ``"state_dict"`` or ``"model"`` (e.g. a gradient slingshot checkpoint) is accepted too."""
    path = check_file(path, "weights")
    obj = torch_load(path, "weights")
    if _is_state_dict(obj):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if _is_state_dict(obj.get(key)):
                return obj[key]
    if isinstance(obj, Tensor):
        found = f"a single tensor of shape {tuple(obj.shape)}"
    elif isinstance(obj, dict):
        found = "a dict that is not a state dict" if obj else "an empty dict"
    else:
        found = f"a {type(obj).__name__}"
    raise SettingsError(f"weights file {path!r} holds {found}, not a state dict (a mapping of parameter "
                   "names to tensors, as written by torch.save(model.state_dict(), path))")


def _some(names: Sequence[str], n: int = 3) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def load_weights_into(model: nn.Module, path: str, model_desc: str) -> nn.Module:
    """Load the state dict at ``path`` into ``model`` (strict), with a one-line error on mismatch."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys ({_some(missing)})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys ({_some(unexpected)})")
    if shapes:
        problems.append(f"shape mismatch ({_some(shapes)}; file vs model)")
    if problems:
        raise SettingsError(f"weights file {path!r} does not fit {model_desc}: " + "; ".join(problems))
    model.load_state_dict(state)
    return model


# -- models --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    """Let ``mymodels:make_net`` import from the working directory, as ``python -m`` would."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def import_object(spec: str) -> Any:
    """The object an import path ``package.module:attribute`` names."""
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise SettingsError(f"--model takes a registered model name ({', '.join(_registered_models())}) or an import "
                            f"path 'package.module:factory', got {spec!r}"
                       + ("; to load a weights file use --weights FILE" if str(spec).endswith((".pt", ".pth")) else ""))
    try:
        with _cwd_on_path():
            obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise SettingsError(f"cannot import {module_name!r} (from --model {spec!r}): {_first_line(err)}") from None
    except Exception as err:
        raise SettingsError(f"importing {module_name!r} failed: {type(err).__name__}: {_first_line(err)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, public, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SettingsError(f"{module_name!r} has no attribute {part!r} (from --model {spec!r}){hint}")
        obj = getattr(obj, part)
    return obj


def _build_from_factory(spec: str) -> nn.Module:
    factory = import_object(spec)
    if isinstance(factory, nn.Module):
        return factory
    if not callable(factory):
        raise SettingsError(f"--model {spec!r} is a {type(factory).__name__}, not a callable returning a model")
    try:
        model = factory()
    except Exception as err:
        raise SettingsError(f"calling {spec}() failed: {type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(model, nn.Module):
        raise SettingsError(f"{spec}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _check_torchvision_name(name: str) -> None:
    import torchvision.models as tvm

    names = tvm.list_models()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else f"; see torchvision.models.list_models() ({len(names)} names)"
        raise SettingsError(f"unknown torchvision model {name!r}{hint}")


def _build_torchvision(name: str, num_classes: Optional[int]) -> nn.Module:
    import torchvision.models as tvm

    _check_torchvision_name(name)
    kwargs = {} if num_classes is None else {"num_classes": int(num_classes)}
    try:
        return tvm.get_model(name, weights=None, **kwargs)
    except Exception as err:
        raise SettingsError(f"cannot build torchvision model {name!r}: {type(err).__name__}: {_first_line(err)}") from None


def load_model(
    model: Optional[str] = None,
    torchvision: Optional[str] = None,
    weights: Optional[str] = None,
    num_classes: Optional[int] = None,
    device: Optional[str] = None,
    progress: bool = True,
) -> LoadedModel:
    """Build the model a command asks for (see the module docstring); eval mode, on ``device``."""
    if model is not None and torchvision is not None:
        raise SettingsError("give --model or --torchvision, not both")
    if torchvision is not None:
        _check_torchvision_name(torchvision)
    if weights is not None:
        weights = check_file(weights, "weights")
    if torchvision is not None:
        if weights is None:
            raise SettingsError(f"--torchvision {torchvision} needs --weights FILE (a state dict): this command "
                           "never downloads weights")
        net = _build_torchvision(torchvision, num_classes)
        load_weights_into(net, weights, f"torchvision {torchvision}")
        kind, source = "torchvision", {"torchvision": torchvision, "weights": os.path.abspath(weights)}
        if num_classes is not None:
            source["num_classes"] = int(num_classes)
    else:
        spec = model or "mnist_cnn"
        if num_classes is not None:
            raise SettingsError("--num-classes applies to --torchvision models only")
        if spec in ("mnist_cnn", MNIST_CNN):
            kind = "mnist_cnn"
            if weights is None:
                from ..models import pretrained_mnist_cnn

                net = pretrained_mnist_cnn(progress=progress)
                source = {"model": MNIST_CNN, "weights": "pretrained_mnist_cnn()"}
            else:
                from ..models import MNISTCNN

                net = load_weights_into(MNISTCNN(), weights, "the MNIST CNN (mnist_cnn)")
                source = {"model": MNIST_CNN, "weights": os.path.abspath(weights)}
        elif ":" not in spec and spec in _registered_models():
            kind = "registered"
            net = _registered_models()[spec]()
            if weights is not None:
                load_weights_into(net, weights, f"the model {spec!r}")
            source = {"model": spec, "weights": None if weights is None else os.path.abspath(weights)}
        else:
            kind = "import"
            net = _build_from_factory(spec)
            if weights is not None:
                load_weights_into(net, weights, f"the model from {spec}")
            source = {"model": spec, "weights": None if weights is None else os.path.abspath(weights)}
    if device is not None:
        try:
            net = net.to(torch.device(device))
        except (RuntimeError, AssertionError) as err:
            raise SettingsError(f"cannot use device {device!r}: {_first_line(err)}") from None
    return LoadedModel(model=net.eval(), kind=kind, source=source)


def _registered_models() -> Any:
    from ..models import MODELS

    return MODELS


def default_layer(loaded: LoadedModel, layer: Optional[str]) -> str:
    """``layer`` as given, or ``logits`` for the MNIST CNN; other models must name one."""
    if layer:
        return layer
    if loaded.kind == "mnist_cnn":
        return "logits"
    leaves = [n for n, m in loaded.model.named_modules() if n and not list(m.children())]
    raise SettingsError(f"give --layer NAME (a module of the model); its last modules: {', '.join(leaves[-5:])}")


# -- data, parametrization, target ---------------------------------------------------------------
def load_data(spec: str, limit: Optional[int] = None, labels: bool = False) -> Tuple[Any, Dict[str, Any]]:
    """Natural model inputs: ``mnist`` (the normalized MNIST training split) or a ``.pt`` file
    holding a tensor of normalized inputs (or a tuple/list whose first item is one, and whose
    second may be the labels). With ``labels=True`` the data come back as ``(inputs, labels)``
    where the labels are known (``mnist``, or a file holding both), else as the inputs alone."""
    if limit is not None and int(limit) < 1:
        raise SettingsError(f"--data-limit must be at least 1, got {limit}")
    y: Optional[Tensor] = None
    if spec == "mnist":
        from ..data import load_mnist, normalize_mnist

        x, y = load_mnist("train").tensors
        x = normalize_mnist(x)
        source: Dict[str, Any] = {"data": "mnist", "split": "train", "normalized": "MNIST mean/std"}
    else:
        path = check_file(spec, "data")
        obj = torch_load(path, "data")
        if isinstance(obj, (tuple, list)) and obj and isinstance(obj[0], Tensor):
            if len(obj) > 1 and isinstance(obj[1], Tensor) and obj[1].dim() == 1 and len(obj[1]) == len(obj[0]):
                y = obj[1].long()
            obj = obj[0]
        if not isinstance(obj, Tensor):
            raise SettingsError(f"data file {path!r} holds a {type(obj).__name__}; expected a tensor of "
                           "normalized model inputs (N, C, H, W) saved with torch.save(x, path)")
        if not obj.is_floating_point() or obj.dim() < 2 or obj.shape[0] == 0:
            raise SettingsError(f"data file {path!r} must hold a non-empty float tensor (N, ...), got "
                           f"{obj.dtype} of shape {tuple(obj.shape)}")
        x = obj.float()
        source = {"data": os.path.abspath(path)}
    if limit is not None:
        x = x[: int(limit)]
        y = None if y is None else y[: int(limit)]
    source.update(n=int(x.shape[0]), shape=list(x.shape[1:]))
    if labels:
        source["labels"] = y is not None
        return ((x, y) if y is not None else x), source
    return x, source


def build_param(name: str, shape: Optional[Sequence[int]], mean: Optional[Sequence[float]],
                std: Optional[Sequence[float]], loaded: LoadedModel, data: Optional[Tensor] = None,
                data_spec: Optional[str] = None):
    """The auditor's parametrization. Defaults: the data's shape (else 1,28,28 for the MNIST CNN,
    3,224,224 for torchvision); MNIST mean/std for the MNIST CNN or ``--data mnist``, ImageNet
    statistics for RGB otherwise (``make_param``'s default)."""
    from ..fv import MNIST_MEAN, MNIST_STD, make_param

    if shape is None:
        if data is not None and data.dim() == 4:
            shape = tuple(int(s) for s in data.shape[1:])
        elif loaded.kind == "mnist_cnn":
            shape = (1, 28, 28)
        elif loaded.kind == "torchvision":
            shape = (3, 224, 224)
        else:
            raise SettingsError("give the FV image shape: --shape C,H,W (e.g. 3,224,224)")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise SettingsError(f"--shape must be three positive integers C,H,W, got {','.join(map(str, shape))}")
    if (mean is None) != (std is None):
        raise SettingsError("give both --mean and --std, or neither")
    if mean is None and shape[0] == 1 and (loaded.kind == "mnist_cnn" or data_spec == "mnist"):
        mean, std = MNIST_MEAN, MNIST_STD
    try:
        return make_param(name, shape, mean=mean, std=std)
    except ValueError as err:
        raise SettingsError(str(err)) from None


def resolve_target(spec: str) -> str:
    """Path of the target image: a packaged name (``cross``, ``fake``) or an image file."""
    from ..transforms.target import PACKAGED_TARGETS, packaged_target

    if spec in PACKAGED_TARGETS:
        return packaged_target(spec)
    path = os.path.expanduser(str(spec))
    if not os.path.isfile(path):
        raise SettingsError(f"target {spec!r} is neither a packaged target ({', '.join(sorted(PACKAGED_TARGETS))}) "
                       "nor an existing image file")
    return path


def split_names(text: Any) -> List[str]:
    """``"gc,tr,adam"`` (or a list) -> ``["gc", "tr", "adam"]``."""
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    return [str(s).strip() for s in items if str(s).strip()]
