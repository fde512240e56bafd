"""Seeded corruptions of a cube (``--corrupt KIND:LEVEL``), to measure how robust a protocol is to noise.

Each kind is registered once in :data:`CORRUPTIONS` (the CLI's help comes from it) as
``function(cube, level, rng) -> cube``; levels are relative to the data, so one level means the
same on every scene:

- ``gaussian:SIGMA``: independent normal noise of standard deviation ``SIGMA`` x the band's own
  standard deviation, added to every value (sensor noise; SIGMA = 0.05 is 5 % of a band's spread).
- ``stripes:FRACTION``: a pushbroom sensor's miscalibrated detectors: in every band, that
  fraction of the columns gets a constant offset drawn from N(0, (0.5 x band std)^2), a
  different offset per band and column.
- ``deadbands:N``: N bands (drawn at random) lose their signal: each becomes normal noise with
  the band's own mean and standard deviation (a dead detector row that still reads out noise,
  so the band's variance does not give it away).

Corruptions run on the cube before anything else (before the split's patches, the PCA and any
denoiser); :func:`corrupt_cube` applies a list of them in order from one seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hsi._core.errors import ConfigError
from hsi._core.registry import Registry

__all__ = ["CORRUPTIONS", "corrupt_cube", "parse_corruptions"]

CorruptFunction = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

#: The corruption kinds, by ``--corrupt`` name.
CORRUPTIONS: Registry[CorruptFunction] = Registry[CorruptFunction]("corruption (--corrupt KIND:LEVEL)")

# A stripe offset's spread, in units of the band's standard deviation.
_STRIPE_STRENGTH = 0.5


def _band_std(cube: np.ndarray) -> np.ndarray:
    """Per-band standard deviation, float32 (B,), computed band by band in float64."""
    return np.array([cube[:, :, b].astype(np.float64).std() for b in range(cube.shape[2])], dtype=np.float32)


def _gaussian(cube: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(cube.shape, dtype=np.float32)
    noise *= np.float32(level) * _band_std(cube)
    return cube + noise


def _stripes(cube: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    if not 0 < level <= 1:
        raise ConfigError(f"--corrupt stripes:FRACTION needs a fraction of columns in (0, 1]; got {level}.")
    _, width, bands = cube.shape
    offsets = rng.standard_normal((width, bands), dtype=np.float32) * (_STRIPE_STRENGTH * _band_std(cube))
    offsets *= rng.random((width, bands)) < level  # each band has its own striped columns
    return cube + offsets[None, :, :]


def _deadbands(cube: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    count = int(level)
    if count != level or not 1 <= count <= cube.shape[2]:
        raise ConfigError(f"--corrupt deadbands:N needs a whole number of bands in 1..{cube.shape[2]}; got {level}.")
    out = cube.copy()
    for band in np.sort(rng.choice(cube.shape[2], count, replace=False)):
        values = cube[:, :, band].astype(np.float64)
        out[:, :, band] = values.mean() + values.std() * rng.standard_normal(values.shape)
    return out


CORRUPTIONS.register("gaussian", _gaussian, "gaussian:SIGMA, normal noise of SIGMA x each band's std")
CORRUPTIONS.register("stripes", _stripes, "stripes:FRACTION, per-band column offsets on that share of columns")
CORRUPTIONS.register("deadbands", _deadbands, "deadbands:N, N random bands replaced by noise")


def parse_corruptions(specs: Sequence[str]) -> list[tuple[str, float]]:
    """Reads ``KIND:LEVEL`` items (each item may itself be a comma list) into ``(kind, level)`` pairs.

    Raises:
        ConfigError: an item without ``:``, an unknown kind (close names suggested), or a level
            that is not a positive number.
    """
    parsed: list[tuple[str, float]] = []
    for item in (part.strip() for spec in specs for part in spec.split(",")):
        if not item:
            continue
        kind, sep, raw = item.partition(":")
        if not sep:
            raise ConfigError(f"--corrupt expects KIND:LEVEL (e.g. gaussian:0.05); got {item!r}.")
        if kind not in CORRUPTIONS:
            CORRUPTIONS.get(kind)  # raises with close names and the list of kinds
        try:
            level = float(raw)
        except ValueError:
            level = float("nan")
        if not level > 0 or not np.isfinite(level):
            raise ConfigError(f"--corrupt {kind}:LEVEL needs a positive number; got {raw!r}.")
        parsed.append((kind, level))
    return parsed


def corrupt_cube(cube: np.ndarray, specs: Sequence[str], *, seed: int | None) -> np.ndarray:
    """The cube with each corruption of ``specs`` applied in order, from one seeded generator.

    Args:
        cube: shape (H, W, B).
        specs: ``KIND:LEVEL`` items (see :func:`parse_corruptions`); empty = no change.
        seed: seed of the noise (same seed and specs, same cube).

    Returns:
        float32 of shape (H, W, B); ``cube`` itself when ``specs`` is empty.
    """
    parsed = parse_corruptions(specs)
    if not parsed:
        return cube
    rng = np.random.default_rng(seed)
    out = np.asarray(cube, dtype=np.float32)
    for kind, level in parsed:
        out = CORRUPTIONS.get(kind)(out, level, rng).astype(np.float32, copy=False)
    return out
