"""Shared pieces of the training tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsi.data.patches import PatchSource
from hsi.training.trainer import PixelSet


def _one_hot_scene(side: int, bands: int, patch_size: int) -> tuple[PatchSource, PixelSet]:
    """A synthetic side x side scene of 3 classes whose pixels are their class's one-hot spectrum (of ``bands``)
    plus noise; every pixel labelled."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(side, side))
    synthetic_cube = (np.eye(bands)[labels] + 0.1 * rng.standard_normal((side, side, bands))).astype(np.float32)
    source = PatchSource(synthetic_cube, patch_size=patch_size)
    rows, cols = source.pixel_coordinates()
    return source, PixelSet(rows, cols, torch.from_numpy(labels.ravel()))


@pytest.fixture
def separable_problem() -> tuple[PatchSource, PixelSet]:
    """A synthetic 12x12x3 cube whose pixels are their class's one-hot plus noise; every pixel labelled."""
    return _one_hot_scene(12, 3, 3)


@pytest.fixture
def three_class_scene() -> tuple[PatchSource, PixelSet]:
    """A synthetic 9 x 9 scene of 3 classes in 4 bands (one-hot spectra plus noise); every pixel is labelled."""
    return _one_hot_scene(9, 4, 9)
