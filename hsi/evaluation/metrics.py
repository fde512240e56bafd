"""Classification metrics for per-pixel HSI labels: scikit-learn counts, numpy derives.

Conventions:

* Every metric is a **fraction** in ``[0, 1]`` (kappa in ``[-1, 1]``); percentages are
  produced only by :mod:`hsi.reporting.tables`.
* Names ending in ``_accuracy`` (and ``cohen_kappa``) are **higher is better**.
* Labels are contiguous class indices ``0..K-1``. Unlabelled pixels (``-1``) must be
  removed before calling these functions; ``y_true`` never holds ``-1`` here.
* ``n_classes`` fixes the class set, so a class missing from a (small) test split still
  has its row in the confusion matrix and gets ``NaN`` for the metrics it leaves undefined
  (sklearn's ``labels=`` argument plays the same role).

Undefined values are ``NaN`` in arrays and ``None`` in :func:`classification_summary`
(JSON has no NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import confusion_matrix as _sklearn_confusion_matrix

from hsi._core.errors import ConfigError, DataFormatError

__all__ = [
    "average_accuracy",
    "classification_summary",
    "cohen_kappa",
    "confusion_matrix",
    "overall_accuracy",
    "per_class_accuracy",
    "precision_recall_f1",
]


# --------------------------------------------------------------------------- validation
def _check_n_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ConfigError(
            f"n_classes must be an integer >= 1; got {n_classes!r}. "
            "Pass the number of classes of the scene (len(class_names))."
        )
    return int(n_classes)


def _as_label_vector(values: ArrayLike, *, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataFormatError(
            f"{name} must be 1-D of shape (n_samples,); got shape {arr.shape}. "
            "Select the test pixels first, e.g. class_map[test_mask]."
        )
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise DataFormatError(f"{name} must hold integer class indices; got dtype {arr.dtype}.")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise DataFormatError(
                f"{name} must hold integer class indices; got non-integer values of dtype {arr.dtype}. "
                "Pass argmax class indices, not scores or probabilities."
            )
    return arr.astype(np.int64, copy=False)


def _check_targets(
    y_true: ArrayLike, y_pred: ArrayLike, *, n_classes: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validates a pair of label vectors (the one check shared by every metric).

    Args:
        y_true: true class indices, shape (n_samples,), values in ``0..K-1``.
        y_pred: predicted class indices, shape (n_samples,), values in ``0..K-1``.
        n_classes: K; ``None`` infers ``max(y_true, y_pred) + 1``.

    Returns:
        ``(y_true, y_pred, n_classes)`` with both vectors as int64.

    Raises:
        DataFormatError: not 1-D, lengths differ, empty, non-integer, or out of range.
        ConfigError: ``n_classes`` is not an integer >= 1.
    """
    t = _as_label_vector(y_true, name="y_true")
    p = _as_label_vector(y_pred, name="y_pred")
    if t.shape[0] != p.shape[0]:
        raise DataFormatError(
            f"y_true and y_pred must have the same length; got {t.shape[0]} and {p.shape[0]}. "
            "Index both with the same test mask."
        )
    if t.shape[0] == 0:
        raise DataFormatError(
            "y_true must hold at least 1 sample; got 0. The test split is empty: "
            "lower the training ratio or check the split."
        )
    k = int(max(t.max(), p.max())) + 1 if n_classes is None else _check_n_classes(n_classes)
    for arr, name in ((t, "y_true"), (p, "y_pred")):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= k:
            hint = (
                " Unlabelled pixels (-1) must be excluded before scoring."
                if lo < 0
                else " Check that n_classes / class_names match the model's output."
            )
            raise DataFormatError(
                f"{name} values must lie in 0..{k - 1} (n_classes={k}); found values in {lo}..{hi}.{hint}"
            )
    return t, p, k


