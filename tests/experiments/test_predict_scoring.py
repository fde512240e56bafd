"""`predict` on the scene its model was trained on scores the run's test pixels only (issue 13)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi.cli.main import main


def test_predict_scores_the_runs_test_pixels_on_its_own_scene_and_all_labelled_elsewhere(
    synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *synthetic_scene.args(), "--model", "svm", "--pca-components", "5", "--train-ratio", "0.3",
                 "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    capsys.readouterr()
    test = np.load(run_dir / "split_test.npy")
    labelled = np.load(synthetic_scene.gt_npy) > 0

    assert main(["predict", "--checkpoint", str(run_dir), *synthetic_scene.args(), "--out", str(tmp_path / "p"),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    (folder,) = (tmp_path / "p").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["n_test"] == int((test & labelled).sum()) < int(labelled.sum())
    assert metrics["scored_on"] == f"the run's {metrics['n_test']:,} test pixels"
    assert f"on the run's {metrics['n_test']:,} test pixels" in out
    assert metrics["overall_accuracy"] == json.loads((run_dir / "metrics.json").read_text())["overall_accuracy"]
    assert "the run's" in (folder / "report.md").read_text()

    # The model files alone (no split masks beside them): every labelled pixel, and the caveat said.
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("model.json", "model.safetensors"):
        shutil.copy(run_dir / name, alone / name)
    assert main(["predict", "--checkpoint", str(alone / "model.json"), *synthetic_scene.args(), "--out",
                 str(tmp_path / "q"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    (folder,) = (tmp_path / "q").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["n_test"] == int(labelled.sum())
    assert "(the model may have trained on some)" in metrics["scored_on"] and "may have trained on some" in out
