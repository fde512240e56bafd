"""How much a split lets test patches see training pixels, and how a control run compares with chance.

With a random per-pixel split and ``p x p`` patches nearly every test patch holds training
pixels, so a network can score by remembering neighbourhoods rather than reading spectra.
:func:`leakage_audit` measures that overlap for any split; :func:`control_summary` puts the
accuracy of a control run (the same protocol on a cube without spectral information) next
to the chance levels, so memorisation shows as accuracy far above chance.

Everything works on boolean masks and label vectors (numpy only), vectorised with box
filters, so it is fast on scenes of any size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hsi._core.errors import DataFormatError
from hsi._core.validation import check_patch_size
from hsi._core.windows import window_any, window_sum

__all__ = [
    "CONTROL_MARGIN",
    "LEAKAGE_THRESHOLD",
    "chance_levels",
    "control_summary",
    "leakage_audit",
]

#: A run is flagged when more than this share of its test pixels sees a training pixel.
LEAKAGE_THRESHOLD = 0.05
#: A control run is flagged when its OA exceeds the best chance level by more than this.
CONTROL_MARGIN = 0.2


def leakage_audit(train: np.ndarray, test: np.ndarray, *, patch_size: int) -> dict[str, Any]:
    """Measures how much the test patches overlap the training patches.

    Args:
        train: bool of shape (H, W), the pixels the model is fitted on.
        test: bool of shape (H, W), the pixels the metrics are computed on.
        patch_size: odd patch side ``p`` of the run.

    Returns:
        A dict of fractions and counts:
        ``test_overlap_share``: share of test pixels whose ``p x p`` window holds at least
        one training pixel (the network has seen that pixel's label next to this one);
        ``mean_patch_overlap``: mean over test pixels of the share of their window's
        ``p * p`` positions (positions outside the scene count as not shared) that lie in
        some training pixel's window;
        ``patch_size``, ``n_test``, ``n_test_overlapping``, ``threshold``
        (:data:`LEAKAGE_THRESHOLD`) and ``flagged`` (overlap share above it).
        With no test pixel the shares are None.

    Raises:
        DataFormatError: the masks are not 2-D of the same shape.
    """
    check_patch_size(patch_size)
    train, test = np.asarray(train, dtype=bool), np.asarray(test, dtype=bool)
    if train.ndim != 2 or train.shape != test.shape:
        raise DataFormatError(
            f"train and test masks must be 2-D of one shape (H, W); got {train.shape} and {test.shape}."
        )
    n_test = int(test.sum())
    sees_train = window_any(train, patch_size)
    n_overlapping = int((sees_train & test).sum())
    if n_test:
        # Union of all training windows, then how much of each test window it covers.
        covered = window_sum(sees_train, patch_size)[test]
        overlap_share: float | None = n_overlapping / n_test
        mean_overlap: float | None = float(covered.mean()) / patch_size**2
    else:
        overlap_share = mean_overlap = None
    return {
        "patch_size": int(patch_size),
        "n_test": n_test,
        "n_test_overlapping": n_overlapping,
        "test_overlap_share": overlap_share,
        "mean_patch_overlap": mean_overlap,
        "threshold": LEAKAGE_THRESHOLD,
        "flagged": bool(overlap_share is not None and overlap_share > LEAKAGE_THRESHOLD),
    }


def chance_levels(y_true: np.ndarray, y_train: np.ndarray, *, n_classes: int) -> dict[str, float]:
    """What a classifier without information scores on these test labels.

    Args:
        y_true: int of shape (N,), the test pixels' classes 0..K-1.
        y_train: int of shape (M,), the training pixels' classes: all an uninformed
            classifier knows.
        n_classes: K.

    Returns:
        ``chance_majority_share``: the test share of the class most frequent in training,
        i.e. the OA of always answering it (scikit-learn's ``DummyClassifier("most_frequent")``;
        with a random split it is the largest test class's share, with a disjoint one the
        shares of the two sides differ); ``chance_largest_test_class``: the largest test
        class's share (what a constant answer could reach at best, knowing the test set);
        ``chance_uniform``: ``1 / K``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    majority = int(np.argmax(np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_classes)))
    shares = np.bincount(y_true, minlength=n_classes) / max(len(y_true), 1)
    return {"chance_majority_share": float(np.mean(y_true == majority)) if len(y_true) else 0.0,
            "chance_largest_test_class": float(shares.max()), "chance_uniform": 1.0 / n_classes}


def control_summary(kind: str, summary: Mapping[str, Any], y_true: np.ndarray, y_train: np.ndarray) -> dict[str, Any]:
    """Sets a control run's scores against chance.

    Args:
        kind: the control's name, e.g. ``"noise"`` or ``"shuffle"``.
        summary: the control run's :func:`~hsi.evaluation.metrics.classification_summary`.
        y_true: int of shape (N,), the test pixels' classes 0..K-1.
        y_train: int of shape (M,), the training pixels' classes.

    Returns:
        ``kind``, ``overall_accuracy``, ``average_accuracy``, ``kappa``, the two
        :func:`chance_levels`, ``margin`` (:data:`CONTROL_MARGIN`) and ``flagged``: OA above
        ``max(chance_majority_share, chance_uniform) + margin``, i.e. the protocol scores
        well without spectral information (spatial memorisation).
    """
    chance = chance_levels(y_true, y_train, n_classes=len(summary["per_class"]))
    oa = summary["overall_accuracy"]
    return {
        "kind": kind,
        "overall_accuracy": oa,
        "average_accuracy": summary["average_accuracy"],
        "kappa": summary["kappa"],
        **chance,
        "margin": CONTROL_MARGIN,
        "flagged": bool(oa is not None and oa > max(chance.values()) + CONTROL_MARGIN),
    }
