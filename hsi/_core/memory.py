"""How much memory this process may still allocate, and a refusal in plain words when an input needs more.

Files from someone else declare their own sizes (an HDF5 dataset's shape, an ENVI header, a
``.npy`` header): a 6 kB file may declare a 45 GiB cube. Readers compare the declared size
with :func:`available_memory` before allocating anything, and refuse with the size, the
memory there is and the way forward.

The memory a process may use is bounded by the machine (``MemAvailable``) and by the limits
put on the process itself, which the machine's figure does not show: its control group's
(cgroup v2 ``memory.max``, cgroup v1 ``memory.limit_in_bytes``, as containers, batch
schedulers and ``systemd-run -p MemoryMax=`` set them) and its resource limits
(``RLIMIT_AS``, ``ulimit -v``; ``RLIMIT_DATA``, ``ulimit -d``). :func:`memory_budget` is the
smallest of them, each less what is in use already.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hsi._core.errors import InputTooLargeError

__all__ = [
    "CGROUP_ROOT", "MEMORY_ENV", "PROC_SELF_CGROUP", "MemoryBound", "available_memory", "check_fits_in_memory",
    "format_bytes", "memory_bounds", "memory_budget",
]

#: Overrides the memory hsi-classify believes the machine has available (bytes, or with a K/M/G/T suffix).
MEMORY_ENV = "HSI_AVAILABLE_MEMORY"
#: Where the cgroup file systems are mounted (v2 here or under ``unified/``, v1's memory controller under
#: ``memory/``); tests point it at a folder of their own.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The file naming this process's control groups.
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
_PROC_SELF_STATUS = Path("/proc/self/status")
_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
#: A cgroup v1 limit at least this large means "no limit" (the kernel reports 2^63 rounded down to a page).
_NO_LIMIT = 1 << 60


@dataclass(frozen=True)
class MemoryBound:
    """One bound on the memory this process may still allocate.

    Attributes:
        left: bytes still allocatable under this bound.
        source: what sets it, as a message names it, e.g. ``"its cgroup's memory.max (6.0 GiB)"``.
        machine: True for the machine's own figure (MemAvailable or ``$HSI_AVAILABLE_MEMORY``),
            False for a limit set on the process.
    """

    left: int
    source: str
    machine: bool = False


def _override() -> int | None:
    value = os.environ.get(MEMORY_ENV, "").strip().upper().removesuffix("IB").removesuffix("B")
    if not value:
        return None
    number, suffix = (value[:-1], value[-1]) if value[-1] in _SUFFIXES else (value, "")
    try:
        return int(float(number) * _SUFFIXES[suffix])
    except ValueError:
        return None  # a malformed override is ignored rather than trusted


def _machine_memory() -> MemoryBound:
    """``$HSI_AVAILABLE_MEMORY``, else MemAvailable, else the physical pages free."""
    override = _override()
    if override is not None:
        return MemoryBound(override, f"${MEMORY_ENV}", machine=True)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return MemoryBound(int(line.split()[1]) * 1024, "MemAvailable", machine=True)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return MemoryBound(int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE")), "free pages",
                           machine=True)
    except (ValueError, OSError, AttributeError):
        return MemoryBound(1 << 62, "unknown", machine=True)  # no way to know: do not refuse


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _file_cache(stat_file: Path, prefix: str = "") -> int:
    """Bytes of page cache a cgroup's ``memory.stat`` counts (reclaimable: the kernel drops it before refusing)."""
    try:
        fields = dict(line.split()[:2] for line in stat_file.read_text(encoding="ascii").splitlines() if " " in line)
        return sum(int(fields.get(f"{prefix}{name}", 0)) for name in ("active_file", "inactive_file"))
    except (OSError, ValueError):
        return 0


