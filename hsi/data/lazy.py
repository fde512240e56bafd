"""Cubes read window by window from disk, for scenes larger than memory.

:func:`open_lazy_cube` opens a cube file without reading its values: ENVI (``.hdr`` + raw
data, any interleave, memory-mapped through ``spectral``), NumPy ``.npy`` (``mmap_mode="r"``),
HDF5 ``.h5``/``.hdf5`` (an (H, W, B) dataset, read by h5py hyperslabs) and GeoTIFF
``.tif``/``.tiff`` (rasterio windows; ``pip install 'hsi-classify[geo]'``). Every
:meth:`LazyCube.read` maps or opens the file afresh and drops the mapping when done, so the
pages of a window read earlier do not stay in the process's resident memory: what a window
costs is the window.

Georeferencing (:class:`Georef`) comes from an ENVI header's ``coordinate system string``
(WKT) or ``map info`` (UTM zones and geographic lat/lon), or a GeoTIFF's CRS and transform;
wavelengths from an ENVI header's ``wavelength`` (+ ``wavelength units``) or GeoTIFF band tags.
:func:`outside_data` defines the pixels outside the data: spectra all zero, all non-finite, or
all equal to the header's ``data ignore value``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsi._core.errors import DataFormatError, DependencyNotFoundError
from hsi.data.padding import PAD_MODES
from hsi.data.patches import PatchSource

__all__ = [
    "LAZY_EXTENSIONS", "Georef", "LazyCube", "PatchMosaic", "WindowPatchSource", "envi_georef", "gather_mosaic",
    "is_lazy_readable", "mosaic_block_size", "open_lazy_cube", "outside_data", "pad_window", "require_rasterio",
    "window_with_halo",
]

#: Bytes of stored values one strip of :meth:`LazyCube.gather` may read at once.
_STRIP_BYTES = 64 << 20

#: Extensions read window by window (an ENVI data file may carry any extension next to its .hdr).
LAZY_EXTENSIONS = (".hdr", ".npy", ".h5", ".hdf5", ".tif", ".tiff")
_GEO_FIX = "pip install 'hsi-classify[geo]' (or pip install rasterio)"


def require_rasterio(what: str) -> Any:
    """Imports rasterio, or raises a one-line :class:`DependencyNotFoundError` saying how to install it."""
    try:
        import rasterio
    except ImportError:
        raise DependencyNotFoundError(f"{what} needs rasterio, which is not installed; {_GEO_FIX}.") from None
    return rasterio


@dataclass(frozen=True)
class Georef:
    """Where a scene lies: ``crs`` as WKT or ``"EPSG:n"``, ``transform`` as the affine
    ``(a, b, c, d, e, f)`` with x = a col + b row + c, y = d col + e row + f (pixel corners)."""

    crs: str
    transform: tuple[float, float, float, float, float, float]

    def window(self, row: int, col: int) -> Georef:
        """The georeferencing of a window whose top-left pixel is (row, col) of this scene."""
        a, b, c, d, e, f = self.transform
        return Georef(self.crs, (a, b, c + a * col + b * row, d, e, f + d * col + e * row))


@dataclass
class LazyCube:
    """A cube of shape (H, W, B) on disk; :meth:`read` returns one window in the stored dtype.

    Attributes:
        path: the file given.
        shape: (H, W, B).
        dtype: the stored dtype.
        wavelengths: band centres in nanometres, or None when the file does not say.
        georef: where the scene lies, or None.
        ignore_value: the header's ``data ignore value`` (fill outside the data), or None.
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    wavelengths: tuple[float, ...] | None
    georef: Georef | None
    ignore_value: float | None
    _reader: Callable[[slice, slice], np.ndarray]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """Pixels ``[rows, cols]`` (slices with step 1 inside the scene), shape (h, w, B), stored dtype."""
        return self._reader(rows, cols)

    def gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Spectra of the pixels ``(rows[i], cols[i])``, shape (N, B), stored dtype, in the order given.

        Read in strips of whole rows (at most :data:`_STRIP_BYTES` each, the pixels' column span
        only) in sorted order, so memory is one strip plus the result, and each stored page is
        read at most once whatever the interleave.
        """
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        out = np.empty((len(rows), self.shape[2]), dtype=self.dtype)
        order = np.lexsort((cols, rows))
        sorted_rows = rows[order]
        row_bytes = max(1, self.shape[1] * self.shape[2] * self.dtype.itemsize)
        strip = max(1, _STRIP_BYTES // row_bytes)
        start = 0
        while start < len(order):
            first = int(sorted_rows[start])
            stop = int(np.searchsorted(sorted_rows, first + strip, side="left"))
            part = order[start:stop]
            lo, hi = int(cols[part].min()), int(cols[part].max()) + 1
            window = self.read(slice(first, int(rows[part].max()) + 1), slice(lo, hi))
            out[part] = window[rows[part] - first, cols[part] - lo]
            start = stop
        return out


def is_lazy_readable(path: str | Path) -> bool:
    """True for files :func:`open_lazy_cube` reads window by window (by extension, or an ENVI .hdr beside it)."""
    path = Path(path)
    return path.suffix.lower() in LAZY_EXTENSIONS or _envi_header(path) is not None


def open_lazy_cube(path: str | Path, key: str | None = None) -> LazyCube:
    """Opens a cube file for window reads; reads its header only.

    Args:
        path: ENVI header or data file, ``.npy``, ``.h5``/``.hdf5`` or GeoTIFF.
        key: HDF5 only: the dataset's path inside the file (None: its only 3-D dataset).

    Raises:
        DatasetNotFoundError / DataFormatError: missing, empty, truncated or not a 3-D cube.
        DependencyNotFoundError: a GeoTIFF without rasterio installed.
    """
    from hsi.data.io import check_input_file

    path = Path(path)
    check_input_file(path, "cube")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        cube = _open_npy(path)
    elif suffix in (".h5", ".hdf5"):
        cube = _open_hdf5(path, key)
    elif suffix in (".tif", ".tiff"):
        cube = _open_geotiff(path)
    elif _envi_header(path) is not None:
        cube = _open_envi(path)
    else:
        raise DataFormatError(
            f"cube file {path} cannot be read window by window (extension {suffix or '(none)'!r}); expected one of "
            f"{', '.join(LAZY_EXTENSIONS)} or an ENVI data file beside its .hdr. Convert it, e.g. to ENVI or .npy."
        )
    if len(cube.shape) != 3 or min(cube.shape) < 1:
        raise DataFormatError(f"cube file {path} holds shape {cube.shape}; expected a 3-D cube (H, W, B).")
    return cube


# ---------------------------------------------------------------- windows


def window_with_halo(start: int, stop: int, halo: int, size: int) -> tuple[slice, int, int]:
    """The stored range of output range ``[start, stop)`` widened by ``halo`` and clipped to ``0..size``,
    and the (before, after) padding the clipped sides need."""
    lo, hi = max(0, start - halo), min(size, stop + halo)
    return slice(lo, hi), halo - (start - lo), halo - (hi - stop)


def pad_window(window: np.ndarray, pads: tuple[int, int, int, int], mode: str) -> np.ndarray:
    """Pads a window's scene edges (top, bottom, left, right) as :func:`hsi.data.padding.pad_cube` pads the scene.

    A window holding at least ``halo`` scene pixels beside each padded edge gets the same border
    values as the whole scene padded by ``halo``: the pad modes read only the pixels within the halo
    of the edge.
    """
    top, bottom, left, right = pads
    numpy_mode = PAD_MODES.get(mode).numpy_mode
    return np.pad(window, ((top, bottom), (left, right), (0, 0)), mode=numpy_mode)  # type: ignore[call-overload]


def outside_data(window: np.ndarray, ignore_value: float | None = None) -> np.ndarray:
    """Pixels outside the data, shape (h, w) bool: spectra all zero, all non-finite, or all ``ignore_value``."""
    if np.issubdtype(window.dtype, np.floating):
        finite = np.isfinite(window)
        out = ~finite.any(axis=2) | ((window == 0) | ~finite).all(axis=2)
    else:
        out = ~window.any(axis=2)
    if ignore_value is not None:
        out |= (window == ignore_value).all(axis=2)
    return out


# ---------------------------------------------------------------- formats


def _open_npy(path: Path) -> LazyCube:
    from hsi.data.io import _npy_header, _read_npy, check_npy_complete

    shape, dtype, offset = _npy_header(path, "cube")
    if dtype.hasobject or len(shape) != 3:
        _read_npy(path, None, "cube")  # its refusals (objects, truncation) in its words
        raise DataFormatError(f"cube file {path} holds shape {shape}; expected a 3-D cube (H, W, B).")
    check_npy_complete(path, "cube", shape, dtype, offset)

    def read(rows: slice, cols: slice) -> np.ndarray:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        try:
            return np.array(mapped[rows, cols])
        finally:
            del mapped  # unmapped: the window's pages leave the resident set

    return LazyCube(path, (shape[0], shape[1], shape[2]), dtype, None, None, None, read)


def _open_hdf5(path: Path, key: str | None) -> LazyCube:
    import h5py

    with h5py.File(path, "r") as f:
        found: list[str] = []
        f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) and obj.ndim == 3 else None)
        if key is None:
            if len(found) != 1:
                raise DataFormatError(
                    f"cannot tell which dataset of cube file {path} is the cube (3-D datasets: {found or 'none'}); "
                    "name it with --cube-key."
                )
            key = found[0]
        if key not in f or not isinstance(f[key], h5py.Dataset):
            raise DataFormatError(f"cube file {path} has no dataset {key!r}; 3-D datasets: {found or 'none'}.")
        dataset = f[key]
        shape, dtype = tuple(int(n) for n in dataset.shape), np.dtype(dataset.dtype)
    if len(shape) != 3:
        raise DataFormatError(f"dataset {key!r} of cube file {path} has shape {shape}; expected (H, W, B).")
    name = key

    def read(rows: slice, cols: slice) -> np.ndarray:
        with h5py.File(path, "r") as f:
            return np.asarray(f[name][rows, cols, :])

    return LazyCube(path, (shape[0], shape[1], shape[2]), dtype, None, None, None, read)


def _open_geotiff(path: Path) -> LazyCube:
    rasterio = require_rasterio(f"reading the GeoTIFF cube {path}")
    with rasterio.open(path) as src:
        shape = (src.height, src.width, src.count)
        dtype = np.dtype(src.dtypes[0])
        georef = None
        if src.crs is not None and not src.transform.is_identity:
            georef = Georef(src.crs.to_wkt(), tuple(src.transform)[:6])
        ignore = float(src.nodata) if src.nodata is not None else None
        wavelengths = _float_list([src.tags(b).get("wavelength") for b in range(1, src.count + 1)])

    def read(rows: slice, cols: slice) -> np.ndarray:
        from rasterio.windows import Window

        with rasterio.open(path) as src:
            data = src.read(window=Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start))
        return np.ascontiguousarray(data.transpose(1, 2, 0))

    return LazyCube(path, shape, dtype, wavelengths, georef, ignore, read)


def _envi_header(path: Path) -> Path | None:
    from hsi.data.io import _envi_header as header_of

    return header_of(path)


def envi_georef(path: Path) -> Georef | None:
    """The georeferencing an ENVI cube's header declares (the header alone is read), or None: no ENVI header,
    or no ``map info``."""
    from spectral.io import envi

    header = _envi_header(path)
    return None if header is None else _envi_georef(envi.read_envi_header(str(header)), path)


def _open_envi(path: Path) -> LazyCube:
    from spectral.io import envi

    from hsi.data.io import _envi_data_file, _read_envi, check_envi_complete, envi_layout_warning, warn_data

    header = _envi_header(path)
    if header is None:  # unreachable through open_lazy_cube; kept for direct calls
        raise DataFormatError(f"cube file {path} has no ENVI header next to it; expected {path}.hdr.")
    if header.read_bytes()[:4] != b"ENVI":
        _read_envi(path, None, "cube")  # refuses it in its words
    data_file = _envi_data_file(header, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = envi.open(str(header), str(data_file))
    image.fid.close()
    check_envi_complete(image, data_file)
    if (doubt := envi_layout_warning(image, data_file)) is not None:
        warn_data(doubt)
    meta = image.metadata

    def read(rows: slice, cols: slice) -> np.ndarray:
        mapped = image.open_memmap(interleave="bip")
        try:
            return np.array(mapped[rows, cols])
        finally:
            del mapped

    ignore = meta.get("data ignore value")
    return LazyCube(path, (image.nrows, image.ncols, image.nbands), np.dtype(image.dtype),
                    _envi_wavelengths(meta), _envi_georef(meta, path),
                    float(ignore) if ignore is not None else None, read)


def _float_list(values: Any) -> tuple[float, ...] | None:
    if not values or any(v is None for v in values):
        return None
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None


def _envi_wavelengths(meta: dict[str, Any]) -> tuple[float, ...] | None:
    """Band centres in nanometres (micrometres converted), or None."""
    values = _float_list(meta.get("wavelength"))
    if values is None:
        return None
    units = str(meta.get("wavelength units", "")).strip().lower()
    if units in ("micrometers", "micrometres", "um", "microns") or (not units and max(values) < 100):
        values = tuple(v * 1000.0 for v in values)
    return values


def _envi_georef(meta: dict[str, Any], path: Path) -> Georef | None:
    """The CRS and affine transform of an ENVI header's ``map info`` (+ ``coordinate system string``)."""
    info = meta.get("map info")
    if not info:
        return None
    fields = [str(v).strip() for v in (info if isinstance(info, list) else str(info).strip("{}").split(","))]
    try:
        ref_x, ref_y, easting, northing, size_x, size_y = (float(v) for v in fields[1:7])
    except (ValueError, IndexError):
        raise DataFormatError(
            f"ENVI header of {path} has a 'map info' it cannot read ({', '.join(fields[:7])}); expected "
            "{projection, ref x, ref y, easting, northing, pixel x, pixel y, ...}. Fix or remove it."
        ) from None
    rotation = 0.0
    for field in fields[7:]:
        if field.lower().startswith("rotation="):
            rotation = float(field.split("=", 1)[1])
    wkt = meta.get("coordinate system string")
    crs = (", ".join(wkt) if isinstance(wkt, list) else str(wkt)).strip("{} ") if wkt else _envi_crs(fields)
    if crs is None:
        return None
    # pixel (col, row) -> map: shift to the 1-based reference pixel, scale (y down), rotate, translate.
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    a, b, d, e = size_x * cos, size_y * sin, size_x * sin, -size_y * cos
    c = easting - a * (ref_x - 1) - b * (ref_y - 1)
    f = northing - d * (ref_x - 1) - e * (ref_y - 1)
    return Georef(crs, (a, b, c, d, e, f))


