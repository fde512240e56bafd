"""No function in the package is longer than 80 lines (issue 30): a longer one is split into named steps."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hsi"
#: The most lines a function may span, from its ``def`` line (decorators excluded) to its last line.
MAX_LINES = 80


def _long_functions(source: str, *, limit: int = MAX_LINES) -> list[tuple[str, int, int]]:
    """``(name, first line, length)`` of each function or method in ``source`` longer than ``limit`` lines."""
    return [
        (node.name, node.lineno, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > limit
    ]


def test_the_measure_flags_a_long_function_nested_or_not() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES - 1))  # with its def line: exactly MAX_LINES
    short = f"def fits():\n{body}"
    nested = "class C:\n    async def method(self):\n" + body.replace("    ", "        ") + "        x = 0\n"
    assert _long_functions(short) == []
    assert _long_functions(short + "    x = 0\n") == [("fits", 1, MAX_LINES + 1)]
    assert _long_functions(nested) == [("method", 2, MAX_LINES + 1)]


def test_no_function_in_the_package_is_longer_than_80_lines() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50, f"found only {len(files)} modules under {PACKAGE}"
    too_long = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {name} ({length} lines)"
        for path in files
        for name, line, length in _long_functions(path.read_text())
    ]
    assert not too_long, (
        f"functions over {MAX_LINES} lines (split them into named steps): " + "; ".join(too_long)
    )
