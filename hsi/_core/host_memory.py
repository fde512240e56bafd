"""Process-level setting of the C allocator: keep freed memory for reuse instead of returning it.

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc hands memory that is
freed at the top of its heap back to the kernel once more than ``M_TRIM_THRESHOLD`` bytes
are free there (and serves blocks over ``M_MMAP_THRESHOLD`` with a fresh ``mmap`` that is
unmapped on free). A network allocates and frees the same activation sizes on every pass,
so each pass faulted its pages in again: measured on the 2-core development machine
(``docs/performance.md``), a quarter to a half of full-scene inference time was system
time (Salinas-A, 7,138 pixels: 21-24 s, 10-20 s of it in the kernel; with this setting
14.2-14.7 s and none). Peak memory is unchanged; the process just does not shrink after
its peak, which suits a command-line run.

This changes the whole process, so only entry points call it (the CLI's ``main``), never
library code on import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
#: Free bytes glibc may keep at the top of its heap before returning them.
TRIM_THRESHOLD = 1 << 30
#: Blocks up to this size come from the heap (glibc's own maximum for its dynamic threshold).
MMAP_THRESHOLD = 32 << 20


def keep_freed_memory() -> bool:
    """Sets glibc's trim and mmap thresholds so freed tensor memory is reused, not refaulted.

    Returns:
        True where it was applied (Linux with glibc); False elsewhere (a no-op).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
