"""Atomic writes: right content, no temporary files left, old file intact on failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from hsi._core.errors import ConfigError
from hsi._core.files import atomic_write
from hsi.reporting import files as F


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]  # the writer's temporary files are hidden


def test_text_bytes_npy_json(tmp_path: Path) -> None:
    F.atomic_write_text(tmp_path / "sub" / "a.md", "héllo\nworld\n")
    assert (tmp_path / "sub" / "a.md").read_bytes() == "héllo\nworld\n".encode()
    F.atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    out = F.atomic_save_npy(tmp_path / "c.npy", arr)
    np.testing.assert_array_equal(np.load(out), arr)
    obj = {"z": np.float32(0.5), "a": float("nan"), "n": np.int64(3), "arr": np.array([1.0, np.inf]), 7: (1, 2)}
    F.atomic_save_json(tmp_path / "d.json", obj)
    text = (tmp_path / "d.json").read_text()
    assert json.loads(text) == {"z": 0.5, "a": None, "n": 3, "arr": [1.0, None], "7": [1, 2]}
    assert list(json.loads(text)) == ["z", "a", "n", "arr", "7"]  # key order kept
    assert text.startswith('{\n  "z"')  # indent 2
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []


def test_overwrite_and_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    F.atomic_save_json(target, {"v": 1})
    F.atomic_save_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 2}
    with pytest.raises(TypeError):
        F.atomic_save_json(target, {"v": object()})
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"half-writ")
        raise RuntimeError("synthetic crash mid-write")
    assert json.loads(target.read_text()) == {"v": 2}
    assert _leftovers(tmp_path) == []


def test_save_figure(tmp_path: Path) -> None:
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    out = F.atomic_save_figure(fig, tmp_path / "f.png", dpi=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 0  # closed (cleared)
    fig2 = Figure()
    with pytest.raises(ConfigError, match="suffix"):
        F.atomic_save_figure(fig2, tmp_path / "f.nope")
    assert not (tmp_path / "f.nope").exists()
    assert _leftovers(tmp_path) == []
