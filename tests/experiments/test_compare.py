"""`hsi-classify compare` on the tiny synthetic scene: shared splits, one table, chart and JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi.cli.main import main

MODELS = ["svm", "hybridsn"]
SEEDS = [3, 5]  # --seeds is the list itself, not a count


def _settings(scene: Any, out: Path) -> list[str]:
    return ["compare", *scene.args(), "--train-ratio", "0.1", "--patch-size", "5", "--pca-components", "15",
            "--epochs", "2", "--batch-size", "16", "--out", str(out), "--quiet"]


@pytest.fixture(scope="module")
def compare_dir(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny two-model, two-seed comparison, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("compare")
    seeds = ",".join(map(str, SEEDS))
    assert main([*_settings(synthetic_scene, out), "--models", ",".join(MODELS), "--seeds", seeds]) == 0
    (folder,) = out.iterdir()
    return folder


def _run_dirs(compare_dir: Path, model: str) -> list[Path]:
    return [compare_dir / f"{model}-seed{seed}" for seed in SEEDS]


def test_folder_holds_every_run_and_the_comparison(compare_dir: Path) -> None:
    assert compare_dir.name.startswith("compare_synthetic_cube_")
    for name in ("compare.md", "compare.csv", "compare.json", "compare.png", "status.json"):
        assert (compare_dir / name).is_file(), name
    assert json.loads((compare_dir / "status.json").read_text())["state"] == "complete"
    for model in MODELS:
        runs = _run_dirs(compare_dir, model)
        assert all((r / "metrics.json").is_file() for r in runs), model
        seeds = sorted(json.loads((r / "config.json").read_text())["run"]["seed"] for r in runs)
        assert seeds == SEEDS


def test_models_share_each_seeds_split(compare_dir: Path) -> None:
    by_seed: dict[int, list[np.ndarray]] = {}
    for model in MODELS:
        for run in _run_dirs(compare_dir, model):
            seed = json.loads((run / "config.json").read_text())["run"]["seed"]
            by_seed.setdefault(seed, []).append(np.load(run / "split_test.npy"))
    assert sorted(by_seed) == SEEDS
    for masks in by_seed.values():
        assert len(masks) == len(MODELS)
        assert all(np.array_equal(masks[0], m) for m in masks[1:])
    assert not np.array_equal(by_seed[SEEDS[0]][0], by_seed[SEEDS[1]][0])  # a new seed draws a new split
    results = json.loads((compare_dir / "compare.json").read_text())["results"]
    for k in range(len(SEEDS)):
        assert len({r["runs"][k]["split_test_sha256"] for r in results}) == 1


def test_json_holds_mean_and_std_per_model(compare_dir: Path) -> None:
    data = json.loads((compare_dir / "compare.json").read_text())
    assert data["models"] == MODELS and data["seeds"] == SEEDS and data["dataset"] == "synthetic_cube"
    for r in data["results"]:
        assert r["n_runs"] == 2 and len(r["runs"]) == 2
        for key in ("overall_accuracy", "average_accuracy", "kappa", "train_seconds", "inference_seconds"):
            s = r[key]
            assert s["n"] == 2 and s["std"] is not None and s["mean"] is not None, (r["model"], key)
        assert 0.0 <= r["overall_accuracy"]["mean"] <= 1.0  # fractions, not percentages
        oas = [run["overall_accuracy"] for run in r["runs"]]
        assert r["overall_accuracy"]["mean"] == pytest.approx(np.mean(oas))
    assert data["results"][0]["overall_accuracy"]["mean"] > 0.9  # the SVM; 2 epochs are too few for HybridSN
    params = {r["model"]: r["parameters"] for r in data["results"]}
    assert params["svm"] is None and params["hybridsn"] > 10_000


def test_markdown_and_csv_tables(compare_dir: Path) -> None:
    md = (compare_dir / "compare.md").read_text()
    assert "| Model | OA (%) | AA (%) | Kappa | Parameters |" in md
    assert "2 models on synthetic_cube, 2 seeds each" in md and "| seeds | 3, 5 |" in md
    for model in MODELS:
        row = next(line for line in md.splitlines() if line.startswith(f"| {model} |"))
        assert row.count("±") >= 5, row  # OA, AA, kappa, train s, inference s
    with (compare_dir / "compare.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == MODELS
    assert all(0 < float(r["overall_accuracy_mean"]) <= 1 for r in rows)  # fractions in the CSV


@pytest.mark.parametrize(("flags", "expected"), [
    (["--models", "svm,hybrid_sn"], "did you mean hybridsn"),
    (["--models", "svm", "--runs", "0"], "compare needs at least 1 run; found --runs 0"),
    (["--models", "svm", "--runs", "3", "--seeds", "1,2"], "--runs 3 disagrees with --seeds"),
    (["--models", "svm", "--seeds", "4,4"], "--seeds repeats 4"),
    (["--models", "svm", "--model", "svm"], "compare takes --models"),
])
def test_bad_input_fails_before_anything_runs(
    synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    out = tmp_path / "runs"
    code = main([*_settings(synthetic_scene, out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


@pytest.mark.e2e
def test_runs_counts_seeds_from_seed_on_real_salinas_a(
    shared_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["compare", "--dataset", "salinas_a", "--data-dir", str(shared_data_dir), "--no-download",
                 "--models", "svm", "--runs", "2", "--seed", "7", "--train-ratio", "0.1", "--pca-components", "15",
                 "--patch-size", "5", "--out", str(tmp_path), "--quiet", "--json"])
    assert code == 0
    (folder,) = tmp_path.iterdir()
    data = json.loads((folder / "compare.json").read_text())
    assert data["seeds"] == [7, 8] and [r["seed"] for r in data["results"][0]["runs"]] == [7, 8]
    assert data["results"][0]["overall_accuracy"]["mean"] > 0.9  # the real scene: the SVM separates it well
    assert json.loads(capsys.readouterr().out)["overall_accuracy"]["svm"] > 0.9


def test_the_terminal_names_each_models_run_warnings(compare_dir: Path) -> None:
    from hsi.reporting.terminal import compare_summary

    results = json.loads((compare_dir / "compare.json").read_text())["results"]
    lines, warnings = compare_summary(compare_dir, results)
    assert str(compare_dir / "report.html") in lines[-1]
    # HybridSN reads 5x5 patches on a random split: its runs leak; the SVM reads the centre pixel only.
    assert [w.split(":")[0] for w in warnings] == ["hybridsn"]
    assert "in 2 of 2 runs" in warnings[0] and "overlap training patches" in warnings[0]
