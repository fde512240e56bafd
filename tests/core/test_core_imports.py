"""``hsi._core`` is the bottom layer: the standard library and numpy only (no scipy, torch, matplotlib)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "hsi" / "_core"
ALLOWED = set(sys.stdlib_module_names) | {"numpy", "hsi"}


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_stdlib_and_numpy(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in ALLOWED, f"{path.name} imports {name}"
            assert not name.startswith("hsi.") or name.startswith("hsi._core"), f"{path.name} imports {name}"
