"""How auditors check: similarity, preservation and defense metrics."""

from .preservation import TopK, accuracy, auroc, jaccard, top_k_activating, unit_activations, unit_auroc
from .similarity import lpips_distance, lpips_model, mse, pearson_matrix, ssim

__all__ = [
    "lpips_distance", "lpips_model", "mse", "pearson_matrix", "ssim",
    "TopK", "accuracy", "auroc", "jaccard", "top_k_activating", "unit_activations", "unit_auroc",
]
