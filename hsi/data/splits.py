"""Train / validation / test splits of a scene's labelled pixels, reproducible from a seed."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hsi._core.errors import ConfigError, DataFormatError
from hsi._core.registry import Registry
from hsi._core.validation import as_rng, check_fraction, check_patch_size
from hsi._core.windows import window_any
from hsi.data.io import load_array
from hsi.data.scene import labels_from_ground_truth


@dataclass
class Split:
    """Boolean masks of shape (H, W); each labelled pixel is in at most one of them.

    Attributes:
        train: pixels the model is fitted on.
        val: pixels held out for model selection (a share of the training pixels).
        test: pixels every metric is computed on.
        excluded: labelled pixels in none of the three (e.g. a disjoint split's guard band).
        info: notes recorded with the run (method, counts, warnings).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    excluded: np.ndarray
    info: dict[str, object] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of pixels in each part."""
        return {
            "n_train": int(self.train.sum()),
            "n_val": int(self.val.sum()),
            "n_test": int(self.test.sum()),
            "n_excluded": int(self.excluded.sum()),
        }


def _class_pixels(labels: np.ndarray) -> list[np.ndarray]:
    """Flat indices of each class's pixels, for classes 0..K-1."""
    flat = labels.ravel()
    n_classes = int(flat.max()) + 1
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(n_classes + 1) - 0.5)
    return [order[bounds[k] : bounds[k + 1]] for k in range(n_classes)]


def _masks_from_indices(shape: tuple[int, int], *parts: np.ndarray) -> list[np.ndarray]:
    masks = []
    for idx in parts:
        mask = np.zeros(shape[0] * shape[1], dtype=bool)
        mask[idx] = True
        masks.append(mask.reshape(shape))
    return masks


def _class_id(k: int, class_ids: Sequence[int] | None) -> int:
    """The id messages show for class k: the ground truth's own id when known, so users find it in their file."""
    return int(class_ids[k]) if class_ids is not None else k


def _draw_split(
    labels: np.ndarray,
    n_train_of: Callable[[int], int],
    *,
    val_ratio: float,
    seed: int | None,
    method: str,
    class_ids: Sequence[int] | None = None,
) -> Split:
    """Draws ``n_train_of(n_k)`` training pixels of each class; the rest of the class is test."""
    rng = as_rng(seed)
    train, val, test = [], [], []
    names_short = []
    for k, pixels in enumerate(_class_pixels(labels)):
        n = len(pixels)
        if n == 0:
            continue
        if n < 2:
            row, col = np.unravel_index(int(pixels[0]), labels.shape)
            raise ConfigError(
                f"class {_class_id(k, class_ids)} has a single labelled pixel (row {row}, col {col}); a {method} "
                "split needs at least 2 per class (one to train, one to test). Merge or drop that class in the "
                "ground truth."
            )
        n_train = min(max(1, n_train_of(n)), n - 1)
        if n_train < n_train_of(n):
            names_short.append(_class_id(k, class_ids))
        shuffled = rng.permutation(pixels)
        class_train, class_test = shuffled[:n_train], shuffled[n_train:]
        n_val = min(round(val_ratio * n_train), n_train - 1)
        val.append(class_train[:n_val])
        train.append(class_train[n_val:])
        test.append(class_test)
    train_m, val_m, test_m = _masks_from_indices(labels.shape, *(np.concatenate(p) for p in (train, val, test)))
    excluded = (labels >= 0) & ~(train_m | val_m | test_m)
    info: dict[str, object] = {"method": method}
    if names_short:
        info["classes_short_of_training_pixels"] = names_short
    return Split(train_m, val_m, test_m, excluded, info)


