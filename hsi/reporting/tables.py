"""Markdown and CSV tables: the one place where fractions become percentages.

Metrics arrive as fractions (``0..1``) from :mod:`hsi.evaluation`; tables show them as
percentages with two decimals (``0.97531`` -> ``97.53``); Cohen's kappa, which is not a share
of pixels, stays a coefficient with three decimals (``0.98731`` -> ``0.987``) in every report.
Undefined values (``None``/NaN) are shown as ``n/a``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from hsi._core.errors import ConfigError, DataFormatError

__all__ = [
    "comparison_markdown",
    "count_noun",
    "csv_text",
    "format_kappa",
    "format_metric",
    "format_percent",
    "markdown_table",
    "metrics_markdown",
    "stability_markdown",
]

_NA = "n/a"
_HEADLINE_ROWS = (
    ("overall_accuracy", "Overall accuracy, OA (%)"),
    ("average_accuracy", "Average accuracy, AA (%)"),
    ("kappa", "Cohen's kappa"),
)
#: Metric keys shown as a coefficient (:func:`format_kappa`), not as a percentage.
KAPPA_KEYS = frozenset({"kappa", "cohen_kappa"})
_ALIGN = {"l": ":---", "left": ":---", "r": "---:", "right": "---:", "c": ":---:", "center": ":---:"}


def format_percent(value: float | None, *, digits: int = 2) -> str:
    """Formats a fraction as a percentage without the sign: ``0.97531`` -> ``"97.53"``.

    Args:
        value: a fraction, or None/NaN for undefined.
        digits: decimals; default=2.

    Returns:
        The formatted number, or ``"n/a"``.
    """
    if value is None or not math.isfinite(float(value)):
        return _NA
    return f"{100.0 * float(value):.{digits}f}"


def format_kappa(value: float | None, *, digits: int = 3) -> str:
    """Formats Cohen's kappa as a coefficient, never a percentage: ``0.98731`` -> ``"0.987"``.

    Args:
        value: kappa in ``[-1, 1]``, or None/NaN for undefined.
        digits: decimals; default=3.

    Returns:
        The formatted number (``-0.000`` shown as ``0.000``), or ``"n/a"``.
    """
    if value is None or not math.isfinite(float(value)):
        return _NA
    return f"{round(float(value), digits) + 0.0:.{digits}f}"


def format_metric(key: str, value: float | None) -> str:
    """A headline metric as every report shows it: kappa as a coefficient, accuracies as percentages."""
    return format_kappa(value) if key in KAPPA_KEYS else format_percent(value)


def count_noun(n: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the right number: ``1 tied pixel``, ``4,814 tied pixels``.

    Args:
        n: the count.
        noun: the singular, e.g. ``"tied pixel"``.
        plural: the plural where it is not ``noun + "s"``; default=None.
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return _NA if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: Sequence[str] | None = None) -> str:
    """Renders a GitHub-flavoured Markdown table.

    Args:
        headers: the column names, length C.
        rows: the rows, each of length C; values are rendered with ``str`` (floats with
            6 significant digits, None as an empty cell). ``|`` is escaped.
        align: per column ``"l"``, ``"r"`` or ``"c"`` (or ``"left"``/``"right"``/
            ``"center"``); default=None aligns every column left.

    Returns:
        The table, one line per row, ending with a newline.

    Raises:
        ConfigError: a row or ``align`` does not have C entries, or an alignment is unknown.
    """
    n = len(headers)
    align = ["l"] * n if align is None else list(align)
    if len(align) != n or any(a not in _ALIGN for a in align):
        raise ConfigError(f"align must hold {n} of 'l', 'r', 'c'; got {align}.")

    def line(cells: Sequence[Any]) -> str:
        text = [_cell(c).replace("|", r"\|").replace("\n", " ") for c in cells]
        return "| " + " | ".join(text) + " |"

    out = [line(headers), "| " + " | ".join(_ALIGN[a] for a in align) + " |"]
    for i, row in enumerate(rows):
        if len(row) != n:
            raise ConfigError(f"row {i} must have {n} cells like the headers; got {len(row)}.")
        out.append(line(row))
    return "\n".join(out) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    r"""Renders rows as CSV text (RFC 4180 quoting, ``\\n`` line endings).

    Args:
        headers: the column names.
        rows: the rows; values are written with ``str`` (None as an empty field).

    Returns:
        The CSV text, header line first, ending with a newline.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buf.getvalue()


