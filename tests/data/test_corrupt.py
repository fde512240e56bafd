"""`--corrupt KIND:LEVEL`: seeded, reproducible noise of each kind, and one-line errors for bad specs."""

from __future__ import annotations

import numpy as np
import pytest

from hsi._core.errors import ConfigError, UnknownNameError
from hsi.config import RunConfig
from hsi.data.corrupt import CORRUPTIONS, corrupt_cube, parse_corruptions


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    rng = np.random.default_rng(7)
    return (rng.random((20, 18, 6)) * np.arange(1, 7) * 100).astype(np.float32)  # band spreads differ


def test_same_seed_same_cube_other_seed_other_noise(cube: np.ndarray) -> None:
    specs = ["gaussian:0.1,stripes:0.3", "deadbands:2"]
    first, again = corrupt_cube(cube, specs, seed=3), corrupt_cube(cube, specs, seed=3)
    assert first.dtype == np.float32 and first.shape == cube.shape
    assert np.array_equal(first, again)
    assert not np.array_equal(first, corrupt_cube(cube, specs, seed=4))
    assert corrupt_cube(cube, [], seed=3) is cube  # nothing asked, nothing changed


def test_gaussian_noise_is_relative_to_each_band_spread(cube: np.ndarray) -> None:
    noise = corrupt_cube(cube, ["gaussian:0.5"], seed=0) - cube
    ratio = noise.std(axis=(0, 1)) / cube.std(axis=(0, 1))
    assert np.allclose(ratio, 0.5, rtol=0.15)


def test_stripes_are_constant_along_columns_and_differ_per_band(cube: np.ndarray) -> None:
    offsets = corrupt_cube(cube, ["stripes:0.5"], seed=0) - cube
    assert np.allclose(offsets, offsets[:1], atol=1e-3)  # one offset per (column, band)
    striped = np.abs(offsets[0]) > 0  # (W, B)
    assert 0.2 < striped.mean() < 0.8
    assert not all(np.array_equal(striped[:, 0], striped[:, b]) for b in range(1, 6))


def test_deadbands_replace_exactly_n_bands(cube: np.ndarray) -> None:
    out = corrupt_cube(cube, ["deadbands:2"], seed=1)
    changed = [b for b in range(6) if not np.array_equal(out[:, :, b], cube[:, :, b])]
    assert len(changed) == 2
    for b in changed:  # noise with the band's own mean and spread, no longer the signal
        assert abs(out[:, :, b].mean() - cube[:, :, b].mean()) < 0.2 * cube[:, :, b].std()
        assert abs(np.corrcoef(out[:, :, b].ravel(), cube[:, :, b].ravel())[0, 1]) < 0.3


def test_parse_reads_repeated_flags_and_comma_lists() -> None:
    assert parse_corruptions(["gaussian:0.05,stripes:0.1", "deadbands:10"]) == [
        ("gaussian", 0.05), ("stripes", 0.1), ("deadbands", 10.0)]
    assert set(CORRUPTIONS.names()) == {"gaussian", "stripes", "deadbands"}


@pytest.mark.parametrize(("spec", "error", "words"), [
    ("gaussian", ConfigError, "KIND:LEVEL"),
    ("gausian:0.1", UnknownNameError, "did you mean gaussian"),
    ("gaussian:-1", ConfigError, "positive number"),
    ("gaussian:abc", ConfigError, "positive number"),
    ("stripes:2", ConfigError, "fraction"),
    ("deadbands:2.5", ConfigError, "whole number"),
])
def test_bad_specs_are_one_line_errors(cube: np.ndarray, spec: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words) as info:
        corrupt_cube(cube, [spec], seed=0)
    assert "\n" not in str(info.value)


def test_corruptions_round_trip_through_the_run_config() -> None:
    config = RunConfig(corrupt=["gaussian:0.05", "stripes:0.1"])
    assert RunConfig.from_dict(config.to_dict()).corrupt == ["gaussian:0.05", "stripes:0.1"]
    assert RunConfig().corrupt == []
