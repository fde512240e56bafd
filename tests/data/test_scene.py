"""Scenes: label remapping and validation, NaN policies, lookup order.

The built-in scene path runs on fake Salinas-A files (real names, keys, shapes and ids; see the
``fake_salinas_a_dir`` fixture) and custom scenes on the synthetic scene; one e2e test checks the
real files.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

from hsi._core.errors import ConfigError, DataFormatError
from hsi.data.scene import (
    Scene,
    data_dir_candidates,
    dataset_status,
    labels_from_ground_truth,
    load_custom_scene,
    load_scene,
)
from hsi.data.specs import get_spec

SALINAS_A_COUNTS = [391, 1343, 616, 1525, 674, 799]
FAKE_SALINAS_A_COUNTS = [220, 330, 440, 550, 660, 770]  # fixture fake_salinas_a_dir (tests/conftest.py)
INDIAN_PINES_COUNTS = [46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93]


def synthetic_cube(shape: tuple[int, int, int] = (6, 5, 8)) -> np.ndarray:
    """A small synthetic float32 cube: pixel (r, c) holds the spectrum r + c + 0.5 * band."""
    rows, cols, bands = np.indices(shape, dtype=np.float32)
    return rows + cols + 0.5 * bands


def synthetic_gt(shape: tuple[int, int] = (6, 5)) -> np.ndarray:
    """A small synthetic ground truth with ids 0 (unlabelled), 3, 7 and 9."""
    gt = np.zeros(shape, dtype=np.uint8)
    gt[0, :] = 3
    gt[1, :2] = 7
    gt[5, 4] = 9
    return gt


def _save_npy(folder: Path, **arrays: np.ndarray) -> list[Path]:
    paths = []
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
        paths.append(folder / f"{name}.npy")
    return paths


# ---------------------------------------------------------------- real data (e2e)


@pytest.mark.e2e
def test_real_scenes_load_as_published(shared_data_dir: Path) -> None:
    scene = load_scene("salinas_a", data_dir=shared_data_dir, download=False)
    assert scene.shape == (83, 86, 204) and scene.n_bands == 204 and scene.n_classes == 6
    assert scene.cube.dtype == np.float32 and scene.cube.flags.c_contiguous
    assert scene.labels.dtype == np.int64 and scene.labels.shape == (83, 86)
    assert scene.class_ids == (1, 10, 11, 12, 13, 14)
    assert scene.class_names == get_spec("salinas_a").class_names and len(scene.palette) == 6
    assert int((scene.labels >= 0).sum()) == 5348
    assert np.bincount(scene.labels[scene.labels >= 0]).tolist() == SALINAS_A_COUNTS
    assert set(np.unique(scene.labels).tolist()) == {-1, 0, 1, 2, 3, 4, 5}
    raw = scipy.io.loadmat(shared_data_dir / "salinas_a" / "SalinasA_corrected.mat")["salinasA_corrected"]
    np.testing.assert_array_equal(scene.cube, raw.astype(np.float32))
    assert scene.sources == {
        "cube": str(shared_data_dir / "salinas_a" / "SalinasA_corrected.mat"),
        "gt": str(shared_data_dir / "salinas_a" / "SalinasA_gt.mat"),
    }
    # the same files as a custom scene: ids kept, generic names
    folder = shared_data_dir / "salinas_a"
    custom = load_custom_scene(folder / "SalinasA_corrected.mat", folder / "SalinasA_gt.mat")
    assert custom.name == "SalinasA_corrected" and custom.class_ids == (1, 10, 11, 12, 13, 14)
    assert custom.class_names[:2] == ("class 1", "class 10")
    assert len(set(custom.palette)) == 6 and all(0 <= b < 204 for b in custom.rgb_bands)
    # Indian Pines' ground truth remaps to 16 classes with the published counts
    gt = scipy.io.loadmat(shared_data_dir / "indian_pines" / "Indian_pines_gt.mat")["indian_pines_gt"]
    labels, ids = labels_from_ground_truth(gt, get_spec("indian_pines").class_ids)
    assert ids == tuple(range(1, 17))
    assert np.bincount(labels[labels >= 0]).tolist() == INDIAN_PINES_COUNTS


# ---------------------------------------------------------------- built-in scene path (fake Salinas-A files)


def test_builtin_scene_loads_with_remapped_labels(fake_salinas_a_dir: Path) -> None:
    scene = load_scene("salinas_a", data_dir=fake_salinas_a_dir, download=False)
    assert scene.shape == (83, 86, 204) and scene.n_bands == 204 and scene.n_classes == 6
    assert scene.cube.dtype == np.float32 and scene.cube.flags.c_contiguous
    assert scene.labels.dtype == np.int64 and scene.labels.shape == (83, 86)
    assert scene.class_ids == (1, 10, 11, 12, 13, 14)
    assert scene.class_names == get_spec("salinas_a").class_names and len(scene.palette) == 6
    assert int((scene.labels >= 0).sum()) == sum(FAKE_SALINAS_A_COUNTS)
    assert np.bincount(scene.labels[scene.labels >= 0]).tolist() == list(FAKE_SALINAS_A_COUNTS)
    assert set(np.unique(scene.labels).tolist()) == {-1, 0, 1, 2, 3, 4, 5}
    raw = scipy.io.loadmat(fake_salinas_a_dir / "salinas_a" / "SalinasA_corrected.mat")["salinasA_corrected"]
    np.testing.assert_array_equal(scene.cube, raw.astype(np.float32))
    assert scene.sources == {
        "cube": str(fake_salinas_a_dir / "salinas_a" / "SalinasA_corrected.mat"),
        "gt": str(fake_salinas_a_dir / "salinas_a" / "SalinasA_gt.mat"),
    }


def test_builtin_scene_found_through_hsi_data_dir(fake_salinas_a_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSI_DATA_DIR", str(fake_salinas_a_dir))
    assert load_scene("salinas_a", download=False).n_classes == 6


def test_custom_scene_from_mat_files(synthetic_scene: Any) -> None:
    scene = load_custom_scene(synthetic_scene.cube, synthetic_scene.gt)
    assert scene.name == "synthetic_cube" and scene.class_ids == (2, 3, 5, 9)
    assert scene.class_names[:2] == ("class 2", "class 3")
    assert len(set(scene.palette)) == 4 and all(0 <= b < 24 for b in scene.rgb_bands)
    assert scene.labels.dtype == np.int64 and np.bincount(scene.labels[scene.labels >= 0]).tolist() == [143] * 4
    assert scene.cube.dtype == np.float32
    np.testing.assert_array_equal(scene.cube, np.load(synthetic_scene.cube_npy).astype(np.float32))


def test_wrong_cube_shape_for_a_builtin_scene(tmp_path: Path, fake_salinas_a_dir: Path) -> None:
    folder = tmp_path / "salinas_a"
    folder.mkdir()
    shutil.copy(fake_salinas_a_dir / "salinas_a" / "SalinasA_gt.mat", folder)
    scipy.io.savemat(folder / "SalinasA_corrected.mat", {"salinasA_corrected": synthetic_cube()})
    with pytest.raises(DataFormatError, match=r"has shape \(6, 5, 8\); expected \(83, 86, 204\).*published"):
        load_scene("salinas_a", data_dir=tmp_path, download=False)


def test_dataset_status_reports_presence_and_folders(fake_salinas_a_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(fake_salinas_a_dir / "salinas_a", data / "salinas_a")
    (data / "indian_pines").mkdir()
    (data / "indian_pines" / "Indian_pines_gt.mat").write_bytes(b"only its presence is looked at")
    rows = {row["name"]: row for row in dataset_status(data)}
    assert set(rows) == {"botswana", "indian_pines", "ksc", "pavia_u", "salinas", "salinas_a"}
    assert rows["salinas_a"]["present"] and rows["salinas_a"]["missing"] == []
    assert rows["salinas_a"]["path"] == str(data / "salinas_a")
    assert not rows["indian_pines"]["present"]
    assert rows["indian_pines"]["missing"] == ["Indian_pines_corrected.mat"]
    assert rows["indian_pines"]["files"]["Indian_pines_gt.mat"].endswith("Indian_pines_gt.mat")
    assert dataset_status(tmp_path)[0]["path"] == str(tmp_path / "botswana")  # where it would be downloaded


# ---------------------------------------------------------------- lookup order


def test_data_dir_candidates_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HSI_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("HSI_CACHE_DIR", str(tmp_path / "cache"))
    assert data_dir_candidates(tmp_path / "arg") == [tmp_path / "arg", tmp_path / "env", tmp_path / "cache"]
    assert data_dir_candidates() == [tmp_path / "env", tmp_path / "cache"]
    monkeypatch.delenv("HSI_DATA_DIR")
    monkeypatch.delenv("HSI_CACHE_DIR")
    assert data_dir_candidates() == [Path.home() / ".cache" / "hsi-classify"]


# ---------------------------------------------------------------- labels


def test_labels_are_contiguous_in_ascending_id_order() -> None:
    labels, ids = labels_from_ground_truth(synthetic_gt())
    assert ids == (3, 7, 9)
    assert labels.dtype == np.int64
    assert labels[0, 0] == 0 and labels[1, 0] == 1 and labels[5, 4] == 2 and labels[3, 3] == -1


def test_labels_follow_given_class_ids_even_when_a_class_is_absent() -> None:
    labels, ids = labels_from_ground_truth(synthetic_gt(), (1, 3, 7, 9))
    assert ids == (1, 3, 7, 9)
    assert labels[0, 0] == 1 and labels[5, 4] == 3


def test_whole_floats_and_booleans_are_accepted() -> None:
    labels, ids = labels_from_ground_truth(synthetic_gt().astype(np.float64))
    assert ids == (3, 7, 9)
    labels, ids = labels_from_ground_truth(synthetic_gt() > 0)
    assert ids == (1,) and int((labels == 0).sum()) == 8


@pytest.mark.parametrize(
    ("synthetic_bad_gt", "match"),
    [
        (synthetic_gt().astype(float) + 0.5, r"integer class ids; found 30 non-integer values \(first 3.5 at row 0"),
        (np.where(synthetic_gt() == 9, np.nan, synthetic_gt()), "found 1 non-integer value \\("),
        (synthetic_gt().astype(np.int16) - 1, r"ids >= 0 \(0 = unlabelled\); found 22 negative values \(min -1\)"),
        (np.where(synthetic_gt() == 9, 70_000, synthetic_gt().astype(np.int32)), r"class ids from 1 to 65535 \(0 = unlabelled\); found 70000"),
        (np.zeros((6, 5), np.uint8), r"no labelled pixel: every value is 0"),
        (np.zeros((6, 5, 2), np.uint8), r"must be 2-D \(H, W\); got shape \(6, 5, 2\)"),
        (np.full((6, 5), "a"), "must hold integer class ids; got dtype <U1"),
    ],
)
def test_invalid_ground_truth_is_refused(synthetic_bad_gt: np.ndarray, match: str) -> None:
    with pytest.raises(DataFormatError, match=match):
        labels_from_ground_truth(synthetic_bad_gt)


def test_ids_unknown_to_the_spec_are_refused() -> None:
    with pytest.raises(DataFormatError, match=r"holds ids \[7, 9\] that this scene does not define"):
        labels_from_ground_truth(synthetic_gt(), (1, 3))
    with pytest.raises(ConfigError, match="ascending"):
        labels_from_ground_truth(synthetic_gt(), (9, 7, 3))


# ---------------------------------------------------------------- custom scenes and NaN policies


def test_custom_scene_from_npy(tmp_path: Path) -> None:
    cube_path, gt_path = _save_npy(tmp_path, synthetic_cube=synthetic_cube(), synthetic_gt=synthetic_gt())
    scene = load_custom_scene(cube_path, gt_path, name="synthetic")
    assert scene.name == "synthetic" and scene.shape == (6, 5, 8)
    assert scene.class_names == ("class 3", "class 7", "class 9")
    np.testing.assert_array_equal(scene.cube, synthetic_cube())


def test_custom_scene_without_ground_truth(tmp_path: Path) -> None:
    (cube_path,) = _save_npy(tmp_path, synthetic_cube=synthetic_cube())
    scene = load_custom_scene(cube_path, None)
    assert scene.n_classes == 0 and (scene.labels == -1).all() and "gt" not in scene.sources


def test_custom_scene_shape_mismatch_and_2d_cube(tmp_path: Path) -> None:
    cube_path, gt_path, flat_path = _save_npy(
        tmp_path, synthetic_cube=synthetic_cube(), synthetic_gt=synthetic_gt().T.copy(), synthetic_flat=np.ones((6, 5))
    )
    with pytest.raises(DataFormatError, match=r"spatial shape \(6, 5\); got \(5, 6\)"):
        load_custom_scene(cube_path, gt_path)
    with pytest.raises(DataFormatError, match=r"must be 3-D \(H, W, B\); got shape \(6, 5\)"):
        load_custom_scene(flat_path, gt_path)


def _cube_with_gaps() -> np.ndarray:
    cube = synthetic_cube()
    cube[2, 3, 4] = np.nan  # inside the spectrum
    cube[0, 0, 0] = np.inf  # at its start
    cube[4, 1, :] = np.nan  # a pixel with no finite band
    return cube


@pytest.fixture
def synthetic_gappy_files(tmp_path: Path) -> list[Path]:
    return _save_npy(tmp_path, synthetic_cube=_cube_with_gaps(), synthetic_gt=synthetic_gt())


def test_nan_policy_error_says_how_many_where_and_the_fix(synthetic_gappy_files: list[Path]) -> None:
    match = r"found 10 NaN/infinite values in 3 pixels, first at \(row 0, col 0\).*--nan-policy zero\|interpolate"
    with pytest.raises(DataFormatError, match=match):
        load_custom_scene(*synthetic_gappy_files)


def test_nan_policy_zero(synthetic_gappy_files: list[Path]) -> None:
    cube = load_custom_scene(*synthetic_gappy_files, nan_policy="zero").cube
    assert cube[2, 3, 4] == 0 and cube[0, 0, 0] == 0 and not cube[4, 1].any()
    assert cube[2, 3, 5] == synthetic_cube()[2, 3, 5]


def test_nan_policy_interpolate_along_the_spectrum(synthetic_gappy_files: list[Path]) -> None:
    cube = load_custom_scene(*synthetic_gappy_files, nan_policy="interpolate").cube
    expected = synthetic_cube()
    assert cube[2, 3, 4] == pytest.approx(expected[2, 3, 4])  # linear between bands 3 and 5
    assert cube[0, 0, 0] == pytest.approx(expected[0, 0, 1])  # nearest finite value at the edge
    assert not cube[4, 1].any()  # nothing to interpolate from: 0
    assert np.isfinite(cube).all()


def test_unknown_nan_policy(synthetic_gappy_files: list[Path]) -> None:
    with pytest.raises(ConfigError, match="nan_policy must be one of error, zero, interpolate; got 'drop'"):
        load_custom_scene(*synthetic_gappy_files, nan_policy="drop")


def test_scene_refuses_inconsistent_fields() -> None:
    labels, ids = labels_from_ground_truth(synthetic_gt())
    fields = dict(name="synthetic", labels=labels, class_ids=ids, class_names=("a", "b", "c"),
                  palette=("#000000", "#111111", "#222222"), rgb_bands=(3, 2, 1))  # fmt: skip
    Scene(cube=synthetic_cube(), **fields)  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match="must be float32"):
        Scene(cube=synthetic_cube().astype(np.float64), **fields)  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match="one class name and one colour per class id"):
        Scene(cube=synthetic_cube(), **{**fields, "class_names": ("a",)})  # type: ignore[arg-type]
