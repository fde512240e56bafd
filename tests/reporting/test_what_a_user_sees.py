"""Issue 13: what a user sees: figures, intervals, ties, the leakage wording, the terminal summary, report.html."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hsi._core.errors import DataFormatError
from hsi.data.scene import load_custom_scene
from hsi.evaluation.leakage import leakage_audit
from hsi.evaluation.stability import aggregate_runs, majority_vote, summarize
from hsi.reporting import figures as G
from hsi.reporting.honesty import leakage_notes, run_warnings
from hsi.reporting.html_report import markdown_to_html
from hsi.reporting.stability_report import render_markdown, stability_report
from hsi.reporting.terminal import run_summary


def _legend(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_confidence_intervals_stay_inside_the_metric_range() -> None:
    s = summarize([0.05, 0.95], bounds=(0.0, 1.0))
    assert s["ci95_low"] == 0.0 and s["ci95_high"] == 1.0
    runs = [{"overall_accuracy": a, "average_accuracy": a, "kappa": k, "per_class": {"a": {"accuracy": a}}}
            for a, k in ((0.1, -0.9), (0.99, 0.98))]
    agg = aggregate_runs(runs, ["a"])
    assert agg["overall_accuracy"]["ci95_low"] >= 0 and agg["overall_accuracy"]["ci95_high"] <= 1
    assert agg["kappa"]["ci95_low"] >= -1 and agg["kappa"]["ci95_high"] <= 1
    assert agg["per_class"]["a"]["ci95_high"] <= 1


def test_ties_are_no_majority_counted_and_not_scored() -> None:
    preds = np.array([[[0, 1, 2]], [[0, 2, 2]]])  # pixel 1 is a 1-vs-2 tie
    consensus, agreement, tied = majority_vote(preds)
    assert tied.tolist() == [[False, True, False]]
    labels = np.array([[0, 1, 2]])
    tests = np.ones((2, 1, 3), dtype=bool)
    report, _, _, no_majority = stability_report(
        dataset="d", model="m", vary="both", runs=[{"dir": f"r{i}", "seed": i, "init_seed": i, "split_seed": i}
                                                   for i in range(2)],
        run_metrics=[{"overall_accuracy": 1.0, "average_accuracy": 1.0, "kappa": 1.0,
                      "per_class": {n: {"accuracy": 1.0} for n in "abc"}}] * 2,
        predictions=preds, tests=tests, labels=labels, class_names=list("abc"), class_ids=[1, 2, 3], source="s",
        config={})
    assert no_majority.tolist() == tied.tolist()
    assert report["consensus"]["n_ties"] == 1 and report["consensus"]["n_pixels"] == 2
    assert report["consensus"]["overall_accuracy"] == 1.0  # the tie is left out, not given to class 1
    text = render_markdown(report)
    assert "no majority" in text and "left out of the consensus scores" in text
    fig = G.classification_map(consensus, class_names=list("abc"), no_majority=tied)
    assert "no majority (tie): 1" in _legend(fig)


def test_centre_pixel_models_have_no_patch_overlap_to_report() -> None:
    train = np.zeros((10, 10), dtype=bool)
    train[::2, ::2] = True
    audit = leakage_audit(train, ~train, patch_size=1)
    assert audit["test_overlap_share"] == 0 and not audit["flagged"]
    (note,) = leakage_notes(audit)
    assert "centre pixel" in note and "no patch overlap to report" in note
    assert run_warnings({"leakage": audit}) == []
    leaky = leakage_audit(train, ~train, patch_size=5)
    (warning,) = run_warnings({"leakage": leaky})
    assert "of test pixels overlap training patches" in warning


def test_run_summary_gives_percentages_warnings_and_the_report(tmp_path: Path) -> None:
    train = np.zeros((10, 10), dtype=bool)
    train[::2, ::2] = True
    metrics = {"overall_accuracy": 0.9312, "average_accuracy": 0.5, "kappa": 0.8, "n_test": 75,
               "leakage": leakage_audit(train, ~train, patch_size=5)}
    lines, warnings = run_summary(tmp_path, metrics, split_method="random")
    assert lines[0].startswith("OA 93.12%  AA 50.00%  kappa 0.800")
    assert str(tmp_path / "report.html") in lines[-1]
    assert len(warnings) == 1 and "overlap training patches" in warnings[0]


def test_a_band_first_cube_is_named_as_such(tmp_path: Path) -> None:
    cube = np.random.default_rng(0).random((12, 8, 9)).astype(np.float32)  # (B, H, W)
    gt = np.ones((8, 9), dtype=np.int64)
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "gt.npy", gt)
    with pytest.raises(DataFormatError, match=r"looks band-first \(B, H, W\).*transpose it to \(H, W, B\)"):
        load_custom_scene(tmp_path / "cube.npy", tmp_path / "gt.npy")


def test_figures_name_things_as_a_user_reads_them() -> None:
    test = np.zeros((6, 5), dtype=bool)
    test[:3] = True
    train = np.zeros_like(test)
    train[3:5] = True
    labelled = test | train
    fig = G.error_map(test, np.ones_like(test), train_mask=train, labelled_mask=labelled)
    legend = _legend(fig)
    assert "training: 10" in legend and "unlabelled: 5" in legend
    title = G.false_colour(np.random.default_rng(0).random((4, 4, 6)).astype(np.float32), (5, 3, 0)).axes[0]
    assert "band 6" in title.get_title() and "band 1" in title.get_title()
    assert G.band_names([0], [400.0]) == ["band 1 (400 nm)"]
    curve = G.training_curve([{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5} for e in (1, 2, 3)])
    ticks = curve.axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)
    agreement = G.agreement_figure(np.array([[1.0, 2 / 3], [1 / 3, 1.0]]), n_runs=3)
    assert _legend(agreement) == ["all 3 runs agree: 2 pixels", "2 of 3 runs agree: 1 pixel",
                                  "1 of 3 runs agrees: 1 pixel"]
    bars = G.bar_chart([{"name": "m", "overall_accuracy": 0.9, "average_accuracy": 0.8, "kappa": 0.7}])
    labels = [ax.get_ylabel() for ax in bars.axes]
    assert "fraction" not in labels[1] and "Kappa" in labels[1] and "Kappa" not in labels[0]
    assert "%" in labels[0] and bars.axes[1].get_ylim()[1] == bars.axes[0].get_ylim()[1] / 100


def test_markdown_becomes_html_tables_and_emphasis() -> None:
    html = markdown_to_html("# T\n\n**Warning: x** `--split disjoint` <b>\n\n| A | B |\n|:--|--:|\n| 1 | 2 |\n")
    assert "<strong>Warning: x</strong>" in html and "<code>--split disjoint</code>" in html
    assert "&lt;b&gt;" in html and '<td class="r">2</td>' in html
