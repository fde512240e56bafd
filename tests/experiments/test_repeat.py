"""`hsi-classify repeat` on a tiny synthetic scene (fast), plus its planning rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hsi._core.errors import ConfigError
from hsi.cli.main import main
from hsi.config import RunConfig
from hsi.experiments.repeat import parse_seeds, plan_runs

REPORT_FILES = ["repeat.json", "stability.json", "stability.md", "stability.png", "agreement.png",
                "agreement.npy", "consensus.png"]
TIMING = {"train_seconds", "inference_seconds"}


def _synthetic_scene(folder: Path) -> Path:
    """A seeded synthetic 24x24 scene, 30 bands, 3 classes in vertical strips (400 labelled pixels)."""
    rng = np.random.default_rng(0)
    gt = np.zeros((24, 24), dtype=np.uint8)
    gt[2:22, 2:9], gt[2:22, 9:16], gt[2:22, 16:22] = 1, 2, 3
    spectra = rng.normal(size=(4, 30)).cumsum(axis=1)
    cube = spectra[gt] + rng.normal(scale=1.5, size=(24, 24, 30))
    np.save(folder / "synthetic_cube.npy", cube.astype(np.float32))
    np.save(folder / "synthetic_gt.npy", gt)
    return folder


def _settings(data: Path, out: Path) -> list[str]:
    return ["repeat", "--cube", str(data / "synthetic_cube.npy"), "--gt", str(data / "synthetic_gt.npy"),
            "--patch-size", "9", "--pca-components", "15", "--epochs", "2", "--train-ratio", "0.1",
            "--batch-size", "16", "--out", str(out), "--quiet"]


@pytest.fixture(scope="module")
def repeats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small repeats side by side: 2 runs varying the initialisation (deterministic), 2 varying the split."""
    data = _synthetic_scene(tmp_path_factory.mktemp("synthetic"))
    out = tmp_path_factory.mktemp("repeats")
    assert main([*_settings(data, out), "--vary", "init", "--seeds", "3,4", "--deterministic"]) == 0
    assert main([*_settings(data, out), "--vary", "split", "--runs", "2"]) == 0
    return {"init": out / "synthetic_cube_hybridsn_vary-init", "split": out / "synthetic_cube_hybridsn_vary-split",
            "data": data}


def _run_dirs(repeat_dir: Path) -> list[Path]:
    return sorted(p for p in repeat_dir.iterdir() if p.is_dir())


def test_repeat_writes_every_file(repeats: dict[str, Path]) -> None:
    for vary in ("init", "split"):
        folder = repeats[vary]
        assert [n for n in REPORT_FILES if not (folder / n).is_file()] == []
        assert [p.name for p in _run_dirs(folder)] == (
            ["run-0-seed3", "run-1-seed4"] if vary == "init" else ["run-0-seed0", "run-1-seed1"]
        )
        for run in _run_dirs(folder):
            assert json.loads((run / "status.json").read_text())["state"] == "complete"
        report = json.loads((folder / "stability.json").read_text())
        assert report["n_runs"] == 2 and report["vary"] == vary
        for key in ("overall_accuracy", "average_accuracy", "kappa"):
            s = report[key]
            assert s["min"] <= s["mean"] <= s["max"] and s["ci95_low"] <= s["mean"] <= s["ci95_high"]
            assert 0 <= s["min"] and s["max"] <= 1  # fractions, not percentages
        assert len(report["per_class"]) == 3 and report["config"]["patch_size"] == 9
        agreement = np.load(folder / "agreement.npy")
        assert agreement.shape == (24, 24) and agreement.min() >= 0.5 and agreement.max() == 1.0
        assert 0 < report["consensus"]["n_pixels"] <= 400 and report["consensus"]["n_labelled"] == 400
        md = (folder / "stability.md").read_text()
        assert "What varied" in md and "95% CI" in md and "majority-vote" in md


def test_vary_init_keeps_the_split_and_changes_the_seed(repeats: dict[str, Path]) -> None:
    runs = _run_dirs(repeats["init"])
    tests = [np.load(r / "split_test.npy") for r in runs]
    assert np.array_equal(tests[0], tests[1])
    configs = [json.loads((r / "config.json").read_text())["run"] for r in runs]
    assert [c["seed"] for c in configs] == [3, 4] and [c["split_seed"] for c in configs] == [0, 0]
    report = json.loads((repeats["init"] / "stability.json").read_text())
    assert report["consensus"]["n_pixels"] == int(tests[0].sum())  # every test pixel is common


