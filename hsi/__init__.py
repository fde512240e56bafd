"""hsi-classify: hyperspectral image classification with honest, reproducible evaluation."""

__version__ = "0.1.0"
