"""The report's sentences on evaluation honesty: the leakage audit and the control run.

They turn the dicts of :mod:`hsi.evaluation.leakage` (fractions) into short Markdown
paragraphs for :func:`~hsi.reporting.tables.metrics_markdown`'s ``notes``, warnings first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hsi.reporting.tables import format_kappa, format_percent

__all__ = ["control_notes", "control_warning", "leakage_notes", "leakage_warning", "run_warnings"]

_CONTROL_WHAT = {
    "noise": "a cube of random noise (per-band normal with the real mean and spread)",
    "shuffle": "the real spectra shuffled among the pixels",
}


def _pct(value: float | None) -> str:
    text = format_percent(value, digits=1)
    return text if text == "n/a" else f"{text}%"


def leakage_notes(leakage: Mapping[str, Any]) -> list[str]:
    """The leakage sentence, preceded by a warning when the audit is flagged.

    Args:
        leakage: a :func:`~hsi.evaluation.leakage.leakage_audit` dict.

    Returns:
        One or two Markdown paragraphs.
    """
    p = leakage["patch_size"]
    if p == 1:
        return [
            "Leakage audit: this model reads only the centre pixel's own spectrum (receptive field 1x1), so no "
            "test pixel's input overlaps a training pixel: there is no patch overlap to report. Neighbouring "
            "pixels of one field still look alike, so a random split remains easier than a spatially disjoint "
            "one (`--split disjoint`)."
        ]
    notes = []
    if leakage["flagged"]:
        notes.append(
            f"**Warning: {_pct(leakage['test_overlap_share'])} of the test pixels have a training pixel inside "
            f"their patch** (more than {_pct(leakage['threshold'])}): this accuracy partly measures memorised "
            "neighbourhoods, not spectra. Use `--split disjoint` for a spatially independent estimate, and "
            "`--control noise` to see how much a cube without spectral information scores."
        )
    smooth = leakage.get("smooth")
    what = (f"{p}x{p} windows: the patches widened by the {smooth}x{smooth} majority vote of --smooth" if smooth
            else f"{p}x{p} patches")
    notes.append(
        f"Leakage audit ({what}): {_pct(leakage['test_overlap_share'])} of the test pixels have a "
        f"training pixel inside their patch, and on average {_pct(leakage['mean_patch_overlap'])} of a test "
        "patch lies inside some training patch."
    )
    return notes


def leakage_warning(leakage: Mapping[str, Any]) -> str | None:
    """The terminal's one-line leakage warning (plain text), or None when the audit is not flagged."""
    if not leakage.get("flagged"):
        return None
    p = leakage["patch_size"]
    return (f"{_pct(leakage['test_overlap_share'])} of test pixels overlap training patches (a training pixel lies "
            f"inside their {p}x{p} patch): the accuracy partly measures memorised neighbourhoods; use --split "
            "disjoint for a spatially independent estimate.")


def control_warning(control: Mapping[str, Any], *, split_method: str) -> str | None:
    """The terminal's one-line control warning (plain text), or None when the control is not flagged."""
    if not control.get("flagged"):
        return None
    chance = max(control["chance_majority_share"], control["chance_largest_test_class"], control["chance_uniform"])
    return (f"the {control['kind']} control scores {_pct(control['overall_accuracy'])} OA, far above chance "
            f"({_pct(chance)}): with this {split_method} split the accuracy is dominated by spatial memorisation.")


def run_warnings(metrics: Mapping[str, Any], *, split_method: str = "random") -> list[str]:
    """Every warning of a run's ``metrics.json`` dict as one plain-text line each (report.md has them too)."""
    lines = []
    if "leakage" in metrics:
        lines.append(leakage_warning(metrics["leakage"]))
    if "control" in metrics:
        lines.append(control_warning(metrics["control"], split_method=split_method))
    return [line for line in lines if line]


def control_notes(control: Mapping[str, Any], *, overall_accuracy: float | None, split_method: str) -> list[str]:
    """The control-run sentence, preceded by a warning when the control is flagged.

    Args:
        control: a :func:`~hsi.evaluation.leakage.control_summary` dict.
        overall_accuracy: the real run's OA, for comparison.
        split_method: the split's name (``random``, ``disjoint``, ...), named in the warning.

    Returns:
        One or two Markdown paragraphs.
    """
    kind = control["kind"]
    chance = max(control["chance_majority_share"], control["chance_largest_test_class"], control["chance_uniform"])
    notes = []
    if control["flagged"]:
        notes.append(
            f"**Warning: the {kind} control scores {_pct(control['overall_accuracy'])} OA, far above chance "
            f"({_pct(chance)}):** with this {split_method} split the accuracy is dominated by spatial "
            "memorisation, not by what the spectra say."
        )
    notes.append(
        f"{kind.capitalize()} control: the same protocol (same split, settings and seed) on "
        f"{_CONTROL_WHAT.get(kind, kind)} reaches OA {_pct(control['overall_accuracy'])} "
        f"(AA {_pct(control['average_accuracy'])}, kappa {format_kappa(control['kappa'])}, "
        f"0 being chance agreement), against {_pct(overall_accuracy)} on the real data; chance is "
        f"{_pct(control['chance_majority_share'])} (always the class most frequent in training; the largest "
        f"test class holds {_pct(control['chance_largest_test_class'])}) or {_pct(control['chance_uniform'])} (1/K)."
    )
    return notes
