"""Bad input to `predict` and a few more to `train`: one line on stderr, exit code 2, no folder left.

One tiny synthetic run (204 bands, like Salinas-A, but 3 classes) gives the checkpoint that
`predict` is then handed with scenes it does not fit, and damaged copies of it.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hsi.cli.main import main


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Trains once on a 10 x 10 synthetic scene with 204 bands; keeps the run folder and its stderr."""
    d = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 4, size=(10, 10)).astype(np.uint8)
    synthetic_cube = (np.eye(204)[labels * 50] + 0.1 * rng.standard_normal((10, 10, 204))).astype(np.float32)
    files: dict[str, Path | str] = {"cube": d / "synthetic_cube.npy", "gt": d / "synthetic_gt.npy",
                                    "cube_20_bands": d / "synthetic_cube_20.npy", "cube_nan": d / "synthetic_nan.npy"}
    np.save(files["cube"], synthetic_cube)
    np.save(files["gt"], labels)
    np.save(files["cube_20_bands"], synthetic_cube[..., :20])
    with_nan = synthetic_cube.copy()
    with_nan[2, 3, 7] = np.nan
    np.save(files["cube_nan"], with_nan)
    out = d / "runs"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", "--cube", str(files["cube"]), "--gt", str(files["gt"]), "--out", str(out),
                     "--epochs", "1", "--patch-size", "9", "--pca-components", "15", "--quiet",
                     "--split", "per-class", "--train-per-class", "40"])  # more than some classes have
    assert code == 0, err.getvalue()
    (run_dir,) = out.iterdir()
    files["run"] = run_dir
    files["stderr"] = err.getvalue()
    return files


def _one_line_error(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("hsi-classify: error: ") and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())  # no folder, no partial file
    return err


def test_library_warnings_reach_the_user_as_one_line(synthetic_run: dict) -> None:
    lines = [line for line in synthetic_run["stderr"].splitlines() if line.strip()]
    (warning,) = [line for line in lines if "warning" in line and "overlap training patches" not in line]
    assert re.fullmatch(r"hsi-classify: warning: classes \[[0-9, ]+\] have fewer than 41 pixels; .*", warning)
    assert not any(line.lstrip().startswith("warnings.warn") for line in lines)  # no source line


def _predict(run: dict, out: Path, *extra: str, checkpoint: Path | None = None) -> list[str]:
    return ["predict", "--checkpoint", str(checkpoint or run["run"]), "--out", str(out), *extra]


def test_predict_refuses_a_cube_of_another_band_count(synthetic_run: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    err = _one_line_error(_predict(synthetic_run, out, "--cube", str(synthetic_run["cube_20_bands"])), out, capsys)
    assert "trained on 204-band cubes" in err and "got a cube with 20 bands" in err


def test_predict_refuses_a_scene_with_another_class_count(
    synthetic_run: dict, fake_salinas_a_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"  # fake Salinas-A files: 204 bands, 6 classes
    args = _predict(synthetic_run, out, "--dataset", "salinas_a", "--data-dir", str(fake_salinas_a_dir),
                    "--no-download")
    err = _one_line_error(args, out, capsys)
    assert "predicts 3 classes" in err and "has 6" in err


@pytest.mark.parametrize(("damage", "words"), [
    ("bit flip", "fails its integrity check"),
    ("truncated", "is truncated"),
    ("not a checkpoint", "is a data file (a cube or ground truth), not a checkpoint"),
])
def test_predict_refuses_a_damaged_checkpoint(synthetic_run: dict, tmp_path: Path, capsys, damage: str,
                                              words: str) -> None:
    checkpoint = tmp_path / "run"
    checkpoint.mkdir()
    for name in ("model.json", "model.safetensors"):
        (checkpoint / name).write_bytes((synthetic_run["run"] / name).read_bytes())
    data = bytearray((checkpoint / "model.safetensors").read_bytes())
    if damage == "bit flip":  # somewhere in the weights: still a valid safetensors file
        data[len(data) // 2] ^= 0x01
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        checkpoint = tmp_path / "model.pt"
        data = bytearray(Path(synthetic_run["cube"]).read_bytes())
    (checkpoint if damage == "not a checkpoint" else checkpoint / "model.safetensors").write_bytes(bytes(data))
    out = tmp_path / "out"
    err = _one_line_error(_predict(synthetic_run, out, "--cube", str(synthetic_run["cube"]), checkpoint=checkpoint),
                          out, capsys)
    assert words in err, err


def test_predict_offers_the_nan_policy(synthetic_run: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    err = _one_line_error(_predict(synthetic_run, out, "--cube", str(synthetic_run["cube_nan"])), out, capsys)
    assert "found 1 NaN/infinite values in 1 pixels, first at (row 2, col 3)" in err and "--nan-policy" in err
    assert main(_predict(synthetic_run, out, "--cube", str(synthetic_run["cube_nan"]), "--nan-policy", "zero")) == 0
    (predicted,) = out.iterdir()
    assert np.load(predicted / "prediction.npy").shape == (10, 10)


def test_mat_with_several_cubes_and_no_key_lists_them(synthetic_run: dict, tmp_path: Path, capsys) -> None:
    cube = np.load(synthetic_run["cube_20_bands"])
    path = tmp_path / "synthetic_two_cubes.mat"
    scipy.io.savemat(path, {"raw": cube, "corrected": cube})
    out = tmp_path / "out"
    err = _one_line_error(["train", "--cube", str(path), "--gt", str(synthetic_run["gt"]), "--out", str(out)],
                          out, capsys)
    assert "several fit: raw (10, 10, 20) single, corrected (10, 10, 20) single" in err and "--cube-key" in err
