"""`hsi-classify repeat` on the tiny synthetic scene, plus its planning rules and flags.

The repeats train the SVM: what a repeat does (plan seeds, resume, compare folders, report) does
not depend on the model, and torch's own determinism is tested in test_resume.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi._core.errors import ConfigError
from hsi.cli.main import build_parser, main
from hsi.cli.repeat import parse_seeds, seeds_from_args
from hsi.config import RunConfig
from hsi.experiments.repeat import VARY, plan_runs
from hsi.experiments.train import clock_free
from hsi.reporting.vary import VARY_CHOICES
from hsi.training.recipe import RECIPES

REPORT_FILES = ["repeat.json", "stability.json", "stability.md", "stability.png", "agreement.png",
                "agreement.npy", "consensus.png"]
INIT, SPLIT = "synthetic_cube_svm_vary-init", "synthetic_cube_svm_vary-split"


def _settings(scene: Any, out: Path) -> list[str]:
    return ["repeat", *scene.args(), "--model", "svm", "--patch-size", "5", "--pca-components", "15",
            "--epochs", "2", "--train-ratio", "0.1", "--out", str(out), "--quiet"]


def _mtimes(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def repeats(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two repeats side by side: 2 runs varying the initialisation (deterministic), then 2 varying the split."""
    out = tmp_path_factory.mktemp("repeats")
    assert main([*_settings(synthetic_scene, out), "--vary", "init", "--seeds", "3,4", "--deterministic"]) == 0
    init_files = _mtimes(out / INIT)
    assert main([*_settings(synthetic_scene, out), "--vary", "split", "--runs", "2"]) == 0
    return {"init": out / INIT, "split": out / SPLIT, "scene": synthetic_scene, "init_files_before_split": init_files}


def _run_dirs(repeat_dir: Path) -> list[Path]:
    return sorted(p for p in repeat_dir.iterdir() if p.is_dir())


def test_repeat_writes_every_file(repeats: dict[str, Any]) -> None:
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
        assert len(report["per_class"]) == 4 and report["config"]["patch_size"] == 5
        agreement = np.load(folder / "agreement.npy")
        assert agreement.shape == (30, 26) and agreement.min() >= 0.5 and agreement.max() == 1.0
        assert 0 < report["consensus"]["n_pixels"] <= 572 and report["consensus"]["n_labelled"] == 572
        md = (folder / "stability.md").read_text()
        assert "What varied" in md and "95% CI" in md and "majority-vote" in md


def test_vary_init_keeps_the_split_and_changes_the_seed(repeats: dict[str, Any]) -> None:
    runs = _run_dirs(repeats["init"])
    tests = [np.load(r / "split_test.npy") for r in runs]
    assert np.array_equal(tests[0], tests[1])
    configs = [json.loads((r / "config.json").read_text())["run"] for r in runs]
    assert [c["seed"] for c in configs] == [3, 4] and [c["split_seed"] for c in configs] == [0, 0]
    report = json.loads((repeats["init"] / "stability.json").read_text())
    assert report["consensus"]["n_pixels"] == int(tests[0].sum())  # every test pixel is common


def test_vary_split_keeps_the_init_seed_and_changes_the_split(repeats: dict[str, Any]) -> None:
    runs = _run_dirs(repeats["split"])
    tests = [np.load(r / "split_test.npy") for r in runs]
    assert not np.array_equal(tests[0], tests[1])
    configs = [json.loads((r / "config.json").read_text())["run"] for r in runs]
    assert [c["seed"] for c in configs] == [0, 0] and [c["split_seed"] for c in configs] == [0, 1]
    report = json.loads((repeats["split"] / "stability.json").read_text())
    assert report["consensus"]["n_pixels"] == int((tests[0] & tests[1]).sum())


def test_the_later_report_compares_split_and_init_and_the_earlier_folder_is_untouched(repeats: dict[str, Any]) -> None:
    md = (repeats["split"] / "stability.md").read_text()
    assert "the split moves OA by ±" in md and "the initialisation by ±" in md
    report = json.loads((repeats["split"] / "stability.json").read_text())
    assert report["comparison"]["members"].keys() == {"split", "init"}
    # repeat never rewrites another repeat folder: the init folder is as its own run left it
    assert _mtimes(repeats["init"]) == repeats["init_files_before_split"]
    assert json.loads((repeats["init"] / "stability.json").read_text())["comparison"] is None


