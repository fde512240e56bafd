"""Atomic file writes: a crash or Ctrl-C never leaves a half-written file under its final name.

Each function writes to a hidden temporary file in the destination folder, flushes it to
disk, then renames it over the destination with :func:`os.replace` (atomic on POSIX and
Windows when both names are on the same file system, which the shared folder guarantees).
On failure the temporary file is removed and the previous file, if any, is left intact.
Missing parent folders are created.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from matplotlib.figure import Figure

from hsi._core.errors import ConfigError

__all__ = [
    "atomic_save_figure",
    "atomic_save_json",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_text",
    "to_jsonable",
]

PathLike = str | os.PathLike[str]


def _fsync_dir(folder: Path) -> None:
    """Best effort: persists the rename itself (POSIX only; a no-op elsewhere)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_binary(path: PathLike) -> Iterator[IO[bytes]]:
    """Yields a binary file object; on clean exit its content replaces ``path`` atomically."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 honours the umask, so the final file gets ordinary permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(final.parent)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically.

    Args:
        path: destination file; parent folders are created.
        data: the bytes to write.

    Returns:
        The destination as a :class:`~pathlib.Path`.
    """
    with _atomic_binary(path) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    r"""Writes ``text`` to ``path`` atomically, with ``\\n`` line endings on every platform.

    Args:
        path: destination file; parent folders are created.
        text: the text to write.
        encoding: default="utf-8".

    Returns:
        The destination as a :class:`~pathlib.Path`.
    """
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_save_npy(path: PathLike, array: np.ndarray) -> Path:
    """Saves ``array`` in ``.npy`` format to exactly ``path`` (no suffix is appended).

    Args:
        path: destination file, conventionally ending in ``.npy``.
        array: any numpy array (object arrays are refused, so loading never needs pickle).

    Returns:
        The destination as a :class:`~pathlib.Path`.
    """
    with _atomic_binary(path) as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, np.integer):
        return str(int(key))
    return str(key)


def to_jsonable(obj: Any) -> Any:
    """Converts ``obj`` to built-in JSON types.

    numpy scalars and arrays become Python numbers and lists, tuples become lists,
    :class:`~pathlib.Path` becomes ``str``, mapping keys become ``str`` (numpy integer keys
    via ``int``), and NaN/±inf become ``None`` (strict JSON has no NaN).

    Args:
        obj: nested dicts/lists/tuples of JSON-like values and numpy values.

    Returns:
        The converted object; other types are returned unchanged (``json`` rejects them).
    """
    if isinstance(obj, Mapping):
        return {_json_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def atomic_save_json(path: PathLike, obj: Any) -> Path:
    """Saves ``obj`` as strict JSON (indent 2, key order kept, NaN -> ``null``) atomically.

    Args:
        path: destination file, conventionally ending in ``.json``.
        obj: JSON-like data; numpy values are converted by :func:`to_jsonable`.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``obj`` holds a value JSON cannot represent (nothing is written).
    """
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def atomic_save_figure(fig: Figure, path: PathLike, *, dpi: int = 150) -> Path:
    """Saves ``fig`` atomically, then closes it (do not reuse the figure afterwards).

    Args:
        fig: the figure, e.g. from :mod:`hsi.reporting.figures`.
        path: destination; its suffix picks the format (``.png``, ``.pdf``, ``.svg``, ...).
        dpi: resolution for raster formats; default=150.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: the suffix names no format matplotlib can write.
    """
    final = Path(path)
    fmt = final.suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    try:
        if fmt not in supported:
            raise ConfigError(
                f"figure path must end with an image suffix; got {final.name!r}. "
                f"Use one of {', '.join('.' + s for s in sorted(supported))}, e.g. 'map.png'."
            )
        with _atomic_binary(final) as fh:
            fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight")
    finally:
        _close_figure(fig)
    return final


def _close_figure(fig: Figure) -> None:
    """Releases ``fig``: through pyplot when pyplot manages it, else by clearing it."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt  # only reached for figures pyplot created

        plt.close(fig)
    else:
        fig.clear()