def split_random(
    labels: np.ndarray, *, train_ratio: float, val_ratio: float = 0.0, seed: int | None = 0,
    class_ids: Sequence[int] | None = None,
) -> Split:
    """Stratified random split: ``train_ratio`` of each class trains (at least one pixel).

    Args:
        labels: shape (H, W) int, classes 0..K-1 and -1 for unlabelled.
        train_ratio: share of each class's labelled pixels used for training (and validation).
        val_ratio: share of the training pixels held out for validation.
        seed: seed of the draw.
        class_ids: the ground truth's own id of each class, for messages (default: 0..K-1).
    """
    check_fraction(train_ratio, name="train ratio (--train-ratio)")
    check_fraction(val_ratio, name="validation ratio (--val-ratio)", allow_zero=True)
    return _draw_split(
        labels, lambda n: round(train_ratio * n), val_ratio=val_ratio, seed=seed, method="random",
        class_ids=class_ids,
    )


def split_per_class(
    labels: np.ndarray, *, n_per_class: int, val_ratio: float = 0.0, seed: int | None = 0,
    class_ids: Sequence[int] | None = None,
) -> Split:
    """``n_per_class`` training pixels of each class (fewer, with a warning, for small classes).

    A class never gives all its pixels to training: at least one stays for testing.
    ``class_ids`` (the ground truth's own ids) name the classes in messages.
    """
    if n_per_class < 1:
        raise ConfigError(f"--train-per-class must be >= 1; got {n_per_class}. Pass e.g. 50.")
    check_fraction(val_ratio, name="validation ratio (--val-ratio)", allow_zero=True)
    split = _draw_split(labels, lambda n: n_per_class, val_ratio=val_ratio, seed=seed, method="per-class",
                        class_ids=class_ids)
    short = split.info.get("classes_short_of_training_pixels")
    if short:
        warnings.warn(
            f"classes {short} have fewer than {n_per_class + 1} pixels; they train on all but one.",
            stacklevel=2,
        )
    return split


def default_block_size(patch_size: int) -> int:
    """The block side a disjoint split uses unless told: one and a half patch sizes.

    A test block next to a training block loses a guard strip of ``patch_size // 2``
    pixels, so small blocks lose much of the test side to the guard band; large blocks
    leave few blocks to share out, so the class shares drift from ``train_ratio`` and
    small classes end up entirely on one side. On the ground truths of Salinas-A, Indian
    Pines and Pavia University (patch 11 and 25, ratios 0.1 and 0.3) 1.5 patch sizes kept
    the class shares and the guard losses both moderate.
    """
    return int(patch_size) + int(patch_size) // 2


def _choose_blocks(
    counts: np.ndarray, ratio: float | np.ndarray, rng: np.random.Generator, *, seed_every_class: bool,
    strict_leftover: bool = False,
) -> np.ndarray:
    """Picks whole blocks so that about ``ratio`` of each class's pixels fall in them.

    Args:
        counts: int of shape (n_blocks, K), the labelled pixels of each class in each
            block (zero rows for blocks that may not be picked).
        ratio: the share of each class's pixels to aim for (one for all, or shape (K,)).
        rng: the generator of the draw.
        seed_every_class: first give every class one block (rarest class first): the
            block whose count of that class is closest to its target.
        strict_leftover: never pick a block that takes a class's last pixels, not even
            to seed a class (otherwise seeding may, when every block of a class would).

    Returns:
        bool of shape (n_blocks,), the picked blocks.
    """
    totals = counts.sum(axis=0)
    target = ratio * totals
    # Classes weigh by their share, so a small class's deficit counts as much as a big one's.
    weight = 1.0 / np.maximum(totals, 1)
    chosen = np.zeros(len(counts), dtype=bool)
    have = np.zeros(counts.shape[1], dtype=np.int64)
    if seed_every_class:
        for k in np.argsort(totals, kind="stable"):
            if totals[k] == 0 or have[k] > 0:
                continue
            candidates = rng.permutation(np.flatnonzero((counts[:, k] > 0) & ~chosen))
            # Prefer blocks that leave every class some pixels on the test side.
            keeps_test = ~((counts[candidates] > 0) & (have + counts[candidates] >= totals)).any(axis=1)
            if keeps_test.any() or strict_leftover:
                candidates = candidates[keeps_test]
            if not len(candidates):
                continue
            best = candidates[np.argmin(np.abs(counts[candidates, k] - target[k]))]
            chosen[best] = True
            have += counts[best]
    for b in rng.permutation(np.flatnonzero(counts.any(axis=1) & ~chosen)):
        deficit = np.maximum(target - have, 0.0)
        gain = (np.minimum(counts[b], deficit) * weight).sum()
        overshoot = (np.maximum(counts[b] - deficit, 0.0) * weight).sum()
        # Never take the last pixels of a class out of the test side.
        empties_a_class = ((counts[b] > 0) & (have + counts[b] >= totals)).any()
        if gain > overshoot and not empties_a_class:
            chosen[b] = True
            have += counts[b]
    return chosen


