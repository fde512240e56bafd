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

A full disk is told in one line, not a library's traceback: a write whose size is known is
checked against the free space first (:func:`check_free_space`), and a write that fails for
want of space (``ENOSPC``, or ``EDQUOT``: the user's quota) anywhere in the block, even behind
a library's own error (torch's ``inline_container`` wraps it), becomes :class:`DiskFullError`
naming the device, the folder, the bytes needed and the bytes free. Files updated in place
through a memory map are preallocated (:func:`preallocate`): a full disk fails their creation
with ``ENOSPC`` instead of killing the process with ``SIGBUS`` at the first page written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from hsi._core.errors import HSIError
from hsi._core.memory import format_bytes

__all__ = [
    "DiskFullError",
    "copy_folder",
    "private_folder",
    "atomic_save_json",
    "atomic_save_npy",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_free_space",
    "create_work_array",
    "disk_full_error",
    "free_space",
    "is_disk_full",
    "preallocate",
    "to_jsonable",
    "write_work_rows",
]

PathLike = str | os.PathLike[str]

#: ``errno`` values that mean the disk (or the user's share of it) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Writes at least this large whose size is known are checked against the free space before they start.
CHECK_FREE_SPACE_FROM = 1 << 20
#: The usual way forward after a full disk.
FREE_SPACE_FIX = "free some space there, or write to another disk, and run the command again"


class DiskFullError(HSIError, OSError):
    """A write needs more space than its disk has free; nothing half-written was left under a final name.

    Attributes:
        problem: what happened, e.g. ``no space left on /dev/sda1 (runs): 1.2 GiB needed, 300.0 MiB free``.
        fix: the way forward.
        folder: the folder written to.
        needed: bytes the write needed (at least), or None where unknown.
        free: bytes free on that disk when it failed.
    """

    def __init__(self, problem: str, *, fix: str, folder: Path, needed: int | None, free: int) -> None:
        super().__init__(f"{problem}; {fix}.")
        self.errno = errno.ENOSPC
        self.problem, self.fix, self.folder, self.needed, self.free = problem, fix, folder, needed, free


def _existing(folder: Path) -> Path:
    """``folder`` or its nearest existing ancestor (a folder about to be created lives on its disk)."""
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def free_space(folder: PathLike) -> int:
    """Bytes free to this user on the disk holding ``folder`` (or, before it exists, its nearest ancestor)."""
    try:
        return int(shutil.disk_usage(_existing(Path(folder))).free)
    except OSError:
        return 1 << 62  # no way to know: do not refuse


def _device_of(folder: Path) -> str:
    """The device (or file system) mounted where ``folder`` lies, e.g. ``/dev/sda1``; "disk" when unknown."""
    try:
        target = _existing(folder).resolve()
        best, device = Path("/"), "disk"
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) < 2:
                    continue
                mount = Path(fields[1].replace("\\040", " "))
                if (target == mount or mount in target.parents) and len(mount.parts) >= len(best.parts):
                    best, device = mount, fields[0]
        return device
    except (OSError, ValueError):
        return "disk"


def disk_full_error(folder: PathLike, *, needed: int | None, what: str = "", fix: str = FREE_SPACE_FIX,
                    at_least: bool = False) -> DiskFullError:
    """The one-line error of a full disk: ``no space left on DEVICE (FOLDER): N needed, M free; FIX``.

    Args:
        folder: the folder written to.
        needed: bytes the write needs, or None where unknown.
        what: what was being written, e.g. ``"writing model.safetensors"`` (shown after the folder).
        fix: the way forward.
        at_least: ``needed`` is a lower bound (the bytes written when the disk filled).
    """
    folder = Path(folder)
    free = free_space(folder)
    size = "" if needed is None else f"{'at least ' if at_least else ''}{format_bytes(needed)} needed, "
    doing = f" {what}" if what else ""
    return DiskFullError(f"no space left on {_device_of(folder)} ({folder}){doing}: {size}{format_bytes(free)} free",
                         fix=fix, folder=folder, needed=needed, free=free)


#: numpy's message for a short write to a real file (``ndarray.tofile``, used by ``np.save``); it has no errno.
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


