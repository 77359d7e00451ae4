"""Compatibility with other interpretability libraries (one module per library; each is the only
module of the package that imports that library)."""
