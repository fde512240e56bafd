"""Leakage audit and control scoring, on hand-made masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from hsi._core.windows import window_any, window_majority, window_sum
from hsi.data.splits import split_disjoint, split_random
from hsi.evaluation.leakage import chance_levels, control_summary, leakage_audit
from hsi.evaluation.metrics import classification_summary


def test_window_filters_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((13, 17)) < 0.1
    for size in (1, 3, 7):
        h = size // 2
        brute = np.array([[mask[max(0, r - h) : r + h + 1, max(0, c - h) : c + h + 1].sum() for c in range(17)]
                          for r in range(13)])
        assert np.array_equal(window_sum(mask, size), brute)
        assert np.array_equal(window_any(mask, size), brute > 0)


def test_majority_vote_smooths_speckle_keeps_ties_and_counts_only_voters() -> None:
    labels = np.zeros((6, 7), dtype=np.int64)
    labels[2, 3] = 1  # an isolated pixel of class 1 goes
    labels[:, 5] = 2  # a 1-pixel column: 2 or 3 of 6 or 9 votes per window, so it goes too
    assert (window_majority(labels, 3, n_classes=3) == 0).all()
    tie = np.array([[0, 1], [1, 0]])  # 2 votes each everywhere: every pixel keeps its own class
    np.testing.assert_array_equal(window_majority(tie, 3, n_classes=2), tie)
    voters = np.zeros(labels.shape, dtype=bool)
    voters[:, 5] = True  # only the column votes: class 2 wins beside it; without a vote a pixel keeps its class
    voted = window_majority(labels, 3, n_classes=3, voters=voters)
    assert (voted[:, 4:] == 2).all() and np.array_equal(voted[:, :4], labels[:, :4])
    # A window cut with the vote's margin gives its inner pixels what the whole map gives them.
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 4, size=(20, 24))
    whole = window_majority(noisy, 5, n_classes=4)
    np.testing.assert_array_equal(window_majority(noisy[3:15, 5:20], 5, n_classes=4)[2:-2, 2:-2],
                                  whole[5:13, 7:18])
    brute = np.array([[np.bincount(noisy[max(0, r - 2): r + 3, max(0, c - 2): c + 3].ravel(), minlength=4)
                       for c in range(24)] for r in range(20)])
    top = brute.max(axis=2)
    assert (brute[np.arange(20)[:, None], np.arange(24)[None, :], whole] == top).all()  # always a most frequent class


def test_leakage_on_a_hand_made_example() -> None:
    train = np.zeros((7, 7), dtype=bool)
    train[3, 3] = True
    test = np.zeros((7, 7), dtype=bool)
    test[3, 4] = test[3, 5] = test[0, 0] = True
    audit = leakage_audit(train, test, patch_size=3)
    # only (3, 4) has the training pixel in its 3x3 window
    assert audit["test_overlap_share"] == pytest.approx(1 / 3)
    assert audit["n_test_overlapping"] == 1 and audit["n_test"] == 3
    # the training window is rows/cols 2..4; test windows share 6, 3 and 0 of their 9 positions with it
    assert audit["mean_patch_overlap"] == pytest.approx((6 + 3 + 0) / 9 / 3)
    assert audit["flagged"]  # 1/3 > 5%


def test_random_split_leaks_and_disjoint_split_does_not() -> None:
    labels = np.repeat(np.arange(4), 25 * 100).reshape(100, 100)  # synthetic: four horizontal bands
    random = split_random(labels, train_ratio=0.1, seed=0)
    disjoint = split_disjoint(labels, patch_size=9, train_ratio=0.1, seed=0)
    leaky = leakage_audit(random.train, random.test, patch_size=9)
    clean = leakage_audit(disjoint.train, disjoint.test, patch_size=9)
    assert leaky["test_overlap_share"] > 0.99 and leaky["flagged"]
    assert clean["test_overlap_share"] == 0.0 and not clean["flagged"]
    assert 0 < clean["mean_patch_overlap"] < leaky["mean_patch_overlap"]


def test_no_test_pixels_gives_undefined_shares() -> None:
    train = np.ones((5, 5), dtype=bool)
    audit = leakage_audit(train, ~train, patch_size=3)
    assert audit["test_overlap_share"] is None and audit["mean_patch_overlap"] is None and not audit["flagged"]


def test_control_is_flagged_far_above_chance() -> None:
    y_true = np.array([0] * 50 + [1] * 30 + [2] * 20)
    assert chance_levels(y_true, y_true, n_classes=4) == {"chance_majority_share": 0.5, "chance_largest_test_class": 0.5,
                                                        "chance_uniform": 0.25}
    names = ["a", "b", "c", "d"]
    perfect = control_summary("noise", classification_summary(y_true, y_true, class_names=names), y_true, y_true)
    assert perfect["overall_accuracy"] == 1.0 and perfect["flagged"]
    constant = np.zeros_like(y_true)
    chance = control_summary("shuffle", classification_summary(y_true, constant, class_names=names), y_true, y_true)
    assert chance["overall_accuracy"] == 0.5 and not chance["flagged"] and chance["kind"] == "shuffle"


def test_majority_chance_is_the_training_majority_scored_on_test() -> None:
    """Disjoint sides differ: class 2 leads in training but holds 20% of the test pixels."""
    y_true = np.array([0] * 50 + [1] * 30 + [2] * 20)
    y_train = np.array([0] * 5 + [2] * 9)
    chance = chance_levels(y_true, y_train, n_classes=3)
    assert chance["chance_majority_share"] == pytest.approx(0.2) and chance["chance_largest_test_class"] == 0.5
