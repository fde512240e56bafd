"""Fixtures for the tests of files from someone else: evil checkpoints, lying headers, fuzzing."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

_DATA_CONFTEST = Path(__file__).resolve().parents[1] / "data" / "conftest.py"


def _load_write_mat_v73() -> Callable[[Path, dict[str, np.ndarray | str]], Path]:
    """tests/data/conftest.py's MATLAB v7.3 writer (conftest files are not importable as modules)."""
    spec = importlib.util.spec_from_file_location("_hsi_tests_data_conftest", _DATA_CONFTEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.write_mat_v73


write_mat_v73 = _load_write_mat_v73()


@pytest.fixture(name="write_mat_v73", scope="session")
def write_mat_v73_fixture() -> Callable[[Path, dict[str, np.ndarray | str]], Path]:
    return write_mat_v73
