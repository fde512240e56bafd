"""MNF on a synthetic cube with a known low-rank signal and known, band-dependent noise."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage

from hsi._core.errors import ConfigError
from hsi.features.mnf import SpectralMNF, shift_differences
from hsi.features.pca import SpectralPCA

RANK = 3


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    """A 40 x 40 x 30 cube: 3 spatially smooth abundance maps x 3 spectra, plus noise 120x larger in 6 bands.

    Returns:
        (cube, abundances of shape (1600, 3)).
    """
    rng = np.random.default_rng(0)
    abundances = np.stack([scipy.ndimage.gaussian_filter(rng.standard_normal((40, 40)), 3) for _ in range(RANK)], -1)
    abundances /= abundances.std(axis=(0, 1))
    spectra = rng.standard_normal((RANK, 30))
    noise_std = np.full(30, 0.05)
    noise_std[::5] = 6.0  # six bands dominated by noise, as low-signal bands of a real sensor are
    cube = abundances @ spectra + rng.standard_normal((40, 40, 30)) * noise_std
    return cube.astype(np.float32), abundances.reshape(-1, RANK)


def _largest_angle(features: np.ndarray, abundances: np.ndarray) -> float:
    """Largest principal angle (degrees) between the reduced features' span and the true signal's."""
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return float(np.degrees(scipy.linalg.subspace_angles(flat - flat.mean(0), abundances - abundances.mean(0)).max()))


def test_mnf_recovers_the_signal_subspace_where_pca_is_hurt(synthetic: tuple[np.ndarray, np.ndarray]) -> None:
    cube, abundances = synthetic
    pixels = cube.reshape(-1, cube.shape[-1])
    mnf = SpectralMNF(RANK).fit(pixels, differences=shift_differences(cube))
    pca = SpectralPCA(RANK).fit(pixels)
    mnf_angle = _largest_angle(mnf.transform(cube), abundances)
    pca_angle = _largest_angle(pca.transform(cube), abundances)
    assert mnf_angle < 10.0
    assert pca_angle > 45.0  # PCA's top components are the noisy bands' variance
    assert mnf.snr_[0] >= mnf.snr_[1] >= mnf.snr_[2] > 10.0


def test_mnf_is_stored_and_rebuilt_as_the_same_linear_map(synthetic: tuple[np.ndarray, np.ndarray]) -> None:
    cube, _ = synthetic
    mnf = SpectralMNF(5, seed=0).fit(cube.reshape(-1, 30), differences=shift_differences(cube))
    out = mnf.transform(cube)
    assert out.shape == (40, 40, 5) and out.dtype == np.float32
    assert abs(float(out[..., 0].std()) - 1.0) < 0.01  # scaled like SpectralPCA: first component of unit spread
    rebuilt = SpectralPCA.from_state_dict(mnf.state_dict())  # what resume and predict rebuild
    assert np.allclose(rebuilt.transform(cube), out, atol=1e-5)


def test_shift_differences_cancel_a_smooth_signal() -> None:
    ramp = np.broadcast_to(np.arange(12.0)[:, None, None] + np.arange(10.0)[None, :, None], (12, 10, 2))
    diffs = shift_differences(ramp)
    assert diffs.shape == (12 * 9 + 11 * 10, 2)
    assert np.allclose(np.abs(diffs), 1 / np.sqrt(2))


def test_mnf_needs_noise_samples_and_survives_a_constant_band(synthetic: tuple[np.ndarray, np.ndarray]) -> None:
    cube, _ = synthetic
    with pytest.raises(ConfigError, match="noise samples"):
        SpectralMNF(3).fit(cube.reshape(-1, 30))
    flat = cube.copy()
    flat[:, :, 4] = 7.0  # no noise at all in one band: the noise covariance is singular without the ridge
    mnf = SpectralMNF(3).fit(flat.reshape(-1, 30), differences=shift_differences(flat))
    assert np.isfinite(mnf.transform(flat)).all()
