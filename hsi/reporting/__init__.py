"""Reporting: figures (matplotlib, never shown), Markdown/CSV tables, atomic file writes.

Inputs are arrays and the JSON-ready dicts of :mod:`hsi.evaluation`; names and palettes
are passed in, so nothing here imports ``hsi.data`` or ``hsi.models``.

The names below load their module on first use, so ``from hsi.reporting.tables import ...``
does not import matplotlib (commands such as ``datasets`` must start fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULE_OF = {
    **dict.fromkeys(
        ["METRIC_LABELS", "agreement_figure", "bar_chart", "classification_map", "confusion_figure",
         "default_palette", "error_map", "false_colour", "split_map", "stability_figure", "training_curve"],
        "hsi.reporting.figures",
    ),
    **dict.fromkeys(
        ["atomic_save_figure", "atomic_save_json", "atomic_save_npy", "atomic_write_bytes", "atomic_write_text",
         "to_jsonable"],
        "hsi.reporting.files",
    ),
    **dict.fromkeys(
        ["csv_text", "format_percent", "markdown_table", "metrics_markdown", "stability_markdown"],
        "hsi.reporting.tables",
    ),
}  # fmt: skip

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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