def split_disjoint(
    labels: np.ndarray,
    *,
    patch_size: int,
    train_ratio: float,
    val_ratio: float = 0.0,
    block_size: int | None = None,
    seed: int | None = 0,
    class_ids: Sequence[int] | None = None,
    guard_size: int | None = None,
) -> Split:
    """Spatially disjoint split: whole square blocks train or test, with a guard band.

    The scene is cut into ``block_size`` squares (on a grid shifted by a seeded offset).
    Whole blocks go to training, chosen so that about ``train_ratio`` of each class's
    labelled pixels are in training blocks and every class trains where at all possible
    (rarest class first, each gets the block whose count is closest to its target; then
    the other blocks, in seeded random order, join training while they reduce the
    classes' shortfall more than they overshoot). Test pixels are the labelled pixels of
    the other blocks, except those whose ``patch_size`` window would reach a training
    pixel (Chebyshev distance ``<= patch_size // 2``): those are excluded, so no test
    patch contains a training pixel. With ``val_ratio > 0`` whole blocks of the test side
    become validation blocks (about ``val_ratio`` times each class's training pixels,
    never a class's last test pixels), guarded from training the same way; training keeps
    its ``train_ratio``.

    Args:
        labels: shape (H, W) int, classes 0..K-1 and -1 for unlabelled.
        patch_size: odd patch side of the run; sets the guard band (``patch_size // 2``).
        train_ratio: share of each class's pixels to put in training blocks.
        val_ratio: validation pixels per training pixel, taken as whole test-side blocks.
        block_size: block side in pixels; default=None takes :func:`default_block_size`.
        seed: seed of the grid offset and the block draw.
        class_ids: the ground truth's own id of each class, for warnings; default=None
            shows indices 0..K-1.
        guard_size: odd side of the window a pixel's class is read from, where it is wider than
            the patch (map smoothing); the guard band is then ``guard_size // 2``. default=None:
            ``patch_size``.

    Returns:
        The split; ``excluded`` holds the guard-band pixels, and ``info`` the block size,
        guard radius, grid offset, block counts, the guard-dropped pixel counts and each
        class's share of pixels on the training side.

    Raises:
        ConfigError: a setting is out of range, or no test pixel is left.
    """
    check_patch_size(patch_size)
    check_fraction(train_ratio, name="train ratio (--train-ratio)")
    check_fraction(val_ratio, name="validation ratio (--val-ratio)", allow_zero=True)
    block = default_block_size(patch_size) if block_size is None else int(block_size)
    height, width = labels.shape
    if block < 1 or block > max(height, width):
        raise ConfigError(
            f"--block-size must be between 1 and the scene's longer side ({max(height, width)}); got {block}. "
            f"Leave it out to use {default_block_size(patch_size)} (1.5 patch sizes)."
        )
    draw = _draw_blocks(labels, block, train_ratio=train_ratio, val_ratio=val_ratio, rng=as_rng(seed))
    guard_size = patch_size if guard_size is None else guard_size
    check_patch_size(guard_size)
    split = _guarded_split(labels, draw, guard_size=guard_size, train_ratio=train_ratio)
    _note_shortfalls(split, labels, block=block, train_ratio=train_ratio, val_ratio=val_ratio, class_ids=class_ids)
    return split


