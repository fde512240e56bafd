"""How stable a model is over repeated runs (different seeds, splits or initialisations).

All inputs and outputs are fractions (``0..1``), as produced by
:func:`hsi.evaluation.metrics.classification_summary`; every returned dict is JSON-ready
(undefined values are ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from hsi._core.errors import DataFormatError

__all__ = [
    "HEADLINE_METRICS", "METRIC_RANGES", "aggregate_runs", "agreement_map", "majority_vote", "run_metric_values",
    "std_ratio_interval", "summarize",
]

#: The run-level metrics :func:`aggregate_runs` summarises, in display order.
HEADLINE_METRICS: tuple[str, ...] = ("overall_accuracy", "average_accuracy", "kappa")
#: The range each metric can take; confidence intervals are clipped to it (accuracies: 0..1).
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "overall_accuracy": (0.0, 1.0), "average_accuracy": (0.0, 1.0), "kappa": (-1.0, 1.0),
}
_ACCURACY_RANGE = (0.0, 1.0)

_SUMMARY_KEYS = ("mean", "std", "min", "max", "median", "ci95_low", "ci95_high")


def summarize(values: ArrayLike, *, bounds: tuple[float, float] | None = None) -> dict[str, float | int | None]:
    """Descriptive statistics of one metric over runs, with a 95% confidence interval.

    Args:
        values: the metric of each run, shape (n_runs,), finite.
        bounds: the range the metric can take, e.g. ``(0, 1)`` for an accuracy and ``(-1, 1)``
            for kappa (:data:`METRIC_RANGES`); the interval is clipped to it (with few, spread
            runs the t interval can reach past it, e.g. an OA below 0). None: not clipped.

    Returns:
        ``{"mean", "std", "min", "max", "median", "ci95_low", "ci95_high", "n"}``.
        ``std`` is the sample standard deviation (ddof=1); the interval is the Student-t
        95% interval of the mean, ``mean ± t(0.975, n-1) * std / sqrt(n)``. With one run
        ``std`` and the interval are ``None`` (undefined).

    Raises:
        DataFormatError: ``values`` is not 1-D, is empty, or holds NaN/inf.

    Examples:
        >>> s = summarize([0.90, 0.92, 0.94])
        >>> round(s["mean"], 4), round(s["std"], 4), s["n"]
        (0.92, 0.02, 3)
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise DataFormatError(f"values must be 1-D of shape (n_runs,); got shape {arr.shape}.")
    if arr.size == 0:
        raise DataFormatError("values must hold at least one run's metric; got none.")
    if not np.all(np.isfinite(arr)):
        raise DataFormatError(
            f"values must be finite; found {int((~np.isfinite(arr)).sum())} NaN/inf of {arr.size}. "
            "Drop runs where the metric is undefined before summarising."
        )
    n = int(arr.size)
    mean = float(arr.mean())
    out: dict[str, float | int | None] = {
        "mean": mean,
        "std": None,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "median": float(np.median(arr)),
        "ci95_low": None,
        "ci95_high": None,
        "n": n,
    }
    if n >= 2:
        std = float(arr.std(ddof=1))
        half = float(stats.t.ppf(0.975, df=n - 1)) * std / math.sqrt(n)
        low, high = mean - half, mean + half
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        out.update(std=std, ci95_low=low, ci95_high=high)
    return out


def _empty_summary() -> dict[str, float | int | None]:
    return {**dict.fromkeys(_SUMMARY_KEYS), "n": 0}


def _defined(value: Any) -> TypeGuard[float]:
    """Whether a metric value is there: not None (a class absent from the test split) and finite."""
    return value is not None and math.isfinite(float(value))


