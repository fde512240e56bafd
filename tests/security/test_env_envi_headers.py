"""ENVI headers that lie about byte order or interleave: warned in one line, with the fix; no false alarm on true ones.

Issue 32: such a header loaded and classified garbage with exit code 0. The check
(:func:`hsi.data.io.envi_layout_warning`) reads a few thousand values, whatever the scene's size.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from spectral.io import envi

from hsi.cli.main import main
from hsi.data import io
from hsi.data.io import DataWarning, envi_layout_warning, load_array
from hsi.data.lazy import open_lazy_cube

REPO = Path(__file__).resolve().parents[2]
SALINAS_A = REPO.parent / "shared" / "data" / "salinas_a" / "SalinasA_corrected.mat"
_DATA_TYPE = {np.dtype(t): code for t, code in (("uint8", 1), ("int16", 2), ("int32", 3), ("float32", 4),
                                                 ("float64", 5), ("uint16", 12))}
_STORED = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}


def write_envi(folder: Path, cube: np.ndarray, *, layout: str, order: int, declared: tuple[str, int] | None = None,
               name: str = "scene") -> Path:
    """Writes ``cube`` (H, W, B) laid out as ``layout`` in byte order ``order``, under a header that declares
    ``declared`` (interleave, byte order; default the truth); returns the header."""
    height, width, bands = cube.shape
    layout_declared, order_declared = declared or (layout, order)
    data = np.ascontiguousarray(cube.transpose(_STORED[layout])).astype(cube.dtype.newbyteorder("<>"[order]))
    data.tofile(folder / f"{name}.img")
    header = folder / f"{name}.hdr"
    header.write_text(f"ENVI\nsamples = {width}\nlines = {height}\nbands = {bands}\nheader offset = 0\n"
                      f"file type = ENVI Standard\ndata type = {_DATA_TYPE[cube.dtype]}\n"
                      f"interleave = {layout_declared}\nbyte order = {order_declared}\n")
    return header


def _doubt(header: Path) -> str | None:
    image = envi.open(str(header), str(header.with_suffix(".img")))
    try:
        return envi_layout_warning(image, header.with_suffix(".img"))
    finally:
        image.fid.close()


def _scenes(synthetic_scene: Any) -> dict[str, np.ndarray]:
    synthetic = np.load(synthetic_scene.cube_npy)
    scenes = {"synthetic int16": synthetic, "synthetic float32": synthetic.astype(np.float32)}
    if SALINAS_A.exists():
        salinas = load_array(SALINAS_A)
        scenes |= {"Salinas-A int16": salinas, "Salinas-A reflectance float32": salinas.astype(np.float32) / 10_000,
                   "Salinas-A uint16": salinas.clip(0).astype(np.uint16)}
    return scenes


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    io._warned.clear()  # each test sees its warnings (they are shown once per process)


def test_true_headers_raise_no_doubt(synthetic_scene: Any, tmp_path: Path) -> None:
    """No false alarm: every interleave and byte order, declared truly, on the synthetic scene and on Salinas-A
    (the real scene in ../shared/data, where present), in several data types and crops."""
    scenes = _scenes(synthetic_scene)
    if "Salinas-A int16" in scenes:
        salinas = scenes["Salinas-A int16"]
        bordered = np.zeros((100, 110, salinas.shape[2]), dtype=salinas.dtype)
        bordered[10:93, 12:98] = salinas  # a no-data border, as mosaicked scenes have
        scenes |= {"Salinas-A crop 10 x 10": salinas[:10, :10], "Salinas-A with a zero border": bordered,
                   "Salinas-A 2 bands": salinas[:, :, :2], "Salinas-A 1 row": salinas[:1]}
    for (name, cube), layout, order in itertools.product(scenes.items(), _STORED, (0, 1)):
        header = write_envi(tmp_path, np.ascontiguousarray(cube), layout=layout, order=order)
        assert _doubt(header) is None, (name, layout, order)


def test_noise_raises_no_doubt(tmp_path: Path) -> None:
    """Data with no spectral structure: no reading looks like a scene, so nothing is claimed."""
    noise = np.random.default_rng(0).integers(0, 4000, size=(20, 20, 30)).astype(np.int16)
    for layout, (declared, order) in itertools.product(_STORED, itertools.product(_STORED, (0, 1))):
        assert _doubt(write_envi(tmp_path, noise, layout=layout, order=0, declared=(declared, order))) is None


@pytest.mark.parametrize("truth", ["bsq", "bil", "bip"])
def test_every_lie_about_interleave_or_byte_order_is_doubted(synthetic_scene: Any, tmp_path: Path,
                                                             truth: str) -> None:
    for (name, cube), order, declared in itertools.product(_scenes(synthetic_scene).items(), (0, 1),
                                                           itertools.product(_STORED, (0, 1))):
        if declared == (truth, order):
            continue
        doubt = _doubt(write_envi(tmp_path, cube, layout=truth, order=order, declared=declared))
        assert doubt is not None, (name, truth, order, declared)
        fixes = [f"'interleave = {truth}'"] * (declared[0] != truth) + [f"'byte order = {order}'"] * (declared[1] != order)
        assert f"set {' and '.join(fixes)} in the header" in doubt, doubt
        assert "\n" not in doubt


def test_the_check_reads_a_small_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2000 x 3000 x 200 cube (2.4 GB declared, a sparse file) is judged from a few thousand values."""
    height, width, bands = 2000, 3000, 200
    header = write_envi(tmp_path, np.zeros((2, 2, bands), dtype=np.int16), layout="bsq", order=0)
    text = header.read_text().replace("samples = 2", f"samples = {width}").replace("lines = 2", f"lines = {height}")
    header.write_text(text)
    with (tmp_path / "scene.img").open("r+b") as fh:
        fh.truncate(height * width * bands * 2)
    reads: list[int] = []
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        reads.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr("os.pread", pread)
    started = time.perf_counter()
    assert _doubt(header) is None  # all zero: nothing to judge
    assert time.perf_counter() - started < 1.0
    assert sum(reads) < 200_000 and len(reads) < 5_000


def test_a_lying_header_warns_in_one_line_through_the_cli(synthetic_scene: Any, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """train reads it twice (the lazy decision opens it, then the whole cube is read): one warning line."""
    cube = np.load(synthetic_scene.cube_npy)
    header = write_envi(tmp_path, cube, layout="bil", order=1, declared=("bsq", 0))
    code = main(["train", "--cube", str(header), "--gt", str(synthetic_scene.gt_npy), "--model", "svm",
                 "--pca-components", "5", "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if "ENVI header" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("hsi-classify: warning: ENVI header of ") and "'interleave = bil' and 'byte order = 1'" in lines[0]
    assert "Traceback" not in err


def test_the_window_reader_warns_too(synthetic_scene: Any, tmp_path: Path) -> None:
    cube = np.load(synthetic_scene.cube_npy)
    header = write_envi(tmp_path, cube, layout="bip", order=0, declared=("bip", 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_lazy_cube(header)
    (warning,) = [w for w in caught if issubclass(w.category, DataWarning)]
    assert "set 'byte order = 0' in the header" in str(warning.message)


def test_a_ground_truth_is_not_judged(synthetic_scene: Any, tmp_path: Path) -> None:
    gt = np.load(synthetic_scene.gt_npy).astype(np.int16)[:, :, None]
    header = write_envi(tmp_path, gt, layout="bsq", order=1, declared=("bsq", 0), name="gt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_array(header, role="gt")
    assert not [w for w in caught if issubclass(w.category, DataWarning)]
