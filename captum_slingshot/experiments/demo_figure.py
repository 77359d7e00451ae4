"""The demo's one-page report: target, top natural images, FVs before / after per method, audit z-scores."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

from torch import Tensor

from ..figures import plt, save_png, to_hwc

__all__ = ["demo_report"]


def demo_report(
    path: str,
    target: Tensor,
    fv_rows: Dict[str, Tuple[Tensor, Tensor]],
    top_images: Tensor,
    audit_z: Dict[str, Tensor],
    combined: Tensor,
    threshold: float,
    flagged: Sequence[int],
    manipulated_unit: int,
    title: str = "",
) -> str:
    """The demo's one-page report, written atomically as PNG; returns ``path``.

    Top: the target and the unit's top natural images. Middle: one row per FV method with the
    FVs of the original model (left) and of the manipulated model (right). Bottom: the audit's
    robust z-score per unit for every check and combined, flagged units in red.

    Example:
        >>> import torch, tempfile, os
        >>> from captum_slingshot.experiments.demo_figure import demo_report
        >>> p = demo_report(os.path.join(tempfile.mkdtemp(), "r.png"), torch.rand(1, 8, 8),
        ...                 {"gc": (torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))}, torch.rand(3, 1, 8, 8),
        ...                 {"check": torch.randn(4)}, torch.tensor([0.0, 5.0, 0.1, -1.0]), 3.5, [1], 1)
        >>> os.path.getsize(p) > 0
        True
    """
    n_fv = max(max(len(b), len(a)) for b, a in fv_rows.values())
    n_cols = max(2 * n_fv + 1, len(top_images) + 2)
    n_img_rows = 1 + len(fv_rows)
    fig = plt.figure(figsize=(1.05 * n_cols + 1.5, 1.05 * n_img_rows + 3.4))
    grid = fig.add_gridspec(n_img_rows + 1, n_cols, height_ratios=[1] * n_img_rows + [2.6], hspace=0.35)

    def show(r, c, img, label=None, color=None):
        ax = fig.add_subplot(grid[r, c])
        ax.imshow(to_hwc(img), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if color:
            for side in ax.spines.values():
                side.set_edgecolor(color)
                side.set_linewidth(2)
        if label:
            ax.set_title(label, fontsize=8)
        return ax

    show(0, 0, target, "target", "tab:red")
    for i, img in enumerate(top_images[: n_cols - 2]):
        show(0, i + 2, img, f"top natural #{i + 1}" if i == 0 else None)
    for r, (label, (before, after)) in enumerate(fv_rows.items(), start=1):
        for i, img in enumerate(before[:n_fv]):
            ax = show(r, i, img, ("original model" if i == 0 else None) if r == 1 else None)
            if i == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        for i, img in enumerate(after[:n_fv]):
            show(r, n_fv + 1 + i, img, ("manipulated model" if i == 0 else None) if r == 1 else None, "tab:orange")

    ax = fig.add_subplot(grid[n_img_rows, :])
    units = list(range(len(combined)))
    width = 0.8 / (len(audit_z) + 1)
    for j, (name, z) in enumerate(audit_z.items()):
        ax.bar([u + (j - len(audit_z) / 2) * width for u in units], z.tolist(), width, label=name, alpha=0.6)
    colors = ["tab:red" if u in flagged else "black" for u in units]
    ax.bar([u + (len(audit_z) / 2) * width for u in units], combined.tolist(), width, color=colors, label="combined")
    ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label=f"flag threshold {threshold:g}")
    ax.set_xticks(units)
    ax.set_xticklabels([f"{u}{' (manipulated)' if u == manipulated_unit else ''}" for u in units], fontsize=8)
    ax.set_ylabel("robust z")
    ax.set_title("audit of the manipulated model's layer (red: flagged)", fontsize=9)
    ax.legend(fontsize=7, ncol=min(6, len(audit_z) + 2))
    if title:
        fig.suptitle(title, fontsize=11)
    return save_png(fig, path, bbox_inches="tight")
