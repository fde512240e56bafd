"""docs/api.md's examples run, in order, as one session, on real Salinas-A (e2e)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hsi

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_public_name_has_a_section() -> None:
    text = API_DOC.read_text()
    for name in hsi.__all__:
        if name != "__version__":
            assert f"hsi.{name}" in text, name


@pytest.mark.e2e
def test_the_examples_run(shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may land in the working folder
    blocks = re.findall(r"```python\n(.*?)```", API_DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 8
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block.replace('"../shared/data"', repr(str(shared_data_dir))), str(API_DOC), "exec"),
             namespace)
    printed = capsys.readouterr().out.splitlines()
    assert list(tmp_path.iterdir()) == []
    assert printed[0].startswith("(83, 86, 204) (1, 10, 11, 12, 13, 14)")
    assert any(line.startswith("True (83, 86, 6)") for line in printed)  # the model predicts what the run did
    assert printed[-1].startswith("--patch-size")