# --------------------------------------------------------------------------- from a matrix
def _count(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """The (K, K) int64 confusion matrix of checked label vectors (rows = true)."""
    return _sklearn_confusion_matrix(t, p, labels=np.arange(k)).astype(np.int64, copy=False)


def _oa(cm: np.ndarray) -> float:
    return float(np.trace(cm) / cm.sum())


def _recall(cm: np.ndarray) -> np.ndarray:
    support = cm.sum(axis=1)
    return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def _precision(cm: np.ndarray) -> np.ndarray:
    predicted = cm.sum(axis=0)
    return np.where(predicted > 0, np.diag(cm) / np.maximum(predicted, 1), np.nan)


def _f1(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # 2TP + FP + FN
    return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), np.nan)


def _aa(cm: np.ndarray) -> float:
    recall = _recall(cm)
    return float(np.nanmean(recall))  # at least one class is present: n_samples >= 1


def _kappa(cm: np.ndarray) -> float:
    n = cm.sum(dtype=np.float64)
    po = np.trace(cm) / n
    pe = float(np.dot(cm.sum(axis=0), cm.sum(axis=1)) / (n * n))
    if pe >= 1.0:  # both vectors hold one and the same single class: kappa undefined
        return float("nan")
    return float((po - pe) / (1.0 - pe))


# --------------------------------------------------------------------------- public metrics
def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, *, n_classes: int) -> np.ndarray:
    """Counts (true class, predicted class) pairs.

    Args:
        y_true: true class indices, shape (n_samples,), values in ``0..K-1``.
        y_pred: predicted class indices, shape (n_samples,), values in ``0..K-1``.
        n_classes: K, the number of classes; fixes the matrix size, so a class absent
            from ``y_true`` still has its (all-zero) row.

    Returns:
        int64 array of shape (K, K); ``cm[i, j]`` counts samples of true class ``i``
        predicted as ``j`` (rows = true, columns = predicted).

    Raises:
        DataFormatError: the label vectors are invalid (see :func:`_check_targets`).
        ConfigError: ``n_classes`` is not an integer >= 1.

    Examples:
        >>> confusion_matrix([0, 1, 1], [0, 1, 0], n_classes=3).tolist()
        [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    """
    t, p, k = _check_targets(y_true, y_pred, n_classes=n_classes)
    return _count(t, p, k)


def overall_accuracy(y_true: ArrayLike, y_pred: ArrayLike, *, n_classes: int | None = None) -> float:
    """Overall accuracy (OA): the fraction of samples predicted correctly.

    Args:
        y_true: true class indices, shape (n_samples,).
        y_pred: predicted class indices, shape (n_samples,).
        n_classes: K; default=None infers it from the labels (only used for validation).

    Returns:
        OA in ``[0, 1]``; higher is better.

    Raises:
        DataFormatError: the label vectors are invalid.

    Examples:
        >>> overall_accuracy([0, 1, 1, 2], [0, 1, 0, 2])
        0.75
    """
    t, p, _ = _check_targets(y_true, y_pred, n_classes=n_classes)
    return float(np.mean(t == p))


def per_class_accuracy(y_true: ArrayLike, y_pred: ArrayLike, *, n_classes: int) -> np.ndarray:
    """Per-class accuracy (producer's accuracy, i.e. recall of each class).

    Args:
        y_true: true class indices, shape (n_samples,).
        y_pred: predicted class indices, shape (n_samples,).
        n_classes: K.

    Returns:
        float64 array of shape (K,); ``NaN`` for classes absent from ``y_true``.

    Raises:
        DataFormatError: the label vectors are invalid.
        ConfigError: ``n_classes`` is not an integer >= 1.
    """
    return _recall(confusion_matrix(y_true, y_pred, n_classes=n_classes))