def test_vary_split_keeps_the_init_seed_and_changes_the_split(repeats: dict[str, Path]) -> None:
    runs = _run_dirs(repeats["split"])
    tests = [np.load(r / "split_test.npy") for r in runs]
    assert not np.array_equal(tests[0], tests[1])
    configs = [json.loads((r / "config.json").read_text())["run"] for r in runs]
    assert [c["seed"] for c in configs] == [0, 0] and [c["split_seed"] for c in configs] == [0, 1]
    report = json.loads((repeats["split"] / "stability.json").read_text())
    assert report["consensus"]["n_pixels"] == int((tests[0] & tests[1]).sum())


def test_side_by_side_reports_compare_split_and_init(repeats: dict[str, Path]) -> None:
    for vary in ("init", "split"):  # the first report is updated when the second appears
        md = (repeats[vary] / "stability.md").read_text()
        assert "the split moves OA by ±" in md and "the initialisation by ±" in md
        assert json.loads((repeats[vary] / "stability.json").read_text())["comparison"]["members"].keys() == {
            "split", "init"}


def test_resume_redoes_only_the_unfinished_run_and_deterministic_runs_repeat(
    repeats: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / repeats["init"].name
    shutil.copytree(repeats["init"], folder)
    kept, redone = _run_dirs(folder)
    kept_mtimes = {p: p.stat().st_mtime_ns for p in kept.iterdir()}
    before = json.loads((redone / "metrics.json").read_text())
    (redone / "status.json").write_text(json.dumps({"state": "interrupted"}))
    (redone / "metrics.json").unlink()
    code = main([*_settings(repeats["data"], tmp_path), "--vary", "init", "--seeds", "3,4", "--deterministic"])
    assert code == 0
    assert {p: p.stat().st_mtime_ns for p in kept.iterdir()} == kept_mtimes
    after = json.loads((redone / "metrics.json").read_text())
    # --deterministic: the same seed gives the same metrics, timing aside
    assert {k: v for k, v in after.items() if k not in TIMING} == {k: v for k, v in before.items() if k not in TIMING}


@pytest.mark.parametrize(("flags", "expected"), [
    (["--runs", "2", "--epochs", "3"], "epochs: 2 there, 3 now"),
    (["--runs", "1"], "may only add runs"),
])
def test_resume_with_other_settings_is_refused(
    repeats: dict[str, Path], capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    parent = repeats["split"].parent
    before = sorted(p.name for p in repeats["split"].iterdir())
    code = main([*_settings(repeats["data"], parent), "--vary", "split", *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert "other settings" in err and expected in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in repeats["split"].iterdir()) == before


@pytest.mark.parametrize(("flags", "expected"), [
    (["--runs", "0"], "--runs must be"),
    (["--seeds", "1,x"], "--seeds must be comma-separated"),
    (["--runs", "3", "--seeds", "1,2"], "disagrees with --seeds"),
    (["--runs", "2", "--split-seed", "4"], "--split-seed fixes the split"),
    (["--runs", "2", "--jobs", "0"], "--jobs must be"),
    (["--runs", "2", "--name", "../elsewhere"], "--name must be a plain folder name"),
])
def test_bad_repeat_flags_exit_2_without_a_folder(
    flags: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["repeat", "--dataset", "salinas_a", "--out", str(tmp_path / "out"), "--no-download", *flags]
    assert main(args) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_plan_runs_holds_the_right_seed_fixed() -> None:
    base = RunConfig(dataset="synthetic", seed=10)
    split = plan_runs(base, runs=3, seeds=None, vary="split")
    assert [(r.init_seed, r.split_seed) for r in split] == [(10, 10), (10, 11), (10, 12)]
    init = plan_runs(RunConfig(dataset="synthetic", seed=10, split_seed=7), runs=None, seeds=[1, 5], vary="init")
    assert [(r.init_seed, r.split_seed, r.name) for r in init] == [(1, 7, "run-0-seed1"), (5, 7, "run-1-seed5")]
    both = plan_runs(base, runs=2, seeds=None, vary="both")
    assert [(r.init_seed, r.split_seed) for r in both] == [(10, 10), (11, 11)]
    with pytest.raises(ConfigError, match="--vary must be"):
        plan_runs(base, runs=2, seeds=None, vary="weights")
    assert parse_seeds(" 0, 2,2 ") == [0, 2, 2]


def test_jobs_2_trains_runs_in_worker_processes(
    repeats: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_settings(repeats["data"], tmp_path), "--runs", "2", "--jobs", "2", "--name", "two_jobs"]) == 0
    assert "compete for the" in capsys.readouterr().err  # CPU jobs share the cores, and the user is told
    runs = _run_dirs(tmp_path / "two_jobs")
    assert [json.loads((r / "status.json").read_text())["state"] for r in runs] == ["complete", "complete"]
    assert (tmp_path / "two_jobs" / "stability.md").is_file()