def test_the_answer_comes_first_in_the_report_and_above_the_figures(repeats: dict[str, Any]) -> None:
    lines = (repeats["split"] / "stability.md").read_text().splitlines()
    assert lines[0].startswith("# Stability of") and lines[2].startswith("**Split or initialisation?**")
    assert lines[4].startswith("**What varied: the split.**")
    page = (repeats["split"] / "report.html").read_text()
    assert page.index("Split or initialisation?") < page.index("<figure") and page.count("the split moves OA by") == 1
    # Without a comparison the report opens with what varied, as before.
    assert (repeats["init"] / "stability.md").read_text().splitlines()[2].startswith("**What varied")


def test_resume_redoes_only_the_unfinished_run_and_deterministic_runs_repeat(repeats: dict[str, Any], tmp_path: Path) -> None:
    for name in (INIT, SPLIT):
        shutil.copytree(repeats["init"].parent / name, tmp_path / name)
    folder = tmp_path / INIT
    kept, redone = _run_dirs(folder)
    kept_files, split_files = _mtimes(kept), _mtimes(tmp_path / SPLIT)
    before = json.loads((redone / "metrics.json").read_text())
    (redone / "status.json").write_text(json.dumps({"state": "interrupted"}))
    (redone / "metrics.json").unlink()
    code = main([*_settings(repeats["scene"], tmp_path), "--vary", "init", "--seeds", "3,4", "--deterministic"])
    assert code == 0
    assert _mtimes(kept) == kept_files and _mtimes(tmp_path / SPLIT) == split_files
    after = json.loads((redone / "metrics.json").read_text())
    # --deterministic: the same seed gives the same metrics, timing aside
    assert clock_free(after) == clock_free(before)
    # Its rewritten report now mentions the split folder beside it (read, not written).
    assert json.loads((folder / "stability.json").read_text())["comparison"]["members"].keys() == {"split", "init"}