def average_accuracy(y_true: ArrayLike, y_pred: ArrayLike, *, n_classes: int | None = None) -> float:
    """Average accuracy (AA): the mean per-class accuracy over classes present in ``y_true``.

    Classes absent from the test set are left out of the mean (not counted as 0), which
    equals sklearn's ``balanced_accuracy_score``.

    Args:
        y_true: true class indices, shape (n_samples,).
        y_pred: predicted class indices, shape (n_samples,).
        n_classes: K; default=None infers it from the labels.

    Returns:
        AA in ``[0, 1]``; higher is better.

    Raises:
        DataFormatError: the label vectors are invalid.

    Examples:
        >>> average_accuracy([0, 0, 0, 1], [0, 0, 0, 0])
        0.5
    """
    t, p, k = _check_targets(y_true, y_pred, n_classes=n_classes)
    return _aa(_count(t, p, k))


def cohen_kappa(y_true: ArrayLike, y_pred: ArrayLike, *, n_classes: int | None = None) -> float:
    """Cohen's kappa: agreement corrected for chance, ``(p_o - p_e) / (1 - p_e)``.

    Args:
        y_true: true class indices, shape (n_samples,).
        y_pred: predicted class indices, shape (n_samples,).
        n_classes: K; default=None infers it from the labels.

    Returns:
        kappa in ``[-1, 1]``, higher is better; ``NaN`` when undefined (both vectors hold
        one and the same single class, so chance agreement is 1).

    Raises:
        DataFormatError: the label vectors are invalid.
    """
    t, p, k = _check_targets(y_true, y_pred, n_classes=n_classes)
    return _kappa(_count(t, p, k))


def precision_recall_f1(
    y_true: ArrayLike, y_pred: ArrayLike, *, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1.

    Args:
        y_true: true class indices, shape (n_samples,).
        y_pred: predicted class indices, shape (n_samples,).
        n_classes: K.

    Returns:
        ``(precision, recall, f1)``, each float64 of shape (K,). Precision is ``NaN`` for
        a class never predicted, recall for a class absent from ``y_true``, and F1
        (``2TP / (2TP + FP + FN)``) for a class that is neither. This matches sklearn's
        ``precision_recall_fscore_support(..., zero_division=np.nan)`` where defined.

    Raises:
        DataFormatError: the label vectors are invalid.
        ConfigError: ``n_classes`` is not an integer >= 1.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes=n_classes)
    return _precision(cm), _recall(cm), _f1(cm)


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def classification_summary(y_true: ArrayLike, y_pred: ArrayLike, *, class_names: Sequence[str]) -> dict[str, Any]:
    """Every metric of one evaluation, as a JSON-ready dict of fractions.

    Args:
        y_true: true class indices, shape (n_samples,), values in ``0..K-1``.
        y_pred: predicted class indices, shape (n_samples,), values in ``0..K-1``.
        class_names: the K display names, in class-index order; they key ``per_class``.

    Returns:
        A dict with ``overall_accuracy``, ``average_accuracy``, ``kappa`` (floats or
        ``None``), ``per_class`` = ``{name: {"accuracy", "precision", "recall", "f1",
        "support"}}`` in class order (``accuracy`` equals ``recall``; undefined values are
        ``None``), ``confusion_matrix`` (K lists of K ints, rows = true) and ``n_test``.
        Only built-in types, so ``json.dumps`` accepts it as is.

    Raises:
        DataFormatError: the label vectors are invalid.
        ConfigError: ``class_names`` is empty or holds duplicates.
    """
    names = [str(n) for n in class_names]
    if not names:
        raise ConfigError("class_names must hold at least one name; got an empty sequence.")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(
            f"class_names must be unique (they key the per-class results); got duplicates {dupes}. "
            "Rename the classes, e.g. by appending their ids."
        )
    cm = confusion_matrix(y_true, y_pred, n_classes=len(names))
    precision, recall, f1 = _precision(cm), _recall(cm), _f1(cm)
    support = cm.sum(axis=1)
    per_class = {
        name: {
            "accuracy": _json_float(recall[i]),
            "precision": _json_float(precision[i]),
            "recall": _json_float(recall[i]),
            "f1": _json_float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }
    return {
        "overall_accuracy": _json_float(_oa(cm)),
        "average_accuracy": _json_float(_aa(cm)),
        "kappa": _json_float(_kappa(cm)),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "n_test": int(cm.sum()),
    }