def _own_cgroups(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """(cgroup v2 path, cgroup v1 memory controller path) of this process, from ``/proc/self/cgroup``."""
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _levels(mount: Path, own: str | None) -> list[Path]:
    """The folders of a cgroup and its ancestors up to ``mount``; ``mount`` alone when the own path is not
    under it (a cgroup namespace, as in containers, shows the process's own cgroup at the mount)."""
    folder = mount / (own or "/").lstrip("/")
    if not folder.is_dir():
        return [mount]
    levels = [folder]
    while folder != mount and mount in folder.parents:
        folder = folder.parent
        levels.append(folder)
    return levels


def _cgroup_bounds(root: Path, proc_cgroup: Path) -> list[MemoryBound]:
    """The memory limit of this process's cgroup (v2 or v1) and of its ancestors, each less its use."""
    own_v2, own_v1 = _own_cgroups(proc_cgroup)
    bounds = []
    for mount in (root, root / "unified"):  # cgroup v2: unified alone, or beside v1 ("hybrid")
        if own_v2 is None or not (mount / "cgroup.controllers").is_file():
            continue
        for level in _levels(mount, own_v2):
            try:
                text = (level / "memory.max").read_text(encoding="ascii").strip()
            except OSError:
                continue
            if text == "max" or not text.isdigit():
                continue
            used = (_read_int(level / "memory.current") or 0) - _file_cache(level / "memory.stat")
            name = "memory.max" if level == mount else f"memory.max of {level.relative_to(mount)}"
            bounds.append(MemoryBound(int(text) - max(0, used), f"its cgroup's {name} ({format_bytes(int(text))})"))
        break
    mount = root / "memory"
    if own_v1 is not None and mount.is_dir():
        for level in _levels(mount, own_v1):
            limit = _read_int(level / "memory.limit_in_bytes")
            if limit is None or limit >= _NO_LIMIT:
                continue
            used = (_read_int(level / "memory.usage_in_bytes") or 0) - _file_cache(level / "memory.stat", "total_")
            bounds.append(MemoryBound(limit - max(0, used),
                                      f"its cgroup's memory.limit_in_bytes ({format_bytes(limit)})"))
    return bounds


def _process_usage() -> dict[str, int]:
    """VmSize and VmData of this process in bytes (what RLIMIT_AS and RLIMIT_DATA count), where /proc says."""
    usage = {}
    try:
        for line in _PROC_SELF_STATUS.read_text(encoding="ascii").splitlines():
            key, _, value = line.partition(":")
            if key in ("VmSize", "VmData"):
                usage[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return usage


def _rlimit_bounds() -> list[MemoryBound]:
    """RLIMIT_AS (address space) and RLIMIT_DATA (data segment and private mappings), each less its use."""
    try:
        import resource
    except ImportError:  # not POSIX
        return []
    usage = _process_usage()
    bounds = []
    for name, flag, key in (("RLIMIT_AS", "ulimit -v", "VmSize"), ("RLIMIT_DATA", "ulimit -d", "VmData")):
        limit_id = getattr(resource, name, None)
        if limit_id is None:
            continue
        try:
            soft = resource.getrlimit(limit_id)[0]
        except (OSError, ValueError):
            continue
        if soft == resource.RLIM_INFINITY or soft < 0:
            continue
        bounds.append(MemoryBound(soft - usage.get(key, 0), f"its {name} ({flag}: {format_bytes(soft)})"))
    return bounds


def memory_bounds(*, cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> list[MemoryBound]:
    """Every bound on the memory this process may still allocate: the machine's, its cgroups', its rlimits'.

    Args:
        cgroup_root: where the cgroup file systems are mounted (default :data:`CGROUP_ROOT`).
        proc_cgroup: the file naming the process's cgroups (default :data:`PROC_SELF_CGROUP`).

    Returns:
        The machine's bound first, then each limit set on the process (none where there is none).
    """
    root = CGROUP_ROOT if cgroup_root is None else cgroup_root
    own = PROC_SELF_CGROUP if proc_cgroup is None else proc_cgroup
    return [_machine_memory(), *_cgroup_bounds(root, own), *_rlimit_bounds()]


def memory_budget(*, cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> MemoryBound:
    """The tightest of :func:`memory_bounds` (never below 0 bytes left)."""
    tightest = min(memory_bounds(cgroup_root=cgroup_root, proc_cgroup=proc_cgroup), key=lambda b: b.left)
    return MemoryBound(max(0, tightest.left), tightest.source, tightest.machine)


def available_memory() -> int:
    """Bytes this process may still allocate: the smallest of the machine's MemAvailable (or
    ``$HSI_AVAILABLE_MEMORY``), its cgroup's memory limit and its RLIMIT_AS / RLIMIT_DATA, each less its use."""
    return memory_budget().left


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
    budget = memory_budget()
    if n_bytes > budget.left:
        has = (f"this machine has {format_bytes(budget.left)} available" if budget.machine else
               f"this process may allocate {format_bytes(budget.left)} more under {budget.source}")
        raise InputTooLargeError(f"{what} needs {format_bytes(n_bytes)} of memory to read, but {has}; {fix}.")
