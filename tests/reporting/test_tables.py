"""Markdown/CSV tables: percentages with two decimals, only here."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from hsi._core.errors import ConfigError, DataFormatError
from hsi.evaluation import aggregate_runs, classification_summary
from hsi.reporting import tables as T


def _synthetic_summary() -> dict:
    # Synthetic: 3 classes, class "gamma" absent from the test set.
    y_true = np.array([0] * 40 + [1] * 40)
    y_pred = y_true.copy()
    y_pred[:1] = 1  # 39/40 = 97.50 for alpha
    y_pred[40:42] = 0  # 38/40 = 95.00 for beta
    return classification_summary(y_true, y_pred, class_names=["alpha", "beta", "gamma"])


def test_format_percent() -> None:
    assert T.format_percent(0.97531) == "97.53"
    assert T.format_percent(1.0) == "100.00"
    assert T.format_percent(None) == "n/a"
    assert T.format_percent(float("nan")) == "n/a"


def test_markdown_and_csv_helpers() -> None:
    md = T.markdown_table(["a", "b"], [[1, "x|y"], [0.5, None]], align=["l", "r"])
    assert md.splitlines() == ["| a | b |", "| :--- | ---: |", r"| 1 | x\|y |", "| 0.5 |  |"]
    with pytest.raises(ConfigError, match="row 0"):
        T.markdown_table(["a", "b"], [[1]])
    text = T.csv_text(["name", "oa"], [["a,b", 0.5], ["c", None]])
    assert list(csv.reader(io.StringIO(text))) == [["name", "oa"], ["a,b", "0.5"], ["c", ""]]


def test_metrics_markdown() -> None:
    s = _synthetic_summary()
    md = T.metrics_markdown(
        s,
        class_ids=[1, 2, 5],
        title="Synthetic report",
        extra={"train pixels": 1234, "seconds": 12.5, "model": "hybridsn"},
    )
    assert md.startswith("# Synthetic report")
    assert "| Overall accuracy, OA (%) | 96.25 |" in md  # 77/80
    assert "| Average accuracy, AA (%) | 96.25 |" in md  # (97.5 + 95) / 2, gamma excluded
    assert f"| Cohen's kappa | {s['kappa']:.3f} |" in md  # a coefficient, not a percentage
    assert "×100" not in md
    assert "| 1 | alpha | 40 | 97.50 | 95.12 | 97.50 | 96.30 |" in md
    assert "| 5 | gamma | 0 | n/a | n/a | n/a | n/a |" in md
    assert "| True \\ Pred | 1 | 2 | 5 |" in md
    assert "| 2 beta | 2 | 38 | 0 |" in md
    assert "| train pixels | 1,234 |" in md and "| seconds | 12.5 |" in md
    assert "0.9625" not in md  # no fractions in a rendered table


def test_metrics_markdown_errors() -> None:
    s = _synthetic_summary()
    with pytest.raises(ConfigError, match="class_ids"):
        T.metrics_markdown(s, class_ids=[1, 2])
    with pytest.raises(DataFormatError, match="missing"):
        T.metrics_markdown({"overall_accuracy": 0.5})


def test_stability_markdown() -> None:
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(3):
        y = rng.integers(0, 2, size=50)
        p = np.where(rng.random(50) < 0.9, y, 1 - y)
        runs.append(classification_summary(y, p, class_names=["alpha", "beta"]))
    agg = aggregate_runs(runs, ["alpha", "beta"])
    md = T.stability_markdown(agg, seeds=[0, 1, 2], paragraph="Synthetic runs.", class_ids=[1, 2])
    oa = agg["overall_accuracy"]
    assert "Synthetic runs." in md and "seeds 0, 1, 2" in md
    row = (
        f"| Overall accuracy, OA (%) | {100 * oa['mean']:.2f} ± {100 * oa['std']:.2f} | "
        f"{100 * oa['min']:.2f} | {100 * oa['max']:.2f} | {100 * oa['median']:.2f} | "
        f"[{100 * oa['ci95_low']:.2f}, {100 * oa['ci95_high']:.2f}] | 3 |"
    )
    assert row in md
    kappa = agg["kappa"]
    assert f"| Cohen's kappa | {kappa['mean']:.3f} ± {kappa['std']:.3f} | {kappa['min']:.3f} |" in md
    assert "| 1 | alpha |" in md
    with pytest.raises(ConfigError, match="one seed per run"):
        T.stability_markdown(agg, seeds=[0])


def test_comparison_caption_names_the_hold_out_the_recipe_draws() -> None:
    """--recipe robust on a random split holds out validation pixels without --val-ratio: the caption says so."""
    from hsi.config import RunConfig
    from hsi.reporting.compare_report import compare_settings

    def settings(recipe: str) -> dict:
        config = RunConfig(dataset="salinas_a", recipe=recipe, split="random")
        return compare_settings(config, ["hybridsn"], [0], "salinas_a", [{"device": "cpu"}])

    assert "validation" not in settings("paper")["split"]
    robust = settings("robust")
    assert "validation (--val-ratio 0.2)" in robust["split"]
    assert robust["recipe (torch models)"].startswith("robust (optimizer adamw")


def test_the_report_says_which_ensemble_networks_validation_kept() -> None:
    from hsi.reporting.run_report import ensemble_line

    def network(number: int, epochs: int, accuracy: float, kept: bool, selected: int | None = None) -> dict:
        return {"network": number, "seed": number, "epochs": epochs, "selected_epoch": selected or epochs,
                "kept": kept, "seconds": 1.0, "val_accuracy": accuracy, "val_loss": 0.1}

    screened = {"networks": [network(1, 30, 0.957, True), network(2, 6, 0.794, False), network(3, 30, 0.94, False)],
                "kept": [1], "screen_epoch": 6, "member_margin": 0.02}
    screened["networks"][1]["selected_epoch"] = None  # stopped at the screening: it selects no epoch
    assert ensemble_line(screened) == (
        "3 networks from different seeds, 1 kept; after epoch 6 only the 2 best on the validation pixels trained on "
        "to epoch 30; kept: within 2.0 points of the best there (network 1 95.7% kept; network 2 79.4% stopped "
        "after epoch 6; network 3 94.0% dropped)")
    # With patience the networks that went on may stop at different epochs, each after its own best.
    early = {**screened, "patience": 5,
             "networks": [network(1, 17, 0.957, True, 12), screened["networks"][1], network(3, 25, 0.94, False, 20)]}
    assert ensemble_line(early) == (
        "3 networks from different seeds, 1 kept; after epoch 6 only the 2 best on the validation pixels trained on, "
        "each until 5 epochs passed without a better validation score (the longest: 25 epochs); kept: within 2.0 "
        "points of the best there (network 1 95.7% kept (trained 17 epochs); network 2 79.4% stopped after epoch 6; "
        "network 3 94.0% dropped (trained 25 epochs))")
    plain = {"networks": [{k: v for k, v in network(n, 20, 0.0, True).items() if not k.startswith("val")}
                          for n in (1, 2)], "kept": [1, 2]}
    assert ensemble_line(plain) == "2 networks from different seeds, 2 kept (network 1 kept; network 2 kept)"
