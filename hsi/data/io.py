"""Reading cubes and ground-truth maps from disk, whatever the container.

:func:`load_array` is the one entry point. It returns the array exactly as stored (same
dtype, no float64 copy); :mod:`hsi.data.scene` converts cubes to float32 once.

Supported formats:

- MATLAB ``.mat`` v4/v5/v7 (``scipy.io.loadmat``) and v7.3 (HDF5, via ``h5py``). MATLAB
  writes v7.3 arrays column-major, so h5py sees them with reversed axes; they are
  transposed back, giving the same (H, W, B) array as a v5 read.
- ENVI: a ``.hdr`` header plus a raw data file, any interleave (BSQ, BIL, BIP). Either the
  header or the data path may be given. Returned as (H, W, B).
- NumPy ``.npy`` (``allow_pickle=False``).
- Single-band images ``.png``, ``.tif``, ``.tiff`` (ground truth only).

Files may come from anyone. Before an array is read, the size its container declares (HDF5
dataset shape, MATLAB v5 variable header, ENVI header, ``.npy`` header, image size) is
compared with the memory available (:func:`hsi._core.memory.check_fits_in_memory`), so a small
file declaring a huge cube is refused in one line instead of exhausting memory. Library
warnings raised while reading are dropped: the refusals say what matters in the tool's words.
The package's own :class:`DataWarning` passes: an ENVI header whose byte order or interleave
looks false on a small sample of the data (:func:`envi_layout_warning`) is told in one line.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hsi._core.errors import ConfigError, DataFormatError, DatasetNotFoundError, HSIError, InputTooLargeError
from hsi._core.memory import check_fits_in_memory, format_bytes, memory_budget

if TYPE_CHECKING:
    import h5py

__all__ = ["ROLES", "SUPPORTED_EXTENSIONS", "DataWarning", "Role", "check_input_file", "envi_layout_warning",
           "load_array", "warn_data"]

Role = Literal["cube", "gt"]
ROLES: tuple[str, ...] = ("cube", "gt")

#: Extension -> format description (ENVI data files may carry any extension next to a ``.hdr``).
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".mat": "MATLAB v4/v5/v7/v7.3",
    ".hdr": "ENVI header (the data file sits next to it)",
    ".npy": "NumPy array",
    ".png": "single-band image (ground truth only)",
    ".tif": "single-band image (ground truth only)",
    ".tiff": "single-band image (ground truth only)",
}
_ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".sli")
_MATLAB_NUMERIC = frozenset(
    "double single int8 uint8 int16 uint16 int32 uint32 int64 uint64 logical".split()
)
# MATLAB class -> numpy dtype, for the size a variable header declares
_MATLAB_DTYPE = {"double": "float64", "single": "float32", "logical": "bool", "char": "uint16"} | {
    t: t for t in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
}
_KEY_FLAG = {"cube": "--cube-key", "gt": "--gt-key"}
_WHAT = {"cube": "3-D cube (H, W, B)", "gt": "2-D integer label map (H, W)"}

# name -> (shape as MATLAB sees it, MATLAB class)
_Variables = dict[str, tuple[tuple[int, ...], str]]


def load_array(path: str | Path, key: str | None = None, *, role: Role = "cube") -> np.ndarray:
    """Reads one array (a cube or a ground-truth map) from a file.

    Args:
        path: the file; the extension picks the format (see the module docstring).
        key: variable name inside a ``.mat`` file. ``None`` picks it: for ``role="cube"``
            the only 3-D array, for ``role="gt"`` the only 2-D integer-valued array.
            Ignored by single-array formats (ENVI, ``.npy``, images).
        role: ``"cube"`` or ``"gt"``; guides the key choice and the messages.

    Returns:
        The stored array, in its stored dtype: shape (H, W, B) for a cube, (H, W) for a
        ground truth (a single-band ENVI ground truth is squeezed to 2-D).

    Raises:
        DatasetNotFoundError: the file does not exist.
        DataFormatError: the file is empty, truncated, not in the format its name says,
            of an unknown extension, or the key is missing or cannot be guessed.
    """
    path = Path(path)
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}; got {role!r}.")
    check_input_file(path, role)
    fmt, reader = _reader_for(path, role)
    try:
        # A library's warning about a damaged file is no help to a user: only the package's own are kept.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            array = reader(path, key, role)
    except HSIError:
        raise
    except MemoryError:  # the declared size fitted the budget, the allocation did not (other work took the memory)
        budget = memory_budget()
        raise InputTooLargeError(
            f"{role} file {path} could not be read: the process ran out of memory ({format_bytes(budget.left)} "
            f"available now, under {budget.source}); close other programs, crop the scene or use a machine with "
            "more memory."
        ) from None
    except Exception as exc:  # noqa: BLE001 - a third-party traceback must not reach the user
        raise DataFormatError(
            f"could not read {role} file {path} as {fmt} ({type(exc).__name__}: {exc}); "
            "the file is truncated, corrupt or not in that format: download or copy it again."
        ) from exc
    for item in caught:
        if issubclass(item.category, DataWarning):
            warn_data(str(item.message))
    if np.iscomplexobj(array):
        raise DataFormatError(
            f"{role} file {path} holds complex numbers ({array.dtype}); hsi-classify reads real values: "
            "save the magnitude (numpy.abs) or the real part."
        )
    if role == "gt" and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return array


def check_input_file(path: Path, role: str) -> None:
    """Raises unless ``path`` is an existing, non-empty file: the one-line refusals every reader and check says."""
    if not path.exists():
        raise DatasetNotFoundError(
            f"{role} file not found: {path}; check the path (relative paths start at {Path.cwd()})."
        )
    if not path.is_file():
        raise DataFormatError(f"{role} path {path} is a folder, not a file; pass the file inside it.")
    if path.stat().st_size == 0:
        raise DataFormatError(
            f"{role} file {path} is empty (0 bytes); it was probably cut off while downloading or "
            "copying: download or copy it again."
        )


def _reader_for(path: Path, role: str) -> tuple[str, Callable[[Path, str | None, str], np.ndarray]]:
    """Returns (format description, reader) for ``path``, from its extension."""
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[Path, str | None, str], np.ndarray]] = {
        ".mat": _read_mat,
        ".hdr": _read_envi,
        ".npy": _read_npy,
        ".png": _read_image,
        ".tif": _read_image,
        ".tiff": _read_image,
    }
    if suffix in readers:
        return SUPPORTED_EXTENSIONS[suffix], readers[suffix]
    if _envi_header(path) is not None:
        return "ENVI data file", _read_envi
    supported = ", ".join(SUPPORTED_EXTENSIONS)
    raise DataFormatError(
        f"{role} file {path} has an unsupported extension {suffix or '(none)'!r}; expected one of "
        f"{supported}, or an ENVI data file next to its .hdr. Convert the file to one of these."
    )


def _head(path: Path, n_bytes: int = 16) -> bytes:
    with path.open("rb") as f:
        return f.read(n_bytes)


def _check_declared_size(path: Path, role: str, shape: tuple[int, ...], itemsize: int, dtype: str) -> None:
    """Refuses an array whose declared size does not fit in the memory available, before reading it.

    A cube is also converted to float32 once read (:mod:`hsi.data.scene`), so that copy counts too.
    """
    if any(int(n) < 0 for n in shape):
        raise DataFormatError(f"{role} file {path} declares a negative size {shape}; the file is damaged.")
    count = math.prod(int(n) for n in shape)
    stored = count * itemsize
    needed = stored + (count * 4 if role == "cube" and dtype != "float32" else 0)
    dims = " x ".join(str(int(n)) for n in shape)
    check_fits_in_memory(
        needed,
        what=f"{role} file {path} declares a {dims} {dtype} array ({format_bytes(stored)} stored); it",
        fix="crop the scene or keep fewer bands, or use a machine with more memory (if the file cannot be that "
        "large, it is damaged: copy it again)",
    )


# ---------------------------------------------------------------- MATLAB


def _read_mat(path: Path, key: str | None, role: str) -> np.ndarray:
    """Reads a variable from a MATLAB file of any version."""
    import h5py  # the readers' libraries load on first read: listing scenes must start fast

    if h5py.is_hdf5(path):
        return _read_mat_v73(path, key, role)
    with path.open("rb") as f:
        header = f.read(128)
    has_header = len(header) == 128 and header[126:128] in (b"IM", b"MI")
    try:
        variables = _mat_v5_variables(path)
        return _pick_variable(path, variables, lambda name: _mat_v5_read(path, name, variables, role), key, role)
    except (HSIError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001
        if has_header:
            raise  # a damaged v5 file: load_array wraps it with the file's name
        raise DataFormatError(  # no v5 header, and not the header-less v4 layout either
            f"{role} file {path} is not a MATLAB .mat file (no MATLAB header; it starts with {_head(path)!r}); "
            "pass the real .mat file, or rename the file to its true format."
        ) from exc


def _mat_v5_variables(path: Path) -> _Variables:
    import scipy.io

    return {name: (tuple(shape), cls) for name, shape, cls in scipy.io.whosmat(path)}


def _mat_v5_read(path: Path, name: str, variables: _Variables, role: str) -> np.ndarray:
    import scipy.io

    shape, cls = variables.get(name, ((), ""))
    if cls in ("cell", "struct", "object", "function", "opaque", "unknown"):  # scipy would build an object per element
        raise DataFormatError(
            f"{role} file {path}: variable {_printable(name)} is a {cls} {shape}, not a numeric array; pass the name "
            f"of the {_WHAT[role]} ({_KEY_FLAG[role]})."
        )
    if cls in _MATLAB_DTYPE:
        dtype = np.dtype(_MATLAB_DTYPE[cls])
        _check_declared_size(path, role, shape, dtype.itemsize, str(dtype))
    _check_mat_v5_data_types(path, name, role)
    return np.asarray(scipy.io.loadmat(path, variable_names=[name])[name])


# miINT8..miSINGLE, miDOUBLE, miINT64, miUINT64, miUTF8..miUTF32: the types of a numeric array's data
_MI_DATA_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 17, 18})
_MX_WITH_DATA = range(4, 16)  # mxCHAR_CLASS .. mxUINT64_CLASS: arrays whose data follows their name
_MAT_HEADER_LIMIT = 1 << 16  # a variable's flags, dimensions and name fit in far less


def _check_mat_v5_data_types(path: Path, name: str, role: str) -> None:
    """Refuses variable ``name`` when its data element has a type MATLAB never writes, before scipy reads it.

    scipy 1.17's reader crashes the process (segmentation fault) on such a file instead of raising,
    so the variable's element headers are read here first: only its tags, at most 64 kB of it.
    """
    import struct
    import zlib

    with path.open("rb") as f:
        endian = "<" if f.read(128)[126:128] == b"IM" else ">"
        while len(tag := f.read(8)) == 8:
            kind, size = struct.unpack(endian + "II", tag)
            start = f.tell()
            head = f.read(min(size, _MAT_HEADER_LIMIT))
            if kind == 15:  # miCOMPRESSED: the variable's miMATRIX element, zlib-compressed
                try:
                    head = zlib.decompressobj().decompress(head, _MAT_HEADER_LIMIT)
                except zlib.error:
                    return  # scipy refuses a broken stream itself, with an exception
            elif kind == 14:
                head = tag + head
            else:
                return  # not a variable: scipy refuses it itself
            found = _mat_v5_matrix_types(head, endian)
            if found is not None and found[0] == name:
                bad = [t for t in found[1] if t not in _MI_DATA_TYPES]
                if bad:
                    raise DataFormatError(
                        f"{role} file {path} is damaged: variable {name!r} has a data element of type {bad[0]}, "
                        "which MATLAB never writes; download or copy the file again."
                    )
                return
            f.seek(start + size + (-size % 8 if kind == 14 else 0))


def _mat_v5_matrix_types(element: bytes, endian: str) -> tuple[str, list[int]] | None:
    """(name, data element types) of a miMATRIX element's start; None when it is cut short or not a matrix."""
    import struct

    def tag(pos: int) -> tuple[int, int, int, int]:  # (type, data start, data size, next element)
        kind, size = struct.unpack_from(endian + "II", element, pos)
        if kind >> 16:  # small data element: type and size share the first 4 bytes, data the next 4
            return kind & 0xFFFF, pos + 4, kind >> 16, pos + 8
        return kind, pos + 8, size, pos + 8 + size + (-size % 8)

    try:
        if struct.unpack_from(endian + "I", element, 0)[0] != 14:
            return None
        _, flags_at, _, pos = tag(8)
        flags = struct.unpack_from(endian + "I", element, flags_at)[0]
        pos = tag(pos)[3]  # the dimensions
        _, name_at, name_size, pos = tag(pos)
        name = element[name_at:name_at + name_size].decode("latin-1")
        if (flags & 0xFF) not in _MX_WITH_DATA:
            return name, []
        real, _, _, pos = tag(pos)
        return name, [real, tag(pos)[0]] if flags & 0x800 else [real]  # 0x800: complex, an imaginary part follows
    except struct.error:
        return None


