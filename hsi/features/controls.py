"""Control cubes: the scene's shape and value range with its spectral information removed.

Running the unchanged protocol (same split, settings and seed) on such a cube shows what the
protocol scores without any spectral signal. Far above chance, the score comes from where
the pixels are (training and test patches sharing pixels), not from what they look like.

- ``noise``: every value drawn independently from a normal distribution with the real
  cube's per-band mean and standard deviation (so band scales, and the PCA that follows,
  look like the real data's).
- ``shuffle``: the real spectra, permuted among all pixels of the scene (a seeded
  permutation): every spectrum is real, but it no longer belongs to its place.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hsi._core.registry import Registry
from hsi._core.validation import as_rng

__all__ = ["CONTROLS", "NO_CONTROL", "control_cube", "noise_cube", "register_control", "shuffle_cube"]

ControlFunction = Callable[..., np.ndarray]

#: The control cubes, by ``--control`` name (``none`` = no control run); the CLI's choices come from here.
CONTROLS: Registry[ControlFunction] = Registry[ControlFunction]("control (--control)")
NO_CONTROL = "none"


def register_control(name: str, description: str) -> Callable[[ControlFunction], ControlFunction]:
    """Registers ``function(cube, *, seed) -> control cube`` as ``--control name``."""

    def decorator(function: ControlFunction) -> ControlFunction:
        return CONTROLS.register(name, function, description)

    return decorator


def _band_mean_std(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation, float32 of shape (B,).

    Band by band in float64, so the sums are accurate while no float64 copy of the whole
    cube is ever made.
    """
    bands = cube.shape[2]
    mean, std = np.empty(bands, dtype=np.float32), np.empty(bands, dtype=np.float32)
    for b in range(bands):
        band = cube[:, :, b].astype(np.float64)
        mean[b], std[b] = band.mean(), band.std()
    return mean, std


@register_control("noise", "random values with the real per-band mean and spread")
def noise_cube(cube: np.ndarray, *, seed: int | None) -> np.ndarray:
    """Independent normal noise with the real cube's per-band mean and standard deviation.

    Args:
        cube: the real cube, shape (H, W, B).
        seed: seed of the draw (the run's seed: same seed, same cube).

    Returns:
        float32 of shape (H, W, B): value ``[r, c, b] = mean_b + std_b * z`` with ``z``
        standard normal, independent across pixels and bands.
    """
    mean, std = _band_mean_std(cube)
    out = as_rng(seed).standard_normal(cube.shape, dtype=np.float32)
    out *= std
    out += mean
    return out


@register_control("shuffle", "the real spectra permuted among pixels")
def shuffle_cube(cube: np.ndarray, *, seed: int | None) -> np.ndarray:
    """The real spectra, each moved to a random pixel (a seeded permutation of all pixels).

    Args:
        cube: the real cube, shape (H, W, B).
        seed: seed of the permutation.

    Returns:
        float32 of shape (H, W, B), holding the same spectra as ``cube``.
    """
    height, width, bands = cube.shape
    order = as_rng(seed).permutation(height * width)
    return np.asarray(cube, dtype=np.float32).reshape(height * width, bands)[order].reshape(height, width, bands)


def control_cube(kind: str, cube: np.ndarray, *, seed: int | None) -> np.ndarray:
    """The control cube of one kind (see the module docstring).

    Args:
        kind: a name registered in :data:`CONTROLS`.
        cube: the real cube, shape (H, W, B).
        seed: seed of the draw.

    Returns:
        float32 of shape (H, W, B).

    Raises:
        UnknownNameError: ``kind`` is unknown (the message lists the controls).
    """
    return CONTROLS.get(kind)(cube, seed=seed)
