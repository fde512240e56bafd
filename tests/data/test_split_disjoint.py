"""Spatially disjoint splits and user-supplied train/test masks, on synthetic label maps."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from hsi._core.errors import ConfigError, DataFormatError
from hsi._core.windows import window_any
from hsi.data.splits import (
    merge_mask_labels,
    read_label_map,
    split_disjoint,
    split_masks,
)


def synthetic_fields(height: int = 60, width: int = 80) -> np.ndarray:
    """A synthetic label map of rectangular 'fields' (classes 0..3), a small class 4, unlabelled gaps."""
    labels = np.full((height, width), -1, dtype=np.int64)
    labels[2:28, 2:38] = 0
    labels[2:28, 42:78] = 1
    labels[32:58, 2:50] = 2
    labels[32:58, 54:78] = 3
    labels[8:20, 16:28] = 4  # 144 pixels inside field 0
    return labels


@pytest.mark.parametrize("patch_size", [5, 9])
@pytest.mark.parametrize("val_ratio", [0.0, 0.3])
def test_no_test_or_val_pixel_sees_a_training_pixel(patch_size: int, val_ratio: float) -> None:
    labels = synthetic_fields()
    split = split_disjoint(labels, patch_size=patch_size, train_ratio=0.3, val_ratio=val_ratio, seed=1)
    reach = window_any(split.train, patch_size)  # Chebyshev distance <= p // 2 of a training pixel
    assert not (reach & split.test).any()
    assert not (reach & split.val).any()
    assert split.test.any() and split.train.any()
    assert (split.val.any()) == (val_ratio > 0)


def test_a_wider_decision_window_widens_the_guard_band_only() -> None:
    """Map smoothing reads the classes of neighbours: the guard follows the whole window, the blocks the patch."""
    labels = synthetic_fields()
    plain = split_disjoint(labels, patch_size=5, train_ratio=0.3, val_ratio=0.3, seed=3)
    wide = split_disjoint(labels, patch_size=5, train_ratio=0.3, val_ratio=0.3, seed=3, guard_size=9)
    assert np.array_equal(plain.train, wide.train)
    assert wide.info["guard_radius"] == 4 and wide.info["block_size"] == plain.info["block_size"] == 7
    reach = window_any(wide.train, 9)
    assert not (reach & (wide.test | wide.val)).any()
    assert (reach & plain.test).any() and not (wide.test & ~plain.test).any()


def test_disjoint_counts_add_up_and_sets_are_disjoint() -> None:
    labels = synthetic_fields()
    split = split_disjoint(labels, patch_size=7, train_ratio=0.3, val_ratio=0.2, seed=0)
    parts = [split.train, split.val, split.test, split.excluded]
    assert sum(p.astype(int) for p in parts).max() == 1
    assert np.array_equal(split.train | split.val | split.test | split.excluded, labels >= 0)
    counts = split.counts()
    assert sum(counts.values()) == int((labels >= 0).sum())
    assert split.info["excluded_test"] + split.info["excluded_val"] == counts["n_excluded"] > 0
    assert split.info["method"] == "disjoint" and split.info["guard_radius"] == 3
    assert split.info["block_size"] == 10  # default: 1.5 patch sizes


def test_validation_blocks_come_from_the_test_side_and_leave_training_unchanged() -> None:
    labels = synthetic_fields()
    without = split_disjoint(labels, patch_size=5, train_ratio=0.1, seed=3)
    with_val = split_disjoint(labels, patch_size=5, train_ratio=0.1, val_ratio=0.5, seed=3)
    assert np.array_equal(without.train, with_val.train)
    assert with_val.val.any() and not (with_val.val & without.excluded).any()
    assert not (with_val.val & ~without.test).any()  # every validation pixel was a test pixel before
    n_val, n_train = with_val.counts()["n_val"], with_val.counts()["n_train"]
    assert 0.1 * n_train < n_val < 1.5 * n_train


def test_every_class_trains_and_shares_are_near_the_ratio() -> None:
    labels = synthetic_fields()
    for seed in range(4):
        split = split_disjoint(labels, patch_size=5, train_ratio=0.3, seed=seed)
        for k in range(5):
            assert (split.train & (labels == k)).any(), (seed, k)
        shares = split.info["train_side_share_per_class"]
        assert all(0.15 <= s <= 0.5 for s in shares[:4]), shares
        assert "classes_without_training_pixels" not in split.info


def test_disjoint_is_reproducible_from_the_seed() -> None:
    labels = synthetic_fields()
    a = split_disjoint(labels, patch_size=5, train_ratio=0.3, val_ratio=0.2, seed=7)
    b = split_disjoint(labels, patch_size=5, train_ratio=0.3, val_ratio=0.2, seed=7)
    c = split_disjoint(labels, patch_size=5, train_ratio=0.3, val_ratio=0.2, seed=8)
    for part in ("train", "val", "test", "excluded"):
        assert np.array_equal(getattr(a, part), getattr(b, part))
    assert a.info == b.info
    assert not np.array_equal(a.train, c.train)


def test_whole_blocks_train() -> None:
    labels = np.zeros((40, 40), dtype=np.int64)  # one synthetic class everywhere
    labels[:, 20:] = 1
    split = split_disjoint(labels, patch_size=3, train_ratio=0.25, block_size=8, seed=0)
    r0, c0 = split.info["grid_offset"]
    block_of = ((np.arange(40)[:, None] + r0) // 8) * 100 + (np.arange(40)[None, :] + c0) // 8
    for block in np.unique(block_of):
        inside = split.train[block_of == block]
        assert inside.all() or not inside.any()


def test_block_size_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="block-size"):
        split_disjoint(synthetic_fields(), patch_size=5, train_ratio=0.3, block_size=500)


def test_a_class_in_a_single_block_trains_and_is_reported_without_test() -> None:
    labels = synthetic_fields()
    labels[labels == 4] = -1
    labels[40:42, 60:62] = 4  # 4 pixels of a synthetic class, inside one block
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = split_disjoint(labels, patch_size=5, train_ratio=0.3, block_size=40, seed=0,
                               class_ids=(10, 20, 30, 40, 50))
    assert (split.train & (labels == 4)).any()
    assert 4 in split.info["classes_without_test_pixels"]
    # The warning names the ground truth's own id (50), which users find in their file.
    assert any("no test pixel" in str(w.message) and "50" in str(w.message) for w in caught)


def _save_gt(path: Path, gt: np.ndarray) -> str:
    np.save(path, gt.astype(np.uint8))
    return str(path)


def test_masks_split_from_files(tmp_path: Path) -> None:
    labels = synthetic_fields()
    class_ids = (1, 5, 7, 8, 9)  # the synthetic file's own ids for classes 0..4
    ids = np.asarray(class_ids)
    train_gt = np.where((labels >= 0) & (np.arange(80)[None, :] < 30), ids[labels], 0)
    test_gt = np.where((labels >= 0) & (np.arange(80)[None, :] >= 40), ids[labels], 0)
    shape = labels.shape
    train_l = read_label_map(_save_gt(tmp_path / "tr.npy", train_gt), class_ids=class_ids, shape=shape, name="--train-gt")
    test_l = read_label_map(_save_gt(tmp_path / "te.npy", test_gt), class_ids=class_ids, shape=shape, name="--test-gt")
    split = split_masks(labels, train_l, test_l, val_ratio=0.25, seed=0)
    assert np.array_equal(split.train | split.val, train_gt > 0)
    assert np.array_equal(split.test, test_gt > 0)
    assert np.array_equal(split.excluded, (labels >= 0) & (train_gt == 0) & (test_gt == 0))
    assert split.val.sum() == pytest.approx(0.25 * (train_gt > 0).sum(), abs=5)
    assert split.info["method"] == "masks"
    # pixels the files label but the scene does not are taken over from the files
    unlabelled = labels.copy()
    unlabelled[test_l >= 0] = -1
    assert np.array_equal(merge_mask_labels(unlabelled, train_l, test_l), labels)


def test_masks_split_refuses_unknown_ids_overlap_and_disagreement(tmp_path: Path) -> None:
    labels = synthetic_fields()
    gt = np.where(labels >= 0, labels + 1, 0)
    bad_ids = gt.copy()
    bad_ids[0, 0] = 42
    with pytest.raises(DataFormatError, match=r"ids \[42\]"):
        read_label_map(_save_gt(tmp_path / "a.npy", bad_ids), class_ids=(1, 2, 3, 4, 5), shape=labels.shape,
                       name="--train-gt")
    with pytest.raises(DataFormatError, match="shape"):
        read_label_map(_save_gt(tmp_path / "b.npy", gt[:10]), class_ids=(1, 2, 3, 4, 5), shape=labels.shape,
                       name="--train-gt")
    with pytest.raises(ConfigError, match="same pixel"):
        split_masks(labels, labels, labels)
    other = np.where(labels >= 0, (labels + 1) % 5, -1)
    with pytest.raises(DataFormatError, match="agree"):
        split_masks(labels, other, np.full_like(labels, -1))


@pytest.mark.filterwarnings("ignore:disjoint split. the training blocks hold")
def test_disjoint_split_warns_when_no_validation_block_fits() -> None:
    """Synthetic two-field scene in big blocks: each class's test side is one block, which must stay test."""
    synthetic_labels = np.zeros((40, 40), dtype=np.int64)
    synthetic_labels[:, 20:] = 1
    with pytest.warns(UserWarning, match="gave no validation pixel"):
        split = split_disjoint(synthetic_labels, patch_size=5, train_ratio=0.1, val_ratio=0.3, seed=1, block_size=40)
    assert split.counts()["n_val"] == 0 and split.counts()["n_train"] > 0


@pytest.mark.filterwarnings("ignore:disjoint split. classes")
def test_a_training_share_far_from_the_ratio_is_warned() -> None:
    """Synthetic scene in four huge blocks: one training block is far more than 10%."""
    labels = synthetic_fields()
    with pytest.warns(UserWarning, match="training blocks hold"):
        split = split_disjoint(labels, patch_size=5, train_ratio=0.1, block_size=40, seed=0)
    assert split.info["train_share"] > 0.15
