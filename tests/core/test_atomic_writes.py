"""Every file the package writes goes through an atomic writer (temporary name, then rename).

Only the atomic writers themselves may call file-writing functions: ``reporting/files.py``,
``training/checkpoint.py`` (torch.save to a temporary file) and ``data/download.py``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hsi"
ATOMIC_WRITERS = {"reporting/files.py", "training/checkpoint.py", "data/download.py"}
WRITING_METHODS = {"save", "savez", "savez_compressed", "savetxt", "savefig", "savemat", "write_text",
                   "write_bytes", "to_csv", "dump", "tofile", "imwrite", "imsave", "save_image"}


def _writes_in_place(call: ast.Call) -> str | None:
    """What ``call`` writes with, when it writes a file directly; None otherwise."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name in WRITING_METHODS:
        return name
    if name in ("open", "fdopen"):  # open(path, mode), Path.open(mode), os.fdopen(fd, mode)
        values = [*call.args, *(k.value for k in call.keywords if k.arg == "mode")]
        modes = [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        writing = [m for m in modes if re.fullmatch(r"[rwxabt+]+", m) and set(m) & set("wax+")]
        if writing:
            return f"{name}({writing[0]!r})"
    return None


FILES = sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).as_posix() not in ATOMIC_WRITERS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_direct_file_writes(path: Path) -> None:
    found = [
        f"line {node.lineno}: {what}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and (what := _writes_in_place(node))
    ]
    assert not found, f"{path.name} writes files directly ({found}); use hsi.reporting.files"
