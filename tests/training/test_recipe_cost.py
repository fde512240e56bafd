"""scripts/recipe_cost.py on the FAKE Salinas-A folder: the whole train command of each recipe, alternating."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from hsi.training.recipe import RECIPES

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "recipe_cost.py"


def _script():
    spec = importlib.util.spec_from_file_location("recipe_cost", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_whole_job_cost_of_the_default_against_paper(fake_salinas_a_dir: Path, tmp_path: Path, capsys) -> None:
    script = _script()
    assert script.main(["--out", str(tmp_path), "--data-dir", str(fake_salinas_a_dir), "--rounds", "1",
                        "--split", "random", "--epochs", "1", "--patch-size", "9", "--pca-components", "13"]) == 0
    report = json.loads(capsys.readouterr().out)
    paper, steady = report["runs"]["paper"][0], report["runs"]["steady"][0]
    # A random split draws no validation pixels: nothing to screen on, the recipe's survivors train.
    assert (paper["networks"], steady["networks"]) == (1, RECIPES.get("steady").survivors)
    assert steady["network_epochs"] == 2 * paper["network_epochs"] == 2
    for run in (paper, steady):
        assert run["wall_seconds"] > run["train_seconds"] > 0 and run["cpu_seconds"] > 0
        assert run["peak_rss_mb"] > 50 and run["bytes_written"] > 100_000  # the run folder at least
    ratios = report["ratios"]["steady_over_paper"]
    assert ratios["wall_seconds"] == pytest.approx(steady["wall_seconds"] / paper["wall_seconds"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper-0", "steady-0"]  # each run's folder
    (run_dir,) = (tmp_path / "steady-0").iterdir()
    assert (run_dir / "config.json").is_file()
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path), "--recipe", "paper"])
