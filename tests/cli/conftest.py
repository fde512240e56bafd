"""Fixtures of the cli tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _figures_not_drawn(figures_not_drawn: None) -> None:
    """The pipeline runs here write placeholder figures (see tests/conftest.py)."""
