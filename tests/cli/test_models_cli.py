"""`hsi-classify models` and `models --profile`: one line per model, the paper's parameter count."""

from __future__ import annotations

import re

import pytest

from hsi.cli.main import main
from hsi.models import list_models


def _rows(text: str) -> dict[str, list[str]]:
    """Table rows of Markdown output, keyed by their first cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| :") and not line.startswith("| model"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_models_lists_every_model_with_a_one_line_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert set(rows) == {m.name for m in list_models()}
    for name, (kind, description) in rows.items():
        assert kind in ("torch", "sklearn") and len(description) > 20, name
    assert "Roy et al." in rows["hybridsn"][1]


def test_profile_shows_hybridsn_paper_parameter_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--profile", "--patch-size", "25", "--bands", "30", "--classes", "16"]) == 0
    out = capsys.readouterr().out
    assert "input 25x25x30, 16 classes" in out
    rows = _rows(out)
    assert rows["hybridsn"][0] == "5,122,176"  # Roy et al. 2020, Indian Pines setting
    assert rows["svm"] == ["-", "-", "-"] and rows["random_forest"] == ["-", "-", "-"]
    for name, cells in rows.items():
        if name not in ("svm", "random_forest"):
            assert all(re.fullmatch(r"[\d,.]+", c) for c in cells), (name, cells)


def test_profile_marks_models_that_cannot_take_the_input(capsys: pytest.CaptureFixture[str]) -> None:
    # HybridSN's 3-D kernels need >= 13 bands; the other models still get their figures.
    assert main(["models", "--profile", "--patch-size", "9", "--bands", "10", "--classes", "4"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["hybridsn"] == ["n/a", "n/a", "n/a"]
    assert "hybridsn: HybridSN needs in_chans >= 13" in out
    assert rows["resnet"][0] != "n/a"


def test_profile_rejects_an_even_patch_size_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--profile", "--patch-size", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "odd integer" in err