def _read_mat_v73(path: Path, key: str | None, role: str) -> np.ndarray:
    """Reads a variable from a MATLAB v7.3 (HDF5) file, undoing MATLAB's column-major layout."""
    import h5py

    with h5py.File(path, "r") as f:
        variables: _Variables = {}
        for name, obj in f.items():
            if name.startswith("#"):  # '#refs#', '#subsystem#': MATLAB's internal groups
                continue
            if isinstance(obj, h5py.Dataset):
                variables[name] = (tuple(reversed(obj.shape)), _matlab_class(obj))
            else:
                variables[name] = ((), _matlab_class(obj) or "struct")

        def read(name: str) -> np.ndarray:
            dataset = f[name]
            if not isinstance(dataset, h5py.Dataset):
                raise DataFormatError(
                    f"{role} file {path}: variable {name!r} is a {_matlab_class(dataset) or 'struct'}, not a numeric "
                    f"array; pass the name of the {_WHAT[role]} ({_KEY_FLAG[role]})."
                )
            _check_declared_size(path, role, tuple(reversed(dataset.shape)), dataset.dtype.itemsize,
                                 str(dataset.dtype))
            array = np.asarray(dataset[()]).transpose()  # a view: no copy
            return array.astype(bool) if _matlab_class(dataset) == "logical" else array

        return _pick_variable(path, variables, read, key, role)


