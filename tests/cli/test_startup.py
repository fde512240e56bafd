"""Fast start: `datasets`, `--help` and every `COMMAND --help` import no torch, matplotlib or scikit-learn.

Each costs a second or more to import, so a command that answers without them must not load
them. The check looks at ``sys.modules`` in a fresh interpreter, not at a clock, so a busy
machine cannot make it flaky.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hsi.cli.main import build_parser

HEAVY = ("torch", "matplotlib", "sklearn")

_PROBE = """
import contextlib, io, json, sys
from hsi.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main(json.loads(sys.argv[1]))
    except SystemExit as exc:  # --help exits
        code = exc.code
print(json.dumps({"code": code, "loaded": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def _commands() -> list[str]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


ARGVS = [["datasets"], ["--help"], *([command, "--help"] for command in _commands())]


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_light_commands_do_not_import_heavy_libraries(argv: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "HSI_DATA_DIR": str(tmp_path), "HSI_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    assert result["loaded"] == [], f"`hsi-classify {' '.join(argv)}` imported {result['loaded']}"
