"""How auditors check: image similarity and preservation metrics (one module per metric)."""

from .accuracy import accuracy
from .activations import unit_activations
from .auroc import auroc, unit_auroc
from .similarity import lpips_distance, lpips_model, mse, pearson_matrix, ssim
from .topk import TopK, jaccard, top_k_activating

__all__ = [
    "lpips_distance", "lpips_model", "mse", "pearson_matrix", "ssim",
    "TopK", "accuracy", "auroc", "jaccard", "top_k_activating", "unit_activations", "unit_auroc",
]
