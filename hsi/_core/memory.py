"""How much memory this machine has free, and a refusal in plain words when an input needs more.

Files from someone else declare their own sizes (an HDF5 dataset's shape, an ENVI header, a
``.npy`` header): a 6 kB file may declare a 45 GiB cube. Readers compare the declared size
with :func:`available_memory` before allocating anything, and refuse with the size, the
memory there is and the way forward.
"""

from __future__ import annotations

import os

from hsi._core.errors import InputTooLargeError

__all__ = ["MEMORY_ENV", "available_memory", "check_fits_in_memory", "format_bytes"]

#: Overrides the memory hsi-classify believes is available (bytes, or with a K/M/G/T suffix).
MEMORY_ENV = "HSI_AVAILABLE_MEMORY"
_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def available_memory() -> int:
    """Bytes this process may still allocate: ``$HSI_AVAILABLE_MEMORY``, else MemAvailable, else physical memory."""
    override = os.environ.get(MEMORY_ENV, "").strip().upper().removesuffix("IB").removesuffix("B")
    if override:
        number, suffix = (override[:-1], override[-1]) if override[-1] in _SUFFIXES else (override, "")
        try:
            return int(float(number) * _SUFFIXES[suffix])
        except ValueError:
            pass  # a malformed override is ignored rather than trusted
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # no way to know: do not refuse


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in the largest binary unit that keeps it >= 1, e.g. ``44.7 GiB``."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # unreachable


def check_fits_in_memory(n_bytes: int, *, what: str, fix: str) -> None:
    """Refuses, before anything is allocated, an input that needs more memory than is available.

    Args:
        n_bytes: the bytes reading the input would allocate.
        what: the input and its declared size, e.g. ``"cube file x.mat declares 60 x 20000 x 20000 int16"``.
        fix: the way forward, e.g. ``"crop the scene"``.

    Raises:
        InputTooLargeError: ``n_bytes`` exceeds :func:`available_memory`.
    """
    free = available_memory()
    if n_bytes > free:
        raise InputTooLargeError(
            f"{what} needs {format_bytes(n_bytes)} of memory to read, but this machine has "
            f"{format_bytes(free)} available; {fix}."
        )
