"""Figures: grids of feature visualizations, written as PNG (atomically; never a window).

Example:
    >>> import torch, tempfile, os
    >>> from captum_slingshot.figures import fv_grid
    >>> path = os.path.join(tempfile.mkdtemp(), "grid.png")
    >>> fv_grid({"gc": torch.rand(3, 1, 8, 8)}, path, col_labels=["a", "b", "c"]).endswith("grid.png")
    True
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

from .paths import atomic_path  # noqa: E402

__all__ = ["fv_grid", "save_png", "to_hwc", "plt"]


def save_png(fig, path: str, **savefig_kwargs) -> str:
    """Write a matplotlib figure as PNG atomically (temporary file, then rename), close it, return ``path``."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png", **savefig_kwargs)
    finally:
        plt.close(fig)
    return path


def to_hwc(img: Tensor):
    """An image ``(C, H, W)`` in [0, 1] as what ``imshow`` takes: ``(H, W)`` for gray, ``(H, W, C)`` for RGB."""
    img = img.detach().float().cpu().clamp(0, 1)
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()


def fv_grid(
    rows: Dict[str, Tensor],
    path: str,
    col_labels: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    cell: float = 1.1,
) -> str:
    """Save a grid of images: one row per entry of ``rows`` (``(K, C, H, W)`` in [0, 1]).

    The file is written atomically (temporary file, then rename). Returns ``path``.
    """
    if not rows:
        raise ValueError("nothing to plot: rows is empty")
    n_cols = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell * n_cols + 1.2, cell * len(rows) + 0.6), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(to_hwc(images[c]), cmap="gray", vmin=0, vmax=1)
            else:
                ax.axis("off")
            if r == 0 and col_labels is not None and c < len(col_labels):
                ax.set_title(str(col_labels[c]), fontsize=9)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_png(fig, path)
