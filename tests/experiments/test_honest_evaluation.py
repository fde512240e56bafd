"""Honest evaluation on the synthetic scene: a disjoint split with a noise control, mask splits, warnings.

Uses ``prepare`` and ``excluded_label`` of hsi.experiments.train, as before (no real data).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

import hsi.experiments.train as train_module
from hsi.cli.main import _one_line_warnings, main
from hsi.config import RunConfig
from hsi.experiments.train import excluded_label, prepare


@pytest.fixture(scope="module")
def disjoint_noise_run(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small HybridSN run on the synthetic scene: disjoint split (5 x 5 blocks), plus the noise control."""
    out = tmp_path_factory.mktemp("runs")
    code = main([
        "train", *synthetic_scene.args(), "--split", "disjoint", "--train-ratio", "0.3", "--block-size", "5",
        "--control", "noise", "--epochs", "3", "--patch-size", "5", "--pca-components", "15",
        "--batch-size", "32", "--lr", "5e-3", "--out", str(out), "--quiet",
    ])
    assert code == 0
    (run_dir,) = out.iterdir()
    return run_dir


def test_disjoint_run_has_no_leakage(disjoint_noise_run: Path) -> None:
    metrics = json.loads((disjoint_noise_run / "metrics.json").read_text())
    leakage = metrics["leakage"]
    assert leakage["test_overlap_share"] == 0.0 and leakage["patch_size"] == 5 and not leakage["flagged"]
    assert 0 <= leakage["mean_patch_overlap"] < 0.5
    assert metrics["n_excluded"] > 0
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] + metrics["n_excluded"] == 572
    split = json.loads((disjoint_noise_run / "config.json").read_text())["resolved"]["split"]
    assert split["method"] == "disjoint" and split["guard_radius"] == 2 and split["excluded_test"] > 0
    train, test = np.load(disjoint_noise_run / "split_train.npy"), np.load(disjoint_noise_run / "split_test.npy")
    assert train.any() and test.any() and (disjoint_noise_run / "split.png").is_file()


def test_noise_control_is_near_chance_and_reported(disjoint_noise_run: Path) -> None:
    metrics = json.loads((disjoint_noise_run / "metrics.json").read_text())
    control = metrics["control"]
    assert control["kind"] == "noise" and control["chance_uniform"] == pytest.approx(1 / 4)
    # The criterion: within 5 points of the majority share (of the class most frequent in training).
    assert abs(control["overall_accuracy"] - control["chance_majority_share"]) <= 0.05 and not control["flagged"]
    # The disjoint default: the epoch is picked on spatially disjoint validation blocks.
    config = json.loads((disjoint_noise_run / "config.json").read_text())
    assert config["run"]["val_ratio"] == 0.2 and metrics["n_val"] > 0
    assert metrics["overall_accuracy"] > control["overall_accuracy"] + 0.3
    assert (disjoint_noise_run / "control" / "map.png").is_file()
    saved = json.loads((disjoint_noise_run / "control" / "metrics.json").read_text())
    assert saved["overall_accuracy"] == control["overall_accuracy"]
    # the control's fit is recorded as the main run's is: which of its networks the validation pixels kept
    assert len(saved["ensemble"]["networks"]) == len(metrics["ensemble"]["networks"]) == 5
    assert saved["ensemble"]["kept"] and saved["train_input"] == metrics["train_input"]
    report = (disjoint_noise_run / "report.md").read_text().split("## Per-class")[0]
    assert "Leakage audit (5x5 patches): 0.0% of the test pixels" in report
    assert "Noise control" in report and "Warning" not in report
    assert "| labelled pixels excluded (guard band) |" in (disjoint_noise_run / "report.md").read_text()


def _write_mask_files(synthetic_scene: Any, folder: Path) -> tuple[Path, Path]:
    gt = scipy.io.loadmat(synthetic_scene.gt)["gt"]
    left = np.arange(gt.shape[1])[None, :] % 13 < 7  # the left part of each field: every class on both sides
    np.save(folder / "train_gt.npy", np.where(left, gt, 0))
    np.save(folder / "test_gt.npy", np.where(~left, gt, 0))
    return folder / "train_gt.npy", folder / "test_gt.npy"


