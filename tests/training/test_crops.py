"""Training on scene crops: same logits and gradients as patch batches, every training pixel once per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hsi.data.patches import PatchSource
from hsi.models import create_model
from hsi.training.crops import batch_crops, crop_windows


def _pixels(height: int, width: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    flat = np.random.default_rng(seed).choice(height * width, size=n, replace=False)
    return torch.from_numpy(flat // width), torch.from_numpy(flat % width)


def test_every_batch_pixel_falls_in_exactly_one_crop_inside_the_scene() -> None:
    rows, cols = _pixels(37, 29, 150, seed=1)
    crops = batch_crops(rows, cols, height=37, width=29, side=16)
    assert sorted(torch.cat([c.members for c in crops]).tolist()) == list(range(150))
    assert len(crops) == 6  # a 3 x 2 grid of 16-pixel blocks, each holding some of 150 pixels
    for crop in crops:
        r, c = rows[crop.members], cols[crop.members]
        assert bool(((r >= crop.top) & (r < crop.top + crop.height)).all())
        assert bool(((c >= crop.left) & (c < crop.left + crop.width)).all())
        assert crop.top + crop.height <= 37 and crop.left + crop.width <= 29


@pytest.mark.parametrize(("model_name", "patch_size", "pad_mode"),
                         [("hybridsn", 11, "constant"), ("hybridsn_2d3d", 9, "reflect")])
def test_crop_logits_and_gradients_equal_those_of_the_patches(model_name: str, patch_size: int, pad_mode: str) -> None:
    """Synthetic cube, odd sizes, crops at the borders: one dense pass gives each pixel its patch's logits."""
    torch.manual_seed(0)
    cube = np.random.default_rng(0).normal(size=(23, 19, 13)).astype(np.float32)
    source = PatchSource(cube, patch_size=patch_size, pad_mode=pad_mode)
    model = create_model(model_name, in_chans=13, num_classes=4, patch_size=patch_size, seed=0).eval()
    rows, cols = _pixels(23, 19, 60, seed=2)
    targets = torch.from_numpy(np.random.default_rng(3).integers(0, 4, size=60))
    for batch in torch.randperm(60, generator=torch.Generator().manual_seed(0)).split(25):
        model.zero_grad()
        expected = model(source.gather(rows[batch], cols[batch]))
        nn.functional.cross_entropy(expected, targets[batch], reduction="sum").backward()
        patch_grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        got = model.forward_head(crop_windows(model, source, rows[batch], cols[batch], side=10))
        nn.functional.cross_entropy(got, targets[batch], reduction="sum").backward()
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
        for crop_grad, patch_grad in zip((p.grad for p in model.parameters()), patch_grads, strict=True):
            torch.testing.assert_close(crop_grad, patch_grad, rtol=1e-3, atol=1e-4)


def test_flipped_crops_give_each_pixel_its_flipped_patch() -> None:
    """Synthetic cube, non-square crops at the borders: each crop's drawn flip/rotation, applied to
    its pixels' patches as augment_patches applies it, gives the same logits."""
    torch.manual_seed(0)
    cube = np.random.default_rng(0).normal(size=(23, 19, 13)).astype(np.float32)
    source = PatchSource(cube, patch_size=9, pad_mode="constant")
    model = create_model("hybridsn", in_chans=13, num_classes=4, patch_size=9, seed=0).eval()
    rows, cols = _pixels(23, 19, 60, seed=2)
    seen = set()
    for seed in range(12):  # enough draws to meet most of the 8 transforms
        crops = batch_crops(rows, cols, height=23, width=19, side=10)
        draws = torch.Generator().manual_seed(seed)
        bits = [torch.randint(0, 2, (3,), generator=draws).tolist() for _ in crops]  # crop_windows' draws, in order
        expected = torch.empty(60, 4)
        for crop, (transpose, flip_rows, flip_cols) in zip(crops, bits, strict=True):
            patches = source.gather(rows[crop.members], cols[crop.members])
            patches = patches.transpose(-1, -2) if transpose else patches
            patches = patches.flip(-2) if flip_rows else patches
            patches = patches.flip(-1) if flip_cols else patches
            expected[crop.members] = model(patches).detach()
            seen.add((transpose, flip_rows, flip_cols))
        got = model.forward_head(crop_windows(model, source, rows, cols, side=10,
                                              flips=torch.Generator().manual_seed(seed)))
        torch.testing.assert_close(got.detach(), expected, rtol=1e-4, atol=1e-4)
    assert len(seen) == 8


def test_crops_are_refused_where_they_would_not_be_exact() -> None:
    from hsi._core.errors import ConfigError
    from hsi.training.crops import use_crops
    from hsi.training.recipe import Recipe

    hybridsn = create_model("hybridsn", in_chans=13, num_classes=3, patch_size=9)
    assert use_crops("crops", hybridsn, Recipe(), name="hybridsn")
    assert not use_crops("patches", hybridsn, Recipe(), name="hybridsn")
    assert use_crops("crops", hybridsn, Recipe(augment=True), name="hybridsn")  # flips drawn per crop
    with pytest.raises(ConfigError, match="per-patch augmentation; here the recipe augments"):
        use_crops("crops", hybridsn, Recipe(jitter=0.1), name="hybridsn")
    with pytest.raises(ConfigError, match="'hybridsn' has no exact dense pass"):  # 5x5: zero-padded
        use_crops("crops", create_model("hybridsn", in_chans=13, num_classes=3, patch_size=5), Recipe(), name="hybridsn")
    with pytest.raises(ConfigError, match="'svm' has no exact dense pass"):
        use_crops("crops", None, Recipe(), name="svm")