@dataclass(frozen=True)
class _BlockDraw:
    """A disjoint split's block grid and the blocks drawn on it.

    Attributes:
        block: the block side.
        offset: (2,) the grid's shift along rows and columns.
        block_of: (H, W) the block of each pixel.
        counts: (n_blocks, K) the labelled pixels of each class in each block.
        train, val: (n_blocks,) bool, the training and the validation blocks.
    """

    block: int
    offset: np.ndarray
    block_of: np.ndarray
    counts: np.ndarray
    train: np.ndarray
    val: np.ndarray


def _draw_blocks(
    labels: np.ndarray, block: int, *, train_ratio: float, val_ratio: float, rng: np.random.Generator
) -> _BlockDraw:
    """Lays the grid (at a seeded offset) and picks the training blocks, then the validation blocks.

    Raises:
        ConfigError: the ground truth labels no pixel.
    """
    height, width = labels.shape
    offset = rng.integers(0, block, size=2)
    block_rows = (np.arange(height) + offset[0]) // block
    block_cols = (np.arange(width) + offset[1]) // block
    block_of = block_rows[:, None] * (int(block_cols[-1]) + 1) + block_cols[None, :]
    n_blocks = int(block_of.max()) + 1

    labelled = labels >= 0
    n_classes = int(labels.max()) + 1 if labelled.any() else 0
    if n_classes == 0:
        raise ConfigError("a disjoint split needs labelled pixels; the ground truth has none.")
    counts = np.bincount(
        block_of[labelled] * n_classes + labels[labelled], minlength=n_blocks * n_classes
    ).reshape(n_blocks, n_classes)

    train_blocks = _choose_blocks(counts, train_ratio, rng, seed_every_class=True)
    val_blocks = np.zeros(n_blocks, dtype=bool)
    if val_ratio > 0:
        # A class often has a single training block, so validation blocks come from the
        # test side: about val_ratio times each class's training pixels.
        train_totals = (counts * train_blocks[:, None]).sum(axis=0)
        test_counts = counts * ~train_blocks[:, None]
        val_share = val_ratio * train_totals / np.maximum(test_counts.sum(axis=0), 1)
        val_blocks = _choose_blocks(test_counts, val_share, rng, seed_every_class=True, strict_leftover=True)
    return _BlockDraw(block, offset, block_of, counts, train_blocks, val_blocks)


def _guarded_split(labels: np.ndarray, draw: _BlockDraw, *, guard_size: int, train_ratio: float) -> Split:
    """The split of the drawn blocks: pixels within ``guard_size // 2`` of a training pixel are excluded.

    Raises:
        ConfigError: no test pixel is left.
    """
    labelled = labels >= 0
    train = labelled & draw.train[draw.block_of]
    guard = window_any(train, guard_size)
    val_side = labelled & draw.val[draw.block_of]
    test_side = labelled & ~train & ~val_side
    val, test = val_side & ~guard, test_side & ~guard
    excluded = labelled & ~(train | val | test)
    if not test.any():
        raise ConfigError(
            f"a disjoint split with --train-ratio {train_ratio} and {draw.block}-pixel blocks leaves no test pixel "
            "after the guard band; lower --train-ratio or --block-size, or use a smaller --patch-size."
        )
    n_classes = draw.counts.shape[1]
    totals = np.bincount(labels[labelled], minlength=n_classes)
    train_side = np.bincount(labels[train], minlength=n_classes)
    info: dict[str, object] = {
        "method": "disjoint",
        "excluded_reason": "guard band",
        "block_size": draw.block,
        "guard_radius": guard_size // 2,
        "grid_offset": [int(v) for v in draw.offset],
        "n_blocks_labelled": int(draw.counts.any(axis=1).sum()),
        "n_train_blocks": int(draw.train.sum()),
        "n_val_blocks": int(draw.val.sum()),
        "excluded_test": int((test_side & guard).sum()),
        "excluded_val": int((val_side & guard).sum()),
        "train_side_share_per_class": [float(t / n) if n else None for t, n in zip(train_side, totals, strict=True)],
    }
    return Split(train, val, test, excluded, info)


