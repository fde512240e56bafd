"""Fixtures of the big-scene tests: a synthetic ENVI cube with map info, and two trained checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi.cli.main import main

#: The synthetic ENVI scene's map info: UTM zone 11 North (EPSG:32611), 30 m pixels, the
#: reference pixel (1-based) 2, 3 at easting 500000, northing 4100000.
MAP_INFO = "{UTM, 2.000, 3.000, 500000.000, 4100000.000, 30.0, 30.0, 11, North, WGS-84, units=Meters}"
#: (a, b, c, d, e, f) of that map info: the top-left corner of pixel (0, 0) is one pixel west and two north.
TRANSFORM = (30.0, 0.0, 499970.0, 0.0, -30.0, 4100060.0)
WAVELENGTHS = tuple(400.0 + 20.0 * k for k in range(24))


def write_envi(folder: Path, cube: np.ndarray, name: str = "synthetic", *, map_info: str | None = MAP_INFO,
               wavelengths: tuple[float, ...] | None = WAVELENGTHS) -> Path:
    """Writes ``cube`` (H, W, B) as an ENVI BIL file ``<name>.img`` + ``<name>.hdr``; returns the header."""
    height, width, bands = cube.shape
    dtype = {np.dtype("int16"): 2, np.dtype("float32"): 4}[cube.dtype]
    lines = ["ENVI", f"samples = {width}", f"lines = {height}", f"bands = {bands}", "header offset = 0",
             "file type = ENVI Standard", f"data type = {dtype}", "interleave = bil", "byte order = 0"]
    if map_info:
        lines.append(f"map info = {map_info}")
    if wavelengths:
        lines += ["wavelength units = Nanometers", "wavelength = {" + ", ".join(f"{w:g}" for w in wavelengths) + "}"]
    header = folder / f"{name}.hdr"
    header.write_text("\n".join(lines) + "\n")
    np.ascontiguousarray(cube.transpose(0, 2, 1)).astype(cube.dtype.newbyteorder("<")).tofile(folder / f"{name}.img")
    return header


@pytest.fixture(scope="module")
def synthetic_envi(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic scene (30 x 26 x 24, int16) as a georeferenced ENVI file, its top-left 3 x 4 pixels all
    zero (outside the data)."""
    cube = np.load(synthetic_scene.cube_npy)
    cube[:3, :4] = 0
    return write_envi(tmp_path_factory.mktemp("envi"), cube)


@pytest.fixture(scope="module")
def trained(synthetic_scene: Any, synthetic_envi: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders of a small HybridSN (patch 9, 13 PCA components, 1 epoch; trained on the .mat scene) and a
    SVM (trained on the ENVI scene: its checkpoint knows the band wavelengths), that SVM behind a small
    DnCNN front end, and that SVM with its map smoothed (``--smooth 5``)."""
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    envi = ["--cube", str(synthetic_envi), "--gt", str(synthetic_scene.gt_npy)]
    for model, data, extra in (
        ("hybridsn", synthetic_scene.args(), ["--patch-size", "9", "--pca-components", "13", "--epochs", "1"]),
        ("svm", envi, ["--pca-components", "5"]),
        # The map smoothed by a 5 x 5 majority vote: tiles need 2 pixels of classes beyond their edges.
        ("svm_smooth", envi, ["--pca-components", "5", "--smooth", "5"]),
        # A denoiser reads 3 pixels around each pixel: tiles need that much more halo.
        ("svm_dncnn", envi, ["--pca-components", "5", "--denoise", "dncnn", "--denoise-depth", "3",
                             "--denoise-width", "4", "--denoise-steps", "5"]),
    ):
        assert main(["train", *data, "--model", model.split("_")[0], *extra, "--out", str(out / model), "--device", "cpu",
                     "--quiet"]) == 0
        (runs[model],) = (out / model).iterdir()
    return runs