@pytest.mark.parametrize(("flags", "expected"), [
    (["--runs", "2", "--epochs", "3"], "epochs: 2 there, 3 now"),
    (["--seeds", "5,6"], "may only add runs"),
])
def test_resume_with_other_settings_is_refused(
    repeats: dict[str, Any], capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    before = _mtimes(repeats["split"])
    code = main([*_settings(repeats["scene"], repeats["split"].parent), "--vary", "split", *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert "other settings" in err and expected in err and len(err.strip().splitlines()) == 1
    assert _mtimes(repeats["split"]) == before


def test_resume_after_the_recipe_was_redefined_is_refused(
    repeats: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The folder records the recipe's parts that act on its model, not only the recipe's name: as if
    # the default recipe had smoothed the maps in 7 x 7 windows when the folder was made (another
    # version of the tool). The network parts never act on this SVM, and it records them as None.
    shutil.copytree(repeats["split"], tmp_path / SPLIT)
    record = json.loads((tmp_path / SPLIT / "repeat.json").read_text())
    default = RECIPES.get(RunConfig().recipe)
    assert record["config"]["recipe"] == RunConfig().recipe and record["config"]["smooth"] == default.smooth
    assert record["config"]["ensemble"] is None
    record["config"]["smooth"] = 7
    (tmp_path / SPLIT / "repeat.json").write_text(json.dumps(record))
    assert main([*_settings(repeats["scene"], tmp_path), "--vary", "split", "--runs", "2"]) == 2
    assert f"smooth: 7 there, {default.smooth} now" in capsys.readouterr().err


def test_a_folder_made_before_a_recipe_part_existed_resumes(repeats: dict[str, Any], tmp_path: Path) -> None:
    # A part added to the recipes since the folder was made did not act then (its neutral value,
    # paper's): the folder resumes, and its finished runs are kept.
    shutil.copytree(repeats["split"], tmp_path / SPLIT)
    record = json.loads((tmp_path / SPLIT / "repeat.json").read_text())
    del record["config"]["smooth"]
    (tmp_path / SPLIT / "repeat.json").write_text(json.dumps(record))
    before = _mtimes(tmp_path / SPLIT / record["runs"][0]["dir"])
    assert main([*_settings(repeats["scene"], tmp_path), "--vary", "split", "--runs", "2"]) == 0
    assert _mtimes(tmp_path / SPLIT / record["runs"][0]["dir"]) == before


@pytest.mark.parametrize(("flags", "expected"), [
    (["--runs", "1"], "needs at least 2 runs; found --runs 1"),
    (["--runs", "0"], "needs at least 2 runs; found --runs 0"),
    (["--seeds", "3"], "found --seeds 3. --seeds lists the seed of each run and --runs counts them"),
    ([], "found neither --runs nor --seeds"),
    (["--seeds", "1,x"], "--seeds must be comma-separated"),
    (["--runs", "3", "--seeds", "1,2"], "disagrees with --seeds"),
    (["--runs", "2", "--split-seed", "4"], "--split-seed fixes the split"),
    (["--runs", "2", "--jobs", "0"], "--jobs must be"),
    (["--runs", "2", "--name", "../elsewhere"], "--name must be a plain folder name"),
])
def test_bad_repeat_flags_exit_2_without_a_folder(
    synthetic_scene: Any, flags: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_settings(synthetic_scene, tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_runs_counts_and_seeds_lists() -> None:
    def seeds(*flags: str, seed: int = 0) -> list[int]:
        args = argparse.Namespace(runs=None, seeds=None)
        for flag, value in zip(flags[::2], flags[1::2], strict=True):
            setattr(args, flag.lstrip("-"), int(value) if flag == "--runs" else value)
        return seeds_from_args(args, seed, minimum=1, default_runs=1, purpose="compare")

    assert seeds("--runs", "3", seed=5) == [5, 6, 7]
    assert seeds("--seeds", "0,4,7", seed=5) == [0, 4, 7]
    assert seeds("--seeds", "3") == [3] and seeds(seed=2) == [2]
    assert seeds("--runs", "2", "--seeds", "3,4") == [3, 4]
    assert parse_seeds(" 0, 2,2 ") == [0, 2, 2]


def test_plan_runs_holds_the_right_seed_fixed() -> None:
    base = RunConfig(dataset="synthetic", seed=10)
    split = plan_runs(base, [10, 11, 12], "split")
    assert [(r.init_seed, r.split_seed) for r in split] == [(10, 10), (10, 11), (10, 12)]
    init = plan_runs(RunConfig(dataset="synthetic", seed=10, split_seed=7), [1, 5], "init")
    assert [(r.init_seed, r.split_seed, r.name) for r in init] == [(1, 7, "run-0-seed1"), (5, 7, "run-1-seed5")]
    both = plan_runs(base, [10, 11], "both")
    assert [(r.init_seed, r.split_seed) for r in both] == [(10, 10), (11, 11)]
    with pytest.raises(ConfigError, match="--vary must be"):
        plan_runs(base, [0, 1], "weights")
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        plan_runs(base, [3], "both")


def test_cli_vary_choices_come_from_the_declaration() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    vary = next(a for a in sub.choices["repeat"]._actions if a.dest == "vary")
    assert tuple(vary.choices) == tuple(VARY_CHOICES) == (*VARY, "all")
    for command in ("repeat", "compare"):
        text = sub.choices[command].format_help()
        assert "a count" in " ".join(text.split()) and "comma-separated list" in " ".join(text.split())


@pytest.mark.slow  # two spawned interpreters each import torch and scikit-learn and draw ten figures: ~15 s of CPU
def test_jobs_2_trains_runs_in_worker_processes(
    synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_settings(synthetic_scene, tmp_path), "--runs", "2", "--jobs", "2", "--name", "two_jobs"]) == 0
    assert "compete for the" in capsys.readouterr().err
    runs = _run_dirs(tmp_path / "two_jobs")
    assert [json.loads((r / "status.json").read_text())["state"] for r in runs] == ["complete", "complete"]
    assert (tmp_path / "two_jobs" / "stability.md").is_file()
