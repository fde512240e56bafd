"""Each command's --help says what the command accepts: every flag it names is one of its own, the file
formats named for --cube and --gt are those the readers take, and `datasets` shows the columns it promises."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from hsi.cli.main import build_parser, main
from hsi.data.io import SUPPORTED_EXTENSIONS
from hsi.experiments.datasets import DATASETS_COLUMNS

#: A flag, with the command it belongs to where the text names one ("train --model" in `models --help`).
FLAG = re.compile(r"(?:\b(train|predict|compare|repeat|inspect|datasets|models|env) )?(?<![\w-])(--[a-z][a-z0-9-]*)")
EXTENSION = re.compile(r"(?<!\w)\.[a-z][a-z0-9]*")


def _commands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    (action,) = [a for a in parser._actions if flag in a.option_strings]
    return action


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_flag_named_in_a_commands_help_is_accepted(name: str) -> None:
    commands = _commands()
    for owner, flag in FLAG.findall(commands[name].format_help()):
        parser = commands[owner or name]
        assert flag in {f for action in parser._actions for f in action.option_strings}, (
            f"`{name} --help` names {owner or name} {flag}, which `{owner or name}` refuses")


def test_predict_does_not_offer_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--jobs" not in _commands()["predict"].format_help()
    assert "--jobs" in _commands()["repeat"].format_help()  # repeat trains several runs at once; it has --jobs


def _in_memory(role: str) -> set[str]:
    return {ext for ext, what in SUPPORTED_EXTENSIONS.items() if role == "gt" or "ground truth only" not in what}


@pytest.mark.parametrize("command", ["train", "repeat", "compare", "inspect", "predict"])
def test_cube_and_gt_formats_in_help_are_the_readers(command: str) -> None:
    from hsi.data.lazy import LAZY_EXTENSIONS  # imports torch: here, not in the CLI

    parser = _commands()[command]
    cube = set(EXTENSION.findall(str(_option(parser, "--cube").help)))
    gt = set(EXTENSION.findall(str(_option(parser, "--gt").help)))
    windowed = command in ("train", "predict")  # train --lazy, predict tile by tile; the others read it whole
    expected = _in_memory("cube") | (set(LAZY_EXTENSIONS) if windowed else set())
    assert cube == expected, f"{command} --cube: {sorted(cube)}"
    assert gt == _in_memory("gt"), f"{command} --gt: {sorted(gt)}"


def test_datasets_help_names_the_columns_it_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    description = " ".join(str(_commands()["datasets"].description).split())
    assert all(column in description for column in DATASETS_COLUMNS)
    (tmp_path / "indian_pines").mkdir()
    (tmp_path / "indian_pines" / "Indian_pines_gt.mat").write_bytes(b"x")  # the ground truth alone
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    header, _, *rows = capsys.readouterr().out.strip().splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == list(DATASETS_COLUMNS)
    cells = {r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")] for r in rows}
    assert cells["indian_pines"][2:6] == ["145 x 145 x 200", "16", "missing", "present"]
    assert cells["salinas_a"][4:6] == ["missing", "missing"]
