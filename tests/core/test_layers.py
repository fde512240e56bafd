"""The package's imports flow one way: each layer imports only itself and layers to its left."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hsi"
ORDER = ["_core", "config", "data", "features", "models", "training", "evaluation", "reporting", "experiments", "cli"]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "hsi" or len(parts) == 1:
        return None
    return parts[1]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


FILES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem == "config")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    own = "config" if path.stem == "config" and path.parent == PACKAGE else path.relative_to(PACKAGE).parts[0]
    rank = ORDER.index(own)
    for module in _imports(path):
        layer = _layer(module)
        if layer is None or layer not in ORDER:
            continue
        assert ORDER.index(layer) <= rank, f"{path.name} ({own}) imports {module} ({layer}), a later layer"


def test_models_never_import_data() -> None:
    for path in (PACKAGE / "models").rglob("*.py"):
        assert not any(m.startswith("hsi.data") for m in _imports(path)), path
