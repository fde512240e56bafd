"""Minimum noise fraction (MNF): band reduction that orders components by signal-to-noise, not by variance.

Green et al. (IEEE TGRS 1988), the remote-sensing standard for noisy cubes. The noise
covariance is estimated from differences of neighbouring pixels (the "shift difference":
neighbours share their signal, so their difference is mostly noise); the components solve the
generalised eigenproblem ``S v = lambda N v`` (``S`` the covariance of the fitting pixels,
``N`` the noise covariance), i.e. PCA after whitening the noise. PCA keeps the directions of
largest variance, which in a cube with a few very noisy bands are partly noise; MNF keeps the
directions of largest variance *per unit noise*.

:class:`SpectralMNF` is a :class:`~hsi.features.pca.SpectralPCA` with another ``fit``: the
same linear map ``(x - mean_) @ components_.T / scale_``, the same ``state_dict``, so a
checkpoint, ``resume`` and ``predict`` apply it without knowing which of the two it is.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from hsi._core.errors import ConfigError
from hsi.features.pca import SpectralPCA, check_spectra_vary

__all__ = ["SpectralMNF", "shift_differences"]

# Ridge added to the noise covariance, relative to its mean diagonal: a band without noise
# (constant, clipped) would make it singular.
_NOISE_RIDGE = 1e-6


def shift_differences(cube: np.ndarray) -> np.ndarray:
    """Differences of horizontally and vertically adjacent pixels, divided by sqrt(2).

    For noise independent between neighbours, each row's covariance is the noise covariance
    (``Var(a - b) = 2 Var(noise)``); the signal, shared by neighbours, mostly cancels.

    Args:
        cube: shape (H, W, B).

    Returns:
        float64 of shape (H (W - 1) + (H - 1) W, B).
    """
    data = np.asarray(cube, dtype=np.float64)
    bands = data.shape[2]
    horizontal = (data[:, 1:] - data[:, :-1]).reshape(-1, bands)
    vertical = (data[1:] - data[:-1]).reshape(-1, bands)
    return np.concatenate([horizontal, vertical]) / np.sqrt(2.0)


class SpectralMNF(SpectralPCA):
    """Projects each spectrum onto its components of highest signal-to-noise ratio.

    ``components_`` (n_components, B) are scaled so each component's noise has unit variance;
    the outputs are divided by one scalar, the first component's standard deviation on the
    fitting pixels (as :class:`SpectralPCA` does). ``explained_variance_ratio_`` holds each
    component's share of the summed signal-to-noise eigenvalues, ``snr_`` the eigenvalues.

    Args:
        n_components: number of components kept; must not exceed the band count.
        seed: seed of the subsample on very large scenes.
    """

    def fit(self, pixels: np.ndarray, *, differences: np.ndarray | None = None) -> SpectralMNF:
        """Fits the projection.

        Args:
            pixels: spectra of the fitting pixels, shape (N, B).
            differences: noise samples, shape (M, B): :func:`shift_differences` of the cube.

        Returns:
            self, fitted.

        Raises:
            ConfigError: no ``differences``, too many components, or band counts that differ.
        """
        if differences is None:
            raise ConfigError("MNF needs noise samples: fit(pixels, differences=shift_differences(cube)).")
        check_spectra_vary(pixels)  # a constant cube: refused as PCA refuses it
        n_samples, n_bands = pixels.shape
        if not 1 <= self.n_components <= min(n_bands, n_samples):
            raise ConfigError(
                f"MNF components must be between 1 and {min(n_bands, n_samples)} (the band count {n_bands}, and at "
                f"most one per fitting pixel, {n_samples}); got {self.n_components}. Lower --pca-components."
            )
        if differences.shape[1] != n_bands:
            raise ConfigError(f"noise samples have {differences.shape[1]} bands; the pixels have {n_bands}.")
        rng = np.random.default_rng(self.seed)
        if n_samples > self.max_fit_pixels:
            pixels = pixels[np.sort(rng.choice(n_samples, self.max_fit_pixels, replace=False))]
        if len(differences) > self.max_fit_pixels:
            differences = differences[np.sort(rng.choice(len(differences), self.max_fit_pixels, replace=False))]
        data = np.asarray(pixels, dtype=np.float64)
        mean = data.mean(axis=0)
        centred = data - mean
        signal = centred.T @ centred / max(len(data) - 1, 1)
        noise_samples = np.asarray(differences, dtype=np.float64)
        noise = noise_samples.T @ noise_samples / len(noise_samples)
        noise += np.eye(n_bands) * (_NOISE_RIDGE * max(float(np.trace(noise)) / n_bands, 1e-12))
        # Largest eigenvalues of S v = lambda N v; eigh normalises v' N v = 1.
        values, vectors = scipy.linalg.eigh(signal, noise,
                                            subset_by_index=[n_bands - self.n_components, n_bands - 1])
        order = np.argsort(values)[::-1]
        values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
        all_values = scipy.linalg.eigh(signal, noise, eigvals_only=True)
        # Sign convention (as scikit-learn's PCA fixes one): largest absolute loading positive.
        signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
        vectors *= np.where(signs == 0, 1.0, signs)
        self.mean_ = mean.astype(np.float32)
        self.components_ = vectors.T.astype(np.float32)
        self.snr_ = values.astype(np.float32)
        self.explained_variance_ratio_ = (values / max(float(np.clip(all_values, 0, None).sum()), 1e-30)).astype(
            np.float32)
        first = float(np.sqrt(vectors[:, 0] @ signal @ vectors[:, 0]))
        self.scale_ = first if first > 0 else 1.0
        return self
