"""Evaluation: classification metrics, full-scene prediction and stability over repeated runs.

Metrics (numpy, scikit-learn's ``confusion_matrix``), stability (numpy, ``scipy.stats``) and
the leakage audit work on plain arrays and dicts of fractions (``0..1``) and import no
``hsi`` layer but ``_core``; :mod:`hsi.evaluation.predict` classifies a scene with torch,
:class:`hsi.data.patches.PatchSource` and :mod:`hsi.training`.
"""

from __future__ import annotations

from hsi.evaluation.metrics import (
    average_accuracy,
    classification_summary,
    cohen_kappa,
    confusion_matrix,
    overall_accuracy,
    per_class_accuracy,
    precision_recall_f1,
)
from hsi.evaluation.stability import HEADLINE_METRICS, aggregate_runs, agreement_map, summarize

__all__ = [
    "HEADLINE_METRICS",
    "aggregate_runs",
    "agreement_map",
    "average_accuracy",
    "classification_summary",
    "cohen_kappa",
    "confusion_matrix",
    "overall_accuracy",
    "per_class_accuracy",
    "precision_recall_f1",
    "summarize",
]
