"""Full-scene prediction: every pixel of the scene, border pixels included, gets a class.

Two ways, equal pixel for pixel (``tests/evaluation/test_dense_inference.py``): patch by
patch (a p x p patch cut around every pixel, in batches), or dense, where the model has an
exact fully convolutional pass: the padded scene in tiles with a halo of p // 2 on each
side, batches of tiles one forward pass, so the work neighbouring patches share is done once.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from hsi._core.errors import ConfigError
from hsi.config import Inference, choices
from hsi.data.lazy import WindowPatchSource, pad_window, window_with_halo
from hsi.data.patches import PatchSource
from hsi.training.batching import even_chunks
from hsi.training.classifier import Classifier

__all__ = ["DENSE_TILE", "Tile", "predict_scene", "predict_scene_proba", "predict_window", "resolve_inference",
           "tile_grid"]


def resolve_inference(classifier: Classifier, inference: Inference = "auto") -> Literal["dense", "patches"]:
    """The way a scene is classified: ``"dense"`` or ``"patches"``.

    Args:
        classifier: the (fitted or not) classifier.
        inference: ``"auto"`` (dense where the model supports it), ``"dense"`` or ``"patches"``.

    Raises:
        ConfigError: ``inference`` is not a known choice, or ``"dense"`` for a model without a dense pass.
    """
    if inference not in choices("inference"):
        raise ConfigError(f"--inference must be one of {', '.join(choices('inference'))}; got {inference!r}.")
    if inference == "dense" and not classifier.supports_dense:
        raise ConfigError(
            f"--inference dense: model {classifier.name!r} at patch size {classifier.patch_size} has no exact dense "
            "pass (only HybridSN and hybridsn_2d3d at patch sizes >= 9); use --inference auto or patches."
        )
    if inference == "dense" or (inference == "auto" and classifier.supports_dense):
        return "dense"
    return "patches"


def predict_scene(
    classifier: Classifier, source: PatchSource, *, batch_size: int | None = None, inference: Inference = "auto",
    tile_size: int | None = None,
) -> np.ndarray:
    """Classifies every pixel of the source's scene, densely or patch by patch.

    Args:
        classifier: a fitted classifier; ``source``'s patch size is its receptive field.
        source: the patch source of the (PCA-reduced) scene.
        batch_size: patch-wise only: pixels per
            :meth:`~hsi.training.classifier.Classifier.predict_proba` call; None sizes it to the
            device (see :func:`hsi.training.batching.inference_batch_size`).
        inference: ``"auto"``, ``"dense"`` or ``"patches"`` (see :func:`resolve_inference`).
        tile_size: dense only: output tile side, default :data:`DENSE_TILE`; tiles per pass fit
            the memory of one patch-wise pass (:meth:`~hsi.training.classifier.Classifier.dense_batch_size`).

    Returns:
        Class indices 0..K-1, shape (H, W) int64.

    Raises:
        ConfigError: ``batch_size`` or ``tile_size`` below 1, or see :func:`resolve_inference`.
    """
    return _predict(classifier, source, batch_size, inference, tile_size, proba=False)


def predict_scene_proba(
    classifier: Classifier, source: PatchSource, *, batch_size: int | None = None, inference: Inference = "auto",
    tile_size: int | None = None,
) -> np.ndarray:
    """Class probabilities of every pixel, shape (K, H, W) float32; as :func:`predict_scene`, whose
    classes are their argmax (taken by torch, on the same values)."""
    return _predict(classifier, source, batch_size, inference, tile_size, proba=True)


def _predict(classifier: Classifier, source: PatchSource, batch_size: int | None, inference: Inference,
             tile_size: int | None, *, proba: bool) -> np.ndarray:
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"inference batch size must be >= 1 (or None to size it to the device); got {batch_size}.")
    if tile_size is not None and tile_size < 1:
        raise ConfigError(f"dense tile size must be >= 1 (or None for the default); got {tile_size}.")
    if resolve_inference(classifier, inference) == "dense":
        return _predict_dense(classifier, source, tile_size, proba=proba)
    return _predict_patches(classifier, source, batch_size, proba=proba)


#: Output side of a dense tile. Tiles are classified in batches of equal tiles: oneDNN runs a
#: 3-D convolution over one large image through an im2col workspace (HybridSN at p=25, one
#: 60x60 tile: +208 MB, 3,000 pixels/s on two threads) but a batch of small tiles with its
#: direct kernels (two 32x32 tiles: +11 MB, 4,000 pixels/s). Each tile carries a halo of
#: p - 1, so smaller tiles would repeat more of the convolutions' work.
DENSE_TILE = 32


#: Tiles per dense pass, per classifier and input shape: measuring it runs the network, which
#: costs more than classifying a small window, and a tiled scene asks once per window.
_DENSE_BATCH: weakref.WeakKeyDictionary[Classifier, dict[tuple[object, ...], int]] = weakref.WeakKeyDictionary()


def _dense_batch_size(classifier: Classifier, source: PatchSource, height: int, width: int) -> int:
    key = (source.n_channels, source.patch_size, height, width, str(source.device))
    sizes = _DENSE_BATCH.setdefault(classifier, {})
    if key not in sizes:
        sizes[key] = classifier.dense_batch_size(source, height, width)
    return sizes[key]


def _predict_dense(classifier: Classifier, source: PatchSource, tile_size: int | None, *, proba: bool) -> np.ndarray:
    """Equal tiles, batched; the padded cube is extended with zeros to whole tiles (their classes are dropped)."""
    p = source.patch_size
    height, width = min(tile_size or DENSE_TILE, source.height), min(tile_size or DENSE_TILE, source.width)
    n_rows, n_cols = math.ceil(source.height / height), math.ceil(source.width / width)
    # A valid convolution's output pixel reads only its own window, so the extension changes no scene pixel.
    padded = torch.nn.functional.pad(
        source.padded, (0, n_cols * width - source.width, 0, n_rows * height - source.height))
    origins = [(r * height, c * width) for r in range(n_rows) for c in range(n_cols)]
    n_batches, size = even_chunks(len(origins), _dense_batch_size(classifier, source, height, width))
    origins += origins[-1:] * (n_batches * size - len(origins))  # equal batches: kernels built once
    shape = (classifier.num_classes, n_rows * height, n_cols * width) if proba else (n_rows * height, n_cols * width)
    out = torch.empty(shape, dtype=torch.float32 if proba else torch.long, device=source.device)
    for start in range(0, len(origins), size):
        batch = origins[start : start + size]
        tiles = torch.stack([padded[:, r : r + height + p - 1, c : c + width + p - 1] for r, c in batch])
        probabilities = classifier.predict_proba_dense(tiles)
        values = probabilities.float() if proba else probabilities.argmax(1)
        for (r, c), tile_values in zip(batch, values, strict=True):
            out[..., r : r + height, c : c + width] = tile_values
    return out[..., : source.height, : source.width].cpu().numpy()


def _predict_patches(classifier: Classifier, source: PatchSource, batch_size: int | None, *, proba: bool
                     ) -> np.ndarray:
    """Every pixel's patch, in batches of one shape.

    All batches have one shape (the last one is padded with repeats of the final pixel),
    so cuDNN autotunes and oneDNN builds its kernels once per scene, not once more for a
    short remainder; the classes stay on the device until the end (no host sync per batch).
    """
    if batch_size is None:
        batch_size = classifier.inference_batch_size(source)
    rows, cols = source.pixel_coordinates()
    n = int(rows.shape[0])
    n_batches, size = even_chunks(n, batch_size)
    pad = n_batches * size - n
    if pad:
        rows = torch.cat([rows, rows[-1:].expand(pad)])
        cols = torch.cat([cols, cols[-1:].expand(pad)])
    if proba:
        probabilities = torch.empty(n_batches * size, classifier.num_classes, dtype=torch.float32, device=source.device)
        for start in range(0, n_batches * size, size):
            stop = start + size
            probabilities[start:stop] = classifier.predict_proba(source, rows[start:stop], cols[start:stop])
        return probabilities[:n].T.reshape(-1, source.height, source.width).cpu().numpy()
    out = torch.empty(n_batches * size, dtype=torch.long, device=source.device)
    for start in range(0, n_batches * size, size):
        stop = start + size
        out[start:stop] = classifier.predict_proba(source, rows[start:stop], cols[start:stop]).argmax(1)
    return out[:n].cpu().numpy().reshape(source.height, source.width)


# ---------------------------------------------------------------- scenes larger than memory, tile by tile


@dataclass(frozen=True)
class Tile:
    """One output window of a tiled scene: its ``index`` in :func:`tile_grid` order and its pixels."""

    index: int
    rows: slice
    cols: slice

    def reads(self, halo: int, height: int, width: int) -> tuple[slice, slice, tuple[int, int, int, int]]:
        """The scene pixels the tile needs (itself and a halo, clipped to the scene) and the padding
        (top, bottom, left, right) its scene edges take instead."""
        rows, top, bottom = window_with_halo(self.rows.start, self.rows.stop, halo, height)
        cols, left, right = window_with_halo(self.cols.start, self.cols.stop, halo, width)
        return rows, cols, (top, bottom, left, right)


def tile_grid(height: int, width: int, tile_size: int) -> list[Tile]:
    """Tiles of ``tile_size`` x ``tile_size`` pixels (smaller at the right and bottom edges), row by row."""
    if tile_size < 1:
        raise ConfigError(f"--tile-size must be >= 1 (pixels); got {tile_size}.")
    origins = [(r, c) for r in range(0, height, tile_size) for c in range(0, width, tile_size)]
    return [Tile(i, slice(r, min(r + tile_size, height)), slice(c, min(c + tile_size, width)))
            for i, (r, c) in enumerate(origins)]


def predict_window(
    classifier: Classifier, window: np.ndarray, pads: tuple[int, int, int, int], *, pad_mode: str,
    device: torch.device | str = "cpu", batch_size: int | None = None, inference: Inference = "auto",
    probabilities: bool = False,
) -> np.ndarray:
    """Classifies the pixels of one tile from its (PCA-reduced) window, through :func:`predict_scene`.

    Args:
        window: the tile and its halo of ``receptive_field // 2`` read from the scene, (h', w', C)
            float32; where the tile touches the scene's edge the halo is missing and ``pads`` says how much.
        pads: (top, bottom, left, right) padding of the scene's edges, in ``pad_mode``, as
            :func:`hsi.data.padding.pad_cube` pads a whole scene: the tile's classes are the ones
            classifying the whole scene at once gives them.
        probabilities: return (K, h, w) float32 probabilities instead of (h, w) int64 classes.
    """
    source = WindowPatchSource(pad_window(window, pads, pad_mode), patch_size=classifier.receptive_field,
                               device=device)
    if probabilities:
        return predict_scene_proba(classifier, source, batch_size=batch_size, inference=inference)
    return predict_scene(classifier, source, batch_size=batch_size, inference=inference)
