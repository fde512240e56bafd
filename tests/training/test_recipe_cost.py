"""scripts/recipe_cost.py on the FAKE Salinas-A folder: alternating runs, per-network seconds and ratios."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "recipe_cost.py"


def _script():
    spec = importlib.util.spec_from_file_location("recipe_cost", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cost_of_the_default_is_counted_per_network(fake_salinas_a_dir: Path, tmp_path: Path, capsys) -> None:
    script = _script()
    assert script.main(["--out", str(tmp_path), "--data-dir", str(fake_salinas_a_dir), "--rounds", "1",
                        "--epochs", "1", "--patch-size", "9", "--pca-components", "13"]) == 0
    report = json.loads(capsys.readouterr().out)
    paper, steady = report["runs"]["paper"][0], report["runs"]["steady"][0]
    assert (paper["networks"], steady["networks"]) == (1, 3)
    assert steady["seconds_per_network"] == pytest.approx(steady["train_seconds"] / 3)
    assert report["ratio_over_paper"]["seconds_per_network"] == pytest.approx(
        steady["seconds_per_network"] / paper["seconds_per_network"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper-0", "steady-0"]  # each run's folder, config.json in it
    assert (tmp_path / "steady-0" / "config.json").is_file()
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path), "--recipe", "paper"])
