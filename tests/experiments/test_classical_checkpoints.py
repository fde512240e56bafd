"""scikit-learn runs write a checkpoint that `predict` reproduces exactly, on the real scene.

On the synthetic scene the same is tested for every model kind in
tests/security/test_untrusted_checkpoints.py (from the run folder and from either file).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hsi.cli.main import main


def _train_then_predict(data_args: list[str], predict_args: list[str], model: str, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    out = tmp_path / model
    assert main(["train", *data_args, "--model", model, "--train-ratio", "0.1", "--patch-size", "5",
                 "--pca-components", "15", "--out", str(out), "--quiet", "--seed", "0"]) == 0
    (run_dir,) = out.iterdir()
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(run_dir), *predict_args, "--out",
                 str(tmp_path / f"{model}-predicted"), "--device", "cpu", "--json"]) == 0
    return run_dir, Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"])


@pytest.mark.e2e
def test_predict_reproduces_classical_runs_on_real_salinas_a(shared_data_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    scene = ["--dataset", "salinas_a", "--data-dir", str(shared_data_dir), "--no-download"]
    for model in ("svm", "random_forest"):
        run_dir, predicted = _train_then_predict(scene, scene, model, tmp_path, capsys)
        reproduced = np.load(predicted / "prediction.npy")
        assert reproduced.shape == (83, 86)
        assert np.array_equal(reproduced, np.load(run_dir / "prediction.npy")), model
