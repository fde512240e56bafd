"""Train / validation / test splits of a scene's labelled pixels, reproducible from a seed."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hsi._core.errors import ConfigError
from hsi._core.validation import as_rng, check_fraction


@dataclass
class Split:
    """Boolean masks of shape (H, W); each labelled pixel is in at most one of them.

    Attributes:
        train: pixels the model is fitted on.
        val: pixels held out for model selection (a share of the training pixels).
        test: pixels every metric is computed on.
        excluded: labelled pixels in none of the three (e.g. a disjoint split's guard band).
        info: notes recorded with the run (method, counts, warnings).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    excluded: np.ndarray
    info: dict[str, object] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of pixels in each part."""
        return {
            "n_train": int(self.train.sum()),
            "n_val": int(self.val.sum()),
            "n_test": int(self.test.sum()),
            "n_excluded": int(self.excluded.sum()),
        }


def _class_pixels(labels: np.ndarray) -> list[np.ndarray]:
    """Flat indices of each class's pixels, for classes 0..K-1."""
    flat = labels.ravel()
    n_classes = int(flat.max()) + 1
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(n_classes + 1) - 0.5)
    return [order[bounds[k] : bounds[k + 1]] for k in range(n_classes)]


def _masks_from_indices(shape: tuple[int, int], *parts: np.ndarray) -> list[np.ndarray]:
    masks = []
    for idx in parts:
        mask = np.zeros(shape[0] * shape[1], dtype=bool)
        mask[idx] = True
        masks.append(mask.reshape(shape))
    return masks


def _draw_split(
    labels: np.ndarray,
    n_train_of: Callable[[int], int],
    *,
    val_ratio: float,
    seed: int | None,
    method: str,
) -> Split:
    """Draws ``n_train_of(n_k)`` training pixels of each class; the rest of the class is test."""
    rng = as_rng(seed)
    train, val, test = [], [], []
    names_short = []
    for k, pixels in enumerate(_class_pixels(labels)):
        n = len(pixels)
        if n == 0:
            continue
        if n < 2:
            raise ConfigError(
                f"class {k} has a single labelled pixel; a {method} split needs at least 2 per class "
                "(one to train, one to test). Merge or drop that class in the ground truth."
            )
        n_train = min(max(1, n_train_of(n)), n - 1)
        if n_train < n_train_of(n):
            names_short.append(k)
        shuffled = rng.permutation(pixels)
        class_train, class_test = shuffled[:n_train], shuffled[n_train:]
        n_val = min(int(round(val_ratio * n_train)), n_train - 1)
        val.append(class_train[:n_val])
        train.append(class_train[n_val:])
        test.append(class_test)
    train_m, val_m, test_m = _masks_from_indices(labels.shape, *(np.concatenate(p) for p in (train, val, test)))
    excluded = (labels >= 0) & ~(train_m | val_m | test_m)
    info: dict[str, object] = {"method": method}
    if names_short:
        info["classes_short_of_training_pixels"] = names_short
    return Split(train_m, val_m, test_m, excluded, info)


def split_random(
    labels: np.ndarray, *, train_ratio: float, val_ratio: float = 0.0, seed: int | None = 0
) -> Split:
    """Stratified random split: ``train_ratio`` of each class trains (at least one pixel).

    Args:
        labels: shape (H, W) int, classes 0..K-1 and -1 for unlabelled.
        train_ratio: share of each class's labelled pixels used for training (and validation).
        val_ratio: share of the training pixels held out for validation.
        seed: seed of the draw.
    """
    check_fraction(train_ratio, name="train ratio (--train-ratio)")
    check_fraction(val_ratio, name="validation ratio (--val-ratio)", allow_zero=True)
    return _draw_split(
        labels, lambda n: int(round(train_ratio * n)), val_ratio=val_ratio, seed=seed, method="random"
    )


def split_per_class(
    labels: np.ndarray, *, n_per_class: int, val_ratio: float = 0.0, seed: int | None = 0
) -> Split:
    """``n_per_class`` training pixels of each class (fewer, with a warning, for small classes).

    A class never gives all its pixels to training: at least one stays for testing.
    """
    if n_per_class < 1:
        raise ConfigError(f"--train-per-class must be >= 1; got {n_per_class}. Pass e.g. 50.")
    check_fraction(val_ratio, name="validation ratio (--val-ratio)", allow_zero=True)
    split = _draw_split(labels, lambda n: n_per_class, val_ratio=val_ratio, seed=seed, method="per-class")
    short = split.info.get("classes_short_of_training_pixels")
    if short:
        warnings.warn(
            f"classes {short} have fewer than {n_per_class + 1} pixels; they train on all but one.",
            stacklevel=2,
        )
    return split
