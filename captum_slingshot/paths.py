"""Where captum_slingshot keeps downloaded data and trained weights.

One directory holds everything: ``$CAPTUM_SLINGSHOT_HOME`` when set, else
``~/.cache/captum_slingshot``. The Makefile (``make data``) fills the same directory.

Example:
    >>> from captum_slingshot.paths import cache_dir
    >>> cache_dir("data", "MNIST").parts[-2:]
    ('data', 'MNIST')
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

ENV_VAR = "CAPTUM_SLINGSHOT_HOME"
DEFAULT_HOME = Path("~/.cache/captum_slingshot")

__all__ = ["ENV_VAR", "cache_dir", "data_dir", "models_dir", "atomic_path", "write_text", "save_state_dict"]


def cache_dir(*parts: str) -> Path:
    """Return the cache directory (or a path inside it); nothing is created.

    Args:
        *parts: optional path components appended to the cache directory.

    Returns:
        ``$CAPTUM_SLINGSHOT_HOME`` (``~`` expanded) or ``~/.cache/captum_slingshot``, joined with
        ``parts``.
    """
    home = os.environ.get(ENV_VAR) or str(DEFAULT_HOME)
    return Path(home).expanduser().joinpath(*parts)


def data_dir() -> Path:
    """Root for datasets, laid out as torchvision expects (``data_dir()/MNIST/raw``)."""
    return cache_dir("data")


def models_dir() -> Path:
    """Directory for cached model weights (state dicts)."""
    return cache_dir("models")


@contextlib.contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[str]:
    """Yield a temporary file name next to ``path``; on success rename it over ``path``.

    A crash or an exception while writing leaves ``path`` as it was (never a
    half-written file) and removes the temporary file. Parent folders are created.

    Example:
        >>> import os, tempfile
        >>> from captum_slingshot.paths import atomic_path
        >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> with atomic_path(target) as tmp:
        ...     _ = open(tmp, "w").write("done")
        >>> open(target).read()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: Union[str, Path], text: str) -> str:
    """Write ``text`` (with a final newline) to ``path`` atomically; returns ``path`` as a string.

    Example:
        >>> import os, tempfile
        >>> p = write_text(os.path.join(tempfile.mkdtemp(), "a", "b.txt"), "hello")
        >>> open(p).read()
        'hello\\n'
    """
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return str(path)


def save_state_dict(state: Any, path: Union[str, Path]) -> str:
    """Save a model's (or a state dict's) tensors on the CPU to ``path`` atomically, for
    ``torch.load(path, weights_only=True)``; returns ``path`` as a string.

    Example:
        >>> import os, tempfile, torch
        >>> p = save_state_dict(torch.nn.Linear(2, 1), os.path.join(tempfile.mkdtemp(), "w.pt"))
        >>> sorted(torch.load(p, weights_only=True))
        ['bias', 'weight']
    """
    import torch

    sd = state.state_dict() if hasattr(state, "state_dict") else state
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in sd.items()}, tmp)
    return str(path)