def test_crop_cost_share_counts_the_blocks_a_batch_touches() -> None:
    from hsi.models.profile import DenseCost
    from hsi.training.crops import crop_cost_share

    area = DenseCost(layers=((1.0, 0),), head_macs=0)  # a trunk costing one MAC per tile pixel
    # One block (the whole 20 x 30 scene), 50 pixels in one batch: (20 + 10) x (30 + 10) against 50 x 11^2.
    rows, cols = _pixels(20, 30, 50, seed=0)
    assert crop_cost_share(area, rows, cols, height=20, width=30, patch_size=11, batch_size=64) == pytest.approx(
        30 * 40 / (50 * 121))
    # Two batches: the block is run twice.
    assert crop_cost_share(area, rows, cols, height=20, width=30, patch_size=11, batch_size=25) == pytest.approx(
        2 * 30 * 40 / (50 * 121))
    # Two blocks of 10 x 10 holding 1 and 3 of 4 pixels, batches of 2: touched with probability 1 - (1 - m/4)^2.
    rows, cols = torch.tensor([0, 10, 11, 12]), torch.tensor([0, 10, 11, 12])
    expected = 2 * ((1 - 0.75**2) + (1 - 0.25**2)) * (10 + 4) ** 2 / (4 * 25)
    assert crop_cost_share(area, rows, cols, height=20, width=20, patch_size=5, batch_size=2, side=10) == pytest.approx(
        expected)
    # The head costs the same both ways: it narrows the share towards 1.
    with_head = DenseCost(layers=((1.0, 0),), head_macs=100)
    share = crop_cost_share(with_head, rows, cols, height=20, width=20, patch_size=5, batch_size=2, side=10)
    assert share == pytest.approx((expected * 4 * 25 + 4 * 100) / (4 * (25 + 100)))


def test_dense_cost_counts_hybridsn_as_its_profile_does() -> None:
    from hsi.models.profile import dense_cost, profile_model

    model = create_model("hybridsn", in_chans=30, num_classes=16, patch_size=25)
    cost = dense_cost(model, in_chans=30, patch_size=25)
    assert [lost for _, lost in cost.layers] == [2, 4, 6, 8]
    total = profile_model(model, patch_size=25, in_chans=30, num_classes=16)["macs_per_patch"]
    assert cost.trunk_macs(25, 25) + cost.head_macs == pytest.approx(total)
    assert cost.head_macs == 64 * 17 * 17 * 256 + 256 * 128 + 128 * 16  # the dense layers


def test_auto_takes_crops_where_they_are_exact_and_cheaper() -> None:
    from hsi.training.crops import use_crops
    from hsi.training.recipe import Recipe

    hybridsn = create_model("hybridsn", in_chans=13, num_classes=3, patch_size=25)
    dense = _pixels(83, 86, 535, seed=1)  # Salinas-A's size, 10% of its labels: one block, 3 batches
    sparse = _pixels(610, 340, 4000, seed=1)  # Pavia-U's size: every batch touches most of 28 blocks
    auto = {"name": "hybridsn", "batch_size": 256}
    assert use_crops("auto", hybridsn, Recipe(), rows=dense[0], cols=dense[1], height=83, width=86, **auto)
    assert not use_crops("auto", hybridsn, Recipe(), rows=sparse[0], cols=sparse[1], height=610, width=340, **auto)
    assert use_crops("auto", hybridsn, Recipe(augment=True), rows=dense[0], cols=dense[1], height=83, width=86,
                     **auto)
    assert not use_crops("auto", hybridsn, Recipe(context_mix=0.5), rows=dense[0], cols=dense[1], height=83,
                         width=86, **auto)
    assert not use_crops("auto", None, Recipe(), rows=dense[0], cols=dense[1], height=83, width=86,
                         name="svm", batch_size=256)
    assert not use_crops("auto", hybridsn, Recipe(), name="hybridsn")  # settings checked before the data: no answer


def _train_two_epochs(**fit_options: object) -> tuple[nn.Module, list[float]]:
    """HybridSN (p=9) trained 2 epochs on 48 pixels of a synthetic 15 x 13 x 13 cube: the model and its losses."""
    from hsi.training.trainer import PixelSet, fit

    cube = np.random.default_rng(0).normal(size=(15, 13, 13)).astype(np.float32)
    source = PatchSource(cube, patch_size=9)
    rows, cols = _pixels(15, 13, 48, seed=4)
    train = PixelSet(rows, cols, torch.from_numpy(np.random.default_rng(5).integers(0, 3, size=48)))
    model = create_model("hybridsn", in_chans=13, num_classes=3, patch_size=9, seed=0)
    state = fit(model, source, train, epochs=2, batch_size=16, lr=1e-3, seed=0, progress=False, **fit_options)
    return model, [row["train_loss"] for row in state.history]


def test_training_on_crops_follows_the_path_of_training_on_patches() -> None:
    """With dropout on: the head runs on the patch batch's slices, so two epochs give the same losses and weights."""
    (patch_model, patch_losses), (crop_model, crop_losses) = (
        _train_two_epochs(crops=crops, micro_batch=6) for crops in (False, True))
    assert crop_losses == pytest.approx(patch_losses, rel=1e-4)
    for a, b in zip(patch_model.parameters(), crop_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_training_on_crops_with_flips_is_seeded_and_flips() -> None:
    """The recipe's flips on crops: the same seed repeats the losses, and they differ from training without flips."""
    from hsi.training.recipe import Recipe

    losses = [_train_two_epochs(crops=True, recipe=recipe)[1]
              for recipe in (Recipe(augment=True), Recipe(augment=True), Recipe())]
    assert losses[0] == losses[1]
    assert losses[0][1] != pytest.approx(losses[2][1], rel=1e-4)