def _note_shortfalls(
    split: Split, labels: np.ndarray, *, block: int, train_ratio: float, val_ratio: float,
    class_ids: Sequence[int] | None,
) -> None:
    """Records the training share and the classes without training or test pixels in ``split.info``, and
    warns (on behalf of :func:`split_disjoint`'s caller) where the blocks missed what was asked."""
    height, width = labels.shape
    labelled = labels >= 0
    if val_ratio > 0 and not split.val.any():
        warnings.warn(
            f"disjoint split: --val-ratio {val_ratio} gave no validation pixel (no test-side block fits, or the guard "
            "band took them); training runs its fixed epoch budget. Use a smaller --block-size to get "
            "validation blocks.",
            stacklevel=3,
        )
    train_share = float(split.train.sum() / labelled.sum())
    split.info["train_share"] = train_share
    if not train_ratio / 1.5 <= train_share <= train_ratio * 1.5:
        warnings.warn(
            f"disjoint split: the training blocks hold {train_share:.0%} of the labelled pixels, not the "
            f"{train_ratio:.0%} asked (--train-ratio): {block}-pixel blocks are coarse for this {height}x{width} "
            "scene. Use a smaller --block-size or --patch-size, or report the share actually trained on.",
            stacklevel=3,
        )
    n_classes = int(labels.max()) + 1
    totals = np.bincount(labels[labelled], minlength=n_classes)
    no_train = [k for k in range(n_classes) if totals[k] and not (split.train & (labels == k)).any()]
    no_test = [k for k in range(n_classes) if totals[k] and not (split.test & (labels == k)).any()]
    if no_train:
        split.info["classes_without_training_pixels"] = no_train
    if no_test:
        split.info["classes_without_test_pixels"] = no_test
        warnings.warn(
            f"disjoint split: classes {[_class_id(k, class_ids) for k in no_test]} have no test pixel (all their "
            "blocks train, or the guard band took them); their accuracy is undefined. Try a smaller --block-size "
            "or another --seed.",
            stacklevel=3,
        )


def read_label_map(
    path: str, *, class_ids: tuple[int, ...], shape: tuple[int, int], name: str
) -> np.ndarray:
    """Reads a train or test ground-truth file and maps it to a scene's classes.

    Args:
        path: the file (.mat, ENVI, .npy, image); 0 = not in this set.
        class_ids: the scene's own label ids, class k is ``class_ids[k]``.
        shape: the scene's (H, W).
        name: how the file is named in messages, e.g. ``"--train-gt"``.

    Returns:
        int64 of shape (H, W): -1 outside the set, the class 0..K-1 inside.

    Raises:
        DataFormatError: the file is unreadable, of another shape, holds ids the scene
            does not define, or labels no pixel.
    """
    gt = load_array(path, role="gt")
    if gt.shape != tuple(shape):
        raise DataFormatError(
            f"{name} file {path} must have the scene's shape {tuple(shape)}; got {gt.shape}. "
            "Pass a ground truth of this scene."
        )
    labels, _ = labels_from_ground_truth(gt, tuple(class_ids), name=f"{name} file {path}")
    return labels