def is_disk_full(exc: BaseException, folder: PathLike | None = None) -> bool:
    """True when ``exc``, or an error it was raised from or while handling, is ENOSPC / EDQUOT.

    Libraries wrap the error of the write they called (torch raises a ``RuntimeError`` from its
    ``inline_container`` with the ``OSError`` as its context), so the chain is followed. numpy
    reports a short write without an errno ("62400 requested and 32704 written"): that counts
    when ``folder``'s disk has less free than the bytes that were not written (or no folder is given).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        if isinstance(current, DiskFullError) or (isinstance(current, OSError)
                                                  and current.errno in DISK_FULL_ERRNOS):
            return True
        short = _SHORT_WRITE.search(str(current)) if isinstance(current, OSError) and current.errno is None else None
        if short is not None:
            missing = int(short.group(1)) - int(short.group(2))
            return folder is None or free_space(folder) < missing
        current = current.__cause__ or current.__context__
    return False


def check_free_space(folder: PathLike, n_bytes: int, *, what: str = "", fix: str = FREE_SPACE_FIX) -> None:
    """Refuses a write of ``n_bytes`` into ``folder`` when its disk has less free, before anything is written.

    Raises:
        DiskFullError: ``n_bytes`` exceeds :func:`free_space`.
    """
    if n_bytes > free_space(folder):
        raise disk_full_error(folder, needed=n_bytes, what=what, fix=fix)


def preallocate(fd: int, size: int) -> None:
    """Reserves ``size`` bytes of disk for the open file ``fd`` (``posix_fallocate``), so that writing to a memory
    map of it cannot meet a full disk (which kills the process with ``SIGBUS``, no message).

    Raises:
        OSError: ``ENOSPC`` (or ``EDQUOT``) where the disk has too little free. Where the file system
            cannot preallocate (``EOPNOTSUPP``, ``EINVAL``), nothing is reserved and nothing raised.
    """
    if size <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise


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
def atomic_write(path: PathLike, *, size: int | None = None) -> Iterator[BinaryIO]:
    """Yields a binary file whose content replaces ``path`` when the block ends without error.

    The temporary file keeps ``path``'s suffix, so a caller may verify it by type before the
    block ends (flush the handle, then read ``Path(handle.name)``); raising rejects it.

    Args:
        path: destination file; missing parent folders are created.
        size: the bytes about to be written, where known: from :data:`CHECK_FREE_SPACE_FROM` on, the
            disk's free space is checked first.

    Yields:
        The open temporary file (``name`` is its path).

    Raises:
        DiskFullError: the disk has less free than ``size``, or filled while writing (ENOSPC / EDQUOT,
            also behind a library's own error); the temporary file is removed, a previous file kept.
    """
    final = Path(path)
    if size is not None and size >= CHECK_FREE_SPACE_FROM:
        check_free_space(final.parent, size, what=f"writing {final.name}")
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp{final.suffix}")
    created = False
    written = 0
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        # Exclusive create: a name clash fails (and, created being False, unlinks nothing).
        # open() gives the file 0o666 less the umask, like any other file the user writes.
        with open(tmp, "xb") as handle:
            created = True
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # content on disk before the rename makes it visible
        os.replace(tmp, final)
    except BaseException as exc:
        full = not isinstance(exc, DiskFullError) and is_disk_full(exc, final.parent)  # before the space is freed
        if created:
            with contextlib.suppress(OSError):
                written = tmp.stat().st_size
            with contextlib.suppress(OSError):
                tmp.unlink()
        if not full:
            raise
        needed = max(size or 0, written) or None
        raise disk_full_error(final.parent, needed=needed, what=f"writing {final.name}",
                              at_least=size is None) from exc
    _fsync_dir(final.parent)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically.

    Args:
        path: destination file; parent folders are created.
        data: the bytes to write.

    Returns:
        The destination as a :class:`~pathlib.Path`.
    """
    with atomic_write(path, size=len(data)) as fh:
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
    array = np.asarray(array)
    with atomic_write(path, size=array.nbytes + 128) as fh:  # 128: the .npy header
        np.save(fh, array, allow_pickle=False)
    return Path(path)


def create_work_array(path: PathLike, dtype: np.dtype | type, shape: tuple[int, ...]) -> Path:
    """Creates a ``.npy`` file of zeros to be updated in place (:func:`write_work_rows`), its disk space reserved.

    The one kind of file not written atomically: a working file a long job fills piece by piece
    and records the pieces done elsewhere (a tiled prediction's ``progress.json``); its content
    reaches an output folder through :func:`atomic_save_npy` once complete. Its space is reserved
    at creation (:func:`preallocate`), so a full disk is told here, not by ``SIGBUS`` later.

    Raises:
        DiskFullError: the disk has too little free (the file is removed).
    """
    path = Path(path)
    dtype = np.dtype(dtype)
    dims = tuple(int(n) for n in shape)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": dims}
    try:
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            total = fh.tell() + math.prod(dims) * dtype.itemsize
            fh.flush()
            preallocate(fh.fileno(), total)
            if os.fstat(fh.fileno()).st_size < total:  # not preallocated (the file system cannot): a sparse file
                os.ftruncate(fh.fileno(), total)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        if is_disk_full(exc):
            raise disk_full_error(path.parent, needed=math.prod(dims) * dtype.itemsize,
                                  what=f"creating {path.name}") from exc
        raise
    return path


def write_work_rows(path: PathLike, rows: slice, cols: slice, values: np.ndarray) -> None:
    """Writes ``values`` into ``[rows, cols]`` of a ``.npy`` file made by :func:`create_work_array`, in place.

    Plain positioned writes (``os.pwrite``), one per row, then ``fdatasync``: where the disk fills
    anyway (a file system that cannot preallocate), the write fails with an error instead of
    killing the process as a write to a memory map does (``SIGBUS``).

    Raises:
        DiskFullError: the disk filled.
    """
    path = Path(path)
    try:
        with open(path, "r+b") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(fh)
            offset = fh.tell()
            pixel = dtype.itemsize * math.prod(shape[2:])
            block = np.ascontiguousarray(values, dtype=dtype)
            fd = fh.fileno()
            for i, row in enumerate(range(rows.start, rows.stop)):
                data = memoryview(block[i]).cast("B")
                position = offset + (row * shape[1] + cols.start) * pixel
                while len(data):
                    n = os.pwrite(fd, data, position)
                    data, position = data[n:], position + n
            (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(fd)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(path.parent, needed=int(np.asarray(values).nbytes),
                                  what=f"writing into {path.name}") from exc
        raise


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


def private_folder(prefix: str = "hsi-") -> Path:
    """A new empty folder of this process's own, in the system's temporary folder (the caller removes it)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix))


def copy_folder(source: PathLike, target: PathLike) -> Path:
    """Copies the folder ``source`` to ``target`` (new, or an empty folder), appearing there only when complete.

    The copy is made under a hidden name beside ``target``, then renamed into place.
    """
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{secrets.token_hex(4)}.partial"
    try:
        shutil.copytree(source, staging)
        if target.is_dir():
            target.rmdir()  # empty (checked by the caller); a folder cannot be renamed over a folder
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
