"""Georeferenced outputs of ``predict``: tiled, compressed GeoTIFFs that GIS tools (QGIS, GDAL) open on a map.

``prediction.tif`` holds the file's own class ids (uint8 or uint16, ``0`` = nodata: pixels
outside the data), the source's CRS and transform, a colour table from the class palette,
the class names as band tags (``class_<id>``) and as GDAL category names in
``prediction.tif.aux.xml`` (QGIS's paletted renderer labels its classes with them).
``probabilities.tif`` (one uint8 band per class, ``round(254 p)``) and ``confidence.tif``
(uint8, ``round(254 max p)``) come with ``predict --probabilities``, 255 = nodata.

Each file is built in GDAL's memory (rasterio ``MemoryFile``), strip by strip from an array
that may be a memory map, then written through :func:`hsi._core.files.atomic_write`: it
appears under its name only when complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from hsi._core.files import atomic_write, atomic_write_text
from hsi.data.lazy import Georef, require_rasterio

__all__ = ["BLOCK", "write_bands_geotiff", "write_class_geotiff"]

#: Side of the GeoTIFF's internal tiles, and rows per strip copied into it.
BLOCK = 256


def _profile(georef: Georef, height: int, width: int, count: int, dtype: str, nodata: float | None) -> dict[str, Any]:
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    return {"driver": "GTiff", "height": height, "width": width, "count": count, "dtype": dtype,
            "crs": CRS.from_user_input(georef.crs), "transform": Affine(*georef.transform), "nodata": nodata,
            "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate",
            "predictor": 2, "BIGTIFF": "IF_SAFER"}


def _write(path: Path, profile: dict[str, Any], fill: Any) -> Path:
    """Builds the GeoTIFF in memory with ``fill(dataset)``, then writes it atomically."""
    rasterio = require_rasterio(f"writing the GeoTIFF {path}")
    with rasterio.MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            fill(dataset)
        with atomic_write(path) as fh:
            fh.write(memory.getbuffer())
    return path


def write_class_geotiff(
    path: str | Path, class_ids: np.ndarray, georef: Georef, *, ids: Sequence[int], names: Sequence[str],
    palette: Sequence[str], scene: str = "", model: str = "",
) -> Path:
    """Writes ``prediction.tif``: one band of class ids (H, W), 0 = nodata.

    Args:
        class_ids: the file's label ids, shape (H, W) unsigned int (a memory map is read strip by strip).
        georef: the source scene's CRS and transform.
        ids, names, palette: the K classes' ids, names and hex colours.
    """
    from rasterio.windows import Window

    path = Path(path)
    height, width = class_ids.shape
    dtype = "uint8" if max(ids, default=0) < 256 else "uint16"
    colours = {0: (0, 0, 0, 0)} | {int(i): (*(int(c[k:k + 2], 16) for k in (1, 3, 5)), 255)
                                   for i, c in zip(ids, palette, strict=True)}

    def fill(dataset: Any) -> None:
        for start in range(0, height, BLOCK):
            stop = min(height, start + BLOCK)
            dataset.write(np.asarray(class_ids[start:stop]).astype(dtype), 1,
                          window=Window(0, start, width, stop - start))
        dataset.write_colormap(1, colours)
        dataset.set_band_description(1, "class id (0 = nodata)")
        dataset.update_tags(1, **{f"class_{i}": n for i, n in zip(ids, names, strict=True)})
        dataset.update_tags(CLASS_NAMES=json.dumps(dict(zip(map(str, ids), names, strict=True))),
                            SCENE=scene, MODEL=model, SOFTWARE="hsi-classify")

    _write(path, _profile(georef, height, width, 1, dtype, 0), fill)
    categories = [""] * (max(ids, default=0) + 1)
    categories[0] = "nodata"
    for i, n in zip(ids, names, strict=True):
        categories[int(i)] = str(n)
    atomic_write_text(path.with_name(path.name + ".aux.xml"), _category_xml(categories))
    return path


def _category_xml(categories: list[str]) -> str:
    """GDAL's sidecar (PAM) with the band's category names, value by value."""
    rows = "".join(f"      <Category>{escape(c)}</Category>\n" for c in categories)
    return ("<PAMDataset>\n  <PAMRasterBand band=\"1\">\n    <CategoryNames>\n"
            f"{rows}    </CategoryNames>\n  </PAMRasterBand>\n</PAMDataset>\n")


def write_bands_geotiff(
    path: str | Path, bands: np.ndarray, georef: Georef, *, descriptions: Sequence[str], nodata: int | None = None,
) -> Path:
    """Writes a uint8 multi-band GeoTIFF from ``bands`` of shape (H, W, N) (e.g. probabilities x 255)."""
    from rasterio.windows import Window

    height, width, count = bands.shape

    def fill(dataset: Any) -> None:
        for start in range(0, height, BLOCK):
            stop = min(height, start + BLOCK)
            strip = np.asarray(bands[start:stop]).transpose(2, 0, 1)
            dataset.write(np.ascontiguousarray(strip), window=Window(0, start, width, stop - start))
        for k, text in enumerate(descriptions, start=1):
            dataset.set_band_description(k, text)

    return _write(Path(path), _profile(georef, height, width, count, "uint8", nodata), fill)
