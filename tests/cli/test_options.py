"""One declaration per option: every way in (flags, --config files, run folders, Python callers) is checked
by the same function with the same one-line message naming the flag; --help shows each option's effective
default (a recipe part's per recipe); docs/options.md is generated from the declarations and may not drift."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hsi._core.errors import ConfigError
from hsi._core.options import STAGES
from hsi.cli.main import build_parser, main
from hsi.cli.options import options_markdown, registered
from hsi.config import SCHEMA_VERSION, RunConfig, config_from_options, migrate, run_options
from hsi.training.recipe import PART_NAMES, RECIPES, Recipe, check_recipe, resolve_recipe

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: The three mistakes the issue names, and the one line each is answered with.
MISTAKES = {
    "wrong type": ({"min_steps": "6"}, "--min-steps must be an integer; got '6' (str)."),
    "unknown key": ({"min_step": 6}, "unknown option min_step (--min-step); did you mean min_steps (--min-steps)?"),
    "out of range": ({"min_steps": -1}, "--min-steps must be between 0 and 10000 (0 = off); got -1."),
}


@pytest.mark.parametrize(("options", "expected"), MISTAKES.values(), ids=MISTAKES)
def test_config_from_options_refuses_naming_the_flag(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config_from_options(options)


@pytest.mark.parametrize(("options", "expected"), MISTAKES.values(), ids=MISTAKES)
def test_train_config_file_refused_in_one_line_exit_2(options: dict[str, Any], expected: str, synthetic_scene: Any,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"epochs": 1, **options}))
    out = tmp_path / "runs"
    code = main(["train", "--config", str(config), "--cube", str(synthetic_scene.cube_npy), "--gt",
                 str(synthetic_scene.gt_npy), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("hsi-classify: error: ") and str(config) in err and expected in err
    assert not out.exists()


@pytest.mark.parametrize(("options", "expected"), [
    ({"lr": "0.1"}, "--lr must be a number; got '0.1' (str)."),
    ({"augment": "yes"}, "--augment must be true or false; got 'yes' (str)."),
    ({"epochs": True}, "--epochs must be an integer; got True (bool)."),
    ({"epochs": None}, "--epochs must be an integer; got None (NoneType)."),
    ({"corrupt": "gaussian:0.1"}, "--corrupt must be a list of strings; got 'gaussian:0.1' (str)."),
    ({"pca_fit": "some"}, "--pca-fit must be one of train, all; got 'some'."),
    ({"train_ratio": 1.0}, "--train-ratio must be in (0, 1); got 1.0. Pass a fraction such as 0.1."),
    ({"smooth": 4}, "--smooth must be 0 (off) or an odd window side from 3 to 31; got 4."),
    ({"download": "no"}, "--no-download must be true or false; got 'no' (str)."),
])
def test_each_type_and_constraint_is_told_in_one_line(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config_from_options(options)


def test_config_from_options_keeps_the_base_and_makes_numbers_their_type() -> None:
    config = config_from_options({"lr": 1, "min_steps": 6}, base=RunConfig(seed=5, min_steps=3))
    assert config.seed == 5 and config.min_steps == 6 and isinstance(config.lr, float) and config.lr == 1.0
    assert config_from_options({}) == RunConfig()
    assert config_from_options({"augment": None}).augment is None  # a recipe part: None = the recipe's


def test_every_option_is_declared_completely_and_recipes_meet_the_declarations() -> None:
    declared = run_options()
    assert {f for f in RunConfig().to_dict()} == set(declared)  # every field is an option
    for option in declared.values():
        assert option.help and option.stage in STAGES, option.name
        if option.default is not None:
            option.validate(option.default)
        if option.registry and option.name != "model":  # models import torch: checked by name, not offered
            assert option.name in registered(), option.name
    assert set(PART_NAMES) == {o.name for o in declared.values() if o.recipe_part}
    assert Recipe() == RECIPES.get("paper")  # the parts' off values, declared with the options
    for entry in RECIPES:
        check_recipe(entry.obj)


def _command_parser(command: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[command]


@pytest.mark.parametrize("command", ["train", "repeat", "compare"])
def test_help_shows_every_option_with_its_effective_default(command: str) -> None:
    parser = _command_parser(command)
    actions = {flag: action for action in parser._actions for flag in action.option_strings}
    for option in run_options().values():
        assert actions[option.flag].default is None, option.flag  # a --config file's value stands unless given
    min_steps = " ".join(str(actions["--min-steps"].help).split())
    for entry in RECIPES:
        assert f"{entry.name}: {entry.obj.min_steps}" in min_steps, min_steps
    assert "steady: 6" in min_steps and "(default: 100)" in str(actions["--epochs"].help)


def test_min_steps_help_names_steadys_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert re.search(r"--min-steps N at least this many optimiser steps .*? steady: 6, paper: 0, robust: 8\)", text)


def test_docs_options_table_is_generated_from_the_declarations() -> None:
    assert (DOCS / "options.md").read_text() == options_markdown(), (
        "docs/options.md drifted from the declarations in hsi/config.py; regenerate it with "
        "`python -m hsi.cli.options > docs/options.md`")
    assert "(options.md)" in (DOCS / "usage.md").read_text()  # the usage page links the table


def test_migrate_reads_a_run_folder_of_every_schema_version() -> None:
    # Schema 1 (no version): an option added since did not exist in that run. A recipe part takes its off
    # value (it did not act), any other option its default; the values recorded stand.
    old = {"run": {k: v for k, v in RunConfig(seed=4, smooth=None).to_dict().items()
                   if k not in ("screen", "smooth", "pca_sample_pixels")}, "resolved": {"device": "cpu"}}
    new = migrate(old)
    assert new["schema_version"] == SCHEMA_VERSION and new["resolved"] == {"device": "cpu"}
    assert new["run"]["screen"] == 0.0 and new["run"]["smooth"] == 0 and new["run"]["seed"] == 4
    assert new["run"]["pca_sample_pixels"] == RunConfig().pca_sample_pixels and new["run"]["ensemble"] is None
    assert config_from_options(new["run"]).screen == 0.0
    assert migrate(new) == new  # the current version: as it is
    # A run from before recipes and crops existed trained the paper's way, on patches: not today's defaults.
    older = {"run": {k: v for k, v in old["run"].items() if k not in ("recipe", "train_input")}}
    assert migrate(older)["run"]["recipe"] == "paper" and migrate(older)["run"]["train_input"] == "patches"
    # ... and its self-training rounds trained new networks for every epoch (--pseudo-epochs 0), not today's 0.3.
    earlier = {"run": {k: v for k, v in old["run"].items() if k != "pseudo_epochs"}}
    assert migrate(earlier)["run"]["pseudo_epochs"] == 0.0 and resolve_recipe(RunConfig()).pseudo_epochs == 0.3
    # Settings written by hand (no run section) name only what they set: a recipe part left out is the recipe's.
    assert migrate({"min_steps": 6})["run"] == {**RunConfig().to_dict(), "min_steps": 6}
    with pytest.raises(ConfigError, match="schema_version 99"):
        migrate({"schema_version": 99, "run": {}})


def test_a_config_file_of_an_earlier_run_is_read_through_migrate(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    run = {k: v for k, v in RunConfig(dataset="salinas_a", recipe="paper").to_dict().items() if k != "survivors"}
    path.write_text(json.dumps({"run": run, "resolved": {}}))
    config = RunConfig.from_json_file(path)
    assert config.survivors == 0 and config.recipe == "paper" and config.dataset == "salinas_a"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "run": {**run, "epochs": "3"}}))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: --epochs must be an integer; got '3' (str).")):
        RunConfig.from_json_file(path)
