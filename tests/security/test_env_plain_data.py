"""Plain data that printed library warnings: a ground truth holding inf, constant and extreme-scale cubes.

Issue 32: "a ground truth with inf and some constant cubes print library warnings (2-line refusals,
or warnings on exit 0)". Each case now ends in one line of the tool's own (exit 2) or in no warning.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

from hsi.cli.main import main
from hsi.data.io import load_array
from hsi.features.pca import SpectralPCA


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as a user's python shows them
        code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Warning" not in err, err  # no RuntimeWarning / UserWarning text of a library
    return code, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_a_ground_truth_holding_inf_is_one_line(value: float, synthetic_scene: Any, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Before: numpy's "invalid value encountered in remainder" above the refusal (two lines)."""
    gt = np.load(synthetic_scene.gt_npy).astype(np.float32)
    gt[4, 5] = value
    np.save(tmp_path / "gt.npy", gt)
    code, lines = _run(["train", "--cube", str(synthetic_scene.cube_npy), "--gt", str(tmp_path / "gt.npy"),
                        "--model", "svm", "--out", str(tmp_path / "runs"), "--quiet"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert f"first {value} at row 4, col 5" in lines[0] and lines[0].startswith("hsi-classify: error: ")


def test_a_matlab_ground_truth_among_two_candidates_with_inf(synthetic_scene: Any, tmp_path: Path) -> None:
    """Guessing the integer-valued variable of several compared them with numpy's remainder warning."""
    gt = np.load(synthetic_scene.gt_npy).astype(np.float64)
    other = gt.copy()
    other[0, 0] = np.inf
    scipy.io.savemat(tmp_path / "gt.mat", {"labels": gt, "scores": other})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(load_array(tmp_path / "gt.mat", role="gt"), gt)


def test_a_ground_truth_id_of_1e300_is_shown_short(synthetic_scene: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    gt = np.load(synthetic_scene.gt_npy).astype(np.float64)
    gt[0, 0] = 1e300
    np.save(tmp_path / "gt.npy", gt)
    code, lines = _run(["train", "--cube", str(synthetic_scene.cube_npy), "--gt", str(tmp_path / "gt.npy"),
                        "--model", "svm", "--out", str(tmp_path / "runs"), "--quiet"], capsys)
    assert code == 2 and len(lines) == 1 and "found 1e+300." in lines[0] and not re.search(r"\d{20}", lines[0])


def _constant_cubes(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    return {"all 7": np.full(shape, 7, dtype=np.int16), "all 0": np.zeros(shape, dtype=np.float32),
            "each band its own constant": np.broadcast_to(np.arange(shape[2], dtype=np.int16), shape).copy()}


@pytest.mark.parametrize("kind", ["all 7", "all 0", "each band its own constant"])
@pytest.mark.parametrize("model", [["--model", "svm", "--pca-components", "5"],
                                   ["--model", "svm", "--pca-components", "5", "--reduce", "mnf"],
                                   ["--epochs", "1", "--patch-size", "7", "--pca-components", "15", "--recipe",
                                    "paper"]], ids=["svm", "svm_mnf", "hybridsn"])
def test_a_cube_whose_every_band_is_constant_is_refused_in_one_line(
    kind: str, model: list[str], synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: scikit-learn's "invalid value encountered in divide" (PCA's explained variance ratio, 0 / 0) and a
    model at chance level, exit 0."""
    np.save(tmp_path / "cube.npy", _constant_cubes(synthetic_scene.shape)[kind])
    code, lines = _run(["train", "--cube", str(tmp_path / "cube.npy"), "--gt", str(synthetic_scene.gt_npy), *model,
                        "--out", str(tmp_path / "runs"), "--device", "cpu", "--quiet"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "all have the same spectrum (every band is constant)" in lines[0]


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_cubes_of_extreme_scale_train_without_warnings(scale: float, synthetic_scene: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Before: float32 squares overflowed (1e30) or vanished (1e-30) in scikit-learn's PCA: RuntimeWarnings and
    a NaN projection."""
    np.save(tmp_path / "cube.npy", np.load(synthetic_scene.cube_npy).astype(np.float32) * np.float32(scale))
    code, lines = _run(["train", "--cube", str(tmp_path / "cube.npy"), "--gt", str(synthetic_scene.gt_npy),
                        "--model", "svm", "--pca-components", "5", "--out", str(tmp_path / "runs"), "--quiet"], capsys)
    assert code == 0, lines
    assert not [line for line in lines if "warning" in line.lower()], lines


def test_pca_is_the_same_at_any_scale(synthetic_scene: Any) -> None:
    """The fit scales extreme pixels by a power of two (exact): the projection is the one of the unscaled cube."""
    cube = np.load(synthetic_scene.cube_npy).astype(np.float32)
    reference = SpectralPCA(5, seed=0).fit(cube.reshape(-1, cube.shape[2])).transform(cube)
    for scale in (2.0**70, 2.0**-70, 1e-27, 1e33):
        scaled = cube * np.float32(scale)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = SpectralPCA(5, seed=0).fit(scaled.reshape(-1, cube.shape[2])).transform(scaled)
        assert np.isfinite(got).all()
        # the leading components; at 1e33 the float32 projection of the weakest ones nears the denormals
        np.testing.assert_allclose(np.abs(got[..., :3]), np.abs(reference[..., :3]), atol=1e-3, err_msg=str(scale))