def split_masks(
    labels: np.ndarray,
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    *,
    val_ratio: float = 0.0,
    seed: int | None = 0,
) -> Split:
    """The split given by a pair of ground truths (DFC/GRSS style train and test files).

    Args:
        labels: the scene's labels, shape (H, W), classes 0..K-1, -1 unlabelled.
        train_labels: shape (H, W), the training pixels' classes, -1 elsewhere.
        test_labels: shape (H, W), the test pixels' classes, -1 elsewhere.
        val_ratio: share of each class's training pixels drawn (seeded) for validation.
        seed: seed of that draw.

    Returns:
        The split. Pixels the scene labels but neither file names are ``excluded``.
        The files may label pixels the scene leaves unlabelled; the run then uses
        :func:`merge_mask_labels` as its labels.

    Raises:
        ConfigError: a pixel is in both files.
        DataFormatError: shapes differ, or a file's class disagrees with the scene's at a pixel.
    """
    check_fraction(val_ratio, name="validation ratio (--val-ratio)", allow_zero=True)
    if not labels.shape == train_labels.shape == test_labels.shape:
        raise DataFormatError(
            f"train and test ground truths must have the scene's shape {labels.shape}; "
            f"got {train_labels.shape} and {test_labels.shape}."
        )
    train, test = train_labels >= 0, test_labels >= 0
    both = train & test
    if both.any():
        r, c = np.argwhere(both)[0]
        raise ConfigError(
            f"--train-gt and --test-gt must not label the same pixel; {int(both.sum())} pixels are in both, "
            f"first at (row {r}, col {c}). Pass disjoint train and test ground truths."
        )
    given = np.where(train, train_labels, test_labels)
    clash = (labels >= 0) & (given >= 0) & (labels != given)
    if clash.any():
        r, c = np.argwhere(clash)[0]
        raise DataFormatError(
            f"train/test ground truths must agree with the scene's ground truth; they give another class at "
            f"{int(clash.sum())} pixels, first at (row {r}, col {c}). Check that the files belong to this scene."
        )
    rng = as_rng(seed)
    val = np.zeros(labels.shape, dtype=bool)
    if val_ratio > 0:
        flat_val = val.ravel()
        for k in np.unique(train_labels[train]):
            pixels = np.flatnonzero((train_labels == k).ravel())
            n_val = min(round(val_ratio * len(pixels)), len(pixels) - 1)
            flat_val[rng.permutation(pixels)[:n_val]] = True
    excluded = (labels >= 0) & ~(train | test)
    info: dict[str, object] = {"method": "masks", "excluded_reason": "in neither file",
                               "n_scene_pixels_in_neither_file": int(excluded.sum())}
    return Split(train & ~val, val, test, excluded, info)


def merge_mask_labels(labels: np.ndarray, train_labels: np.ndarray, test_labels: np.ndarray) -> np.ndarray:
    """The scene's labels completed with the train/test files' where the scene has none.

    Args:
        labels: shape (H, W), classes 0..K-1, -1 unlabelled.
        train_labels: shape (H, W), -1 outside the training set.
        test_labels: shape (H, W), -1 outside the test set.

    Returns:
        int64 of shape (H, W).
    """
    given = np.where(train_labels >= 0, train_labels, test_labels)
    return np.where(labels >= 0, labels, given).astype(np.int64)


# ---------------------------------------------------------------- the split methods, by name


@dataclass(frozen=True)
class SplitSettings:
    """Every setting a split method may read (a run's split options, resolved).

    Attributes:
        train_ratio: share of each class's pixels that trains.
        val_ratio: validation pixels per training pixel (0 = none).
        patch_size: the patch side (block size and guard band of spatially disjoint splits).
        guard_size: the side of the window a pixel's class is read from, where wider than the patch
            (map smoothing: :meth:`hsi.training.recipe.Recipe.window`); None = ``patch_size``.
        seed: seed of the draw.
        train_per_class: training pixels per class, where a method counts them.
        block_size: block side of a disjoint split (None = its default).
        train_gt, test_gt: files of a split given as two ground truths.
    """

    train_ratio: float
    val_ratio: float
    patch_size: int
    seed: int | None = 0
    train_per_class: int | None = None
    block_size: int | None = None
    train_gt: str | None = None
    test_gt: str | None = None
    guard_size: int | None = None


SplitFunction = Callable[[np.ndarray, SplitSettings, Sequence[int]], "SplitResult"]


@dataclass
class SplitResult:
    """A drawn split and, where the method completes the scene's labels, those labels.

    Attributes:
        split: the masks.
        labels: shape (H, W), classes 0..K-1 and -1, when the method labels more pixels than
            the scene (``masks``: the two files may label pixels the scene leaves out); else None.
    """

    split: Split
    labels: np.ndarray | None = None


@dataclass(frozen=True)
class SplitMethod:
    """A registered split: its function, the settings it cannot do without, and one line of help."""

    function: SplitFunction
    requires: tuple[str, ...]
    description: str


