"""A full disk is told in one line (exit code 2), never by a traceback or ``SIGBUS``, and nothing half-written
claims to be complete; a tiled prediction keeps its finished tiles for the same command to continue.

Most tests make the disk full where the tool meets it: ``shutil.disk_usage`` reporting little free
space, and ``posix_fallocate``, ``write`` and ``pwrite`` failing with ``ENOSPC``. The last two use a
real small tmpfs, where the test may mount one (as root with the capability; skipped elsewhere):
there the tiled prediction of the issue died with SIGBUS (exit code 135) before.
"""

from __future__ import annotations

import errno
import json
import os
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hsi._core.files as F
from hsi.cli.main import main

MIB = 1 << 20
_Usage = namedtuple("_Usage", "total used free")


def _enospc(*args: object, **kwargs: object) -> Any:
    raise OSError(errno.ENOSPC, "No space left on device")


def _free(monkeypatch: pytest.MonkeyPatch, n_bytes: int) -> None:
    """The disk reports ``n_bytes`` free (to ``shutil.disk_usage``, as ``hsi._core.files`` reads it)."""
    monkeypatch.setattr(F.shutil, "disk_usage", lambda path: _Usage(1 << 40, (1 << 40) - n_bytes, n_bytes))


@pytest.fixture
def full_after(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, int], None]:
    """``full_after(name_part, n)``: files whose name holds ``name_part``, opened by the atomic writer, accept
    ``n`` bytes, then every write fails with ENOSPC."""

    def install(name_part: str, n_bytes: int) -> None:
        real_open = open

        class Filling:
            def __init__(self, handle: Any) -> None:
                self._handle, self._written = handle, 0

            def write(self, data: Any) -> int:
                self._written += len(memoryview(data).cast("B"))
                if self._written > n_bytes:
                    _enospc()
                return int(self._handle.write(data))

            def __getattr__(self, name: str) -> Any:
                return getattr(self._handle, name)

            def __enter__(self) -> Filling:
                return self

            def __exit__(self, *exc: object) -> None:
                self._handle.close()

        def opener(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(path, mode, *args, **kwargs)
            return Filling(handle) if "x" in mode and name_part in str(path) else handle

        monkeypatch.setattr(F, "open", opener, raising=False)

    return install


def _one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("hsi-classify: error: no space left on "), err
    assert "Traceback" not in err and "Errno" not in err and "inline_container" not in err
    return err


# ---------------------------------------------------------------- the writer


def test_a_write_larger_than_the_free_space_is_refused_before_it_starts(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _free(monkeypatch, MIB)
    with pytest.raises(F.DiskFullError, match=r"^no space left on \S+ \(.*\) writing x.npy: 2.0 MiB needed, "
                                              r"1.0 MiB free; free some space there"):
        F.atomic_save_npy(tmp_path / "x.npy", np.zeros(2 * MIB - 64, dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_small_writes_are_not_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A free-space figure of 0 from an odd file system does not stop a small file (the write decides)."""
    _free(monkeypatch, 0)
    F.atomic_write_text(tmp_path / "a.json", "{}")
    assert (tmp_path / "a.json").read_text() == "{}"


def test_enospc_while_writing_keeps_the_old_file_and_says_how_much(tmp_path: Path,
                                                                   full_after: Callable[[str, int], None]) -> None:
    target = F.atomic_write_bytes(tmp_path / "keep.bin", b"old")
    full_after("keep.bin", 10)
    with pytest.raises(F.DiskFullError, match=r"writing keep.bin: (at least )?\d+ B needed, .* free") as caught, \
            F.atomic_write(target) as fh:
        fh.write(b"0123456789")
        fh.flush()
        fh.write(b"more")
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.bin"]


def test_torch_save_on_a_full_disk_is_a_disk_full_error(tmp_path: Path,
                                                        full_after: Callable[[str, int], None]) -> None:
    """torch hides the OSError behind its own RuntimeError ("[enforce fail at inline_container.cc]")."""
    full_after("resume", 1000)
    with pytest.raises(F.DiskFullError, match=r"writing resume.pt: at least"), \
            F.atomic_write(tmp_path / "resume.pt") as fh:
        torch.save({"w": torch.zeros(10_000)}, fh)
    assert list(tmp_path.iterdir()) == []


def test_other_errors_pass_unchanged(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="Permission denied") as caught, F.atomic_write(tmp_path / "x.bin"):
        raise OSError(errno.EACCES, "Permission denied")
    assert not isinstance(caught.value, F.DiskFullError)


def test_working_arrays_are_preallocated(tmp_path: Path) -> None:
    path = F.create_work_array(tmp_path / "labels.npy", np.uint16, (300, 200))
    assert np.load(path, mmap_mode="r").shape == (300, 200)
    if path.stat().st_blocks * 512 < 300 * 200 * 2:
        pytest.skip("this file system cannot preallocate (the file is sparse; writes still fail cleanly)")
    F.write_work_rows(path, slice(10, 12), slice(5, 8), np.array([[1, 2, 3], [4, 5, 6]]))
    stored = np.load(path)
    assert stored[10:12, 5:8].tolist() == [[1, 2, 3], [4, 5, 6]] and stored.sum() == 21


def test_a_working_array_the_disk_cannot_hold_fails_at_creation(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Instead of SIGBUS at the first page written through a memory map, much later."""
    monkeypatch.setattr(F.os, "posix_fallocate", _enospc)
    with pytest.raises(F.DiskFullError, match=r"creating labels.npy: 117.2 KiB needed"):
        F.create_work_array(tmp_path / "labels.npy", np.uint16, (300, 200))
    assert list(tmp_path.iterdir()) == []


def test_a_file_system_that_cannot_preallocate_gets_a_sparse_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(F.os, "posix_fallocate", lambda *a: (_ for _ in ()).throw(OSError(errno.EOPNOTSUPP, "no")))
    path = F.create_work_array(tmp_path / "p.npy", np.uint8, (4, 5, 3))
    assert np.load(path).shape == (4, 5, 3)
    monkeypatch.setattr(F.os, "pwrite", _enospc)  # ... where a full disk is then a write error, not a signal
    with pytest.raises(F.DiskFullError, match=r"writing into p.npy"):
        F.write_work_rows(path, slice(0, 1), slice(0, 2), np.ones((1, 2, 3)))


# ---------------------------------------------------------------- the CLI: train


def test_train_on_a_full_disk_prints_one_line(tmp_path: Path, synthetic_scene: Any, capsys: pytest.CaptureFixture[str],
                                              full_after: Callable[[str, int], None]) -> None:
    """Before: a 43-line traceback (torch's inline_container error, or OSError: [Errno 28])."""
    full_after("resume", 2000)
    out = tmp_path / "runs"
    err = _one_line(["train", *synthetic_scene.args(), "--epochs", "1", "--patch-size", "7", "--pca-components", "15",
                     "--recipe", "paper", "--out", str(out), "--device", "cpu", "--quiet"], capsys)
    assert "writing resume" in err and "free some space" in err
    for status in out.rglob("status*"):  # nothing claims to be a complete run
        assert "complete" not in status.read_text()
    assert not list(out.rglob("model.json"))


def test_train_checks_the_free_space_before_it_writes(tmp_path: Path, synthetic_scene: Any,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import hsi._core.files as files

    monkeypatch.setattr(files, "CHECK_FREE_SPACE_FROM", 1)  # the small test run's files count as large writes
    _free(monkeypatch, 100)
    out = tmp_path / "runs"
    err = _one_line(["train", *synthetic_scene.args(), "--model", "svm", "--pca-components", "5", "--out", str(out),
                     "--quiet"], capsys)
    assert "needed, 100 B free" in err
    assert not list(out.rglob("model.json"))


# ---------------------------------------------------------------- the CLI: predict tile by tile


@pytest.fixture(scope="module")
def svm_run(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("svm")
    assert main(["train", *synthetic_scene.args(), "--model", "svm", "--pca-components", "5", "--out", str(out),
                 "--quiet"]) == 0
    (run,) = out.iterdir()
    return run


def _predict(run: Path, cube: Path, out: Path, *extra: str) -> list[str]:
    return ["predict", "--checkpoint", str(run), "--cube", str(cube), "--out", str(out), "--device", "cpu",
            "--quiet", "--tile-size", "8", *extra]


@pytest.fixture
def pwrite_fails_after(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    def install(n_calls: int) -> None:
        real, count = os.pwrite, [0]

        def pwrite(fd: int, data: Any, offset: int) -> int:
            count[0] += 1
            if count[0] > n_calls:
                _enospc()
            return real(fd, data, offset)

        monkeypatch.setattr(F.os, "pwrite", pwrite)

    yield install


def test_tiled_predict_without_room_for_its_working_files(tmp_path: Path, svm_run: Path, synthetic_scene: Any,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _free(monkeypatch, 1000)
    err = _one_line(_predict(svm_run, synthetic_scene.cube_npy, tmp_path, "--probabilities"), capsys)
    # 30 x 26 uint16 labels + 30 x 26 x 4 uint8 probabilities, with their headers
    assert "for the tiled prediction's working files: 4.8 KiB needed, 1000 B free" in err
    assert "--out folder on another disk" in err
    assert list(tmp_path.iterdir()) == []  # no .partial folder left behind


def test_tiled_predict_whose_disk_fills_keeps_its_tiles_and_continues(
    tmp_path: Path, svm_run: Path, synthetic_scene: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, pwrite_fails_after: Callable[[int], None],
) -> None:
    """16 tiles of 8 x 8 (30 x 26 pixels); the disk fills in the sixth. Before: SIGBUS (memory-mapped output)."""
    pwrite_fails_after(5 * 8)  # one pwrite per row of a tile: five tiles fit
    err = _one_line(_predict(svm_run, synthetic_scene.cube_npy, tmp_path), capsys)
    assert "the finished tiles are kept there: free some space" in err and "run the same command again to continue" in err
    (work,) = tmp_path.glob(".predict_*.partial")
    assert len(json.loads((work / "progress.json").read_text())["done"]) == 5
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]  # no output folder claims anything
    monkeypatch.undo()
    assert main(_predict(svm_run, synthetic_scene.cube_npy, tmp_path)) == 0  # the same command continues
    (folder,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    fresh = tmp_path / "fresh"
    assert main(_predict(svm_run, synthetic_scene.cube_npy, fresh)) == 0
    (expected,) = fresh.iterdir()
    np.testing.assert_array_equal(np.load(folder / "prediction.npy"), np.load(expected / "prediction.npy"))
    assert not list(tmp_path.glob(".predict_*"))


def test_tiled_predict_stops_before_a_tile_its_progress_record_has_no_room_for(
    tmp_path: Path, svm_run: Path, synthetic_scene: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hsi.experiments.predict as predict

    real = F.free_space

    def free(folder: Any) -> int:
        return 10 if str(folder).endswith(".partial") else real(folder)

    monkeypatch.setattr(F, "free_space", free)
    monkeypatch.setattr(predict, "free_space", free)
    err = _one_line(_predict(svm_run, synthetic_scene.cube_npy, tmp_path), capsys)
    assert "recording a finished tile" in err and "the finished tiles are kept" in err
    (work,) = tmp_path.glob(".predict_*.partial")
    assert json.loads((work / "progress.json").read_text())["done"] == []


def test_tiled_predict_whose_outputs_do_not_fit_keeps_every_tile(
    tmp_path: Path, svm_run: Path, synthetic_scene: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, full_after: Callable[[str, int], None],
) -> None:
    full_after("prediction.npy", 100)
    err = _one_line(_predict(svm_run, synthetic_scene.cube_npy, tmp_path), capsys)
    assert "writing prediction.npy" in err and "every tile is classified and kept" in err
    (work,) = tmp_path.glob(".predict_*.partial")
    assert len(json.loads((work / "progress.json").read_text())["done"]) == 16
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]  # the half-made output folder is gone
    monkeypatch.undo()
    assert main(_predict(svm_run, synthetic_scene.cube_npy, tmp_path)) == 0
    assert not list(tmp_path.glob(".predict_*"))


# ---------------------------------------------------------------- a real small disk, where a test may mount one


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``tmpfs(size)``: a tmpfs of ``size`` (e.g. ``"64k"``) mounted at one folder, remounted at each call; skipped
    where mounting is not allowed (not root, or a container without the capability)."""
    import shutil
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    mounted = [False]

    def mount(size: str) -> Path:
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        options = f"{'remount,' if mounted[0] else ''}size={size}"
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode(errors='replace').strip()})")
        mounted[0] = True
        return folder

    yield mount
    if mounted[0]:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_tiled_predict_on_a_real_full_disk(tmp_path: Path, svm_run: Path, synthetic_scene: Any,
                                           capsys: pytest.CaptureFixture[str], tmpfs: Callable[[str], Path]) -> None:
    """A 240 x 260 scene (122 KiB of working labels) onto a 64 KiB tmpfs: before, SIGBUS (exit 135) at the first
    tile written past the space; now one line. With room for the tiles but not the outputs, every tile is kept;
    with room for both, the same command finishes the map."""
    cube = tmp_path / "big.npy"
    np.save(cube, np.tile(np.load(synthetic_scene.cube_npy), (8, 10, 1)))
    out = tmpfs("64k")
    err = _one_line(_predict(svm_run, cube, out, "--tile-size", "64"), capsys)
    assert "no space left on tmpfs (" in err and "122.0 KiB needed, 64.0 KiB free" in err
    assert list(out.iterdir()) == []
    tmpfs("200k")  # the working files fit, the outputs (as large again) do not
    err = _one_line(_predict(svm_run, cube, out, "--tile-size", "64"), capsys)
    assert "every tile is classified and kept" in err
    (work,) = out.glob(".predict_*.partial")
    assert len(json.loads((work / "progress.json").read_text())["done"]) == 20
    tmpfs("2m")
    assert main(_predict(svm_run, cube, out, "--tile-size", "64")) == 0
    (folder,) = out.iterdir()
    fresh = tmp_path / "fresh"
    assert main(_predict(svm_run, cube, fresh, "--tile-size", "64")) == 0
    (expected,) = fresh.iterdir()
    np.testing.assert_array_equal(np.load(folder / "prediction.npy"), np.load(expected / "prediction.npy"))


def test_train_on_a_real_full_disk(synthetic_scene: Any, capsys: pytest.CaptureFixture[str],
                                   tmpfs: Callable[[str], Path]) -> None:
    out = tmpfs("48k")
    err = _one_line(["train", *synthetic_scene.args(), "--model", "svm", "--pca-components", "5", "--out", str(out),
                     "--quiet"], capsys)
    assert "no space left on tmpfs (" in err
    assert not list(out.rglob("model.json"))
