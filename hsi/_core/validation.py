"""Small named checks shared by every layer; each raises a three-part message."""

from __future__ import annotations

import numpy as np

from hsi._core.errors import ConfigError, DataFormatError


def check_cube(cube: np.ndarray, *, name: str = "cube") -> np.ndarray:
    """Checks a hyperspectral cube and returns it as C-contiguous float32.

    Args:
        cube: array of shape (H, W, B).
        name: how the input is named in error messages.

    Returns:
        The cube as float32, shape (H, W, B); no copy when it already is.

    Raises:
        DataFormatError: not 3-D, empty, not numeric, or holding NaN/inf.
    """
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise DataFormatError(
            f"{name} must be 3-D (H, W, B); got shape {cube.shape}. "
            "Pass the hyperspectral cube, not a single band or the ground truth."
        )
    if cube.size == 0:
        raise DataFormatError(f"{name} must not be empty; got shape {cube.shape}.")
    if not (np.issubdtype(cube.dtype, np.number) or cube.dtype == np.bool_):
        raise DataFormatError(f"{name} must be numeric; got dtype {cube.dtype}.")
    cube = np.ascontiguousarray(cube, dtype=np.float32)
    check_finite(cube, name=name)
    return cube


def check_finite(cube: np.ndarray, *, name: str = "cube") -> None:
    """Raises :class:`DataFormatError` naming how many values are NaN/inf and where."""
    bad = ~np.isfinite(cube)
    n_bad = int(bad.sum())
    if n_bad:
        pixels = np.argwhere(bad.any(axis=-1)) if cube.ndim == 3 else np.argwhere(bad)
        first = ", ".join(f"(row {r}, col {c})" for r, c in pixels[:3, :2])
        raise DataFormatError(
            f"{name} must hold finite values; found {n_bad} NaN/infinite values in "
            f"{len(pixels)} pixels, first at {first}. Clean the file or pass "
            "--nan-policy zero|interpolate."
        )


def check_same_spatial_shape(cube: np.ndarray, labels: np.ndarray) -> None:
    """Raises :class:`DataFormatError` unless ``labels`` is (H, W) of ``cube`` (H, W, B)."""
    if labels.shape != cube.shape[:2]:
        raise DataFormatError(
            f"ground truth must have the cube's spatial shape {cube.shape[:2]}; got {labels.shape}. "
            "Check that the ground-truth file belongs to this cube (and is not transposed)."
        )


def is_odd_patch_size(patch_size: object) -> bool:
    """Whether ``patch_size`` is an odd integer >= 1 (a window centred on its pixel); bools are not sizes."""
    return bool(
        isinstance(patch_size, (int, np.integer))
        and not isinstance(patch_size, bool)
        and patch_size >= 1
        and patch_size % 2 == 1
    )


def is_smoothing_window(value: object) -> bool:
    """Whether ``value`` is a map-smoothing window (``smooth``): 0 (off) or an odd side from 3 to 31."""
    return bool(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and (
        value == 0 or (value % 2 == 1 and 3 <= value <= 31)))


def check_patch_size(patch_size: int, *, height: int | None = None, width: int | None = None) -> int:
    """Checks that ``patch_size`` is odd, >= 1 and no larger than the scene.

    Args:
        patch_size: window side p.
        height: scene height; with ``width``, p may not exceed the shorter side.
        width: scene width.

    Returns:
        ``patch_size`` as an ``int``.

    Raises:
        ConfigError: not an odd integer >= 1, or larger than the scene.
    """
    if not is_odd_patch_size(patch_size):
        raise ConfigError(
            f"patch size must be an odd integer >= 1 (a window centred on its pixel); got {patch_size}. "
            f"Use e.g. {max(1, int(patch_size) | 1) if isinstance(patch_size, (int, np.integer)) else 25}."
        )
    if height is not None and width is not None and patch_size > min(height, width):
        raise ConfigError(
            f"patch size must be at most {min(height, width)} for a {height}x{width} scene; "
            f"got {patch_size}. Use a smaller --patch-size."
        )
    return int(patch_size)


def check_fraction(value: float, *, name: str, allow_zero: bool = False) -> float:
    """Checks ``0 < value < 1`` (or ``0 <= value`` with ``allow_zero``)."""
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{name} must be in {interval}; got {value}. Pass a fraction such as 0.1.")
    return float(value)


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Normalises ``None | int | Generator`` to a ``np.random.Generator``."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
