"""``hsi.reporting`` exports its names lazily: all resolve, and tables alone do not load matplotlib."""

from __future__ import annotations

import importlib
import subprocess
import sys

from hsi import reporting


def test_every_exported_name_resolves_to_its_module() -> None:
    assert set(reporting.__all__) == set(reporting._MODULE_OF)
    for name in reporting.__all__:
        assert getattr(reporting, name) is getattr(importlib.import_module(reporting._MODULE_OF[name]), name)
        assert name in dir(reporting)


def test_tables_do_not_import_matplotlib() -> None:
    code = "import sys, hsi.reporting.tables; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
