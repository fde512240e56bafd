"""Run folders written by an earlier version (commit 8a653ed, tests/fixtures/runs_8a653ed) still resume and predict."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hsi.cli.main import main
from hsi.training.checkpoint import load_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs_8a653ed"

pytestmark = pytest.mark.e2e


def test_predict_reads_the_checkpoint_of_an_earlier_version(shared_data_dir: Path, tmp_path: Path) -> None:
    # An ensemble of the `steady` recipe, saved before the checkpoint became a typed object: the same map.
    run_dir = FIXTURES / "finished"
    assert main(["predict", "--checkpoint", str(run_dir), "--dataset", "salinas_a", "--data-dir",
                 str(shared_data_dir), "--out", str(tmp_path), "--quiet"]) == 0
    (predicted,) = tmp_path.iterdir()
    assert np.array_equal(np.load(predicted / "prediction.npy"), np.load(run_dir / "prediction.npy"))
    scored = json.loads((predicted / "metrics.json").read_text())
    assert scored["overall_accuracy"] == pytest.approx(json.loads((run_dir / "metrics.json").read_text())
                                                       ["overall_accuracy"], abs=1e-12)


def test_a_run_killed_by_an_earlier_version_resumes_at_its_saved_epoch(shared_data_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "interrupted"
    shutil.copytree(FIXTURES / "interrupted", run_dir)
    assert main(["train", "--resume", str(run_dir), "--data-dir", str(shared_data_dir), "--quiet"]) == 0
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
    saved = load_checkpoint(FIXTURES / "interrupted" / "resume.pt")["train_state"]["history"]
    with (run_dir / "history.csv").open() as rows:
        history = list(csv.DictReader(rows))
    # Epochs 1-12 are the killed run's own (their seconds too: not trained again), 13-30 trained now.
    assert [int(float(row["epoch"])) for row in history] == list(range(1, 31))
    assert [float(row["seconds"]) for row in history[:12]] == pytest.approx([row["seconds"] for row in saved])
    assert json.loads((run_dir / "metrics.json").read_text())["overall_accuracy"] > 0.9
    assert (run_dir / "model.json").is_file() and not (run_dir / "resume.pt").exists()
