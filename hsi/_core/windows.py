"""Square-window operations on pixel masks, vectorised (no Python loops over pixels).

A pixel's ``p x p`` patch is the window of Chebyshev radius ``p // 2`` centred on it; the
split guard band and the leakage audit both ask, per pixel, what such a window holds.
Pixels outside the scene count as empty (the patches are padded there).
"""

from __future__ import annotations

import numpy as np

from hsi._core.validation import check_patch_size


def window_any(mask: np.ndarray, size: int) -> np.ndarray:
    """Whether the ``size x size`` window centred on each pixel holds a True pixel.

    This is the binary dilation of ``mask`` by a square, read off :func:`window_sum`'s
    integral image (linear time for any window size, and numpy only: ``_core`` imports no
    scipy, which would also slow every command's start).

    Args:
        mask: bool of shape (H, W).
        size: odd window side in pixels.

    Returns:
        bool of shape (H, W).
    """
    return window_sum(mask, size) > 0


def window_sum(mask: np.ndarray, size: int) -> np.ndarray:
    """How many True pixels the ``size x size`` window centred on each pixel holds.

    Exact integer counts from an integral image (summed-area table).

    Args:
        mask: bool of shape (H, W).
        size: odd window side in pixels.

    Returns:
        int64 of shape (H, W), each value in ``0..size**2``.
    """
    check_patch_size(size)
    half = size // 2
    padded = np.pad(np.asarray(mask, dtype=np.int64), half + 1)
    table = padded.cumsum(axis=0).cumsum(axis=1)
    height, width = np.shape(mask)
    # Window of output pixel (r, c) spans padded rows r+1 .. r+size, columns c+1 .. c+size.
    return (
        table[size : size + height, size : size + width]
        - table[0:height, size : size + width]
        - table[size : size + height, 0:width]
        + table[0:height, 0:width]
    )


def window_majority(labels: np.ndarray, size: int, *, n_classes: int, voters: np.ndarray | None = None) -> np.ndarray:
    """The most frequent class in the ``size x size`` window of each pixel: majority-vote smoothing of a class map.

    Only ``voters`` pixels vote (default all; pixels outside the scene never do), so a window cut
    from a larger map with its ``size // 2`` margin gives the pixels the whole map gives them. A tie
    keeps the pixel's own class where that is among the most frequent, else the lowest class index.

    Args:
        labels: class indices 0..n_classes-1, shape (H, W).
        size: odd window side in pixels.
        n_classes: number of classes K.
        voters: bool of shape (H, W), the pixels whose class counts; default=None: all.

    Returns:
        int64 of shape (H, W).
    """
    labels = np.asarray(labels)
    voting = np.ones(labels.shape, dtype=bool) if voters is None else np.asarray(voters, dtype=bool)
    best = labels.astype(np.int64, copy=True)
    best_score = np.full(labels.shape, -1, dtype=np.int64)
    for k in range(n_classes):
        is_k = labels == k
        score = 2 * window_sum(is_k & voting, size) + is_k  # half a vote more for the pixel's own class
        better = score > best_score
        best[better], best_score[better] = k, score[better]
    return best
