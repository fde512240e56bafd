"""Every file the package writes goes through the one atomic writer, ``hsi._core.files.atomic_write``.

Only ``_core/files.py`` may open a file for writing, rename or copy files, or make temporary
files. Anywhere else (and there too), a call that writes a file (``np.save``, ``torch.save``,
``fig.savefig``, ...) must write into the handle of an enclosing ``with atomic_write(...) as fh``
block, never to a path.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hsi"
WRITER = "_core/files.py"
#: Calls that write a file, given a path or a handle.
WRITING_METHODS = {"save", "savez", "savez_compressed", "savetxt", "savefig", "savemat", "write_text",
                   "write_bytes", "to_csv", "dump", "tofile", "imwrite", "imsave", "save_image"}
#: Module functions that create, move or copy files: the writer's business only.
LOW_LEVEL = {
    "os": {"open", "replace", "rename", "renames", "link", "symlink", "truncate", "write", "fdopen"},
    "shutil": {"copy", "copy2", "copyfile", "copyfileobj", "copytree", "move"},
    "tempfile": {"mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile"},
}
#: Path methods that create or move files (``replace`` is left out: ``str.replace`` reads the same).
PATH_METHODS = {"rename", "touch", "symlink_to", "hardlink_to"}


def _name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _opens_for_writing(call: ast.Call) -> bool:
    """Builtin ``open(path, mode)`` with a writing mode or one chosen at run time (which may write),
    or ``x.open(..., "w")`` (``Path.open``, ``gzip.open``, ...) with a writing mode."""
    builtin = isinstance(call.func, ast.Name)
    keyword_modes = [k.value for k in call.keywords if k.arg == "mode"]
    for mode in (call.args[1:2] if builtin else call.args[:2]) + keyword_modes:
        if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
            if builtin or mode in keyword_modes:
                return True
            continue  # e.g. envi.open(header, data_file): two file names
        if re.fullmatch(r"[rwxabt+]+", mode.value) and set(mode.value) & set("wax+"):
            return True
    return False


def _low_level(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.attr in LOW_LEVEL.get(
        func.value.id, ()
    ):
        return f"{func.value.id}.{func.attr}"
    name = _name(func)
    if name in PATH_METHODS or name in LOW_LEVEL["tempfile"]:
        return name
    if name == "open" and _opens_for_writing(call):
        return "open for writing"
    return None


def _handles(node: ast.With | ast.AsyncWith) -> set[str]:
    """Names bound by ``with atomic_write(...) as name`` items of ``node``."""
    return {
        item.optional_vars.id
        for item in node.items
        if isinstance(item.context_expr, ast.Call)
        and _name(item.context_expr.func) == "atomic_write"
        and isinstance(item.optional_vars, ast.Name)
    }


def _violations(tree: ast.AST, *, is_writer: bool) -> list[str]:
    found: list[str] = []

    def visit(node: ast.AST, handles: frozenset[str]) -> None:
        if isinstance(node, (ast.With, ast.AsyncWith)):
            handles = handles | _handles(node)
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in WRITING_METHODS:
                targets = [*node.args, *(k.value for k in node.keywords)]
                if not any(isinstance(t, ast.Name) and t.id in handles for t in targets):
                    found.append(f"line {node.lineno}: {name}() outside an atomic_write handle")
            if not is_writer and (what := _low_level(node)):
                found.append(f"line {node.lineno}: {what}")
        for child in ast.iter_child_nodes(node):
            visit(child, handles)

    visit(tree, frozenset())
    return found


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_are_written_only_through_the_atomic_writer(path: Path) -> None:
    rel = path.relative_to(PACKAGE).as_posix()
    found = _violations(ast.parse(path.read_text()), is_writer=rel == WRITER)
    assert not found, f"{rel} writes files directly ({found}); write through hsi._core.files.atomic_write"


@pytest.mark.parametrize(
    "source",
    [
        "np.save(path, a)",
        "torch.save(d, 'model.pt')",
        "with atomic_write(p) as fh:\n    torch.save(d, other)",
        "with open(p, 'w') as f:\n    pass",
        "open(p, mode)",
        "Path(p).open('ab')",
        "os.replace(a, b)",
        "tempfile.mkstemp(dir=d)",
        "shutil.copyfile(a, b)",
        "Path(p).write_text('x')",
    ],
)
def test_the_check_catches_direct_writes(source: str) -> None:
    assert _violations(ast.parse(source), is_writer=False)


def test_the_check_allows_writing_into_the_handle_and_reading() -> None:
    source = "with atomic_write(p) as fh:\n    torch.save(d, fh)\n    fig.savefig(fh, format='png')\nopen(p).read()\n"
    source += "Path(p).open('rb')\nopen(p, 'r', encoding='utf-8')\nImage.open(path)\n"
    assert _violations(ast.parse(source), is_writer=False) == []
