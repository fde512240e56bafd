"""load_array: every format gives the same array, and every bad file a clear HSIError.

All on the synthetic scene of tests/data/synthetic_scene or arrays made here; no real data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from PIL import Image
from spectral.io import envi

from hsi._core.errors import ConfigError, DataFormatError, DatasetNotFoundError, HSIError
from hsi.data.io import load_array


def synthetic_cube(shape: tuple[int, int, int] = (7, 5, 4), dtype: str = "int16") -> np.ndarray:
    """A small synthetic cube whose every value is distinct (so any axis mix-up shows)."""
    return np.arange(np.prod(shape)).reshape(shape).astype(dtype)


def synthetic_gt(shape: tuple[int, int] = (7, 5)) -> np.ndarray:
    """A small synthetic label map with ids 0..3."""
    return (np.arange(np.prod(shape)).reshape(shape) % 4).astype(np.uint8)


# ---------------------------------------------------------------- MATLAB files (the synthetic scene's)


def test_mat_files_read_in_their_stored_dtype(synthetic_scene: Any) -> None:
    cube = load_array(synthetic_scene.cube, "cube")
    gt = load_array(synthetic_scene.gt, role="gt")  # key picked automatically
    assert cube.shape == (30, 26, 24) and cube.dtype == np.int16
    assert gt.shape == (30, 26) and gt.dtype == np.uint8
    np.testing.assert_array_equal(cube, np.load(synthetic_scene.cube_npy))


def test_ground_truth_reads_with_its_key(synthetic_scene: Any) -> None:
    gt = load_array(synthetic_scene.gt, "gt", role="gt")
    assert gt.shape == (30, 26)
    assert int((gt > 0).sum()) == 572  # four 13 x 11 fields
    assert sorted(int(i) for i in np.unique(gt) if i) == [2, 3, 5, 9]


def test_matlab_v73_copy_reads_identical_to_v5(
    synthetic_v73: dict[str, Path], synthetic_v5: dict[str, np.ndarray]
) -> None:
    for role in ("cube", "gt"):
        for key in (None, role):
            array = load_array(synthetic_v73[role], key, role=role)  # type: ignore[arg-type]
            assert array.dtype == synthetic_v5[role].dtype
            np.testing.assert_array_equal(array, synthetic_v5[role])


def test_matlab_v73_picks_by_role_and_skips_text(tmp_path: Path, write_mat_v73: Callable[..., Path]) -> None:
    cube, gt = synthetic_cube(), synthetic_gt()
    path = write_mat_v73(
        tmp_path / "both.mat",
        {"description": "synthetic scene", "cube": cube, "labels": gt, "mask": np.ones((7, 5), bool)},
    )
    np.testing.assert_array_equal(load_array(path, role="cube"), cube)
    with pytest.raises(DataFormatError, match="several fit: labels .*, mask"):
        load_array(path, role="gt")  # a logical mask is integer-valued too: ambiguous
    assert load_array(path, "mask", role="gt").dtype == np.bool_


# ---------------------------------------------------------------- choosing the variable


def test_auto_key_picks_the_only_3d_and_the_only_integer_2d(tmp_path: Path) -> None:
    cube, gt = synthetic_cube(), synthetic_gt()
    path = tmp_path / "synthetic_scene.mat"
    scipy.io.savemat(path, {"wavelengths": np.linspace(400, 2500, 4)[None], "cube": cube, "gt": gt.astype(float),
                            "ndvi": np.full((7, 5), 0.5)})  # fmt: skip
    np.testing.assert_array_equal(load_array(path, role="cube"), cube)
    np.testing.assert_array_equal(load_array(path, role="gt"), gt)


def test_auto_key_ambiguity_lists_the_candidates(tmp_path: Path) -> None:
    path = tmp_path / "synthetic_two_cubes.mat"
    scipy.io.savemat(path, {"raw": synthetic_cube(), "corrected": synthetic_cube()})
    with pytest.raises(DataFormatError, match=r"several fit: raw \(7, 5, 4\) int16, corrected .*--cube-key"):
        load_array(path, role="cube")


def test_auto_key_without_any_candidate_lists_the_variables(tmp_path: Path) -> None:
    path = tmp_path / "synthetic_vector.mat"
    scipy.io.savemat(path, {"wavelengths": np.arange(5.0)[None]})
    with pytest.raises(DataFormatError, match=r"none fits among wavelengths \(1, 5\) double.*--gt-key"):
        load_array(path, role="gt")


def test_missing_key_lists_available_keys_with_shapes(synthetic_scene: Any) -> None:
    with pytest.raises(DataFormatError, match=r"no variable 'salinas'; it holds cube \(30, 26, 24\)"):
        load_array(synthetic_scene.cube, "salinas")


def test_missing_key_in_v73_lists_available_keys(synthetic_v73: dict[str, Path]) -> None:
    with pytest.raises(DataFormatError, match=r"holds gt \(30, 26\) uint8"):
        load_array(synthetic_v73["gt"], "labels", role="gt")


# ---------------------------------------------------------------- ENVI, NumPy, images


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_envi_round_trip_in_every_interleave(tmp_path: Path, interleave: str) -> None:
    cube = synthetic_cube()
    header = tmp_path / f"synthetic_{interleave}.hdr"
    envi.save_image(str(header), cube, interleave=interleave, ext=".img")
    for path in (header, header.with_suffix(".img")):  # the header or the data file
        array = load_array(path)
        assert array.dtype == cube.dtype
        np.testing.assert_array_equal(array, cube)


def test_an_envi_header_with_an_unknown_interleave_is_refused_by_both_readers(tmp_path: Path) -> None:
    from hsi.data.lazy import open_lazy_cube

    header = tmp_path / "synthetic_cube.hdr"
    envi.save_image(str(header), synthetic_cube(), interleave="bil", ext=".img")
    header.write_text(header.read_text().replace("interleave = bil", "interleave = xyz"))
    for read in (lambda: load_array(header), lambda: open_lazy_cube(header)):
        with pytest.raises(DataFormatError, match=r"declares interleave = 'xyz'; expected one of bsq, bil, bip"):
            read()


def test_envi_single_band_ground_truth_is_squeezed(tmp_path: Path) -> None:
    gt = synthetic_gt()
    envi.save_image(str(tmp_path / "synthetic_gt.hdr"), gt[:, :, None], ext=".img")
    np.testing.assert_array_equal(load_array(tmp_path / "synthetic_gt.hdr", role="gt"), gt)


def test_npy_round_trip(tmp_path: Path) -> None:
    cube = synthetic_cube(dtype="float32")
    np.save(tmp_path / "synthetic_cube.npy", cube)
    np.testing.assert_array_equal(load_array(tmp_path / "synthetic_cube.npy"), cube)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_single_band_image_ground_truth(tmp_path: Path, suffix: str) -> None:
    gt = synthetic_gt()
    Image.fromarray(gt).save(tmp_path / f"synthetic_gt{suffix}")
    np.testing.assert_array_equal(load_array(tmp_path / f"synthetic_gt{suffix}", role="gt"), gt)


def test_rgb_image_and_image_cube_are_refused(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((7, 5, 3), np.uint8)).save(tmp_path / "synthetic_rgb.png")
    with pytest.raises(DataFormatError, match="must be single-band .* got mode RGB"):
        load_array(tmp_path / "synthetic_rgb.png", role="gt")
    with pytest.raises(DataFormatError, match="images hold ground truth only"):
        load_array(tmp_path / "synthetic_rgb.png", role="cube")


# ---------------------------------------------------------------- bad files


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"cube file not found: .*nothere\.mat") as info:
        load_array(tmp_path / "nothere.mat")
    assert isinstance(info.value, FileNotFoundError)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "dir.mat").mkdir()
    with pytest.raises(DataFormatError, match="is a folder"):
        load_array(tmp_path / "dir.mat")


@pytest.mark.parametrize("name", ["empty.mat", "empty.npy", "empty.hdr", "empty.png"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataFormatError, match=r"empty \(0 bytes\)"):
        load_array(_write(tmp_path / name, b""), role="gt")


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
def test_truncated_v5_mat(tmp_path: Path, synthetic_v5: dict[str, np.ndarray], compressed: bool) -> None:
    whole = tmp_path / "whole.mat"
    scipy.io.savemat(whole, {"cube": synthetic_v5["cube"]}, do_compression=compressed)
    data = whole.read_bytes()
    path = _write(tmp_path / "synthetic_cube.mat", data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"could not read cube file .*synthetic_cube\.mat.*truncated"):
        load_array(path, "cube")


def test_truncated_v73_mat(tmp_path: Path, synthetic_v73: dict[str, Path]) -> None:
    data = synthetic_v73["cube"].read_bytes()
    path = _write(tmp_path / "cut_v73.mat", data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"cut_v73\.mat.*truncated"):
        load_array(path)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("text.mat", "is not a MATLAB .mat file .*starts with b'hello"),
        ("text.npy", "is not a NumPy .npy file"),
        ("text.hdr", "is not an ENVI header"),
        ("text.png", "could not read gt file .*text.png"),
    ],
)
def test_text_saved_under_a_data_extension(tmp_path: Path, name: str, match: str) -> None:
    path = _write(tmp_path / name, b"hello, this is a text file\n" * 20)
    with pytest.raises(DataFormatError, match=match):
        load_array(path, role="gt")


def test_pickled_npy_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError, match="objects.npy holds Python objects .* reads numeric arrays only"):
        load_array(tmp_path / "objects.npy")


def test_truncated_envi_data(tmp_path: Path) -> None:
    envi.save_image(str(tmp_path / "synthetic.hdr"), synthetic_cube(), ext=".img")
    data = tmp_path / "synthetic.img"
    data.write_bytes(data.read_bytes()[:50])
    with pytest.raises(DataFormatError, match=r"truncated: .* \(280 bytes\) but the file has 50 bytes"):
        load_array(tmp_path / "synthetic.hdr")


def test_envi_header_without_data_file(tmp_path: Path) -> None:
    envi.save_image(str(tmp_path / "synthetic.hdr"), synthetic_cube(), ext=".img")
    (tmp_path / "synthetic.img").unlink()
    with pytest.raises(DataFormatError, match="no data file next to it"):
        load_array(tmp_path / "synthetic.hdr")


def test_unknown_extension_lists_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"unsupported extension '\.xyz'; expected one of \.mat, \.hdr, \.npy"):
        load_array(_write(tmp_path / "cube.xyz", b"data"))


def test_invalid_role_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="role must be one of cube, gt"):
        load_array(tmp_path / "x.mat", role="labels")  # type: ignore[arg-type]


def test_every_failure_is_an_hsi_error_naming_the_file(tmp_path: Path) -> None:
    bad = [_write(tmp_path / "a.mat", b"\x00" * 300), _write(tmp_path / "b.npy", b"\x93NUMPY garbage")]
    for path in bad:
        with pytest.raises(HSIError, match=path.name):
            load_array(path)