def _envi_crs(fields: list[str]) -> str | None:
    """EPSG code of ``map info`` without a WKT: UTM on WGS-84 / NAD83, or geographic WGS-84."""
    projection = fields[0].lower()
    datum = next((f for f in fields[7:] if "-" in f or f.lower().startswith("wgs") or "nad" in f.lower()), "")
    if projection == "utm" and len(fields) >= 9:
        zone, hemisphere = int(fields[7]), fields[8].lower()
        if re.sub(r"[^a-z0-9]", "", datum.lower()) in ("wgs84", ""):
            return f"EPSG:{(32600 if hemisphere.startswith('n') else 32700) + zone}"
        if "nad83" in re.sub(r"[^a-z0-9]", "", datum.lower()) and hemisphere.startswith("n"):
            return f"EPSG:{26900 + zone}"
        return None
    if projection.startswith("geographic"):
        return "EPSG:4326"
    return None



# ---------------------------------------------------------------- training patches of a cube on disk


@dataclass
class PatchMosaic:
    """The windows around chosen pixels of a scene, side by side in one padded array.

    ``padded`` (Hm + p - 1, Wm + p - 1, C) is laid out as :class:`WindowPatchSource` expects, and
    pixel ``i`` of the request has its p x p window at mosaic pixel ``(rows[i], cols[i])``: the
    window the whole scene, padded by :func:`hsi.data.padding.pad_cube`, gives that pixel.
    """

    padded: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    block_size: int

    def source(self, *, patch_size: int, device: torch.device | str = "cpu") -> WindowPatchSource:
        """The mosaic as a patch source; its pixels ``(rows[i], cols[i])`` are the request's."""
        return WindowPatchSource(self.padded, patch_size=patch_size, device=device)


