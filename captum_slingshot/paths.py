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
from typing import Iterator, Union

ENV_VAR = "CAPTUM_SLINGSHOT_HOME"
DEFAULT_HOME = Path("~/.cache/captum_slingshot")

__all__ = ["ENV_VAR", "cache_dir", "data_dir", "models_dir", "atomic_path"]


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
