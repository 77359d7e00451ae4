"""Where captum_slingshot keeps downloaded data and trained weights.

One directory holds everything: ``$CAPTUM_SLINGSHOT_HOME`` when set, else
``~/.cache/captum_slingshot``. The Makefile (``make data``) fills the same directory.

Example:
    >>> from captum_slingshot.paths import cache_dir
    >>> cache_dir("data", "MNIST").parts[-2:]
    ('data', 'MNIST')
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CAPTUM_SLINGSHOT_HOME"
DEFAULT_HOME = Path("~/.cache/captum_slingshot")

__all__ = ["ENV_VAR", "cache_dir", "data_dir", "models_dir"]


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
