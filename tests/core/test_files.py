"""The one atomic writer: whole file or none, usual permissions, nothing left behind on any failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hsi._core import files as F


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_content_appears_only_at_the_end(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.bin"
    with F.atomic_write(target) as fh:
        fh.write(b"abc")
        assert not target.exists()  # nothing under the final name while writing
        tmp = Path(fh.name)
        assert tmp.parent == target.parent and tmp.name.startswith(".") and tmp.suffix == ".bin"
    assert target.read_bytes() == b"abc"
    assert _names(target.parent) == ["x.bin"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_permissions_follow_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        path = F.atomic_write_bytes(tmp_path / "p.bin", b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("error", [RuntimeError("crash mid-write"), KeyboardInterrupt()])
def test_any_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path, error: BaseException) -> None:
    target = F.atomic_write_bytes(tmp_path / "keep.json", b"old")
    with pytest.raises(type(error)), F.atomic_write(target) as fh:
        fh.write(b"half-writ")
        raise error
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["keep.json"]


def test_a_failing_rename_removes_the_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(F.os, "replace", refuse)
    with pytest.raises(OSError, match="disk gone"):
        F.atomic_write_text(tmp_path / "t.md", "text")
    assert _names(tmp_path) == []
