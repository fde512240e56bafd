"""The memory budget is the smallest of the machine's MemAvailable and the process's own limits.

Issue 32: under a process limit of 6 GiB (a cgroup or ``ulimit -v``) an 8 GiB ``.npy`` passed the
guard (the machine had 21 GB available) and died in a bare ``MemoryError``. The limits tested here
are real where a test can set them (``RLIMIT_AS`` in a child process) and a fake cgroup folder
where it cannot (``hsi._core.memory.CGROUP_ROOT`` is injectable).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hsi._core.memory as memory
from hsi._core.errors import InputTooLargeError
from hsi._core.memory import MEMORY_ENV, available_memory, check_fits_in_memory, memory_bounds, memory_budget
from hsi.cli.main import main
from hsi.data.io import load_array

GIB = 1 << 30
REPO = Path(__file__).resolve().parents[2]


def _sparse_npy(path: Path, shape: tuple[int, ...], dtype: str = "float32") -> Path:
    """A ``.npy`` whose header declares ``shape`` and whose data is a hole (no disk used, reads as zeros)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    with path.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.truncate(fh.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return path


def _cgroup_v2(root: Path, *, limit: str, current: int, file_cache: int = 0, own: str = "/") -> Path:
    """A fake cgroup v2 mount at ``root`` and the ``/proc/self/cgroup`` naming ``own`` in it; returns the latter."""
    folder = root / own.lstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (folder / "memory.max").write_text(f"{limit}\n")
    (folder / "memory.current").write_text(f"{current}\n")
    (folder / "memory.stat").write_text(f"anon {current - file_cache}\nactive_file {file_cache // 2}\n"
                                        f"inactive_file {file_cache - file_cache // 2}\n")
    proc = root.parent / "proc_self_cgroup"
    proc.write_text(f"0::{own}\n")
    return proc


@pytest.fixture
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_ENV, raising=False)


# ---------------------------------------------------------------- cgroup v2 and v1 (a fake folder)


def test_a_cgroup_v2_limit_less_its_use_bounds_the_budget(tmp_path: Path, no_override: None) -> None:
    proc = _cgroup_v2(tmp_path / "cgroup", limit=str(6 * GIB), current=2 * GIB)
    budget = memory_budget(cgroup_root=tmp_path / "cgroup", proc_cgroup=proc)
    if budget.machine:  # this machine has less than 4 GiB available: the cgroup is not the tightest
        pytest.skip("MemAvailable is below the fake cgroup's 4 GiB")
    assert budget.left == 4 * GIB and "memory.max (6.0 GiB)" in budget.source


def test_page_cache_in_a_cgroup_counts_as_free(tmp_path: Path, no_override: None) -> None:
    """memory.current includes file pages the kernel drops before refusing: they are not in use."""
    proc = _cgroup_v2(tmp_path / "cgroup", limit=str(6 * GIB), current=5 * GIB, file_cache=4 * GIB)
    bounds = memory_bounds(cgroup_root=tmp_path / "cgroup", proc_cgroup=proc)
    assert [b.left for b in bounds if "memory.max" in b.source] == [5 * GIB]


def test_a_cgroup_v2_without_a_limit_and_its_ancestors_limits(tmp_path: Path, no_override: None) -> None:
    root = tmp_path / "cgroup"
    proc = _cgroup_v2(root, limit="max", current=GIB, own="/user.slice/job")
    assert [b for b in memory_bounds(cgroup_root=root, proc_cgroup=proc) if "cgroup" in b.source] == []
    (root / "user.slice" / "memory.max").write_text(f"{3 * GIB}\n")  # the parent's limit binds its children
    (root / "user.slice" / "memory.current").write_text(f"{GIB}\n")
    (bound,) = [b for b in memory_bounds(cgroup_root=root, proc_cgroup=proc) if "cgroup" in b.source]
    assert bound.left == 2 * GIB and "memory.max of user.slice (3.0 GiB)" in bound.source


def test_a_cgroup_v1_memory_limit(tmp_path: Path, no_override: None) -> None:
    root = tmp_path / "cgroup"
    own = root / "memory" / "docker" / "abc"
    own.mkdir(parents=True)
    (own / "memory.limit_in_bytes").write_text(f"{6 * GIB}\n")
    (own / "memory.usage_in_bytes").write_text(f"{3 * GIB}\n")
    (own / "memory.stat").write_text(f"cache 0\ntotal_inactive_file {GIB}\ntotal_active_file 0\n")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # the root: no limit
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("12:pids:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n")
    (bound,) = [b for b in memory_bounds(cgroup_root=root, proc_cgroup=proc) if "cgroup" in b.source]
    assert bound.left == 4 * GIB and "memory.limit_in_bytes (6.0 GiB)" in bound.source


def test_a_namespaced_cgroup_reads_the_mount_itself(tmp_path: Path, no_override: None) -> None:
    """In a container the process's cgroup path (/docker/abc) is not under the mount it sees: the mount is its."""
    root = tmp_path / "cgroup"
    proc = _cgroup_v2(root, limit=str(GIB), current=0)
    proc.write_text("0::/docker/abc\n")
    (bound,) = [b for b in memory_bounds(cgroup_root=root, proc_cgroup=proc) if "cgroup" in b.source]
    assert bound.left == GIB


