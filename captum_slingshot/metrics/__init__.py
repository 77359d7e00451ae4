"""How auditors check: similarity, preservation and defense metrics."""

from .similarity import lpips_distance, lpips_model, mse, pearson_matrix, ssim

__all__ = ["lpips_distance", "lpips_model", "mse", "pearson_matrix", "ssim"]