def test_map_smoothing_widens_the_guard_and_the_audit_and_predict_repeats_it(
    synthetic_scene: Any, tmp_path: Path,
) -> None:
    """--smooth 3 at patch 5: a class reads a 7 x 7 window, so the guard band is 3 pixels and the audit's patch 7."""
    common = ["train", *synthetic_scene.args(), "--split", "disjoint", "--train-ratio", "0.3", "--block-size", "5",
              "--epochs", "1", "--patch-size", "5", "--pca-components", "15", "--recipe", "paper", "--quiet"]
    assert main([*common, "--smooth", "3", "--out", str(tmp_path / "smooth")]) == 0
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    (run_dir,), (plain_dir,) = (tmp_path / "smooth").iterdir(), (tmp_path / "plain").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["leakage"]["patch_size"] == 7 and metrics["leakage"]["test_overlap_share"] == 0.0
    assert metrics["leakage"]["smooth"] == 3 and "smooth" not in json.loads((plain_dir / "metrics.json").read_text())[
        "leakage"]
    report = (run_dir / "report.md").read_text()
    assert metrics["recipe"]["smooth"] == 3 and "smooth 3)" in report
    assert "Leakage audit (7x7 windows: the patches widened by the 3x3 majority vote of --smooth): 0.0%" in report
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["smooth"] == 3 and config["resolved"]["split"]["guard_radius"] == 3
    train, test = np.load(run_dir / "split_train.npy"), np.load(run_dir / "split_test.npy")
    assert np.array_equal(train, np.load(plain_dir / "split_train.npy"))  # the same blocks train
    plain_test = np.load(plain_dir / "split_test.npy")
    assert not (test & ~plain_test).any() and test.sum() < plain_test.sum()  # the wider guard took test pixels
    # predict with the run's model smooths as train did: the same map.
    assert main(["predict", "--checkpoint", str(run_dir), *synthetic_scene.args(), "--out", str(tmp_path / "p"),
                 "--quiet"]) == 0
    (predicted,) = (tmp_path / "p").iterdir()
    np.testing.assert_array_equal(np.load(predicted / "prediction.npy"), np.load(run_dir / "prediction.npy"))
    assert json.loads((predicted / "prediction.json").read_text())["smooth"] == 3


def test_masks_split_follows_the_files(synthetic_scene: Any, tmp_path: Path) -> None:
    train_gt, test_gt = _write_mask_files(synthetic_scene, tmp_path)
    config = RunConfig(cube=str(synthetic_scene.cube), gt=str(synthetic_scene.gt), split="masks",
                       train_gt=str(train_gt), test_gt=str(test_gt), pca_components=15, patch_size=5,
                       out=str(tmp_path / "runs"))
    prepared = prepare(config)
    assert np.array_equal(prepared.split.train, np.load(train_gt) > 0)
    assert np.array_equal(prepared.split.test, np.load(test_gt) > 0)
    assert prepared.split.info["method"] == "masks"
    assert excluded_label(prepared.split) == "excluded (in neither file)"  # split.png legend, report row


def test_masks_split_with_unknown_ids_fails_cleanly(synthetic_scene: Any, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    train_gt, test_gt = _write_mask_files(synthetic_scene, tmp_path)
    bad = np.load(test_gt)
    bad[0, 0] = 7  # the synthetic scene has no class 7 (its ids are 2, 3, 5, 9)
    np.save(test_gt, bad)
    out = tmp_path / "runs"
    code = main(["train", *synthetic_scene.args(), "--pca-components", "15", "--patch-size", "5",
                 "--split", "masks", "--train-gt", str(train_gt), "--test-gt", str(test_gt), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hsi-classify: error: --test-gt file") and "[7]" in err and "\n" not in err
    assert not out.exists() or not any(out.iterdir())
    code = main(["train", *synthetic_scene.args(), "--split", "masks", "--train-gt", str(train_gt),
                 "--out", str(out)])
    assert code == 2 and "--test-gt" in capsys.readouterr().err


def test_pca_fit_all_with_disjoint_split_warns(synthetic_scene: Any, tmp_path: Path) -> None:
    config = RunConfig(cube=str(synthetic_scene.cube), gt=str(synthetic_scene.gt), split="disjoint",
                       pca_fit="all", patch_size=5, block_size=5, pca_components=15, out=str(tmp_path))
    with pytest.warns(UserWarning, match="--pca-fit all with --split disjoint"):
        prepare(config)


def test_package_warnings_print_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    shown: list[str] = []
    show = _one_line_warnings(lambda message, *rest: shown.append(str(message)))
    show(UserWarning("leaky split"), UserWarning, train_module.__file__, 1)
    show(UserWarning("foreign"), UserWarning, warnings.__file__, 1)
    assert capsys.readouterr().err == "hsi-classify: warning: leaky split\n"
    assert shown == ["foreign"] and sys.modules["hsi.cli.main"]
