"""Bad input: one line on stderr (expected / found / fix), exit code 2, no traceback, no run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hsi.cli.main import main


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic input files, good and bad, written once for the module."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    synthetic_cube = rng.random((12, 10, 20)).astype(np.float32)
    synthetic_gt = rng.integers(0, 4, size=(12, 10)).astype(np.uint8)
    paths = {}

    def save(name: str, array: np.ndarray) -> None:
        paths[name] = d / f"{name}.npy"
        np.save(paths[name], array)

    save("cube", synthetic_cube)
    save("gt", synthetic_gt)
    save("cube_2d", synthetic_cube[..., 0])
    save("gt_other_shape", synthetic_gt[:-1])
    save("gt_fractional", synthetic_gt + 0.5)
    save("gt_negative", synthetic_gt.astype(np.int16) - 2)
    save("gt_all_zero", np.zeros_like(synthetic_gt))
    save("gt_one_class", (synthetic_gt > 0).astype(np.uint8))
    nan_cube = synthetic_cube.copy()
    nan_cube[3, 4, 5] = np.nan
    nan_cube[0, 1, :] = np.inf
    save("cube_nan", nan_cube)
    single = synthetic_gt.copy()
    single[single == 3] = 1
    single[0, 0] = 3
    save("gt_single_pixel_class", single)
    paths["empty_mat"] = d / "empty.mat"
    paths["empty_mat"].write_bytes(b"")
    paths["text_mat"] = d / "text.mat"
    paths["text_mat"].write_text("this is not a MATLAB file\n")
    paths["mat"] = d / "scene.mat"
    scipy.io.savemat(paths["mat"], {"synthetic_cube": synthetic_cube, "synthetic_gt": synthetic_gt})
    truncated = d / "truncated.mat"
    truncated.write_bytes(paths["mat"].read_bytes()[:300])
    paths["truncated_mat"] = truncated
    return paths


def _train(files: dict[str, Path], out: Path, *extra: str, cube: str = "cube", gt: str = "gt") -> list[str]:
    return ["train", "--cube", str(files[cube]), "--gt", str(files[gt]), "--out", str(out), "--epochs", "1",
            "--patch-size", "9", "--pca-components", "15", "--quiet", *extra]


CASES = {
    "missing file": (dict(cube="missing"), [], r"not found|does not exist|no such"),
    "empty file": (dict(cube="empty_mat"), [], r"empty"),
    "truncated file": (dict(cube="truncated_mat"), [], r"truncated|corrupt|could not read|not a valid|cannot read|unreadable"),
    "not the format its name says": (dict(cube="text_mat"), [], r"MATLAB|\.mat"),
    "cube 2-D": (dict(cube="cube_2d"), [], r"3-D"),
    "gt other shape": (dict(gt="gt_other_shape"), [], r"spatial shape"),
    "gt fractional": (dict(gt="gt_fractional"), [], r"integer|fraction"),
    "gt negative": (dict(gt="gt_negative"), [], r"negative"),
    "gt all zero": (dict(gt="gt_all_zero"), [], r"labelled pixel|no labelled|all zero"),
    "gt of one class": (dict(gt="gt_one_class"), ["--model", "svm"], r"labels 1 class; a classifier needs at least 2"),
    "NaN in cube": (dict(cube="cube_nan"), [], r"NaN.*--nan-policy"),
    "single-pixel class": (dict(gt="gt_single_pixel_class"), [], r"single labelled pixel"),
    "even patch": ({}, ["--patch-size", "4"], r"odd"),
    "patch < 1": ({}, ["--patch-size", "-1"], r"odd integer >= 1"),
    "patch larger than scene": ({}, ["--patch-size", "15"], r"at most 10"),
    "ratio 0": ({}, ["--train-ratio", "0"], r"\(0, 1\)"),
    "ratio 1.5": ({}, ["--train-ratio", "1.5"], r"\(0, 1\)"),
    "too many PCA components": ({}, ["--pca-components", "50"], r"at most the band count \(20\)"),
    "unknown model": ({}, ["--model", "hybridsm"], r"did you mean hybridsn"),
    "crops for a centre-pixel model": ({}, ["--model", "svm", "--train-input", "crops"], r"'svm' has no exact dense"),
    "crops with augmentation": ({}, ["--train-input", "crops", "--recipe", "robust"], r"augments each patch"),
    "even smoothing window": ({}, ["--smooth", "4"], r"--smooth must be 0 \(off\) or an odd window side from 3 to 31; got 4"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_gives_one_line_and_exit_2(
    case: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    choice, extra, pattern = CASES[case]
    if choice.get("cube") == "missing":
        files = {**files, "missing": files["cube"].parent / "no_such_cube.npy"}
    out = tmp_path / "runs"
    code = main(_train(files, out, *extra, **choice))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("hsi-classify: error: ")
    import re

    assert re.search(pattern, err, flags=re.IGNORECASE), err
    assert not out.exists() or not any(out.iterdir())


def test_unknown_dataset_suggests_close_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--dataset", "salinas_b", "--out", str(tmp_path / "r")]) == 2
    assert "salinas_a" in capsys.readouterr().err


def test_cuda_without_cuda_is_an_error(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(_train(files, tmp_path / "r", "--device", "cuda")) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_output_folder_not_writable(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    assert main(_train(files, blocker / "runs")) == 2
    assert f"lies inside {blocker}, which is a file; expected a folder" in capsys.readouterr().err


def test_offline_indian_pines_names_the_files_and_folder(tmp_path: Path, capsys) -> None:
    code = main(["train", "--dataset", "indian_pines", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "Indian_pines_corrected.mat" in err and str(tmp_path / "data") in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_small_synthetic_run_succeeds(files: dict[str, Path], tmp_path: Path) -> None:
    assert main(_train(files, tmp_path / "r")) == 0
    assert main(_train(files, tmp_path / "r", "--nan-policy", "zero", cube="cube_nan")) == 0


@pytest.mark.parametrize(("args", "words"), [
    (["train", "--epocs", "1"], "unrecognized arguments: --epocs (did you mean --epochs?) 1; see 'hsi-classify train --help'."),
    (["train", "--split", "disjont"], "'disjont' is not one of disjoint, masks, per-class, random; did you mean 'disjoint'?"),
    (["trian"], "did you mean 'train'?; see 'hsi-classify --help'."),
    (["train", "--epochs", "x"], "argument --epochs: invalid int value: 'x'; see 'hsi-classify train --help'."),
])
def test_a_mistyped_command_line_gets_one_line_and_the_close_match(
        args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and len(err.strip().splitlines()) == 1 and "usage:" not in err
    assert err.startswith("hsi-classify: error: ") and words in err
