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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hsi._core.errors import ConfigError, DataFormatError, DatasetNotFoundError, HSIError
from hsi._core.memory import check_fits_in_memory, format_bytes

if TYPE_CHECKING:
    import h5py

__all__ = ["ROLES", "SUPPORTED_EXTENSIONS", "Role", "load_array"]

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
    _check_file(path, role)
    fmt, reader = _reader_for(path, role)
    try:
        with warnings.catch_warnings():  # a library's warning about a damaged file is no help to a user
            warnings.simplefilter("ignore")
            array = reader(path, key, role)
    except (HSIError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a third-party traceback must not reach the user
        raise DataFormatError(
            f"could not read {role} file {path} as {fmt} ({type(exc).__name__}: {exc}); "
            "the file is truncated, corrupt or not in that format: download or copy it again."
        ) from exc
    if np.iscomplexobj(array):
        raise DataFormatError(
            f"{role} file {path} holds complex numbers ({array.dtype}); hsi-classify reads real values: "
            "save the magnitude (numpy.abs) or the real part."
        )
    if role == "gt" and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return array


def _check_file(path: Path, role: str) -> None:
    """Raises unless ``path`` is an existing, non-empty file."""
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
    return bool(np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0))


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
