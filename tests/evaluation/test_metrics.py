"""Metrics against scikit-learn on synthetic random labels, plus the HSI-specific edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from hsi._core.errors import ConfigError, DataFormatError
from hsi.evaluation import metrics as M

N_CLASSES = 7


def _synthetic_labels(seed: int, n: int = 500, k: int = N_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic labels: mostly right predictions with random mistakes."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, size=n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, k, size=n))
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn(seed: int) -> None:
    y_true, y_pred = _synthetic_labels(seed)
    labels = list(range(N_CLASSES))
    np.testing.assert_array_equal(
        M.confusion_matrix(y_true, y_pred, n_classes=N_CLASSES), skm.confusion_matrix(y_true, y_pred, labels=labels)
    )
    assert M.overall_accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert M.average_accuracy(y_true, y_pred) == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert M.cohen_kappa(y_true, y_pred) == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    p, r, f = M.precision_recall_f1(y_true, y_pred, n_classes=N_CLASSES)
    sp, sr, sf, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=np.nan)
    np.testing.assert_allclose(p, sp)
    np.testing.assert_allclose(r, sr)
    np.testing.assert_allclose(f, sf)
    np.testing.assert_allclose(M.per_class_accuracy(y_true, y_pred, n_classes=N_CLASSES), sr)


def test_summary_matches_functions_and_is_json_ready() -> None:
    y_true, y_pred = _synthetic_labels(3)
    names = [f"synthetic class {i}" for i in range(N_CLASSES)]
    s = M.classification_summary(y_true, y_pred, class_names=names)
    assert list(s) == ["overall_accuracy", "average_accuracy", "kappa", "per_class", "confusion_matrix", "n_test"]
    assert s["overall_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert s["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    assert list(s["per_class"]) == names
    assert s["n_test"] == len(y_true)
    assert sum(c["support"] for c in s["per_class"].values()) == len(y_true)
    assert all(0.0 <= c["accuracy"] <= 1.0 for c in s["per_class"].values())
    assert json.loads(json.dumps(s, allow_nan=False)) == s


def test_class_absent_from_test_set() -> None:
    # Synthetic: class 2 has no test pixels; class 3 has none and is never predicted.
    y_true = np.array([0, 0, 1, 1, 1, 0])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    cm = M.confusion_matrix(y_true, y_pred, n_classes=4)
    assert cm.shape == (4, 4) and cm[2].sum() == 0 and cm[3].sum() == 0
    acc = M.per_class_accuracy(y_true, y_pred, n_classes=4)
    assert acc[:2] == pytest.approx([2 / 3, 2 / 3]) and np.isnan(acc[2]) and np.isnan(acc[3])
    # AA excludes the absent classes (not counted as 0).
    assert M.average_accuracy(y_true, y_pred, n_classes=4) == pytest.approx(2 / 3)
    s = M.classification_summary(y_true, y_pred, class_names=["a", "b", "c", "d"])
    assert s["average_accuracy"] == pytest.approx(2 / 3)
    assert s["per_class"]["c"] == {"accuracy": None, "precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    assert s["per_class"]["d"] == {"accuracy": None, "precision": None, "recall": None, "f1": None, "support": 0}
    assert "NaN" not in json.dumps(s)


def test_kappa_undefined_is_nan_then_none() -> None:
    assert np.isnan(M.cohen_kappa([1, 1, 1], [1, 1, 1]))
    s = M.classification_summary([1, 1], [1, 1], class_names=["a", "b"])
    assert s["kappa"] is None and s["overall_accuracy"] == 1.0


def test_float_labels_with_integer_values_are_accepted() -> None:
    assert M.overall_accuracy(np.array([0.0, 1.0]), np.array([0, 1])) == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1, 2], [0, 1], "same length"),
        ([[0, 1]], [[0, 1]], "must be 1-D"),
        ([], [], "at least 1 sample"),
        ([0, -1], [0, 1], "Unlabelled pixels"),
        ([0, 3], [0, 1], r"0\.\.2"),
        ([0, 1], [0.5, 1.0], "integer class indices"),
        ([True, False], [0, 1], "integer class indices"),
    ],
)
def test_invalid_targets(y_true: list, y_pred: list, match: str) -> None:
    with pytest.raises(DataFormatError, match=match):
        M.confusion_matrix(y_true, y_pred, n_classes=3)


def test_invalid_names_and_n_classes() -> None:
    with pytest.raises(ConfigError, match="duplicates"):
        M.classification_summary([0, 1], [0, 1], class_names=["a", "a"])
    with pytest.raises(ConfigError, match="n_classes"):
        M.confusion_matrix([0], [0], n_classes=0)
