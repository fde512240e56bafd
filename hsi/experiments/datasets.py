"""Text for the `datasets` command.

Apart from :mod:`hsi.experiments.inspect` so that listing the scenes imports neither torch,
matplotlib nor scikit-learn (a test checks it).
"""

from __future__ import annotations

from hsi.data.scene import dataset_status
from hsi.data.specs import get_spec
from hsi.reporting.tables import markdown_table

__all__ = ["DATASETS_COLUMNS", "datasets_table"]

#: The columns of :func:`datasets_table`; the `datasets` command's help names them (a test compares the two).
DATASETS_COLUMNS = ("dataset", "scene", "size (H x W x bands)", "classes", "cube", "ground truth", "folder")


def datasets_table(data_dir: str | None = None) -> str:
    """One row per built-in scene: name, description, size, classes, whether its cube and its ground truth are
    on disk (each file apart), and the folder holding them (or where they would be downloaded)."""
    rows = []
    for status in dataset_status(data_dir):
        spec, files = get_spec(status["name"]), status["files"]
        rows.append([spec.name, spec.display_name, " x ".join(map(str, spec.cube_shape)), str(spec.n_classes),
                     *("present" if files[file] else "missing" for file in spec.files), status["path"]])
    return markdown_table(list(DATASETS_COLUMNS), rows)
