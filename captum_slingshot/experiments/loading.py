"""What the command line and studies load: models, weights, natural data, parametrizations, targets.

Every problem a user can cause (a missing file, a weights file that is not a state dict, an
unknown torchvision name, an import path that does not import) is raised as :class:`SettingsError`
with a one-line message; the command line prints it and exits with status 1.

A model comes from one of three sources:

* a registered model name (:func:`~captum_slingshot.models.available_models`; ``mnist_cnn`` is the
  default): the paper's MNIST CNN, without weights the cached pretrained one
  (:func:`~captum_slingshot.models.pretrained_mnist_cnn`);
* ``package.module:factory``: any callable returning an ``nn.Module``, called with no arguments;
* a torchvision model name (``resnet18``, ``resnet50``, ``vit_b_16``, ``alexnet``, ``vgg16`` ...), built
  with ``weights=None`` and then given the weights file, or with ``weights="default"`` (or a weights
  name such as ``IMAGENET1K_V2``) torchvision's pretrained weights, downloaded by torchvision (a
  failed download says to pass a state-dict file instead).

Weights files are read with ``torch.load(weights_only=True)`` only: a pickled whole model is
refused (save ``model.state_dict()`` instead). A weights file whose keys hold a circuit layer (the
``model.pt`` of ``manipulate --transform fooling_circuit|silent_units``, or a study's saved model of
one: ``<layer>.detector.*`` or ``<layer>.probe.*`` next to ``<layer>.inner.*``; see
:func:`~captum_slingshot.transforms.circuits.circuit_layers`) is not loaded into the model: the
model becomes the :class:`~captum_slingshot.transforms.circuits.CircuitModel` rebuilt around it
(:func:`~captum_slingshot.transforms.circuits.rebuild_circuit_model`), outputs identical to the one
saved, and the source says so (``"circuits": {"logits": "fooling_circuit"}``). Give the model the
transform was fitted on (the same ``--model``/``--torchvision`` as for ``manipulate``).

Natural data (:func:`load_data`) are ``mnist``, an image folder (``root/<class>/<image>``) or a
``.pt`` file of model inputs; the model's preprocessing (:func:`resolve_preprocess`: resize, crop,
mean/std, given once) prepares the images and gives the FV parametrization its mean/std and size
(:func:`build_param`); :func:`check_model_input` says clearly when the two do not fit the model.

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
    "split_names", "resolve_preprocess", "check_model_input", "PRETRAINED", "model_units",
]

#: ``--weights default`` (any case): torchvision's pretrained weights of a ``--torchvision`` model
PRETRAINED = "default"

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


def load_weights_into(model: nn.Module, path: str, model_desc: str) -> nn.Module:
    """Load the state dict at ``path`` into ``model`` (strict), with a one-line error on mismatch; returns
    the model to use: ``model`` itself, or for the state dict of a circuit model (see the module
    docstring) the :class:`~captum_slingshot.transforms.circuits.CircuitModel` rebuilt around a copy of it.

    Example:
        >>> import os, tempfile, torch
        >>> from torch import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
        >>> torch.save(nn.Linear(3, 2).state_dict(), path)
        >>> load_weights_into(nn.Linear(4, 2), path, "a Linear(4, 2)")
        Traceback (most recent call last):
        ...
        captum_slingshot.experiments.errors.SettingsError: weights file '...w.pt' does not fit a Linear(4, 2): shape mismatch (weight (2, 3) vs (2, 4); file vs model)
    """
    from .._utils.statedicts import state_dict_problems
    from ..transforms.circuits import circuit_layers, rebuild_circuit_model

    state = read_state_dict(path)
    circuits = circuit_layers(state)
    if circuits:
        try:
            return rebuild_circuit_model(model, state)
        except ValueError as err:
            found = ", ".join(f"{kind} at {name!r}" for name, kind in circuits.items())
            raise SettingsError(f"weights file {path!r} holds a circuit model ({found}) that cannot be rebuilt around "
                                f"{model_desc}: {err}") from None
    problems = state_dict_problems(model.state_dict(), state)
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


def _weights_enum(name: str) -> Any:
    import torchvision.models as tvm

    try:
        return tvm.get_model_weights(name)
    except Exception:  # a model without pretrained weights
        return None


def _pretrained_weights(name: str, spec: str) -> Any:
    """The torchvision weights ``spec`` names for model ``name`` (``default``, ``IMAGENET1K_V2``,
    ``ResNet50_Weights.IMAGENET1K_V2``), or ``None`` when it names none (an existing file always wins)."""
    if os.path.exists(os.path.expanduser(spec)):
        return None
    enum = _weights_enum(name)
    member = spec.split(".", 1)[1] if enum is not None and spec.startswith(enum.__name__ + ".") else spec
    if member.lower() == PRETRAINED:
        if enum is None or not hasattr(enum, "DEFAULT"):
            raise SettingsError(f"torchvision model {name!r} has no pretrained weights; pass --weights FILE (a state dict)")
        return enum.DEFAULT
    if enum is not None and member in enum.__members__:
        return enum[member]
    return None


def _weights_hint(name: str) -> str:
    enum = _weights_enum(name)
    names = [m for m in enum.__members__ if m != "DEFAULT"] if enum is not None else []
    if not names:
        return ""
    return f"; for torchvision's pretrained weights give --weights default (or {', '.join(names)})"


def _download_torchvision(name: str, weights: Any, num_classes: Optional[int], progress: bool) -> nn.Module:
    """``get_model(name, weights=weights)``: torchvision downloads the file unless it is in its cache."""
    import torch.hub
    import torchvision.models as tvm

    kwargs = {} if num_classes is None else {"num_classes": int(num_classes)}
    try:
        return tvm.get_model(name, weights=weights, progress=progress, **kwargs)
    except ValueError as err:  # e.g. num_classes that the pretrained head does not have
        raise SettingsError(f"cannot build torchvision model {name!r} with {weights}: {_first_line(err)}") from None
    except Exception as err:  # URLError, timeouts, a corrupt or partial download (hash mismatch) ...
        cache = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(str(getattr(weights, "url", ""))))
        raise SettingsError(
            f"downloading torchvision's {weights} weights for {name} failed ({type(err).__name__}: {_first_line(err)[:160]}); "
            f"offline? pass a state-dict file with --weights FILE instead (save it where torchvision can download: "
            f"torch.save(torchvision.models.get_model({name!r}, weights={str(weights)!r}).state_dict(), '{name}.pt')), "
            f"or put torchvision's own file at {cache}") from None


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
    pretrained = None
    if torchvision is not None:
        _check_torchvision_name(torchvision)
        if weights is None:
            raise SettingsError(f"--torchvision {torchvision} needs --weights: 'default' for torchvision's pretrained "
                                "weights (downloaded) or FILE, a state dict saved with torch.save(model.state_dict(), FILE)")
        pretrained = _pretrained_weights(torchvision, str(weights))
        if pretrained is None and not os.path.exists(os.path.expanduser(str(weights))):
            raise SettingsError(f"weights file {os.path.expanduser(str(weights))!r} does not exist"
                                + _weights_hint(torchvision))
    elif weights is not None and str(weights).lower() == PRETRAINED and not os.path.exists(str(weights)):
        raise SettingsError("--weights default (pretrained weights, downloaded) applies to --torchvision models only")
    if weights is not None and pretrained is None:
        weights = check_file(weights, "weights")
    if torchvision is not None:
        if pretrained is not None:
            net = _download_torchvision(torchvision, pretrained, num_classes, progress)
            source: Dict[str, Any] = {"torchvision": torchvision, "weights": str(pretrained)}
        else:
            net = _build_torchvision(torchvision, num_classes)
            net = load_weights_into(net, weights, f"torchvision {torchvision}")
            source = {"torchvision": torchvision, "weights": os.path.abspath(weights)}
        kind = "torchvision"
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
                net = load_weights_into(net, weights, f"the model {spec!r}")
            source = {"model": spec, "weights": None if weights is None else os.path.abspath(weights)}
        else:
            kind = "import"
            net = _build_from_factory(spec)
            if weights is not None:
                net = load_weights_into(net, weights, f"the model from {spec}")
            source = {"model": spec, "weights": None if weights is None else os.path.abspath(weights)}
    if weights is not None and pretrained is None:
        from ..transforms.circuits import circuit_layers

        circuits = circuit_layers(net.state_dict())
        if circuits:  # a circuit model rebuilt from the weights file
            source["circuits"] = circuits
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


# -- preprocessing, data, parametrization, target -------------------------------------------------
def resolve_preprocess(loaded: LoadedModel, data_spec: Any = None, resize: Optional[int] = None,
                       crop: Optional[int] = None, mean: Optional[Sequence[float]] = None,
                       std: Optional[Sequence[float]] = None) -> Any:
    """The model's preprocessing (:class:`~captum_slingshot.data.Preprocess`), given once for data and FV.

    What is given (``--resize``/``--crop``, ``--mean``/``--std``) wins; the rest comes from the
    model: the preset of a torchvision model's default weights (e.g. resize 256, crop 224, ImageNet
    mean/std: ``weights.transforms()``, read offline), MNIST's mean/std for the MNIST CNN or
    ``--data mnist``, else no resize or crop and ImageNet's mean/std for RGB. Giving either of
    ``resize``/``crop`` replaces both (a crop alone keeps the image size), likewise ``mean``/``std``.

    Example:
        >>> from torch import nn
        >>> from captum_slingshot.experiments.loading import LoadedModel, resolve_preprocess
        >>> resolve_preprocess(LoadedModel(nn.Identity(), "torchvision", {"torchvision": "resnet18"}))
        Preprocess(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation='bilinear')
        >>> resolve_preprocess(LoadedModel(nn.Identity(), "import"), "photos/", crop=64).crop
        64
    """
    from ..data import Preprocess

    if (mean is None) != (std is None):
        raise SettingsError("give both --mean and --std, or neither")
    base = Preprocess()
    if loaded.kind == "torchvision":
        try:
            base = Preprocess.from_torchvision_weights(loaded.source["torchvision"])
        except ValueError:  # a model without pretrained weights: no preset to follow
            pass
    elif loaded.kind == "mnist_cnn" or data_spec == "mnist":
        base = Preprocess.mnist()
    if resize is None and crop is None:
        resize, crop = base.resize, base.crop
    if mean is None:
        mean, std = base.mean, base.std
    try:
        return Preprocess(resize=None if resize is None else int(resize), crop=None if crop is None else int(crop),
                          mean=mean, std=std, interpolation=base.interpolation)
    except ValueError as err:
        raise SettingsError(f"preprocessing: {err}") from None


def _describe(preprocess: Any) -> str:
    parts = [f"--{k} {getattr(preprocess, k)}" for k in ("resize", "crop") if getattr(preprocess, k) is not None]
    if preprocess.mean is not None:
        parts.append(f"--mean/--std of {len(preprocess.mean)} channel(s)")
    return ", ".join(parts) or "no resize or crop"


def _image_folder(path: str, limit: Optional[int], preprocess: Any) -> Tuple[Tensor, Tensor, Dict[str, Any]]:
    from ..data import image_folder, image_folder_dataset

    try:
        folder = image_folder_dataset(path, preprocess)
        x, y = image_folder(folder, limit=limit).tensors
    except (ValueError, OSError) as err:
        raise SettingsError(str(err)) from None  # each message names the folder or the file
    return x, y, {"data": os.path.abspath(path), "format": "image folder", "classes": list(folder.classes)}


def _tensor_file(path: str, preprocess: Any) -> Tuple[Tensor, Optional[Tensor]]:
    obj = torch_load(path, "data")
    y = None
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
    if preprocess is not None and obj.dim() == 4:
        c, h, w = (int(v) for v in obj.shape[1:])
        if preprocess.mean is not None and len(preprocess.mean) not in (1, c):
            raise SettingsError(f"data file {path!r} holds inputs with {c} channel(s) but --mean/--std have "
                                f"{len(preprocess.mean)} entries: give one per channel")
        if preprocess.crop is not None and (h, w) != (preprocess.crop, preprocess.crop):
            raise SettingsError(f"data file {path!r} holds inputs of {h}x{w} px but the preprocessing crops to "
                                f"{preprocess.crop}x{preprocess.crop}: a data file holds model inputs already "
                                "prepared; drop --resize/--crop or save inputs of that size")
    return obj.float(), y


def load_data(spec: Any, limit: Optional[int] = None, labels: bool = False,
              preprocess: Any = None) -> Tuple[Any, Dict[str, Any]]:
    """Natural model inputs, normalized as the model expects.

    ``spec`` is ``mnist`` (the MNIST training split), a folder laid out as torchvision's
    ``ImageFolder`` (``DIR/<class>/<image>``: images read, resized, cropped and normalized by
    ``preprocess``; with ``limit``, spread over the classes), a ``.pt`` file holding a tensor of
    normalized inputs (or a tuple/list whose first item is one, and whose second may be the
    labels; used as saved), or, from Python, any tensor, ``(inputs, labels)``, map-style
    ``Dataset`` or ``DataLoader`` yielding model inputs. ``preprocess``: a
    :class:`~captum_slingshot.data.Preprocess` (default: :func:`resolve_preprocess`'s for ``mnist``,
    ``Preprocess()`` for folders). With ``labels=True`` the data come back as ``(inputs, labels)``
    where the labels are known (``mnist``, folders, a file holding both), else as the inputs alone.

    Example:
        >>> import tempfile
        >>> from captum_slingshot.data import Preprocess, write_photo_folder
        >>> from captum_slingshot.experiments.loading import load_data
        >>> root = write_photo_folder(tempfile.mkdtemp(), 2, photos=("astronaut", "coffee"))
        >>> (x, y), source = load_data(str(root), labels=True, preprocess=Preprocess(resize=40, crop=32))
        >>> tuple(x.shape), y.tolist(), source["classes"]
        ((4, 3, 32, 32), [0, 1, 0, 1], ['astronaut', 'coffee'])
    """
    if limit is not None and int(limit) < 1:
        raise SettingsError(f"--data-limit must be at least 1, got {limit}")
    y: Optional[Tensor] = None
    if not isinstance(spec, str):
        from ..data import dataset_tensors

        try:
            x, y = dataset_tensors(spec, limit)
        except (TypeError, ValueError) as err:
            raise SettingsError(f"natural data ({type(spec).__name__}): {err}") from None
        source: Dict[str, Any] = {"data": type(spec).__name__}
    elif spec == "mnist":
        from ..data import Preprocess, load_mnist

        preprocess = preprocess if preprocess is not None else Preprocess.mnist()
        x, y = load_mnist("train").tensors
        try:
            x = preprocess(x)
        except ValueError as err:
            raise SettingsError(f"--data mnist: {err}") from None
        source = {"data": "mnist", "split": "train", "normalized": "MNIST mean/std"}
        if preprocess != Preprocess.mnist():
            source["normalized"] = "the preprocessing"
    elif os.path.isdir(os.path.expanduser(spec)):
        x, y, source = _image_folder(os.path.expanduser(spec), limit, preprocess)
    else:
        path = check_file(spec, "data")
        x, y = _tensor_file(path, preprocess)
        source = {"data": os.path.abspath(path)}
    if limit is not None:
        x = x[: int(limit)]
        y = None if y is None else y[: int(limit)]
    source.update(n=int(x.shape[0]), shape=list(x.shape[1:]))
    if preprocess is not None and isinstance(spec, str) and (spec == "mnist" or "classes" in source):
        mean, std = preprocess.stats(int(x.shape[1]))  # the defaults resolved for the data's channels
        source["preprocess"] = dict(preprocess.to_dict(), mean=list(mean), std=list(std))
    if labels:
        source["labels"] = y is not None
        return ((x, y) if y is not None else x), source
    return x, source


def check_model_input(loaded: LoadedModel, example: Tensor, what: str = "the natural inputs",
                      preprocess: Any = None) -> None:
    """Run one input through the model; a failure is a :class:`SettingsError` saying that the
    preprocessing (or the data) does not fit the model, and how to fix it.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from captum_slingshot.experiments.loading import LoadedModel, check_model_input
        >>> check_model_input(LoadedModel(nn.Conv2d(3, 4, 3), "import"), torch.zeros(1, 28, 28))
        Traceback (most recent call last):
        ...
        captum_slingshot.experiments.errors.SettingsError: the model cannot take the natural inputs (shape (1, 28, 28)): ... expected input[1, 1, 28, 28] to have 3 channels...
    """
    x = example[:1] if example.dim() == 4 else example[None]
    try:
        device = next(iter(loaded.model.parameters())).device
    except StopIteration:
        device = torch.device("cpu")
    try:
        with torch.no_grad():
            loaded.model(x.to(device))
    except Exception as err:  # shape / channel mismatches surface as RuntimeError, ValueError, AssertionError ...
        how = f"; preprocessing: {_describe(preprocess)}" if preprocess is not None else ""
        raise SettingsError(f"the model cannot take {what} (shape {tuple(x.shape[1:])}{how}): {type(err).__name__}: "
                            f"{_first_line(err)[:200]}; give the preprocessing the model was trained with "
                            "(--resize/--crop for the image size, --mean/--std one per input channel; torchvision's "
                            "ImageNet models: --resize 256 --crop 224) or data of that shape") from None


def build_param(name: str, shape: Optional[Sequence[int]], mean: Optional[Sequence[float]],
                std: Optional[Sequence[float]], loaded: LoadedModel, data: Optional[Tensor] = None,
                data_spec: Optional[str] = None, preprocess: Any = None):
    """The auditor's parametrization. Shape: ``shape``, else the data's, else the preprocessing's
    crop, else 1,28,28 for the MNIST CNN, 3,224,224 for torchvision. Mean/std: ``mean``/``std``,
    else the preprocessing's (the same the data were normalized with), else MNIST's for the MNIST
    CNN or ``--data mnist``, else ImageNet statistics for RGB (``make_param``'s default)."""
    from ..fv import MNIST_MEAN, MNIST_STD, make_param

    if (mean is None) != (std is None):
        raise SettingsError("give both --mean and --std, or neither")
    if mean is None and preprocess is not None and preprocess.mean is not None:
        mean, std = preprocess.mean, preprocess.std
    if shape is None:
        if data is not None and data.dim() == 4:
            shape = tuple(int(s) for s in data.shape[1:])
        elif preprocess is not None and preprocess.crop is not None:
            shape = preprocess.shape()
        elif loaded.kind == "mnist_cnn":
            shape = (1, 28, 28)
        elif loaded.kind == "torchvision":
            shape = (3, 224, 224)
        else:
            raise SettingsError("give the FV image shape: --shape C,H,W (e.g. 3,224,224), or --crop N")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise SettingsError(f"--shape must be three positive integers C,H,W, got {','.join(map(str, shape))}")
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


def model_units(model: nn.Module, layer: str, param: Any, selectors: Sequence[Any]) -> List[Any]:
    """Command-line units for this model: on a transformer layer (outputs ``(B, tokens, D)`` in a model
    with attention) an index ``i`` means feature ``i`` of the CLS token, ``Token(i)``; anything else
    (and every unit of other layers) is kept as given.

    Example:
        >>> from torch import nn
        >>> from captum_slingshot.fv import PixelParam
        >>> model_units(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), "1", PixelParam((1, 4, 4)), [0, 2])
        [0, 2]
    """
    from ..fv import Token, has_attention, layer_output_shape

    selectors = list(selectors)
    if not has_attention(model) or not any(isinstance(s, int) for s in selectors):
        return selectors
    try:
        shape = layer_output_shape(model, layer, param)
    except ValueError as err:
        raise SettingsError(str(err)) from None
    if len(shape) != 2:
        return selectors
    return [Token(s) if isinstance(s, int) and not isinstance(s, bool) else s for s in selectors]


def split_names(text: Any) -> List[str]:
    """``"gc,tr,adam"`` (or a list) -> ``["gc", "tr", "adam"]``."""
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    return [str(s).strip() for s in items if str(s).strip()]
