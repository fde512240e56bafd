"""Full-scene prediction: every pixel of the scene, border pixels included, gets a class."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hsi._core.errors import ConfigError
from hsi.data.patches import PatchSource
from hsi.training.batching import even_chunks, inference_batch_size
from hsi.training.trainer import autocast_for


@torch.inference_mode()
def predict_scene(model: nn.Module, source: PatchSource, *, batch_size: int | None = None) -> np.ndarray:
    """Classifies every pixel of the source's scene.

    All batches have one shape (the last one is padded with repeats of the final pixel),
    so cuDNN autotunes and oneDNN builds its kernels once per scene, not once more for a
    short remainder; the classes stay on the device until the end (no host sync per batch).

    Args:
        model: a trained network taking (N, C, p, p) patches.
        source: the patch source of the (PCA-reduced) scene.
        batch_size: patches per forward pass; None sizes it to the device (see
            :func:`hsi.training.batching.inference_batch_size`: a share of the free GPU
            memory on CUDA, a cache-sized activation budget on CPU).

    Returns:
        Class indices 0..K-1, shape (H, W) int64.

    Raises:
        ConfigError: ``batch_size`` is below 1.
    """
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"inference batch size must be >= 1 (or None to size it to the device); got {batch_size}.")
    model.eval()
    if batch_size is None:
        batch_size = inference_batch_size(model, in_chans=source.n_channels, patch_size=source.patch_size,
                                          device=source.device)
    rows, cols = source.pixel_coordinates()
    n = int(rows.shape[0])
    n_batches, size = even_chunks(n, batch_size)
    pad = n_batches * size - n
    if pad:
        rows = torch.cat([rows, rows[-1:].expand(pad)])
        cols = torch.cat([cols, cols[-1:].expand(pad)])
    out = torch.empty(n_batches * size, dtype=torch.long, device=source.device)
    for start in range(0, n_batches * size, size):
        stop = start + size
        with autocast_for(source.device):
            out[start:stop] = model(source.gather(rows[start:stop], cols[start:stop])).argmax(1)
    return out[:n].cpu().numpy().reshape(source.height, source.width)


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
