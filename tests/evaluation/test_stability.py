"""summarize / aggregate_runs / agreement_map on small synthetic inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from hsi._core.errors import DataFormatError
from hsi.evaluation import aggregate_runs, agreement_map, classification_summary, summarize


def test_summarize_values_and_ci() -> None:
    values = [0.90, 0.92, 0.94, 0.96]
    s = summarize(values)
    std = float(np.std(values, ddof=1))
    half = stats.t.ppf(0.975, 3) * std / 2.0  # sqrt(4) = 2
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(0.93)
    assert s["std"] == pytest.approx(std)
    assert (s["min"], s["max"], s["median"]) == pytest.approx((0.90, 0.96, 0.93))
    assert s["ci95_low"] == pytest.approx(0.93 - half)
    assert s["ci95_high"] == pytest.approx(0.93 + half)
    # Hand check: t(0.975, 3) = 3.182446...
    assert half == pytest.approx(3.182446305 * 0.0258198890 / 2, rel=1e-6)


def test_summarize_single_run_and_errors() -> None:
    s = summarize([0.8])
    assert s["mean"] == 0.8 and s["std"] is None and s["ci95_low"] is None and s["n"] == 1
    with pytest.raises(DataFormatError, match="at least one"):
        summarize([])
    with pytest.raises(DataFormatError, match="finite"):
        summarize([0.5, math.nan])


def _synthetic_runs() -> list[dict]:
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(5):
        y_true = rng.integers(0, 3, size=60)
        y_pred = np.where(rng.random(60) < 0.8, y_true, rng.integers(0, 3, size=60))
        runs.append(classification_summary(y_true, y_pred, class_names=["a", "b", "c"]))
    # Run 0 had no test pixels of class "c": its accuracy is None.
    runs[0]["per_class"]["c"]["accuracy"] = None
    # Run 1 does not list class "b" at all.
    del runs[1]["per_class"]["b"]
    return runs


def test_aggregate_runs() -> None:
    runs = _synthetic_runs()
    agg = aggregate_runs(runs, ["a", "b", "c"])
    assert agg["n_runs"] == 5
    assert agg["overall_accuracy"]["mean"] == pytest.approx(np.mean([r["overall_accuracy"] for r in runs]))
    assert agg["kappa"]["std"] == pytest.approx(np.std([r["kappa"] for r in runs], ddof=1))
    assert agg["per_class"]["a"]["n"] == 5
    assert agg["per_class"]["b"]["n"] == 4
    assert agg["per_class"]["c"]["n"] == 4
    expected_c = np.mean([r["per_class"]["c"]["accuracy"] for r in runs[1:]])
    assert agg["per_class"]["c"]["mean"] == pytest.approx(expected_c)
    json.dumps(agg, allow_nan=False)


def test_aggregate_runs_class_never_defined_and_errors() -> None:
    runs = _synthetic_runs()
    agg = aggregate_runs(runs, ["a", "b", "c", "never tested"])
    assert agg["per_class"]["never tested"]["n"] == 0
    assert agg["per_class"]["never tested"]["mean"] is None
    with pytest.raises(DataFormatError, match="at least one run"):
        aggregate_runs([], ["a"])
    with pytest.raises(DataFormatError, match="missing"):
        aggregate_runs([{"overall_accuracy": 0.9}], ["a"])


def test_agreement_map_hand_made() -> None:
    # Synthetic 3 runs of a 2x3 map; -1 = no prediction.
    preds = np.array(
        [
            [[0, 1, 2], [3, -1, 1]],
            [[0, 1, 1], [2, -1, 0]],
            [[0, 2, 1], [1, 2, 2]],
        ]
    )
    consensus, agreement = agreement_map(preds)
    np.testing.assert_array_equal(consensus, [[0, 1, 1], [1, -1, 0]])
    np.testing.assert_allclose(agreement, [[1, 2 / 3, 2 / 3], [1 / 3, 2 / 3, 1 / 3]])
    assert consensus.dtype == np.int64 and agreement.dtype == np.float64


def test_agreement_map_errors() -> None:
    with pytest.raises(DataFormatError, match="3-D"):
        agreement_map(np.zeros((4, 4), dtype=int))
    with pytest.raises(DataFormatError, match="integer"):
        agreement_map(np.zeros((2, 4, 4)))
    with pytest.raises(DataFormatError, match="-1"):
        agreement_map(np.full((2, 2, 2), -2))
