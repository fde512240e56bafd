"""The package's one file writer: a crash, Ctrl-C or failed check never leaves a half-written file.

:func:`atomic_write` opens a hidden temporary file in the destination folder; when the
``with`` block ends cleanly the file is flushed to disk and renamed over the destination
with :func:`os.replace` (atomic on POSIX and Windows, both names being in one folder), and
the folder itself is synced so the rename survives a power cut. On any exception,
``KeyboardInterrupt`` included, the temporary file is removed and a previous file under the
final name is left intact. Files get the usual permissions (``0o666`` less the umask).

Every module that writes a file goes through here (a test checks it): checkpoints
(``torch.save`` into the handle), downloads (streamed into it, verified, then committed),
and the JSON, ``.npy``, text and figure outputs of a run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "atomic_save_json",
    "atomic_save_npy",
    "atomic_write",
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
def atomic_write(path: PathLike) -> Iterator[BinaryIO]:
    """Yields a binary file whose content replaces ``path`` when the block ends without error.

    The temporary file keeps ``path``'s suffix, so a caller may verify it by type before the
    block ends (flush the handle, then read ``Path(handle.name)``); raising rejects it.

    Args:
        path: destination file; missing parent folders are created.

    Yields:
        The open temporary file (``name`` is its path).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp{final.suffix}")
    created = False
    try:
        # Exclusive create: a name clash fails (and, created being False, unlinks nothing).
        # open() gives the file 0o666 less the umask, like any other file the user writes.
        with open(tmp, "xb") as handle:
            created = True
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # content on disk before the rename makes it visible
        os.replace(tmp, final)
    except BaseException:
        if created:
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
    with atomic_write(path) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    r"""Writes ``text`` to ``path`` atomically, with ``\n`` line endings on every platform.

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
    with atomic_write(path) as fh:
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
