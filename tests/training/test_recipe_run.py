"""A run with the new default recipe (plus an ensemble) records its recipe and predicts the same from its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi.cli.main import main


@pytest.mark.slow  # ~10-20 s on 2 shared cores: a full run, an ensemble of 2 and a predict
@pytest.mark.usefixtures("figures_not_drawn")
def test_robust_run_records_its_recipe_and_its_checkpoint_predicts_the_same(
    synthetic_scene: Any, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    code = main(["train", *synthetic_scene.args(), "--split", "per-class", "--train-per-class", "10",
                 "--epochs", "2", "--patch-size", "9", "--pca-components", "13", "--batch-size", "32",
                 "--recipe", "robust", "--ensemble", "2", "--no-augment", "--out", str(runs), "--quiet"])
    assert code == 0
    (run_dir,) = runs.iterdir()
    config = json.loads((run_dir / "config.json").read_text())["run"]
    assert (config["recipe"], config["optimizer"], config["schedule"], config["augment"], config["tta"],
            config["ensemble"], config["val_ratio"]) == ("robust", "adamw", "cosine", False, True, 2, 0.2)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["recipe"]["name"] == "robust" and metrics["recipe"]["ensemble"] == 2
    first, second = metrics["ensemble"]["networks"]  # each network's own record and cost
    assert first["seed"] == config["seed"] and second["seed"] != config["seed"] and second["seconds"] > 0
    assert metrics["ensemble"]["kept"] == [1, 2] and first["epochs"] == second["epochs"] == 2
    assert metrics["n_val"] == 4 * 2  # 2 of each class's 10 training pixels pick the epoch
    # 32 training pixels, robust's min_steps 8: batches of max(ceil(32 / 8), MIN_BATCH 16) = 16, not 32.
    assert config["min_steps"] == 8 and metrics["train_batch_size"] == 16
    report = (run_dir / "report.md").read_text()
    assert "| recipe | robust (optimizer adamw, lr scale" in report and ", batches of 16 |" in report
    model = json.loads((run_dir / "model.json").read_text())
    assert model["tta"] is True and len(model["members"]) == 1
    out = tmp_path / "predicted"
    assert main(["predict", "--checkpoint", str(run_dir), "--cube", str(synthetic_scene.cube), "--out", str(out)]) == 0
    (predicted,) = out.iterdir()
    assert np.array_equal(np.load(predicted / "prediction.npy"), np.load(run_dir / "prediction.npy"))
