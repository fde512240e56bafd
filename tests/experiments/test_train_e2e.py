"""`hsi-classify train`, then `predict` from its checkpoint: on the synthetic scene, and (e2e) on real Salinas-A."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi.cli.main import main

RUN_FILES = [
    "config.json", "metrics.json", "report.md", "history.csv", "model.json", "model.safetensors", "prediction.npy", "status.json",
    "split_train.npy", "split_val.npy", "split_test.npy", "split.png", "map.png", "map_labelled.png",
    "ground_truth.png", "errors.png", "false_colour.png", "confusion.png", "training_curve.png",
]
SYNTHETIC_IDS = {2, 3, 5, 9}
SALINAS_A_IDS = {1, 10, 11, 12, 13, 14}


@pytest.fixture(scope="module")
def synthetic_run(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small HybridSN run on the synthetic scene, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("runs")
    code = main([
        "train", *synthetic_scene.args(), "--train-ratio", "0.2", "--val-ratio", "0.1", "--epochs", "3",
        "--patch-size", "5", "--pca-components", "15", "--batch-size", "32", "--lr", "5e-3",
        "--out", str(out), "--quiet", "--seed", "0",
    ])
    assert code == 0
    (run_dir,) = out.iterdir()
    return run_dir


def test_run_writes_every_file(synthetic_run: Path) -> None:
    missing = [name for name in RUN_FILES if not (synthetic_run / name).is_file()]
    assert not missing
    assert not list(synthetic_run.glob("*.tmp")) and not list(synthetic_run.glob(".*"))
    assert json.loads((synthetic_run / "status.json").read_text())["state"] == "complete"


def test_accuracy_is_far_above_chance(synthetic_run: Path) -> None:
    metrics = json.loads((synthetic_run / "metrics.json").read_text())
    # chance: the four classes hold 143 / 572 = 0.25 of the labelled pixels each
    assert metrics["overall_accuracy"] > 0.8
    assert 0 <= metrics["average_accuracy"] <= 1 and 0 <= metrics["kappa"] <= 1
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 572
    assert set(metrics["per_class"]) == {"class 2", "class 3", "class 5", "class 9"}
    assert np.asarray(metrics["confusion_matrix"]).sum() == metrics["n_test"]
    assert metrics["train_seconds"] > 0 and metrics["inference_seconds"] > 0


def test_prediction_covers_every_pixel_with_scene_ids(synthetic_run: Path) -> None:
    prediction = np.load(synthetic_run / "prediction.npy")
    assert prediction.shape == (30, 26) and prediction.dtype == np.uint16  # as the tiled predict's
    assert set(np.unique(prediction)) <= SYNTHETIC_IDS  # borders included, no "unclassified" value
    train, test = np.load(synthetic_run / "split_train.npy"), np.load(synthetic_run / "split_test.npy")
    assert train.shape == (30, 26) and not (train & test).any()


def test_config_records_everything_needed_to_reproduce(synthetic_run: Path) -> None:
    config = json.loads((synthetic_run / "config.json").read_text())
    assert config["run"]["patch_size"] == 5 and config["run"]["seed"] == 0
    assert config["resolved"]["environment"]["torch"]
    assert config["resolved"]["class_ids"] == [2, 3, 5, 9]
    report = (synthetic_run / "report.md").read_text()
    assert "Overall accuracy" in report or "OA" in report


def test_predict_from_checkpoint_alone(synthetic_run: Path, synthetic_scene: Any, tmp_path: Path) -> None:
    code = main(["predict", "--checkpoint", str(synthetic_run), "--cube", str(synthetic_scene.cube),
                 "--out", str(tmp_path)])
    assert code == 0
    (out_dir,) = tmp_path.iterdir()
    assert np.array_equal(np.load(out_dir / "prediction.npy"), np.load(synthetic_run / "prediction.npy"))
    assert (out_dir / "map.png").is_file()


def test_train_can_be_reproduced_from_its_config(synthetic_run: Path, tmp_path: Path) -> None:
    code = main(["train", "--config", str(synthetic_run / "config.json"), "--out", str(tmp_path), "--quiet",
                 "--epochs", "1"])
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "config.json").read_text())["run"]["patch_size"] == 5


@pytest.mark.e2e
def test_real_salinas_a_train_then_predict(shared_data_dir: Path, tmp_path: Path) -> None:
    """The built-in scene end to end: real Salinas-A, its ids 1, 10..14 and class names, predict by name."""
    out = tmp_path / "runs"
    code = main([
        "train", "--dataset", "salinas_a", "--data-dir", str(shared_data_dir), "--no-download",
        "--train-ratio", "0.1", "--val-ratio", "0.1", "--epochs", "4", "--patch-size", "9",
        "--pca-components", "15", "--batch-size", "64", "--lr", "3e-3", "--out", str(out), "--quiet", "--seed", "0",
    ])
    assert code == 0
    (run_dir,) = out.iterdir()
    assert not [name for name in RUN_FILES if not (run_dir / name).is_file()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # chance: the majority class holds 1525 / 5348 = 0.285 of the labelled pixels
    assert metrics["overall_accuracy"] > 0.8
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 5348
    assert set(metrics["per_class"]) == {
        "Brocoli_green_weeds_1", "Corn_senesced_green_weeds", "Lettuce_romaine_4wk",
        "Lettuce_romaine_5wk", "Lettuce_romaine_6wk", "Lettuce_romaine_7wk",
    }
    prediction = np.load(run_dir / "prediction.npy")
    assert prediction.shape == (83, 86) and set(np.unique(prediction)) <= SALINAS_A_IDS
    assert json.loads((run_dir / "config.json").read_text())["resolved"]["class_ids"] == [1, 10, 11, 12, 13, 14]
    predicted = tmp_path / "predicted"
    code = main(["predict", "--checkpoint", str(run_dir), "--dataset", "salinas_a",
                 "--data-dir", str(shared_data_dir), "--out", str(predicted)])
    assert code == 0
    (out_dir,) = predicted.iterdir()
    assert np.array_equal(np.load(out_dir / "prediction.npy"), prediction)
