"""keep_freed_memory: a glibc allocator setting, applied on Linux with glibc, a no-op elsewhere."""

from __future__ import annotations

import platform
import sys

import torch

from hsi._core.host_memory import keep_freed_memory


def test_keep_freed_memory_applies_on_glibc_and_tensors_still_allocate() -> None:
    applied = keep_freed_memory()
    assert isinstance(applied, bool)
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert applied
    big = torch.ones(10 << 20)  # 40 MB: above the mmap threshold, served as before
    assert float(big.sum()) == 10 << 20
