"""Full-scene prediction: every pixel of the scene, border pixels included, gets a class."""

from __future__ import annotations

import numpy as np
import torch

from hsi._core.errors import ConfigError
from hsi.data.patches import PatchSource
from hsi.training.batching import even_chunks
from hsi.training.classifier import Classifier


def predict_scene(classifier: Classifier, source: PatchSource, *, batch_size: int | None = None) -> np.ndarray:
    """Classifies every pixel of the source's scene, in batches of one shape.

    All batches have one shape (the last one is padded with repeats of the final pixel),
    so cuDNN autotunes and oneDNN builds its kernels once per scene, not once more for a
    short remainder; the classes stay on the device until the end (no host sync per batch).

    Args:
        classifier: a fitted classifier; ``source``'s patch size is its receptive field.
        source: the patch source of the (PCA-reduced) scene.
        batch_size: pixels per :meth:`~hsi.training.classifier.Classifier.predict_proba` call;
            None sizes it to the device (a share of the free GPU memory on CUDA, a cache-sized
            activation budget on CPU; see :func:`hsi.training.batching.inference_batch_size`).

    Returns:
        Class indices 0..K-1, shape (H, W) int64.

    Raises:
        ConfigError: ``batch_size`` is below 1.
    """
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"inference batch size must be >= 1 (or None to size it to the device); got {batch_size}.")
    if batch_size is None:
        batch_size = classifier.inference_batch_size(source)
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
        out[start:stop] = classifier.predict_proba(source, rows[start:stop], cols[start:stop]).argmax(1)
    return out[:n].cpu().numpy().reshape(source.height, source.width)
