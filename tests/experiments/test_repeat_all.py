"""`hsi-classify repeat --vary all`: the three series in one folder, shared runs trained once, the answer first.

The runs train the SVM on the tiny synthetic scene, as in test_repeat.py: what is tested is the
planning, sharing, resuming and the report, not the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hsi._core.errors import ConfigError
from hsi.cli.main import main
from hsi.config import RunConfig
from hsi.experiments import train as train_module
from hsi.experiments.repeat import distinct_runs, plan_series
from hsi.reporting.vary_all_report import answer

SERIES_FILES = ["stability.json", "stability.md", "stability.png", "agreement.png", "agreement.npy",
                "consensus.png", "report.html"]
FOLDER = "synthetic_cube_svm_vary-all"


def _settings(scene: Any, out: Path, *flags: str) -> list[str]:
    return ["repeat", *scene.args(), "--model", "svm", "--patch-size", "5", "--pca-components", "15",
            "--epochs", "1", "--train-ratio", "0.1", "--out", str(out), "--quiet", "--vary", "all", *flags]


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every run trained from now on (the local engine trains in this process with one job)."""
    names: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        names.append(kwargs["run_name"])
        return real(*args, **kwargs)

    real = train_module.train_run
    monkeypatch.setattr(train_module, "train_run", counting)
    return names


def test_vary_all_trains_the_shared_run_once_and_opens_with_the_answer(
    synthetic_scene: Any, tmp_path: Path, trained: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_settings(synthetic_scene, tmp_path, "--runs", "3")) == 0
    folder = tmp_path / FOLDER
    # 3 series x 3 runs = 9 places, 7 runs: (init 0, split 0) stands in all three series, trained once.
    runs = sorted(p.name for p in folder.glob("run-*"))
    assert len(runs) == 7 and sorted(trained) == runs and trained.count("run-init0-split0") == 1
    assert {"split", "init", "both"} <= {p.name for p in folder.iterdir() if p.is_dir()}
    for vary, pairs in {"split": [(0, 0), (0, 1), (0, 2)], "init": [(0, 0), (1, 0), (2, 0)],
                        "both": [(0, 0), (1, 1), (2, 2)]}.items():
        assert [n for n in SERIES_FILES if not (folder / vary / n).is_file()] == []
        series = json.loads((folder / vary / "stability.json").read_text())
        assert series["vary"] == vary and series["n_runs"] == 3
        assert [(r["init_seed"], r["split_seed"]) for r in series["runs"]] == pairs
        assert series["runs"][0]["dir"] == "../run-init0-split0"
        assert (folder / vary / "stability.md").read_text().splitlines()[2].startswith("**Answer:")
    report = json.loads((folder / "stability.json").read_text())
    assert report["vary"] == "all" and report["n_trained_runs"] == 7 and report["series"].keys() == {
        "split", "init", "both"}
    shared = next(r for r in report["runs"] if r["dir"] == "run-init0-split0")
    assert shared["series"] == {"split": 0, "init": 0, "both": 0}
    # The answer in the first lines, before any table; in report.html above the figures.
    lines = (folder / "stability.md").read_text().splitlines()
    assert lines[0].startswith("# Split or initialisation?") and lines[2].startswith("**Answer:")
    assert "±" in lines[2] and next(i for i, line in enumerate(lines) if line.startswith("|")) > 2
    page = (folder / "report.html").read_text()
    assert page.index("Answer:") < page.index("<figure")
    record = json.loads((folder / "repeat.json").read_text())
    assert record["vary"] == "all" and len(record["runs"]) == 7
    assert capsys.readouterr().out.startswith("Answer:")

    # Again: nothing to train; one more run per series: 3 more runs (split 3, init 3, both 3).
    assert main(_settings(synthetic_scene, tmp_path, "--runs", "3")) == 0
    assert len(trained) == 7
    assert main(_settings(synthetic_scene, tmp_path, "--runs", "4", "--json")) == 0
    assert sorted(trained[7:]) == ["run-init0-split3", "run-init3-split0", "run-init3-split3"]
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["trained_now"] == 3 and out["reused"] == 7 and out["series"]["both"]["overall_accuracy"]["mean"] > 0
    assert json.loads((folder / "both" / "stability.json").read_text())["n_runs"] == 4


def test_plan_series_shares_only_identical_runs() -> None:
    def distinct(seeds: list[int], **changes: Any) -> list[tuple[int, int, str]]:
        plan = distinct_runs(plan_series(RunConfig(dataset="synthetic", **changes), seeds, "all"))
        return [(r.init_seed, r.split_seed, r.name) for r in plan]

    assert len(distinct([0, 1, 2])) == 7 and distinct([0, 1])[0] == (0, 0, "run-init0-split0")
    assert len(distinct([3, 4])) == 6  # --seed 0 is not among them: no run is shared
    # The same seed twice is two runs of it, in every series: the second copy is shared too.
    assert [name for _, _, name in distinct([0, 0])] == ["run-init0-split0", "run-init0-split0-2"]
    assert len(distinct([5, 6], seed=5)) == 4
    one = plan_series(RunConfig(dataset="synthetic"), [0, 1], "split")
    assert list(one) == ["split"] and [r.name for r in distinct_runs(one)] == ["run-0-seed0", "run-1-seed1"]
    with pytest.raises(ConfigError, match="--split-seed fixes the split, but --vary all"):
        plan_series(RunConfig(dataset="synthetic", split_seed=3), [0, 1], "all")
    with pytest.raises(ConfigError, match="--vary must be one of split, init, both, all"):
        plan_series(RunConfig(dataset="synthetic"), [0, 1], "every")


def _member(vary: str, std: float, n: int = 5) -> dict[str, Any]:
    return {"dir": vary, "n_runs": n, "overall_accuracy_std": std, "overall_accuracy_mean": 0.95}


def test_answer_names_the_dominant_source_only_when_the_std_ratio_says_so() -> None:
    clear = answer({"split": _member("split", 0.030, 10), "init": _member("init", 0.004, 10),
                    "both": _member("both", 0.031, 10)})
    assert clear["dominant"] == "split" and clear["significant"] is True
    assert clear["text"].startswith("**Answer: the split dominates.** The split alone moves OA by ±3.00 points")
    assert "excludes 1" in clear["text"] and "Varying both at once moves it by ±3.10 points" in clear["text"]
    close = answer({"split": _member("split", 0.0065), "init": _member("init", 0.0090)})
    assert close["dominant"] is None and close["significant"] is False
    assert close["headline"] == "Answer: neither source clearly dominates."
    assert "The initialisation alone moves OA by ±0.90 points" in close["text"] and "holds 1" in close["text"]
    only = answer({"split": _member("split", 0.01), "init": _member("init", 0.0)})
    assert only["dominant"] == "split" and only["significant"] is None and only["std_ratio"] is None
    assert only["headline"] == "Answer: only the split moves OA."
