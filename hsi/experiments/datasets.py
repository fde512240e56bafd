"""Text for the `datasets` command.

Apart from :mod:`hsi.experiments.inspect` so that listing the scenes imports neither torch,
matplotlib nor scikit-learn (a test checks it).
"""

from __future__ import annotations

from hsi.data.scene import dataset_status
from hsi.reporting.tables import markdown_table

__all__ = ["datasets_table"]


def datasets_table(data_dir: str | None = None) -> str:
    """One row per built-in scene: name, description, present or not, where."""
    rows = [[s["name"], s["display_name"], "yes" if s["present"] else "no", s["path"]]
            for s in dataset_status(data_dir)]
    return markdown_table(["dataset", "scene", "present", "folder"], rows)
