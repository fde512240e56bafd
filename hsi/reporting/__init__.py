"""Reporting: figures (matplotlib, never shown), Markdown/CSV tables, atomic file writes.

Inputs are arrays and the JSON-ready dicts of :mod:`hsi.evaluation`; names and palettes
are passed in, so nothing here imports ``hsi.data`` or ``hsi.models``.
"""

from __future__ import annotations

from hsi.reporting.figures import (
    METRIC_LABELS,
    agreement_figure,
    bar_chart,
    classification_map,
    confusion_figure,
    default_palette,
    error_map,
    false_colour,
    split_map,
    stability_figure,
    training_curve,
)
from hsi.reporting.files import (
    atomic_save_figure,
    atomic_save_json,
    atomic_save_npy,
    atomic_write_bytes,
    atomic_write_text,
    to_jsonable,
)
from hsi.reporting.tables import (
    csv_text,
    format_percent,
    markdown_table,
    metrics_markdown,
    stability_markdown,
)

__all__ = [
    "METRIC_LABELS",
    "agreement_figure",
    "atomic_save_figure",
    "atomic_save_json",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_text",
    "bar_chart",
    "classification_map",
    "confusion_figure",
    "csv_text",
    "default_palette",
    "error_map",
    "false_colour",
    "format_percent",
    "markdown_table",
    "metrics_markdown",
    "split_map",
    "stability_figure",
    "stability_markdown",
    "to_jsonable",
    "training_curve",
]
