"""Run folders: one per run, never overwriting an earlier one, with a status marker."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hsi._core.errors import ConfigError
from hsi.config import config_record
from hsi.reporting.files import atomic_save_json

STATUS_FILE = "status.json"
#: What ``--resume`` continues from; written after every epoch, removed when the run is complete.
RESUME_FILE = "resume.pt"


def network_resume_file(network: int | str) -> str:
    """The name of network ``network``'s resume point in a run folder (``"*"``: a glob of them all)."""
    return f"resume-network-{network}.pt"
#: Written last, so a folder that holds them is a finished run; removed when a run stops early.
FINAL_FILES = ("metrics.json", "report.md")

log = logging.getLogger(__name__)


def create_run_dir(out: str | Path, stem: str, *, name: str | None = None) -> Path:
    """Creates ``<out>/<stem>_<timestamp>[_n]`` (or exactly ``<out>/<name>``); never reuses an existing folder.

    Raises:
        ConfigError: ``out`` cannot be created or written to.
    """
    out = Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        out.mkdir(parents=True, exist_ok=True)
        if name is not None:
            try:
                (out / name).mkdir()
            except FileExistsError:
                raise ConfigError(
                    f"run folder {out / name} already exists; remove it or choose another name."
                ) from None
            return out / name
        for n in range(1000):
            path = out / (f"{stem}_{stamp}" + (f"_{n}" if n else ""))
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except PermissionError:
        pass
    except OSError as err:
        raise ConfigError(f"output folder {out} cannot be created ({err.strerror}); pass a writable --out.") from None
    raise ConfigError(f"output folder {out} is not writable; pass a writable --out.")


def check_writable(out: str | Path) -> None:
    """Raises :class:`ConfigError` early when ``out`` (or its nearest existing parent) is a file or not writable."""
    path = Path(out).resolve()
    while not path.exists():
        path = path.parent
    if not path.is_dir():
        where = "is a file" if path == Path(out).resolve() else f"lies inside {path}, which is a file"
        raise ConfigError(f"--out {out} {where}; expected a folder (or a path that does not exist yet) to hold "
                          "the output folders. Pass another --out, e.g. --out runs.")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {out} is not writable (checked {path}); pass a writable --out.")


def write_status(run_dir: Path, state: str, **extra: object) -> None:
    """Marks the run ``running``, ``interrupted``, ``failed`` or ``complete``."""
    atomic_save_json(run_dir / STATUS_FILE, {"state": state, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra})


def read_status(run_dir: Path) -> str | None:
    """The run's state, or None when it has no status marker."""
    try:
        return str(json.loads((run_dir / STATUS_FILE).read_text())["state"])
    except (OSError, ValueError, KeyError):
        return None


def mark_incomplete(run_dir: Path, state: str) -> None:
    """Marks a run that stopped early ``interrupted`` or ``failed``; removes anything that looks finished."""
    for name in FINAL_FILES:
        with contextlib.suppress(OSError):
            (run_dir / name).unlink()
    write_status(run_dir, state, resumable=(run_dir / RESUME_FILE).is_file(),
                 resume_with=f"hsi-classify train --resume {run_dir}")


@contextlib.contextmanager
def guard_run(run_dir: Path, *, config: dict[str, Any] | None = None, resumed: bool = False) -> Iterator[None]:
    """Keeps ``status.json`` true through a run: ``running``, then ``complete``, ``interrupted`` or ``failed``.

    On entry the run is marked running (with this process's id, so ``--resume`` can tell a
    live run from a killed one) and, for a new run, ``config`` is written to ``config.json``
    so even a run stopped in its first epoch can be resumed. On Ctrl-C (or SIGTERM, which the
    CLI raises as KeyboardInterrupt) the run is marked ``interrupted``; on any other error a
    new run's folder is removed, while a resumed one is marked ``failed`` and keeps what
    ``--resume`` needs. On success ``resume.pt`` is removed and the run marked ``complete``.

    Args:
        run_dir: the run folder (it exists).
        config: the run's settings, written to ``config.json`` for a new run.
        resumed: True when continuing an earlier run in ``run_dir``.
    """
    try:
        write_status(run_dir, "running", pid=os.getpid(), host=socket.gethostname())
        if config is not None:
            atomic_save_json(run_dir / "config.json", config_record(config))
        yield
    except KeyboardInterrupt:
        mark_incomplete(run_dir, "interrupted")
        log.warning("run stopped; %s is marked interrupted. Continue it with: hsi-classify train --resume %s",
                    run_dir, run_dir)
        raise
    except BaseException:
        if resumed:
            mark_incomplete(run_dir, "failed")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    for point in [run_dir / RESUME_FILE, *run_dir.glob(network_resume_file("*"))]:
        with contextlib.suppress(FileNotFoundError):
            point.unlink()
    write_status(run_dir, "complete")
