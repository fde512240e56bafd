"""Control cubes: seeded, of the real cube's shape, float32, without a float64 copy."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from hsi._core.errors import UnknownNameError
from hsi.features.controls import control_cube, noise_cube, shuffle_cube


@pytest.fixture(scope="module")
def synthetic_cube() -> np.ndarray:
    """A synthetic 20x30x12 cube with very different band scales."""
    rng = np.random.default_rng(0)
    scales = np.geomspace(1, 1000, 12, dtype=np.float32)
    return (rng.random((20, 30, 12), dtype=np.float32) * scales + 5 * scales).astype(np.float32)


@pytest.mark.parametrize("kind", ["noise", "shuffle"])
def test_controls_are_seeded_and_shaped_like_the_cube(kind: str, synthetic_cube: np.ndarray) -> None:
    a = control_cube(kind, synthetic_cube, seed=3)
    b = control_cube(kind, synthetic_cube, seed=3)
    c = control_cube(kind, synthetic_cube, seed=4)
    assert a.shape == synthetic_cube.shape and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a, synthetic_cube)


def test_noise_follows_the_band_statistics(synthetic_cube: np.ndarray) -> None:
    noise = noise_cube(synthetic_cube, seed=0)
    mean, std = synthetic_cube.mean(axis=(0, 1)), synthetic_cube.std(axis=(0, 1))
    np.testing.assert_allclose(noise.mean(axis=(0, 1)), mean, rtol=0.02)
    np.testing.assert_allclose(noise.std(axis=(0, 1)), std, rtol=0.1)
    # no spatial structure: neighbouring pixels are uncorrelated
    band = noise[:, :, 0]
    assert abs(np.corrcoef(band[:, :-1].ravel(), band[:, 1:].ravel())[0, 1]) < 0.15


def test_shuffle_moves_whole_spectra(synthetic_cube: np.ndarray) -> None:
    shuffled = shuffle_cube(synthetic_cube, seed=0)
    flat, moved = synthetic_cube.reshape(-1, 12), shuffled.reshape(-1, 12)
    assert np.array_equal(np.unique(flat, axis=0), np.unique(moved, axis=0))
    assert (np.abs(flat - moved).sum(axis=1) > 0).mean() > 0.9


def test_noise_makes_no_float64_copy() -> None:
    cube = np.ones((128, 128, 32), dtype=np.float32)
    tracemalloc.start()
    noise_cube(cube, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1.5 * cube.nbytes  # the float32 output plus one float64 band, not 2x the cube


def test_unknown_control_is_refused(synthetic_cube: np.ndarray) -> None:
    with pytest.raises(UnknownNameError, match=r"--control\) 'blur'; expected one of: noise, shuffle"):
        control_cube("blur", synthetic_cube, seed=0)
