"""The package's imports flow one way: each layer imports only itself and layers to its left."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hsi"
ORDER = ["_core", "config", "data", "features", "models", "training", "evaluation", "reporting", "experiments", "api",
         "cli"]
TOP_LEVEL_LAYERS = ("config", "api")  # modules directly in hsi/ that are layers of their own


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


FILES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem in TOP_LEVEL_LAYERS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    own = path.stem if path.parent == PACKAGE else path.relative_to(PACKAGE).parts[0]
    rank = ORDER.index(own)
    for module in _imports(path):
        layer = _layer(module)
        if layer is None or layer not in ORDER:
            continue
        assert ORDER.index(layer) <= rank, f"{path.name} ({own}) imports {module} ({layer}), a later layer"


def test_models_never_import_data() -> None:
    for path in (PACKAGE / "models").rglob("*.py"):
        assert not any(m.startswith("hsi.data") for m in _imports(path)), path


def _module_name(path: Path) -> str:
    parts = ["hsi", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_circle_between_modules() -> None:
    # Every import counts, those inside functions too: a circle held together by a function-level
    # import is still a circle (engine -> train -> steps -> predict -> engine was one).
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for target in imported:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target not in (name, "hsi"):
                    deps.add(target)
        graph[name] = deps
    # Depth-first search for a back edge; the path to it is the circle.
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep] if dep in path else [*path, dep]
            if dep not in state and (circle := visit(dep, [*path, dep])):
                return circle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            circle = visit(start, [start])
            assert circle is None, "import circle: " + " -> ".join(circle)
