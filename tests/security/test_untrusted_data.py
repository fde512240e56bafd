"""Data files that lie about their size: refused in one line before anything is allocated.

A 6 kB MATLAB v7.3 file may declare a 60 x 20000 x 20000 int16 cube (44.7 GiB); an ENVI or
.npy header may describe far more data than the file holds. Each is refused with exit code 2
and one line that gives the size, the memory there is and the way forward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from hsi._core.errors import DataFormatError, InputTooLargeError
from hsi._core.memory import MEMORY_ENV, available_memory, check_fits_in_memory
from hsi.cli.main import main
from hsi.data.io import load_array


def _one_line_refusal(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("hsi-classify: error: ") and "Traceback" not in err
    return err


def _v73_bomb(path: Path, side: int = 20000) -> Path:
    """A MATLAB v7.3 file declaring a 60 x side x side int16 cube; chunked and never written, so ~6 kB."""
    with h5py.File(path, "w", userblock_size=512) as f:
        dataset = f.create_dataset("cube", shape=(side, side, 60), dtype="int16", chunks=(64, 64, 60),
                                   compression="gzip")
        dataset.attrs.create("MATLAB_class", np.bytes_("int16"))
    with path.open("r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM")
    return path


def test_a_small_v73_file_declaring_44_gib_is_refused(synthetic_scene: Any, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _v73_bomb(tmp_path / "bomb.mat")
    assert bomb.stat().st_size < 20_000
    monkeypatch.setenv(MEMORY_ENV, "16G")  # the same answer on any machine
    out = tmp_path / "out"
    err = _one_line_refusal(["train", "--cube", str(bomb), "--gt", str(synthetic_scene.gt), "--out", str(out)],
                            capsys)
    assert "declares a 60 x 20000 x 20000 int16 array (44.7 GiB stored)" in err
    assert "this machine has 16.0 GiB available" in err and "crop the scene" in err
    assert not out.exists()


def test_without_the_override_the_memory_is_this_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    assert 0 < available_memory()
    with pytest.raises(InputTooLargeError, match=r"declares a 60 x 200000 x 200000 int16 array \(4.4 TiB stored\)"):
        load_array(_v73_bomb(tmp_path / "bomb.mat", side=200_000))  # no machine has 13 TiB free


def test_a_lying_envi_header_is_refused(synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    header = tmp_path / "cube.hdr"
    header.write_text("ENVI\nsamples = 20000\nlines = 20000\nbands = 60\nheader offset = 0\nfile type = ENVI Standard\n"
                      "data type = 2\ninterleave = bsq\nbyte order = 0\n")
    (tmp_path / "cube.img").write_bytes(bytes(4096))
    err = _one_line_refusal(["train", "--cube", str(header), "--gt", str(synthetic_scene.gt), "--out",
                             str(tmp_path / "out")], capsys)
    assert "is truncated: its header describes 20000x20000x60 values (48000000000 bytes)" in err
    # A header that tells the truth about a file too large for the memory there is, read whole
    # (--lazy off; by default such a cube is read window by window instead):
    header.write_text(header.read_text().replace("20000", "32").replace("bands = 60", "bands = 2"))
    monkeypatch.setenv(MEMORY_ENV, "1K")
    err = _one_line_refusal(["train", "--cube", str(header), "--gt", str(synthetic_scene.gt), "--out",
                             str(tmp_path / "out"), "--lazy", "off"], capsys)
    assert "declares a 32 x 32 x 2 int16 array (4.0 KiB stored)" in err and "1.0 KiB available" in err


def test_a_lying_npy_header_is_refused(synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, np.zeros((4, 4, 3), np.float32))
    data = path.read_bytes().replace(b"(4, 4, 3)", b"(60000, 60000, 3)")
    path.write_bytes(data)
    err = _one_line_refusal(["train", "--cube", str(path), "--gt", str(synthetic_scene.gt), "--out",
                             str(tmp_path / "out")], capsys)
    assert "is truncated: its header describes a 60000 x 60000 x 3 float32 array" in err
    np.save(path, np.zeros((40, 40, 3), np.int16))
    monkeypatch.setenv(MEMORY_ENV, "10K")
    err = _one_line_refusal(["train", "--cube", str(path), "--gt", str(synthetic_scene.gt), "--out",
                             str(tmp_path / "out"), "--lazy", "off"], capsys)
    assert "declares a 40 x 40 x 3 int16 array (9.4 KiB stored)" in err and "needs 28.1 KiB" in err


def test_an_npy_of_python_objects_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(Exception, match="holds Python objects .* hsi-classify reads numeric arrays only"):
        load_array(path)


def test_the_memory_override_reads_units(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("2048", 2048), ("3K", 3072), ("1.5G", 3 * 2**29), ("2GiB", 2**31), ("1gb", 2**30)):
        monkeypatch.setenv(MEMORY_ENV, value)
        assert available_memory() == expected, value
    monkeypatch.setenv(MEMORY_ENV, "lots")  # ignored, not trusted
    assert available_memory() > 2**20
    monkeypatch.setenv(MEMORY_ENV, "1M")
    with pytest.raises(InputTooLargeError, match=r"x needs 2.0 MiB of memory to read, but this machine has 1.0 MiB"):
        check_fits_in_memory(2 * 2**20, what="x", fix="y")


@pytest.mark.parametrize("compressed", [False, True])
def test_a_matlab_v5_data_element_of_an_impossible_type_is_refused(compressed: bool, tmp_path: Path) -> None:
    """scipy 1.17 crashes the process (segmentation fault) on this file; found by scripts/fuzz.py."""
    import scipy.io

    path = tmp_path / "cube.mat"
    scipy.io.savemat(path, {"cube": np.arange(120, dtype=np.int16).reshape(6, 5, 4)}, do_compression=compressed)
    if compressed:  # rebuild the one compressed element around the edited matrix
        import zlib

        raw = path.read_bytes()
        matrix = bytearray(zlib.decompress(raw[136:]))
        at = matrix.index(b"cube") + 4
        matrix[at:at + 4] = (99).to_bytes(4, "little")
        packed = zlib.compress(bytes(matrix))
        path.write_bytes(raw[:128] + (15).to_bytes(4, "little") + len(packed).to_bytes(4, "little") + packed)
    else:
        raw = bytearray(path.read_bytes())
        at = raw.index(b"cube") + 4
        raw[at:at + 4] = bytes(4)  # the data element's type: 0, which no MATLAB version writes
        path.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=r"is damaged: variable 'cube' has a data element of type (0|99)"):
        load_array(path)
