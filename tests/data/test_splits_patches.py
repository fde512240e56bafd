"""Splits (stratified, reproducible, >= 1 training pixel per class) and on-the-fly patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsi._core.errors import ConfigError
from hsi.data.patches import PatchSource
from hsi.data.splits import split_per_class, split_random


def synthetic_labels(seed: int = 0) -> np.ndarray:
    """A synthetic 30x40 label map: classes of 3, 20, 500 pixels, the rest unlabelled."""
    rng = np.random.default_rng(seed)
    labels = np.full(30 * 40, -1)
    idx = rng.permutation(labels.size)
    labels[idx[:3]] = 0
    labels[idx[3:23]] = 1
    labels[idx[23:523]] = 2
    return labels.reshape(30, 40)


def test_random_split_is_stratified_disjoint_and_reproducible() -> None:
    labels = synthetic_labels()
    a = split_random(labels, train_ratio=0.1, val_ratio=0.2, seed=3)
    b = split_random(labels, train_ratio=0.1, val_ratio=0.2, seed=3)
    c = split_random(labels, train_ratio=0.1, val_ratio=0.2, seed=4)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.train, c.train)
    assert not (a.train & a.test).any() and not (a.train & a.val).any() and not (a.val & a.test).any()
    assert np.array_equal(a.train | a.val | a.test, labels >= 0)
    for k in range(3):
        assert (a.train & (labels == k)).sum() >= 1  # even the 3-pixel class trains
        assert (a.test & (labels == k)).sum() >= 1
    # class 2: 50 of 500 for train+val, 10 of those validate
    assert ((a.train | a.val) & (labels == 2)).sum() == 50
    assert (a.val & (labels == 2)).sum() == 10
    assert a.counts()["n_test"] == int(a.test.sum())


def test_single_pixel_class_is_refused() -> None:
    labels = synthetic_labels()
    labels[labels == 0] = -1
    labels[0, 0] = 0
    with pytest.raises(ConfigError, match="single labelled pixel"):
        split_random(labels, train_ratio=0.3)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_ratio_outside_open_interval_is_refused(ratio: float) -> None:
    with pytest.raises(ConfigError, match=r"in \(0, 1\)"):
        split_random(synthetic_labels(), train_ratio=ratio)


def test_per_class_split_warns_for_small_classes() -> None:
    labels = synthetic_labels()
    with pytest.warns(UserWarning, match="fewer than"):
        split = split_per_class(labels, n_per_class=10, seed=0)
    assert (split.train & (labels == 0)).sum() == 2
    assert (split.train & (labels == 2)).sum() == 10


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_patches_match_numpy_padding_everywhere(pad_mode: str) -> None:
    synthetic_cube = np.random.default_rng(0).random((6, 8, 4), dtype=np.float32)
    source = PatchSource(synthetic_cube, patch_size=5, pad_mode=pad_mode)
    rows, cols = source.pixel_coordinates()
    patches = source.gather(rows, cols)
    assert patches.shape == (48, 4, 5, 5) and patches.dtype == torch.float32
    padded = np.pad(synthetic_cube, ((2, 2), (2, 2), (0, 0)), mode=pad_mode)
    for i in range(48):
        r, c = int(rows[i]), int(cols[i])
        assert np.array_equal(patches[i].numpy(), padded[r : r + 5, c : c + 5].transpose(2, 0, 1))
    # the centre of each patch is the pixel itself
    assert np.array_equal(patches[:, :, 2, 2].numpy(), synthetic_cube.reshape(-1, 4))


@pytest.mark.parametrize("size", [0, 4, -1, 9])
def test_bad_patch_sizes_are_refused(size: int) -> None:
    with pytest.raises(ConfigError, match="patch size"):
        PatchSource(np.zeros((6, 8, 2), np.float32), patch_size=size)
