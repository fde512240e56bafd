"""Evaluation: classification metrics (numpy only) and stability over repeated runs.

Everything here works on plain arrays and dicts of fractions (``0..1``); nothing imports
``hsi.data`` or ``hsi.models``.
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