def mosaic_block_size(rows: np.ndarray, cols: np.ndarray, patch_size: int) -> int:
    """The block side b whose mosaic is smallest: (blocks holding a pixel) x (b + p - 1)^2 values.

    b = 1 is one window per pixel (scattered labels); larger blocks share the halo between
    neighbouring labelled pixels (labelled fields).
    """
    best, best_cost = 1, None
    for b in (1, 2, 4, 8, 16, 32, 64, 128):
        n_blocks = len(np.unique((rows // b) * (int(cols.max(initial=0)) // b + 1) + cols // b))
        cost = n_blocks * (b + patch_size - 1) ** 2
        if best_cost is None or cost < best_cost:
            best, best_cost = b, cost
    return best


def gather_mosaic(
    cube: LazyCube, rows: np.ndarray, cols: np.ndarray, *, patch_size: int, pad_mode: str,
    transform: Callable[[np.ndarray, tuple[int, int]], np.ndarray], block_size: int | None = None,
) -> PatchMosaic:
    """Reads only the windows around pixels ``(rows[i], cols[i])`` and lays them out as a :class:`PatchMosaic`.

    The scene is cut into blocks of ``block_size`` (default :func:`mosaic_block_size`); each
    block holding a requested pixel is read with a halo of ``p // 2`` (scene edges padded by
    :func:`pad_window` in ``pad_mode``), passed through ``transform`` and placed in the mosaic.
    Memory: the mosaic, (blocks) x (b + p - 1)^2 x C values, and one block's raw window.

    Args:
        rows, cols: int arrays of shape (N,), scene pixels.
        transform: ``(raw window (h, w, B) stored dtype, its top-left scene pixel) -> (h, w, C) float32``,
            applied per pixel (a window's features equal the whole scene's there).
    """
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    height, width = cube.shape[:2]
    halo, b = patch_size // 2, block_size or mosaic_block_size(rows, cols, patch_size)
    side = b + patch_size - 1
    blocks, slot_of = np.unique(np.stack([rows // b, cols // b], axis=1), axis=0, return_inverse=True)
    slot_of = slot_of.reshape(-1)
    per_row = max(1, math.isqrt(len(blocks)))  # a square-ish mosaic
    n_rows = -(-len(blocks) // per_row)
    padded: np.ndarray | None = None
    for slot, (block_row, block_col) in enumerate(blocks):
        top, left = int(block_row) * b, int(block_col) * b
        read_rows, pad_top, pad_bottom = window_with_halo(top, min(top + b, height), halo, height)
        read_cols, pad_left, pad_right = window_with_halo(left, min(left + b, width), halo, width)
        window = transform(cube.read(read_rows, read_cols), (read_rows.start, read_cols.start))
        window = pad_window(window, (pad_top, pad_bottom, pad_left, pad_right), pad_mode)
        if padded is None:  # zeros between the blocks: no pixel's window reads them
            padded = np.zeros((n_rows * side, per_row * side, window.shape[2]), dtype=np.float32)
        r0, c0 = (slot // per_row) * side, (slot % per_row) * side
        padded[r0 : r0 + window.shape[0], c0 : c0 + window.shape[1]] = window
    if padded is None:
        raise ValueError("gather_mosaic needs at least one pixel.")
    # Mosaic pixel of request i: its slot's origin plus its offset inside the block.
    mosaic_rows = (slot_of // per_row) * side + rows % b
    mosaic_cols = (slot_of % per_row) * side + cols % b
    return PatchMosaic(padded, mosaic_rows, mosaic_cols, b)


class WindowPatchSource(PatchSource):
    """A :class:`~hsi.data.patches.PatchSource` over one window of a scene, padded already: its halo
    read from the scene, its scene edges padded by :func:`pad_window` (so it is not padded again).

    Args:
        padded: shape (h + p - 1, w + p - 1, C) float32.
        patch_size: odd window side p.
        device: where the padded window lives.
    """

    def __init__(self, padded: np.ndarray, *, patch_size: int, device: torch.device | str = "cpu") -> None:
        self.patch_size = patch_size
        self.height, self.width = padded.shape[0] - (patch_size - 1), padded.shape[1] - (patch_size - 1)
        self.n_channels = int(padded.shape[2])
        self.padded = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))).to(device)
        self._offsets = torch.arange(patch_size, device=self.padded.device)
