"""Spectral PCA: band reduction fitted on chosen pixels only (no test-pixel leakage by default)."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from hsi._core.errors import ConfigError, DataFormatError, NotFittedError

# PCA on more than this many pixels gains nothing and costs memory; a seeded subsample is used.
_MAX_FIT_PIXELS = 200_000

__all__ = ["SpectralPCA", "check_spectra_vary", "fit_sample"]

#: Fitting pixels whose largest magnitude lies outside this range are scaled by a power of two before the fit
#: (exact): float32 squares of 1e33 overflow and of 1e-27 vanish, which left the fit NaN with numpy's warnings.
_SAFE_MAGNITUDE = (2.0**-20, 2.0**40)


def check_spectra_vary(pixels: np.ndarray) -> None:
    """Refuses fitting pixels (N, B) that all have the same spectrum: a band reduction (and a classifier) has
    nothing to work with, and scikit-learn's PCA would divide by a zero variance.

    Raises:
        DataFormatError: every band is constant over the pixels.
    """
    if len(pixels) and bool(np.all(pixels.min(axis=0) == pixels.max(axis=0))):
        raise DataFormatError(
            f"the {len(pixels):,} pixels the band reduction is fitted on all have the same spectrum (every band is "
            "constant): nothing tells the classes apart. Check that --cube is the scene's cube, not a blank or "
            "placeholder file."
        )


def fit_sample(n_pixels: int, limit: int, seed: int | None) -> np.ndarray | None:
    """The fitting pixels kept when there are more than ``limit``: sorted indices into the ``n_pixels``
    candidates (shape (limit,) int64), drawn without replacement by ``default_rng(seed)``; None = keep all.

    The one draw: :meth:`SpectralPCA.fit` subsamples with it, and a cube read window by window
    reads exactly these pixels (in this order), so both fit the same projection.
    """
    if n_pixels <= limit:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_pixels, limit, replace=False))


class SpectralPCA:
    """Projects each pixel's spectrum onto its first principal components.

    The projection is computed with scikit-learn's PCA on the pixels passed to
    :meth:`fit`. The outputs are divided by one scalar, the standard deviation of the
    first component on the fitting pixels, so network inputs are of order one while the
    components keep their relative variance (unlike whitening, which would blow noise
    components up to the size of the signal).

    Args:
        n_components: number of components kept; must not exceed the band count.
        seed: seed of the randomised solver and of the subsample on very large scenes.
        max_fit_pixels: fit on a seeded sample (:func:`fit_sample`) of at most this many pixels.
    """

    def __init__(self, n_components: int = 30, *, seed: int | None = 0, max_fit_pixels: int = _MAX_FIT_PIXELS) -> None:
        self.n_components = n_components
        self.seed = seed
        self.max_fit_pixels = max_fit_pixels

    def fit(self, pixels: np.ndarray) -> SpectralPCA:
        """Fits the projection.

        Args:
            pixels: spectra of the fitting pixels, shape (N, B).

        Returns:
            self, with ``mean_`` (B,), ``components_`` (n_components, B), ``scale_`` and
            ``explained_variance_ratio_`` (n_components,).
        """
        n_samples, n_bands = pixels.shape
        if not 1 <= self.n_components <= min(n_bands, n_samples):
            raise ConfigError(
                f"PCA components must be between 1 and {min(n_bands, n_samples)} (the band count {n_bands}, "
                f"and at most one per fitting pixel, {n_samples}); got {self.n_components}. "
                "Lower --pca-components."
            )
        check_spectra_vary(pixels)
        keep = fit_sample(n_samples, self.max_fit_pixels, self.seed)
        if keep is not None:
            pixels = pixels[keep]
        peak = float(np.max(np.abs(pixels))) if pixels.size else 0.0
        factor = 1.0
        if np.isfinite(peak) and peak > 0 and not _SAFE_MAGNITUDE[0] <= peak <= _SAFE_MAGNITUDE[1]:
            factor = 2.0 ** -round(float(np.log2(peak)))  # a power of two: the scaled values are exact
            pixels = pixels * pixels.dtype.type(factor)
        pca = PCA(n_components=self.n_components, random_state=self.seed).fit(pixels)
        self.mean_ = (pca.mean_ / factor).astype(np.float32)
        self.components_ = pca.components_.astype(np.float32)
        self.explained_variance_ratio_ = pca.explained_variance_ratio_.astype(np.float32)
        self.scale_ = float(np.sqrt(pca.explained_variance_[0]) / factor) or 1.0
        return self

    def transform(self, cube: np.ndarray) -> np.ndarray:
        """Projects every pixel of a cube.

        Args:
            cube: shape (H, W, B) float32.

        Returns:
            shape (H, W, n_components) float32.
        """
        if not hasattr(self, "components_"):
            raise NotFittedError("This SpectralPCA is not fitted yet; call fit(pixels) first.")
        if cube.shape[-1] != self.mean_.shape[0]:
            raise ConfigError(
                f"PCA was fitted on {self.mean_.shape[0]} bands; got a cube with {cube.shape[-1]}. "
                "Use a cube of the same sensor, or retrain."
            )
        flat = cube.reshape(-1, cube.shape[-1])
        out = np.empty((flat.shape[0], self.n_components), dtype=np.float32)
        # Where the scale is extreme (a cube of 1e33 or 1e-27), components / scale would near float32's
        # denormals (flushed to zero): the centred values are scaled instead.
        extreme = not _SAFE_MAGNITUDE[0] <= self.scale_ <= _SAFE_MAGNITUDE[1]
        projection = self.components_.T if extreme else self.components_.T / np.float32(self.scale_)
        for start in range(0, flat.shape[0], 65_536):  # chunks keep the centred copy small
            centred = flat[start : start + 65_536] - self.mean_
            if extreme:
                centred *= np.float32(1.0 / self.scale_)
            np.matmul(centred, projection, out=out[start : start + 65_536])
        return out.reshape(*cube.shape[:2], self.n_components)

    def state_dict(self) -> dict[str, object]:
        """The fitted state as plain arrays and numbers (safe to store in a checkpoint)."""
        return {
            "n_components": self.n_components,
            "mean": self.mean_,
            "components": self.components_,
            "scale": self.scale_,
            "explained_variance_ratio": self.explained_variance_ratio_,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, object]) -> SpectralPCA:
        """Rebuilds a fitted transformer from :meth:`state_dict` (its arrays as numpy or CPU tensors, as
        checkpoints hold them)."""
        pca = cls(int(state["n_components"]))  # type: ignore[call-overload]
        pca.mean_ = np.asarray(state["mean"], dtype=np.float32)
        pca.components_ = np.asarray(state["components"], dtype=np.float32)
        pca.scale_ = float(state["scale"])  # type: ignore[arg-type]
        pca.explained_variance_ratio_ = np.asarray(state["explained_variance_ratio"], dtype=np.float32)
        return pca