def run_metric_values(
    run_metrics: Sequence[Mapping[str, Any]], class_names: Sequence[str]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """The defined values of each headline metric and each class's accuracy over runs.

    Args:
        run_metrics: one :func:`~hsi.evaluation.metrics.classification_summary` dict per run.
        class_names: the K class names, in class order.

    Returns:
        ``(headline, per_class)``: ``{metric: [value per run]}`` and ``{name: [accuracy
        per run]}``, skipping a run where the value is ``None``/NaN (kappa undefined, a
        class absent from that run's test set or missing from its ``per_class``).

    Raises:
        DataFormatError: ``run_metrics`` is empty, or a run lacks a headline metric or
            its ``per_class`` entry.
    """
    if len(run_metrics) == 0:
        raise DataFormatError(
            "run_metrics must hold at least one run; got none. Pass the metrics.json dict of each run."
        )
    for i, run in enumerate(run_metrics):
        missing = [k for k in (*HEADLINE_METRICS, "per_class") if k not in run]
        if missing:
            raise DataFormatError(
                f"run {i} must hold the keys {[*HEADLINE_METRICS, 'per_class']}; missing {missing}. "
                "Pass dicts produced by classification_summary."
            )
    headline = {key: [float(run[key]) for run in run_metrics if _defined(run[key])] for key in HEADLINE_METRICS}
    per_class: dict[str, list[float]] = {}
    for name in class_names:
        accs = [(run["per_class"].get(name) or {}).get("accuracy") for run in run_metrics]
        per_class[str(name)] = [float(a) for a in accs if _defined(a)]
    return headline, per_class


def aggregate_runs(run_metrics: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> dict[str, Any]:
    """Summarises repeated runs: OA, AA, kappa and each class's accuracy.

    Args:
        run_metrics: one :func:`~hsi.evaluation.metrics.classification_summary` dict per run.
        class_names: the K class names, in class order; keys of ``per_class`` in the result.

    Returns:
        ``{"n_runs": R, "overall_accuracy": s, "average_accuracy": s, "kappa": s,
        "per_class": {name: s}}`` where each ``s`` is a :func:`summarize` dict over the
        runs that define the value (see :func:`run_metric_values`), so each ``s["n"]``
        counts those runs; with no such run every statistic is ``None``.

    Raises:
        DataFormatError: as :func:`run_metric_values`.
    """
    headline, per_class = run_metric_values(run_metrics, class_names)

    def summary_of(values: list[float], bounds: tuple[float, float]) -> dict[str, float | int | None]:
        return summarize(values, bounds=bounds) if values else _empty_summary()

    return {
        "n_runs": len(run_metrics),
        **{key: summary_of(values, METRIC_RANGES[key]) for key, values in headline.items()},
        "per_class": {name: summary_of(values, _ACCURACY_RANGE) for name, values in per_class.items()},
    }


def agreement_map(predictions: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel consensus of several runs' class maps and how strongly runs agree.

    Args:
        predictions: class maps of R runs, int of shape (R, H, W), values ``-1..K-1``
            (``-1`` = no prediction, counted like a class of its own).

    Returns:
        ``(consensus, agreement)``: ``consensus`` int64 of shape (H, W), the class most
        runs predicted (ties go to the lowest class index; :func:`majority_vote` tells them
        apart); ``agreement`` float64 of shape (H, W) in ``[0, 1]``, the share of runs that
        voted for it (1 = unanimous).

    Raises:
        DataFormatError: not 3-D, empty, non-integer, or values below -1.

    Examples:
        >>> c, a = agreement_map([[[0, 1]], [[0, 2]], [[1, 2]]])
        >>> c.tolist(), a.round(2).tolist()
        ([[0, 2]], [[0.67, 0.67]])
    """
    consensus, agreement, _ = majority_vote(predictions)
    return consensus, agreement


def majority_vote(predictions: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel majority of several runs' class maps, how strongly runs agree, and where no class wins.

    Args:
        predictions: class maps of R runs, int of shape (R, H, W), values ``-1..K-1``
            (``-1`` = no prediction, counted like a class of its own).

    Returns:
        ``(consensus, agreement, tied)``: as :func:`agreement_map` (``consensus`` holds the
        lowest of the tied classes where several share the most votes), and ``tied`` bool of
        shape (H, W), True where two or more classes share the most votes: there is no majority.

    Raises:
        DataFormatError: as :func:`agreement_map`.

    Examples:
        >>> c, a, t = majority_vote([[[0, 1]], [[0, 2]]])
        >>> c.tolist(), t.tolist()
        ([[0, 1]], [[False, True]])
    """
    preds = np.asarray(predictions)
    if preds.ndim != 3:
        raise DataFormatError(
            f"predictions must be 3-D (R, H, W), one class map per run; got shape {preds.shape}. "
            "Stack the runs' maps with np.stack(maps)."
        )
    if preds.size == 0:
        raise DataFormatError(f"predictions must not be empty; got shape {preds.shape}.")
    if not np.issubdtype(preds.dtype, np.integer):
        raise DataFormatError(f"predictions must hold integer class indices; got dtype {preds.dtype}.")
    if int(preds.min()) < -1:
        raise DataFormatError(
            f"predictions must lie in -1..K-1 (-1 = no prediction); found minimum {int(preds.min())}."
        )
    n_runs, height, width = preds.shape
    n_pix = height * width
    shifted = preds.reshape(n_runs, n_pix).astype(np.int64) + 1  # -1 -> bucket 0
    n_buckets = int(shifted.max()) + 1
    # One-hot counting in a single bincount: pixel p, class c -> bin p * n_buckets + c.
    bins = shifted + (np.arange(n_pix, dtype=np.int64) * n_buckets)[None, :]
    counts = np.bincount(bins.ravel(), minlength=n_pix * n_buckets).reshape(n_pix, n_buckets)
    winner = counts.argmax(axis=1)
    top = counts[np.arange(n_pix), winner]
    tied = (counts == top[:, None]).sum(axis=1) > 1
    agreement = top / float(n_runs)
    return (winner - 1).reshape(height, width), agreement.reshape(height, width), tied.reshape(height, width)


def std_ratio_interval(std_a: float, n_a: int, std_b: float, n_b: int) -> tuple[float, float] | None:
    """95% confidence interval of the ratio of two standard deviations, ``sigma_a / sigma_b``.

    Used to say whether one source of spread is really larger than another: with five
    runs each, a sample std is itself uncertain by tens of percent. The interval comes
    from the F distribution of the ratio of two sample variances (normal runs assumed):
    ``[r / sqrt(F(0.975; n_a-1, n_b-1)), r / sqrt(F(0.025; n_a-1, n_b-1))]`` with
    ``r = std_a / std_b``.

    Args:
        std_a: sample std (ddof=1) of ``n_a`` runs; std_b: the same of ``n_b`` runs.
        n_a: runs behind ``std_a``; n_b: runs behind ``std_b``.

    Returns:
        ``(low, high)``, or None when undefined (fewer than 2 runs on a side, or ``std_b == 0``).

    Examples:
        >>> low, high = std_ratio_interval(0.02, 5, 0.01, 5)
        >>> round(low, 2), round(high, 2)
        (0.65, 6.2)
    """
    if n_a < 2 or n_b < 2 or not std_b > 0 or not std_a >= 0:
        return None
    ratio = float(std_a) / float(std_b)
    upper_f = float(stats.f.ppf(0.975, n_a - 1, n_b - 1))
    lower_f = float(stats.f.ppf(0.025, n_a - 1, n_b - 1))
    return ratio / math.sqrt(upper_f), ratio / math.sqrt(lower_f)