#: Every split method, by its ``--split`` name; the CLI's choices and messages come from here.
SPLITS: Registry[SplitMethod] = Registry[SplitMethod]("split method (--split)")


def register_split(
    name: str, *, description: str, requires: tuple[str, ...] = ()
) -> Callable[[SplitFunction], SplitFunction]:
    """Registers ``function(labels, settings, class_ids) -> SplitResult`` as split method ``name``.

    Args:
        name: the ``--split`` value.
        description: one line for ``--help``.
        requires: names of :class:`SplitSettings` fields that must not be None for this method.
    """

    def decorator(function: SplitFunction) -> SplitFunction:
        SPLITS.register(name, SplitMethod(function, requires, description), description)
        return function

    return decorator


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def draw_split(
    method: str, labels: np.ndarray, settings: SplitSettings, class_ids: Sequence[int]
) -> SplitResult:
    """Draws the split of the registered ``method``.

    Args:
        method: a name in :data:`SPLITS`.
        labels: shape (H, W), classes 0..K-1 and -1 for unlabelled.
        settings: the split settings.
        class_ids: the ground truth's own id of each class, for messages.

    Raises:
        UnknownNameError: unknown method (the message lists the methods).
        ConfigError: a setting the method requires is missing, or a value is out of range.
    """
    check_split_settings(method, settings)
    return SPLITS.get(method).function(labels, settings, class_ids)


def check_split_settings(method: str, settings: SplitSettings) -> None:
    """Checks, without data, that ``method`` exists and has the settings it requires.

    Raises:
        UnknownNameError: unknown method.
        ConfigError: a required setting is missing (the message names its flag).
    """
    missing = [name for name in SPLITS.get(method).requires if getattr(settings, name) is None]
    if missing:
        raise ConfigError(
            f"--split {method} needs {' and '.join(f'{_flag(m)} VALUE' for m in missing)}; got none. "
            f"Add {' '.join(_flag(m) for m in missing)}, or choose another --split."
        )


@register_split("random", description="random per pixel, stratified by class (default)")
def _split_random(labels: np.ndarray, settings: SplitSettings, class_ids: Sequence[int]) -> SplitResult:
    return SplitResult(split_random(labels, train_ratio=settings.train_ratio, val_ratio=settings.val_ratio,
                                    seed=settings.seed, class_ids=class_ids))


@register_split("per-class", requires=("train_per_class",),
                description="--train-per-class N training pixels of each class")
def _split_per_class(labels: np.ndarray, settings: SplitSettings, class_ids: Sequence[int]) -> SplitResult:
    return SplitResult(split_per_class(labels, n_per_class=int(settings.train_per_class or 0),
                                       val_ratio=settings.val_ratio, seed=settings.seed, class_ids=class_ids))


@register_split("disjoint",
                description="spatially separate square blocks with a guard band of half a patch (wider with --smooth)")
def _split_disjoint(labels: np.ndarray, settings: SplitSettings, class_ids: Sequence[int]) -> SplitResult:
    return SplitResult(split_disjoint(labels, patch_size=settings.patch_size, train_ratio=settings.train_ratio,
                                      val_ratio=settings.val_ratio, block_size=settings.block_size,
                                      seed=settings.seed, class_ids=class_ids, guard_size=settings.guard_size))


@register_split("masks", requires=("train_gt", "test_gt"),
                description="the pixels of the --train-gt and --test-gt files")
def _split_masks(labels: np.ndarray, settings: SplitSettings, class_ids: Sequence[int]) -> SplitResult:
    shape = (labels.shape[0], labels.shape[1])
    train = read_label_map(str(settings.train_gt), class_ids=tuple(class_ids), shape=shape, name="--train-gt")
    test = read_label_map(str(settings.test_gt), class_ids=tuple(class_ids), shape=shape, name="--test-gt")
    split = split_masks(labels, train, test, val_ratio=settings.val_ratio, seed=settings.seed)
    return SplitResult(split, merge_mask_labels(labels, train, test))
