"""Cubes read window by window: every format gives the stored values; georeferencing and wavelengths from headers."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import rasterio.crs

from hsi._core.errors import DataFormatError, DependencyNotFoundError
from hsi.data.lazy import Georef, open_lazy_cube, outside_data, pad_window, require_rasterio
from hsi.data.padding import pad_cube

from .conftest import TRANSFORM, WAVELENGTHS, write_envi

CUBE = np.random.default_rng(0).integers(-500, 4000, size=(13, 11, 6)).astype(np.int16)
WINDOW = (slice(3, 10), slice(2, 11))


def test_envi_window_georeferencing_and_wavelengths(tmp_path: Path) -> None:
    header = write_envi(tmp_path, CUBE, wavelengths=WAVELENGTHS[:6])
    cube = open_lazy_cube(header)
    assert cube.shape == (13, 11, 6) and cube.dtype == np.int16
    np.testing.assert_array_equal(cube.read(*WINDOW), CUBE[WINDOW])
    np.testing.assert_array_equal(open_lazy_cube(tmp_path / "synthetic.img").read(*WINDOW), CUBE[WINDOW])
    assert cube.georef == Georef("EPSG:32611", TRANSFORM)
    assert cube.wavelengths == WAVELENGTHS[:6]
    assert cube.georef.window(2, 3).transform == pytest.approx((30, 0, 499970 + 90, 0, -30, 4100060 - 60))


def test_envi_geographic_and_wkt_map_info(tmp_path: Path) -> None:
    geographic = write_envi(tmp_path, CUBE, "geo", map_info="{Geographic Lat/Lon, 1, 1, -120.5, 38.25, 0.001, "
                            "0.001, WGS-84, units=Degrees}", wavelengths=None)
    georef = open_lazy_cube(geographic).georef
    assert georef == Georef("EPSG:4326", (0.001, 0.0, -120.5, 0.0, -0.001, 38.25))
    wkt = rasterio.crs.CRS.from_epsg(32611).to_wkt()
    header = write_envi(tmp_path, CUBE, "wkt", wavelengths=None)
    header.write_text(header.read_text() + f"coordinate system string = {{{wkt}}}\n")
    georef = open_lazy_cube(header).georef
    assert georef is not None and rasterio.crs.CRS.from_user_input(georef.crs).to_epsg() == 32611
    no_map = open_lazy_cube(write_envi(tmp_path, CUBE, "plain", map_info=None, wavelengths=None))
    assert no_map.georef is None and no_map.wavelengths is None


def test_npy_hdf5_and_geotiff_windows(tmp_path: Path) -> None:
    np.save(tmp_path / "cube.npy", CUBE)
    np.testing.assert_array_equal(open_lazy_cube(tmp_path / "cube.npy").read(*WINDOW), CUBE[WINDOW])
    with h5py.File(tmp_path / "cube.h5", "w") as f:
        f["data/reflectance"] = CUBE
        f["other"] = np.zeros((3, 3))
    np.testing.assert_array_equal(open_lazy_cube(tmp_path / "cube.h5").read(*WINDOW), CUBE[WINDOW])
    from rasterio.transform import Affine

    with rasterio.open(tmp_path / "cube.tif", "w", driver="GTiff", height=13, width=11, count=6, dtype="int16",
                       crs="EPSG:32611", transform=Affine(*TRANSFORM)) as dst:
        dst.write(CUBE.transpose(2, 0, 1))
    cube = open_lazy_cube(tmp_path / "cube.tif")
    np.testing.assert_array_equal(cube.read(*WINDOW), CUBE[WINDOW])
    assert cube.georef is not None and cube.georef.transform == pytest.approx(TRANSFORM)


def test_refusals_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "flat.npy", CUBE[:, :, 0])
    with pytest.raises(DataFormatError, match="expected a 3-D cube"):
        open_lazy_cube(tmp_path / "flat.npy")
    header = write_envi(tmp_path, CUBE, "cut")
    (tmp_path / "cut.img").write_bytes((tmp_path / "cut.img").read_bytes()[:100])
    with pytest.raises(DataFormatError, match="truncated"):
        open_lazy_cube(header)
    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.raises(DependencyNotFoundError, match=r"needs rasterio.*pip install 'hsi-classify\[geo\]'"):
        require_rasterio("writing prediction.tif")


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_a_padded_window_equals_the_same_part_of_the_padded_scene(mode: str) -> None:
    cube = CUBE.astype(np.float32)
    whole = pad_cube(cube, 4, mode)
    # rows 0..5 of the scene with a halo of 4: 2 rows of the top edge's padding are the scene's, 2 are padded
    window = pad_window(cube[0:9, 0:11], (4, 0, 4, 4), mode)
    np.testing.assert_array_equal(window, whole[0:13, :])
    window = pad_window(cube[1:13, 3:11], (0, 4, 0, 4), mode)  # the bottom-right tile: rows 5..12, cols 7..10
    np.testing.assert_array_equal(window, whole[5:21, 7:19])


def test_outside_data() -> None:
    cube = CUBE.astype(np.float32)
    cube[0, 0] = 0
    cube[0, 1] = np.nan
    cube[0, 2, 0] = np.nan  # one bad band: inside the data (the NaN policy decides)
    cube[0, 3] = -9999
    assert outside_data(cube, -9999)[0, :5].tolist() == [True, True, False, True, False]