def _matlab_class(obj: h5py.HLObject) -> str:
    value = obj.attrs.get("MATLAB_class", b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def _pick_variable(
    path: Path,
    variables: _Variables,
    read: Callable[[str], np.ndarray],
    key: str | None,
    role: str,
) -> np.ndarray:
    """Reads ``key``, or the one variable that fits ``role`` when ``key`` is None."""
    if key is not None:
        if key not in variables:
            raise DataFormatError(
                f"{role} file {path} has no variable {key!r}; it holds {_describe(variables)}. "
                f"Pass one of these names ({_KEY_FLAG[role]})."
            )
        return read(key)
    ndim = 3 if role == "cube" else 2
    candidates = [
        name
        for name, (shape, cls) in variables.items()
        if (cls in _MATLAB_NUMERIC or not cls) and len(shape) == ndim and min(shape[:2]) > 1
    ]
    if role == "gt" and len(candidates) > 1:
        arrays = {name: read(name) for name in candidates}
        integer = [name for name in candidates if _is_integer_valued(arrays[name])]
        if len(integer) == 1:
            return arrays[integer[0]]
        candidates = integer or candidates
    if len(candidates) == 1:
        return read(candidates[0])
    found = (
        f"several fit: {_describe({n: variables[n] for n in candidates})}"
        if candidates
        else f"none fits among {_describe(variables)}"
    )
    raise DataFormatError(
        f"cannot tell which variable of {role} file {path} is the {_WHAT[role]}; {found}. "
        f"Name it with {_KEY_FLAG[role]} NAME."
    )


def _describe(variables: _Variables) -> str:
    if not variables:
        return "no variables"
    shown = [f"{_printable(name)} {shape} {cls}".rstrip() for name, (shape, cls) in list(variables.items())[:10]]
    more = f" and {len(variables) - 10} more" if len(variables) > 10 else ""
    return ", ".join(shown) + more


def _printable(name: str) -> str:
    """A variable name as a message can show it: a damaged file's names may hold line breaks or be huge."""
    return name if name.isprintable() and len(name) <= 64 else repr(name[:64])


def _is_integer_valued(array: np.ndarray) -> bool:
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return True
    if not np.issubdtype(array.dtype, np.floating):
        return False
    with np.errstate(invalid="ignore"):  # inf % 1 is NaN (not integer-valued), without numpy's warning
        return bool(np.all(np.mod(array, 1) == 0))


# ---------------------------------------------------------------- ENVI


def _envi_header(path: Path) -> Path | None:
    """The ENVI header of ``path`` (itself if a .hdr), or None when there is none."""
    if path.suffix.lower() == ".hdr":
        return path
    for header in (path.with_suffix(".hdr"), path.with_name(path.name + ".hdr")):
        if header.is_file():
            return header
    return None


def _envi_data_file(header: Path, given: Path) -> Path:
    if given != header:
        return given
    for suffix in _ENVI_DATA_SUFFIXES:
        for candidate in (header.with_suffix(suffix), header.with_suffix(suffix.upper())):
            if candidate != header and candidate.is_file():
                return candidate
    raise DataFormatError(
        f"found ENVI header {header} but no data file next to it (tried the suffixes "
        f"{', '.join(repr(s) for s in _ENVI_DATA_SUFFIXES)}); pass the data file's path instead."
    )


def _read_envi(path: Path, key: str | None, role: str) -> np.ndarray:
    """Reads an ENVI image as (H, W, B) in its stored dtype, whatever its interleave."""
    from spectral.io import envi

    header = _envi_header(path)
    if header is None:  # unreachable through _reader_for; kept for direct calls
        raise DataFormatError(f"{role} file {path} has no ENVI header next to it; expected {path}.hdr.")
    if header.read_bytes()[:4] != b"ENVI":
        raise DataFormatError(
            f"{role} file {header} is not an ENVI header (its first line must be 'ENVI'; "
            f"it starts with {_head(header)!r}); pass a real ENVI .hdr file."
        )
    data_file = _envi_data_file(header, path)
    image = envi.open(str(header), str(data_file))
    try:
        check_envi_complete(image, data_file)
        _check_declared_size(data_file, role, (image.nrows, image.ncols, image.nbands), image.sample_size,
                             str(np.dtype(image.dtype)))
        if role == "cube" and (doubt := envi_layout_warning(image, data_file)) is not None:
            warnings.warn(doubt, DataWarning, stacklevel=1)  # load_array passes it on (warn_data)
        return np.array(image.open_memmap(interleave="bip"))  # copy in stored dtype; frees the map
    finally:
        image.fid.close()


# ---------------------------------------------------------------- NumPy and images


def _read_npy(path: Path, key: str | None, role: str) -> np.ndarray:
    if _head(path, 6) != b"\x93NUMPY":
        raise DataFormatError(
            f"{role} file {path} is not a NumPy .npy file (it starts with {_head(path)!r}); "
            "save it with numpy.save, or rename it to its true format."
        )
    shape, dtype, offset = _npy_header(path, role)
    if dtype.hasobject:
        raise DataFormatError(
            f"{role} file {path} holds Python objects (it would need pickle to load), not numbers; "
            "hsi-classify reads numeric arrays only: save the array with a numeric dtype."
        )
    check_npy_complete(path, role, shape, dtype, offset)
    _check_declared_size(path, role, shape, dtype.itemsize, str(dtype))
    return np.asarray(np.load(path, allow_pickle=False))


def check_npy_complete(path: Path, role: str, shape: tuple[int, ...], dtype: np.dtype, offset: int) -> None:
    """Raises :class:`DataFormatError` when a .npy file holds fewer bytes than its header declares."""
    expected = offset + math.prod(shape) * dtype.itemsize
    found = path.stat().st_size
    if found < expected:
        raise DataFormatError(
            f"{role} file {path} is truncated: its header describes a {' x '.join(map(str, shape))} {dtype} array "
            f"({expected} bytes with the header) but the file has {found} bytes; copy it again."
        )


#: The interleaves an ENVI header may declare (band sequential, by line, by pixel).
ENVI_INTERLEAVES = ("bsq", "bil", "bip")


def check_envi_complete(image: Any, data_file: Path) -> None:
    """Raises :class:`DataFormatError` when an ENVI header (a ``spectral`` image) declares an interleave other
    than :data:`ENVI_INTERLEAVES` (the values would be read in the wrong order), or its data file is shorter
    than the header says."""
    interleave = str(image.metadata.get("interleave", "bsq")).strip().lower()
    if interleave not in ENVI_INTERLEAVES:
        raise DataFormatError(
            f"ENVI header of {data_file} declares interleave = {interleave[:40]!r}; expected one of "
            f"{', '.join(ENVI_INTERLEAVES)}. Fix the header's interleave line to the order the data was written in."
        )
    expected = image.offset + image.nrows * image.ncols * image.nbands * image.sample_size
    found = data_file.stat().st_size
    if found < expected:
        raise DataFormatError(
            f"ENVI data file {data_file} is truncated: its header describes {image.nrows}x{image.ncols}"
            f"x{image.nbands} values ({expected} bytes) but the file has {found} bytes; copy it again."
        )


class DataWarning(UserWarning):
    """A data file can be read but looks wrong (e.g. an ENVI header whose byte order or interleave seems false)."""


_warned: set[str] = set()


def warn_data(message: str) -> None:
    """Warns ``message`` as a :class:`DataWarning`, once per process (a file opened twice warns once)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, DataWarning, stacklevel=2)


#: Where the layout check samples: rows spread over the scene, a run of columns in each, at most this many bands.
_LAYOUT_ROWS, _LAYOUT_COLS, _LAYOUT_BANDS = 8, 9, 96
#: A reading's plausibility (neighbour agreement less band-to-band roughness) must beat the declared one's by this.
_LAYOUT_MARGIN = 0.3
_BYTE_ORDER_NAMES = {0: "0 (little-endian)", 1: "1 (big-endian)"}


def envi_layout_warning(image: Any, data_file: Path) -> str | None:
    """A one-line warning when an ENVI header's byte order or interleave looks false, else None.

    Reads a small sample (8 rows of 9 pixels and their neighbours, at most 96 adjacent bands:
    a few thousand values, whatever the scene's size) as declared and as each other interleave
    and byte order would lay it out. A real scene read the right way has spectra that change
    little between adjacent bands (low roughness: mean |adjacent-band step| / mean |value - spectrum
    mean|) and look like their neighbours' (correlation with the pixel to the right and below);
    read the wrong way, a spectrum jumps between unrelated values, or becomes a run of
    neighbouring pixels that disagrees with the next run. The header is doubted only when
    another reading scores clearly better (by :data:`_LAYOUT_MARGIN`) and is itself plausible;
    noise-like data (no reading plausible) and scenes too small to sample are left alone.

    Args:
        image: the header as ``spectral.io.envi.open`` read it.
        data_file: its data file.
    """
    height, width, bands = int(image.nrows), int(image.ncols), int(image.nbands)
    declared_layout = str(image.metadata.get("interleave", "bsq")).strip().lower()
    if height < 2 or width < 2 or bands < 3 or declared_layout not in ENVI_INTERLEAVES:
        return None
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "iuf":
        return None
    band_lo = max(0, (bands - _LAYOUT_BANDS) // 4)  # past the first bands (often noisy or blank), as many as allowed
    band_hi = min(bands, band_lo + _LAYOUT_BANDS)
    rows = np.unique(np.linspace(0, height - 2, _LAYOUT_ROWS).round().astype(int))
    n_cols = min(_LAYOUT_COLS, width)
    col_starts = np.linspace(0, width - n_cols, len(rows)).round().astype(int)
    offset, size = int(image.offset), dtype.itemsize
    try:
        with data_file.open("rb") as fh:
            fd = fh.fileno()
            raw = {layout: _layout_sample(fd, layout, offset, size, (height, width, bands), rows, col_starts, n_cols,
                                          (band_lo, band_hi)) for layout in ENVI_INTERLEAVES}
    except (OSError, ValueError):
        return None
    orders = [(dtype, int(image.byte_order))]
    if size > 1:
        orders.append((dtype.newbyteorder(), 1 - int(image.byte_order)))
    scores = {}
    for layout, buffer in raw.items():
        for order_dtype, order in orders:
            values = np.frombuffer(buffer, dtype=order_dtype).reshape(len(rows), 2, n_cols, band_hi - band_lo)
            scores[(layout, order)] = _plausibility(values)
    declared = (declared_layout, int(image.byte_order))
    best = max(scores, key=lambda k: -np.inf if np.isnan(scores[k]) else scores[k])
    found, claimed = scores[best], scores[declared]
    claimed = -2.0 if np.isnan(claimed) else claimed
    if best == declared or np.isnan(found) or found < _LAYOUT_MARGIN or found - claimed < _LAYOUT_MARGIN:
        return None
    fixes = []
    if best[0] != declared[0]:
        fixes.append(f"interleave = {best[0]}")
    if best[1] != declared[1]:
        fixes.append(f"byte order = {best[1]}")
    return (f"ENVI header of {data_file} may be wrong: read as it declares (interleave = {declared[0]}, byte order = "
            f"{_BYTE_ORDER_NAMES.get(declared[1], declared[1])}), a sample of pixels has spectra that jump between "
            f"adjacent bands or disagree with their neighbours; read with {' and '.join(fixes)} they look like a real "
            f"scene. If that is how the file was written, set {' and '.join(repr(f) for f in fixes)} in the header.")


def _layout_sample(fd: int, layout: str, offset: int, size: int, shape: tuple[int, int, int], rows: np.ndarray,
                   col_starts: np.ndarray, n_cols: int, band_range: tuple[int, int]) -> bytes:
    """The raw bytes of pixels ``[r : r + 2, c : c + n_cols]`` (each row ``r`` of ``rows`` with its start ``c``),
    bands ``band_range``, as if the file were laid out as ``layout``: shape (rows, 2, n_cols, bands) in C order."""
    import os

    height, width, bands = shape
    lo, hi = band_range
    parts = []

    def read(position: int, length: int) -> bytes:
        data = os.pread(fd, length, offset + position * size)
        if len(data) != length:
            raise ValueError("short read")
        return data

    for row, col in zip(rows.tolist(), col_starts.tolist(), strict=True):
        for r in (row, row + 1):
            if layout == "bip":  # the run of pixels is contiguous, all bands of each together
                block = np.frombuffer(read((r * width + col) * bands, n_cols * bands * size), dtype=f"V{size}")
                parts.append(block.reshape(n_cols, bands)[:, lo:hi].tobytes())
                continue
            per_band = []
            for band in range(lo, hi):
                start = (band * height + r) * width + col if layout == "bsq" else (r * bands + band) * width + col
                per_band.append(np.frombuffer(read(start, n_cols * size), dtype=f"V{size}"))
            parts.append(np.stack(per_band, axis=1).tobytes())  # (n_cols, bands)
    return b"".join(parts)


def _plausibility(values: np.ndarray) -> float:
    """How much ``values`` (rows, 2, cols, bands) look like spectra of a scene: the median correlation of a
    spectrum with its right and lower neighbours (the smaller) less its median band-to-band roughness;
    NaN when fewer than 8 pixels can be scored (constant spectra, non-finite or absurd values)."""
    with np.errstate(all="ignore"):
        x = values.astype(np.float64)
        x[~np.isfinite(x) | (np.abs(x) > 1e30)] = np.nan
        here, right, below = x[:, 0, :-1], x[:, 0, 1:], x[:, 1, :-1]
        here, right, below = (a.reshape(-1, a.shape[-1]) for a in (here, right, below))
        centred = [a - a.mean(axis=1, keepdims=True) for a in (here, right, below)]
        spread = np.abs(centred[0]).mean(axis=1)
        rough = np.abs(np.diff(here, axis=1)).mean(axis=1) / spread

        def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))

        agree = np.minimum(correlation(centred[0], centred[1]), correlation(centred[0], centred[2]))
        ok = np.isfinite(rough) & np.isfinite(agree) & (spread > 0)
    if ok.sum() < 8:
        return float("nan")
    return float(np.median(agree[ok]) - np.median(rough[ok]))


def _npy_header(path: Path, role: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from a .npy header, read without loading the data."""
    from numpy.lib import format as npy_format

    with path.open("rb") as f:
        try:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(f)
            else:
                shape, _, dtype = npy_format.read_array_header_2_0(f)
        except (ValueError, SyntaxError, TypeError, EOFError):
            raise DataFormatError(
                f"{role} file {path} has a damaged .npy header (truncated or edited); save it again with numpy.save."
            ) from None
        return tuple(int(n) for n in shape), np.dtype(dtype), f.tell()


def _read_image(path: Path, key: str | None, role: str) -> np.ndarray:
    """Reads a single-band label image (PNG/TIFF) as (H, W) in its stored dtype."""
    if role != "gt":
        raise DataFormatError(
            f"{role} file {path} is an image; images hold ground truth only. Save the cube as "
            ".mat, .npy or ENVI."
        )
    from PIL import Image

    with Image.open(path) as image:  # reads the header only
        bands = len(image.getbands())
        _check_declared_size(path, role, (image.height, image.width, bands), 8, "pixel")
        if getattr(image, "n_frames", 1) > 1:
            raise DataFormatError(
                f"gt image {path} has {image.n_frames} pages; expected one single-band label map. "
                "Save the ground truth as a single-page image or .npy."
            )
        array = np.array(image)
        mode = image.mode
    if array.ndim != 2:
        raise DataFormatError(
            f"gt image {path} must be single-band (greyscale or indexed); got mode {mode} with shape "
            f"{array.shape}. Save the label map with one integer id per pixel."
        )
    return array
