"""scripts/recipe_cost.py on the FAKE Salinas-A folder: alternating runs, per-network seconds and ratios."""

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


def test_cost_of_the_default_is_counted_per_network(fake_salinas_a_dir: Path, tmp_path: Path, capsys) -> None:
    script = _script()
    assert script.main(["--out", str(tmp_path), "--data-dir", str(fake_salinas_a_dir), "--rounds", "1",
                        "--epochs", "1", "--patch-size", "9", "--pca-components", "13"]) == 0
    report = json.loads(capsys.readouterr().out)
    paper, steady = report["runs"]["paper"][0], report["runs"]["steady"][0]
    networks = RECIPES.get("steady").ensemble
    assert (paper["networks"], steady["networks"]) == (1, networks)
    assert steady["seconds_per_network"] == pytest.approx(steady["train_seconds"] / networks)
    assert report["ratio_over_paper"]["seconds_per_network"] == pytest.approx(
        steady["seconds_per_network"] / paper["seconds_per_network"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper-0", "steady-0"]  # each run's folder, config.json in it
    assert (tmp_path / "steady-0" / "config.json").is_file()
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path), "--recipe", "paper"])


def test_cost_can_be_measured_on_fewer_networks(fake_salinas_a_dir: Path, tmp_path: Path, capsys) -> None:
    assert _script().main(["--out", str(tmp_path), "--data-dir", str(fake_salinas_a_dir), "--rounds", "1",
                           "--epochs", "1", "--patch-size", "9", "--pca-components", "13", "--ensemble", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["ensemble"] == 2
    assert (report["runs"]["paper"][0]["networks"], report["runs"]["steady"][0]["networks"]) == (1, 2)
