"""Run folders: one per run, never overwriting an earlier one, with a status marker."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hsi._core.errors import ConfigError
from hsi.reporting.files import atomic_save_json

STATUS_FILE = "status.json"


def create_run_dir(out: str | Path, stem: str) -> Path:
    """Creates ``<out>/<stem>_<timestamp>[_n]`` and returns it; never reuses an existing folder.

    Raises:
        ConfigError: ``out`` cannot be created or written to.
    """
    out = Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        out.mkdir(parents=True, exist_ok=True)
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
    """Raises :class:`ConfigError` early when ``out`` (or its nearest existing parent) is not writable."""
    path = Path(out).resolve()
    while not path.exists():
        path = path.parent
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
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
