"""What `train` and `predict` print: a human summary, warnings on stderr, --json for scripts, report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hsi.cli.main import main

FAST = ["--patch-size", "5", "--pca-components", "15", "--train-ratio", "0.3", "--seed", "0"]


def test_train_summary_warning_json_and_predict_scores(
    synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *synthetic_scene.args(), *FAST, "--epochs", "1", "--out", str(tmp_path / "a"),
                 "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("OA ") and "kappa" in out and "%" in out and "report.html" in out
    assert "hsi-classify: warning: " in err and "of test pixels overlap training patches" in err
    (run_dir,) = (tmp_path / "a").iterdir()
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html and "Leakage audit" in html

    assert main(["train", *synthetic_scene.args(), *FAST, "--model", "svm", "--out", str(tmp_path / "b"),
                 "--quiet", "--json"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert "overlap" not in err  # centre-pixel model: nothing to warn about
    settings = json.loads((Path(record["run_dir"]) / "config.json").read_text())["run"]
    assert settings["ensemble"] is None and settings["min_steps"] is None  # network parts never act on an SVM
    assert "no patch overlap to report" in (Path(record["run_dir"]) / "report.md").read_text()

    assert main(["predict", "--checkpoint", record["run_dir"], *synthetic_scene.args(), "--out",
                 str(tmp_path / "p"), "--device", "cpu", "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["overall_accuracy"] > 0
    folder = Path(predicted["run_dir"])
    assert {"metrics.json", "report.md", "report.html", "errors.png", "ground_truth.png"} <= {
        p.name for p in folder.iterdir()}


def test_train_progress_names_each_network_of_the_ensemble(
    synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *synthetic_scene.args(), *FAST, "--epochs", "1", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "network 1/2" in err and "network 2/2" in err  # the default trains 2 networks on a random split
