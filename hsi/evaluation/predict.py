"""Full-scene prediction: every pixel of the scene, border pixels included, gets a class."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hsi.data.patches import PatchSource
from hsi.training.trainer import autocast_for


@torch.no_grad()
def predict_scene(model: nn.Module, source: PatchSource, *, batch_size: int = 512) -> np.ndarray:
    """Classifies every pixel of the source's scene.

    Args:
        model: a trained network taking (N, C, p, p) patches.
        source: the patch source of the (PCA-reduced) scene.
        batch_size: patches per forward pass.

    Returns:
        Class indices 0..K-1, shape (H, W) int64.
    """
    model.eval()
    rows, cols = source.pixel_coordinates()
    out = torch.empty(rows.shape[0], dtype=torch.long, device=source.device)
    for start in range(0, rows.shape[0], batch_size):
        stop = start + batch_size
        with autocast_for(source.device):
            out[start:stop] = model(source.gather(rows[start:stop], cols[start:stop])).argmax(1)
    return out.cpu().numpy().reshape(source.height, source.width)


def predict_scene_classical(estimator: object, features: np.ndarray, *, batch_size: int = 65_536) -> np.ndarray:
    """Classifies every pixel's spectral vector with a fitted scikit-learn estimator.

    Args:
        estimator: fitted, with ``predict``.
        features: shape (H, W, C).

    Returns:
        Class indices, shape (H, W) int64.
    """
    flat = features.reshape(-1, features.shape[-1])
    parts = [estimator.predict(flat[i : i + batch_size]) for i in range(0, flat.shape[0], batch_size)]  # type: ignore[attr-defined]
    return np.concatenate(parts).astype(np.int64).reshape(features.shape[:2])
