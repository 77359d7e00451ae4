"""How auditors check: similarity, preservation and defense metrics."""

from .similarity import pearson_matrix

__all__ = ["pearson_matrix"]
