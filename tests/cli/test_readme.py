"""The README's first lines are the two commands a newcomer needs, and they stay true.

The first command must parse as the tool's own flags, on the honest (disjoint) split; the second
must be the test command `.ci/run` runs; the output shown must have the shape the tool prints;
the README stays short enough to read in five minutes.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from hsi.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _first_code_block() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    assert block, "the README starts with a bash block of the two commands"
    return block.group(1).strip().splitlines()


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    assert len(README.splitlines()) <= 100
    assert README.index("```bash") < 100  # the commands come first, before any prose
    assert len(_first_code_block()) == 2


def test_first_command_is_a_valid_train_on_the_disjoint_split() -> None:
    install, _, run = _first_code_block()[0].partition(" && ")
    assert install.startswith("pip install torch==") and '".[test]"' in install
    words = shlex.split(run)
    assert words[0].startswith("HSI_DATA_DIR=") and words[1] == "hsi-classify"
    args = build_parser().parse_args(words[2:])
    assert args.command == "train" and args.split == "disjoint" and args.dataset == "salinas_a"
    assert args.recipe is None  # the default recipe, as a newcomer gets it


def test_second_command_is_the_one_ci_runs() -> None:
    test_command = _first_code_block()[1]
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_commands


def test_the_shown_output_has_the_tools_own_summary_line() -> None:
    shown = re.search(r"```text\n(.*?)```", README, flags=re.DOTALL)
    assert shown
    assert re.search(r"^OA \d+\.\d\d%  AA \d+\.\d\d%  kappa \d\.\d{3}  on [\d,]+ test pixels$", shown.group(1),
                     flags=re.MULTILINE)
    assert "disjoint split" in shown.group(1)
