"""Shared pieces of the training tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsi.data.patches import PatchSource
from hsi.training.trainer import PixelSet


@pytest.fixture
def separable_problem() -> tuple[PatchSource, PixelSet]:
    """A synthetic 12x12x3 cube whose pixels are their class's one-hot plus noise; every pixel labelled."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(12, 12))
    synthetic_cube = (np.eye(3)[labels] + 0.1 * rng.standard_normal((12, 12, 3))).astype(np.float32)
    source = PatchSource(synthetic_cube, patch_size=3)
    rows, cols = source.pixel_coordinates()
    return source, PixelSet(rows, cols, torch.from_numpy(labels.ravel()))


@pytest.fixture
def three_class_scene() -> tuple[PatchSource, PixelSet]:
    """A synthetic 9 x 9 scene of 3 classes in 4 bands (one-hot spectra plus noise); every pixel is labelled."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(9, 9))
    synthetic_cube = (np.eye(4)[labels] + 0.1 * rng.standard_normal((9, 9, 4))).astype(np.float32)
    source = PatchSource(synthetic_cube, patch_size=9)
    rows, cols = source.pixel_coordinates()
    return source, PixelSet(rows, cols, torch.from_numpy(labels.ravel()))