def _class_ids(class_ids: Sequence[int | str] | None, n: int) -> list[str]:
    if class_ids is None:
        return [str(i) for i in range(n)]
    if len(class_ids) != n:
        raise ConfigError(
            f"class_ids must hold one id per class ({n}); got {len(class_ids)}. "
            "Pass the scene's class_ids (the label values of the ground-truth file)."
        )
    return [str(c) for c in class_ids]


def _extra_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _NA if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return _cell(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_extra_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_extra_value(v) for v in value)
    return str(value)


def metrics_markdown(
    summary: Mapping[str, Any],
    *,
    class_ids: Sequence[int | str] | None = None,
    title: str = "Classification report",
    extra: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """A run's ``report.md``: headline metrics, per-class table, confusion matrix, run details.

    Args:
        summary: a :func:`~hsi.evaluation.metrics.classification_summary` dict (fractions).
        class_ids: the K ids shown for the classes, e.g. the scene's label values in
            its ground-truth file; default=None shows the internal indices 0..K-1.
        title: the level-1 heading; default="Classification report".
        extra: key/value pairs for a "Run details" section (train/test counts, seconds,
            dataset, model, seed, ...); values are shown as given, not as percentages;
            default=None omits the section.
        notes: sentences shown right under the headline metrics, each as its own
            paragraph (e.g. the leakage audit, warnings); default=() for none.

    Returns:
        The Markdown text.

    Raises:
        DataFormatError: ``summary`` lacks a key of ``classification_summary``.
        ConfigError: ``class_ids`` does not have K entries.
    """
    required = ("overall_accuracy", "average_accuracy", "kappa", "per_class", "confusion_matrix", "n_test")
    missing = [k for k in required if k not in summary]
    if missing:
        raise DataFormatError(
            f"summary must hold {list(required)}; missing {missing}. Pass the dict of classification_summary."
        )
    per_class: Mapping[str, Mapping[str, Any]] = summary["per_class"]
    names = list(per_class)
    ids = _class_ids(class_ids, len(names))
    parts = [f"# {title}\n", *_headline_section(summary, notes)]
    parts.extend(_per_class_section(per_class, ids))
    parts.extend(_confusion_section(summary["confusion_matrix"], ids, names))
    if extra:
        parts.append("## Run details\n")
        parts.append(
            markdown_table(["Key", "Value"], [[str(k), _extra_value(v)] for k, v in extra.items()], align=["l", "l"])
        )
    return "\n".join(parts)


def _headline_section(summary: Mapping[str, Any], notes: Sequence[str]) -> list[str]:
    """:func:`metrics_markdown`'s headline metrics table, the test pixel count and the notes."""
    parts = [
        markdown_table(
            ["Metric", "Value"],
            [[label, format_metric(key, summary[key])] for key, label in _HEADLINE_ROWS],
            align=["l", "r"],
        ),
        f"Test pixels: {int(summary['n_test']):,}. Percentages are of test pixels; kappa is a "
        "coefficient (0 = chance agreement, 1 = perfect).\n",
    ]
    parts.extend(f"{note.strip()}\n" for note in notes if note.strip())
    return parts


def _per_class_section(per_class: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> list[str]:
    """:func:`metrics_markdown`'s per-class table: support, accuracy, precision, recall and F1 of each class."""
    rows = []
    for cid, (name, m) in zip(ids, per_class.items(), strict=True):
        rows.append(
            [
                cid,
                name,
                f"{int(m.get('support', 0)):,}",
                format_percent(m.get("accuracy")),
                format_percent(m.get("precision")),
                format_percent(m.get("recall")),
                format_percent(m.get("f1")),
            ]
        )
    return [
        "## Per-class results\n",
        markdown_table(
            ["ID", "Class", "Support", "Accuracy (%)", "Precision (%)", "Recall (%)", "F1 (%)"],
            rows,
            align=["r", "l", "r", "r", "r", "r", "r"],
        ),
        "Accuracy is the producer's accuracy (recall); n/a marks a class with no test pixels "
        "(accuracy) or never predicted (precision).\n",
    ]


def _confusion_section(cm: Sequence[Sequence[Any]], ids: Sequence[str], names: Sequence[str]) -> list[str]:
    """:func:`metrics_markdown`'s confusion matrix, rows and columns by class ID.

    Raises:
        DataFormatError: ``cm`` is not K x K like the per-class results.
    """
    if len(cm) != len(names) or any(len(r) != len(names) for r in cm):
        raise DataFormatError(f"confusion_matrix must be {len(names)}x{len(names)} like per_class; got {len(cm)} rows.")
    return [
        "## Confusion matrix\n",
        "Rows: true class; columns: predicted class (by ID). Counts of test pixels.\n",
        markdown_table(
            ["True \\ Pred", *ids],
            [[f"{cid} {name}", *(int(v) for v in row)] for cid, name, row in zip(ids, names, cm, strict=True)],
            align=["l", *(["r"] * len(ids))],
        ),
    ]


def _mean_std(s: Mapping[str, Any], key: str = "") -> str:
    """``mean ± std`` of a summarize() dict, formatted as :func:`format_metric` formats ``key``."""
    mean = format_metric(key, s.get("mean"))
    if mean == _NA:
        return _NA
    std = s.get("std")
    return mean if std is None else f"{mean} ± {format_metric(key, std)}"


def _ci(s: Mapping[str, Any], key: str = "") -> str:
    if s.get("ci95_low") is None or s.get("ci95_high") is None:
        return _NA
    return f"[{format_metric(key, s['ci95_low'])}, {format_metric(key, s['ci95_high'])}]"


_STAT_HEADERS = ("Mean ± std", "Min", "Max", "Median", "95% CI of the mean", "Runs")


def _stat_cells(s: Mapping[str, Any], key: str = "") -> list[Any]:
    """The cells under :data:`_STAT_HEADERS` for one ``summarize()`` dict of the metric ``key``."""
    return [
        _mean_std(s, key),
        format_metric(key, s.get("min")),
        format_metric(key, s.get("max")),
        format_metric(key, s.get("median")),
        _ci(s, key),
        s.get("n", 0),
    ]


def stability_markdown(
    stability: Mapping[str, Any],
    *,
    seeds: Sequence[int],
    paragraph: str = "",
    title: str = "Stability over repeated runs",
    class_ids: Sequence[int | str] | None = None,
) -> str:
    """The stability report: OA / AA / kappa over runs, then each class's accuracy.

    Args:
        stability: an :func:`~hsi.evaluation.stability.aggregate_runs` dict (fractions).
        seeds: the seed of each run, in run order (recorded for reproduction).
        paragraph: text placed under the title, e.g. what varied between runs;
            default="" for none.
        title: the level-1 heading; default="Stability over repeated runs".
        class_ids: the K ids shown for the classes; default=None shows 0..K-1.

    Returns:
        The Markdown text: mean ± std (sample std), min, max, median and the Student-t
        95% confidence interval of the mean, as percentages (kappa as a coefficient).

    Raises:
        DataFormatError: ``stability`` lacks a key of ``aggregate_runs``.
        ConfigError: ``seeds`` does not have one entry per run, or ``class_ids`` not K.
    """
    required = ("n_runs", "overall_accuracy", "average_accuracy", "kappa", "per_class")
    missing = [k for k in required if k not in stability]
    if missing:
        raise DataFormatError(f"stability must hold {list(required)}; missing {missing}. Pass aggregate_runs' dict.")
    n_runs = int(stability["n_runs"])
    if len(seeds) != n_runs:
        raise ConfigError(f"seeds must hold one seed per run ({n_runs}); got {len(seeds)}.")
    per_class: Mapping[str, Mapping[str, Any]] = stability["per_class"]
    ids = _class_ids(class_ids, len(per_class))

    parts = [f"# {title}\n"]
    if paragraph.strip():
        parts.append(paragraph.strip() + "\n")
    parts.append(f"Runs: {n_runs} (seeds {', '.join(str(s) for s in seeds)}).\n")
    head_rows = [[label, *_stat_cells(stability[key], key)] for key, label in _HEADLINE_ROWS]
    parts.append(
        markdown_table(
            ["Metric", *_STAT_HEADERS],
            head_rows,
            align=["l", "r", "r", "r", "r", "r", "r"],
        )
    )
    parts.append("std is the sample standard deviation (ddof=1); the interval is Student-t.\n")
    parts.append("## Per-class accuracy (%)\n")
    cls_rows = [[cid, name, *_stat_cells(s)] for cid, (name, s) in zip(ids, per_class.items(), strict=True)]
    parts.append(
        markdown_table(
            ["ID", "Class", *_STAT_HEADERS],
            cls_rows,
            align=["r", "l", "r", "r", "r", "r", "r", "r"],
        )
    )
    parts.append("Runs counts the runs whose test set held the class.\n")
    return "\n".join(parts)


def _seconds(s: Mapping[str, Any]) -> str:
    mean = s.get("mean")
    if mean is None or not math.isfinite(float(mean)):
        return _NA
    std = s.get("std")
    digits = 1 if float(mean) >= 10 else 2
    return f"{float(mean):.{digits}f}" if std is None else f"{float(mean):.{digits}f} ± {float(std):.{digits}f}"


def comparison_markdown(
    results: Sequence[Mapping[str, Any]],
    *,
    title: str = "Model comparison",
    paragraph: str = "",
    settings: Mapping[str, Any] | None = None,
) -> str:
    """The table of a model comparison: one row per model, mean ± std over runs.

    Args:
        results: one dict per model, in display order, with ``model`` (name),
            ``n_runs``, ``parameters`` (int, or None for models without weights) and
            :func:`~hsi.evaluation.stability.summarize` dicts (fractions / seconds) under
            ``overall_accuracy``, ``average_accuracy``, ``kappa``, ``train_seconds`` and
            ``inference_seconds``.
        title: the level-1 heading; default="Model comparison".
        paragraph: text under the title; default="" for none.
        settings: shown as a Key / Value table under the comparison; default=None.

    Returns:
        The Markdown text: OA / AA as percentages and kappa as a coefficient (``mean ± std`` when a
        model has more than one run; std is the sample standard deviation), parameter
        counts, and training and full-scene inference seconds.

    Raises:
        DataFormatError: a result lacks one of the keys above.
    """
    required = ("model", "n_runs", "parameters", *(k for k, _ in _HEADLINE_ROWS), "train_seconds", "inference_seconds")
    rows = []
    for i, r in enumerate(results):
        missing = [k for k in required if k not in r]
        if missing:
            raise DataFormatError(f"results[{i}] must hold {list(required)}; missing {missing}.")
        rows.append(
            [
                r["model"],
                *(_mean_std(r[k], k) for k, _ in _HEADLINE_ROWS),
                _extra_value(r["parameters"]) if r["parameters"] is not None else "-",
                _seconds(r["train_seconds"]),
                _seconds(r["inference_seconds"]),
                r["n_runs"],
            ]
        )
    parts = [f"# {title}\n"]
    if paragraph.strip():
        parts.append(paragraph.strip() + "\n")
    parts.append(
        markdown_table(
            ["Model", "OA (%)", "AA (%)", "Kappa", "Parameters", "Train s", "Inference s (full scene)", "Runs"],
            rows,
            align=["l", "r", "r", "r", "r", "r", "r", "r"],
        )
    )
    parts.append(
        "Metrics on the test pixels of each run; mean ± std (ddof=1) over runs when there are several. "
        "Parameters: trainable weights (- for models without any).\n"
    )
    if settings:
        parts.append(
            markdown_table(["Key", "Value"], [[str(k), _extra_value(v)] for k, v in settings.items()], align=["l", "l"])
        )
    return "\n".join(parts)