def test_missing_or_garbled_cgroup_files_bound_nothing(tmp_path: Path, no_override: None) -> None:
    root = tmp_path / "cgroup"
    proc = _cgroup_v2(root, limit="lots", current=0)
    (root / "memory").mkdir()
    assert not [b for b in memory_bounds(cgroup_root=root, proc_cgroup=proc) if "cgroup" in b.source]
    assert not [b for b in memory_bounds(cgroup_root=tmp_path / "absent", proc_cgroup=tmp_path / "absent")
                if "cgroup" in b.source]


def test_the_reader_refuses_what_the_cgroup_does_not_allow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           no_override: None) -> None:
    """The issue's case at a small scale: the machine has the memory, the cgroup does not."""
    proc = _cgroup_v2(tmp_path / "cgroup", limit=str(64 << 20), current=32 << 20)
    monkeypatch.setattr(memory, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.setattr(memory, "PROC_SELF_CGROUP", proc)
    big = _sparse_npy(tmp_path / "big.npy", (256, 256, 256))  # 64 MiB of float32 declared
    with pytest.raises(InputTooLargeError, match=r"needs 64.0 MiB of memory to read, but this process may allocate "
                                                 r"32.0 MiB more under its cgroup's memory.max \(64.0 MiB\)"):
        load_array(big)
    monkeypatch.setenv(MEMORY_ENV, "16G")  # the override stands for MemAvailable; it cannot lift the cgroup's limit
    assert available_memory() == 32 << 20


# ---------------------------------------------------------------- rlimits


def test_rlimits_bound_the_budget_less_what_the_process_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    """RLIMIT_AS counts the address space in use (VmSize), RLIMIT_DATA the data segment (VmData)."""
    real = resource.getrlimit
    limits = {resource.RLIMIT_AS: 40 * GIB, resource.RLIMIT_DATA: 30 * GIB}
    monkeypatch.setattr(resource, "getrlimit", lambda which: (limits[which], resource.RLIM_INFINITY)
                        if which in limits else real(which))
    monkeypatch.setattr(memory, "_process_usage", lambda: {"VmSize": 39 * GIB, "VmData": 28 * GIB})
    bounds = {b.source: b.left for b in memory_bounds()}
    assert bounds["its RLIMIT_AS (ulimit -v: 40.0 GiB)"] == GIB
    assert bounds["its RLIMIT_DATA (ulimit -d: 30.0 GiB)"] == 2 * GIB
    monkeypatch.setenv(MEMORY_ENV, "1T")
    assert available_memory() == GIB
    with pytest.raises(InputTooLargeError, match=r"may allocate 1.0 GiB more under its RLIMIT_AS \(ulimit -v"):
        check_fits_in_memory(2 * GIB, what="x", fix="y")


def test_the_override_still_sets_the_machines_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "3K")
    assert available_memory() == 3072
    assert memory_budget().source == f"${MEMORY_ENV}"
    with pytest.raises(InputTooLargeError, match=r"x needs 4.0 KiB of memory to read, but this machine has 3.0 KiB"):
        check_fits_in_memory(4096, what="x", fix="y")


_UNDER_RLIMIT = """
import os, resource, sys
sys.argv = ["hsi-classify"]
import torch  # what train imports before reading: its address space counts against the limit too
from hsi.cli.main import main
from hsi._core.memory import memory_bounds
size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + {headroom}, resource.RLIM_INFINITY))
sys.exit(main({argv!r}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status")
def test_an_8_gib_npy_under_a_ulimit_is_refused_in_one_line(tmp_path: Path) -> None:
    """The issue's case: ``ulimit -v`` leaves 1.5 GiB; a sparse .npy declares 8 GiB of float32 (a 1024 x 1024 x
    2048 cube). Before: the guard compared it with MemAvailable and numpy died in a bare MemoryError. An override
    of the machine's figure (1 TiB) does not lift the process's limit."""
    cube = _sparse_npy(tmp_path / "big.npy", (1024, 1024, 2048))
    assert cube.stat().st_blocks * 512 < 1 << 20  # a hole: the test uses no disk
    gt = tmp_path / "gt.npy"
    labels = np.zeros((1024, 1024), dtype=np.uint8)
    labels[:10, :10], labels[20:30, :10] = 1, 2
    np.save(gt, labels)
    argv = ["train", "--cube", str(cube), "--gt", str(gt), "--model", "svm", "--lazy", "off", "--out",
            str(tmp_path / "runs"), "--quiet"]
    env = os.environ | {MEMORY_ENV: "1T"}
    result = subprocess.run([sys.executable, "-c", _UNDER_RLIMIT.format(headroom=3 * GIB // 2, argv=argv)],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    err = result.stderr
    assert result.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "MemoryError" not in err, err
    assert "declares a 1024 x 1024 x 2048 float32 array (8.0 GiB stored)" in err
    assert "under its RLIMIT_AS (ulimit -v" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_memory_error_past_the_guard_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], synthetic_scene: object) -> None:
    """Memory taken by other work between the check and the allocation: the reader's MemoryError in the tool's
    words, not a traceback."""
    from hsi.data import io

    def out_of_memory(path: Path, key: object, role: str) -> np.ndarray:
        raise MemoryError()

    monkeypatch.setattr(io, "_read_npy", out_of_memory)
    monkeypatch.setattr(io, "_reader_for", lambda path, role: ("NumPy array", out_of_memory))
    code = main(["train", "--cube", str(synthetic_scene.cube_npy), "--gt", str(synthetic_scene.gt_npy),  # type: ignore[attr-defined]
                 "--model", "svm", "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "could not be read: the process ran out of memory" in err and "Traceback" not in err
