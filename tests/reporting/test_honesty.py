"""The report's leakage and control sentences, and where metrics_markdown puts them."""

from __future__ import annotations

import numpy as np

from hsi.evaluation.metrics import classification_summary
from hsi.reporting.honesty import control_notes, leakage_notes
from hsi.reporting.tables import metrics_markdown

LEAKY = {"patch_size": 25, "test_overlap_share": 0.991, "mean_patch_overlap": 0.874, "threshold": 0.05,
         "flagged": True}
CONTROL = {"kind": "noise", "overall_accuracy": 0.971, "average_accuracy": 0.95, "kappa": 0.96,
           "chance_majority_share": 0.24, "chance_largest_test_class": 0.25,
           "chance_uniform": 0.0625, "margin": 0.2, "flagged": True}


def test_leakage_notes_warn_first_and_state_both_figures() -> None:
    warning, sentence = leakage_notes(LEAKY)
    assert warning.startswith("**Warning: 99.1% of the test pixels")
    assert "25x25" in sentence and "99.1%" in sentence and "87.4%" in sentence
    assert len(leakage_notes({**LEAKY, "test_overlap_share": 0.0, "flagged": False})) == 1


def test_control_notes_flag_spatial_memorisation() -> None:
    warning, sentence = control_notes(CONTROL, overall_accuracy=0.99, split_method="random")
    assert "97.1%" in warning and "random split" in warning and "memorisation" in warning
    assert "Noise control" in sentence and "kappa 0.960" in sentence and "99.0%" in sentence and "24.0%" in sentence and "6.2%" in sentence
    assert len(control_notes({**CONTROL, "flagged": False}, overall_accuracy=0.9, split_method="disjoint")) == 1


def test_notes_sit_under_the_headline_metrics() -> None:
    y = np.array([0, 1, 1, 0])
    summary = classification_summary(y, y, class_names=["a", "b"])
    text = metrics_markdown(summary, notes=["First note.", "", "Second note."])
    head, rest = text.split("## Per-class results")
    assert "First note.\n" in head and "Second note.\n" in head and head.index("Overall accuracy") < head.index("First")
    assert "note" not in rest
