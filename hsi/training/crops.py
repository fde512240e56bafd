"""Training on scene crops: each batch's dense convolutions run once per crop, not once per patch.

A batch of 25x25 patches recomputes the convolutions of every position its patches share;
on a scene of 10% training density most positions are shared many times. Here the batch is
the same random draw of training pixels as with patches, grouped by the fixed grid of
``side`` x ``side`` blocks they fall in: the network's fully convolutional trunk
(``model.dense_features``) runs once over each block that holds batch pixels (with its halo
of p // 2), and the dense head is applied to each pixel's window, in the batch's order and on
the same slices as a patch batch (so dropout draws the same masks). For networks whose dense
pass is exact (``supports_dense``) the logits, loss and gradients equal those of the patch
batch (tested), so training follows the same path up to float rounding; only the cost differs: a step costs the
blocks' padded areas instead of ``batch x p^2`` positions, which pays with large patches
(measured: docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from hsi._core.errors import ConfigError
from hsi.data.patches import PatchSource
from hsi.models.profile import DenseCost, dense_cost
from hsi.training.recipe import Recipe, TrainingParts

__all__ = ["CROPS_COST_SHARE", "Crop", "batch_crops", "crop_cost_share", "crop_windows", "use_crops"]

#: block side (output pixels). On 2 CPU cores, Salinas-A (83x86), 10% training, batch 256, p=25,
#: one epoch (median of 3, alternating with patches): side 32 as slow as patches, 48 1.8x faster,
#: 64 1.6x, 96 (the scene in one block) 2.5x: the trunk runs fastest on few large convolutions.
#: At p=15 crops were no faster than patches (2.70 against 2.45 s per epoch): they pay with large patches.
BLOCK_SIDE = 96


@dataclass(frozen=True)
class Crop:
    """Output block ``[top, top + height) x [left, left + width)`` of the scene and its batch pixels.

    ``members``: indices of the pixels inside the block, into the tensors the crop was planned from, shape (n,).
    """

    top: int
    left: int
    height: int
    width: int
    members: torch.Tensor


def batch_crops(rows: torch.Tensor, cols: torch.Tensor, *, height: int, width: int,
                side: int = BLOCK_SIDE) -> list[Crop]:
    """Groups a batch's pixels by the ``side`` x ``side`` block of the scene grid they fall in.

    Args:
        rows, cols: (n,) scene coordinates of the batch's pixels.
        height, width: the scene's size.

    Returns:
        One crop per block holding at least one pixel; every pixel in exactly one crop.
    """
    block_cols = -(-width // side)
    block = (rows // side) * block_cols + cols // side
    crops = []
    for b in torch.unique(block).tolist():
        top, left = (b // block_cols) * side, (b % block_cols) * side
        members = torch.nonzero(block == b).flatten()
        crops.append(Crop(top, left, min(side, height - top), min(side, width - left), members))
    return crops


def crop_windows(model: nn.Module, source: PatchSource, rows: torch.Tensor, cols: torch.Tensor, *,
                 side: int = BLOCK_SIDE, flips: torch.Generator | None = None) -> torch.Tensor:
    """What the dense head sees for each batch pixel, from one dense pass per crop: (n, F, s, s).

    ``model.forward_head`` of these windows equals ``model(source.gather(rows, cols))`` for a
    model whose dense pass is exact. ``model.dense_features`` maps a padded tile
    (1, C, h + p - 1, w + p - 1) to (1, F, h + s - 1, w + s - 1) maps whose s x s window at
    (i, j) is what the head sees for pixel (i, j) of the tile. The windows come back in the
    order of ``rows``/``cols`` (the batch's), so the head can run on the same slices as a
    patch batch and draw the same dropout masks.

    With ``flips`` (the recipe's ``augment``) each crop first gets one of the 8 flips/90-degree
    rotations, drawn from that generator in the order
    :func:`~hsi.training.batching.augment_patches` uses for a patch (transpose, flip rows, flip
    columns), and its pixels' windows are read at their moved positions: each pixel then sees
    its own patch under that transform, exactly; the pixels of one crop share the transform.

    Args:
        rows, cols: (n,) scene coordinates of the batch's pixels.
    """
    p = source.patch_size
    network = cast(Any, model)  # a dense-capable PatchClassifier (see use_crops)
    offsets = None
    windows: list[torch.Tensor] = []
    members: list[torch.Tensor] = []
    for crop in batch_crops(rows, cols, height=source.height, width=source.width, side=side):
        tile = source.padded[:, crop.top : crop.top + crop.height + p - 1, crop.left : crop.left + crop.width + p - 1]
        r = rows[crop.members] - crop.top
        c = cols[crop.members] - crop.left
        if flips is not None:
            tile, r, c = _flip_crop(tile, r, c, p, torch.randint(0, 2, (3,), generator=flips).tolist())
        maps = network.dense_features(tile.unsqueeze(0))[0]  # (F, h + s - 1, w + s - 1)
        if offsets is None:
            offsets = torch.arange(int(network.feature_side), device=maps.device)
        gathered = maps[:, (r[:, None] + offsets)[:, :, None], (c[:, None] + offsets)[:, None, :]]  # (F, n, s, s)
        windows.append(gathered.permute(1, 0, 2, 3))
        members.append(crop.members)
    in_crop_order = torch.cat(windows)
    order = torch.empty_like(rows)
    order[torch.cat(members).to(rows.device)] = torch.arange(len(rows), device=rows.device)
    return in_crop_order[order.to(in_crop_order.device)]


def _flip_crop(tile: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, patch_size: int,
               bits: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A padded tile (C, h + p - 1, w + p - 1) transposed / row-flipped / column-flipped as
    ``bits`` say, and its pixels' tile-local positions (n,) after that: the patch at a pixel's
    new position is its old patch under the same transform."""
    transpose, flip_rows, flip_cols = bits
    if transpose:
        tile, rows, cols = tile.transpose(-1, -2), cols, rows
    if flip_rows:  # position r's patch covers rows r..r + p - 1 of H: flipped, it starts at H - p - r
        tile, rows = tile.flip(-2), tile.shape[-2] - patch_size - rows
    if flip_cols:
        tile, cols = tile.flip(-1), tile.shape[-1] - patch_size - cols
    return tile, rows, cols


#: ``--train-input auto`` takes crops when their expected MACs per epoch are at most this share of
#: the patches' (what the counts leave out, the optimiser step and gathering windows, costs about
#: the same either way; measured: docs/performance.md).
CROPS_COST_SHARE = 0.5


def crop_cost_share(cost: DenseCost, rows: torch.Tensor, cols: torch.Tensor, *, height: int, width: int,
                    patch_size: int, batch_size: int, side: int = BLOCK_SIDE) -> float:
    """Expected MACs of an epoch on crops over those of an epoch on patches.

    Patches: every training pixel's p x p patch through the trunk and the head. Crops: each
    batch runs the trunk over every block it touches with its halo, (h + p - 1) x (w + p - 1),
    and the head at each pixel; a block holding m of the n training pixels is touched by a
    random batch of b with probability 1 - (1 - m / n)^b.

    Args:
        cost: the network's :class:`~hsi.models.profile.DenseCost`.
        rows, cols: (n,) scene coordinates of the training pixels.
    """
    n = len(rows)
    if n == 0:
        return float("inf")
    batch = min(batch_size, n)
    trunk = 0.0
    for block in batch_crops(rows, cols, height=height, width=width, side=side):  # the blocks all pixels fall in
        touched = 1 - (1 - len(block.members) / n) ** batch
        trunk += touched * cost.trunk_macs(block.height + patch_size - 1, block.width + patch_size - 1)
    crop_macs = -(-n // batch) * trunk + n * cost.head_macs
    return crop_macs / (n * (cost.trunk_macs(patch_size, patch_size) + cost.head_macs))


def use_crops(train_input: str, network: nn.Module | None, recipe: TrainingParts | Recipe, *, name: str,
              rows: torch.Tensor | None = None, cols: torch.Tensor | None = None, height: int = 0, width: int = 0,
              batch_size: int = 0) -> bool:
    """Resolves ``--train-input``: ``patches`` -> False; ``crops`` -> True where crops are exact;
    ``auto`` -> True where they are exact and :func:`crop_cost_share` <= :data:`CROPS_COST_SHARE`.

    Exact needs a network with an exact dense pass and no per-patch spectral jitter or context
    mix (a crop would scale or mix its pixels together); flips are drawn per crop
    (:func:`crop_windows`). ``auto`` without the training pixels (``rows`` None, as
    when settings are checked before any data is read) answers False and refuses nothing.

    Args:
        rows, cols: (n,) scene coordinates of the training pixels; height, width: the scene's
            (the padded source's unpadded) size; batch_size: pixels per optimiser step.

    Raises:
        ConfigError: ``crops`` for a model (``name``; ``network`` None for one that is no network) or
            recipe that cannot train on crops.
    """
    if train_input == "patches":
        return False
    why_not = None
    if not getattr(network, "supports_dense", False) or not hasattr(network, "dense_features"):
        why_not = f"model {name!r} has no exact dense pass at these settings"
    elif recipe.jitter > 0 or recipe.context_mix > 0:
        why_not = "the recipe augments each patch on its own (spectral jitter, context mix)"
    if train_input == "auto":
        if why_not is not None or rows is None or cols is None:
            return False
        dense_net = cast(Any, network)
        patch_size = int(dense_net.patch_size)
        cost = dense_cost(dense_net, in_chans=int(dense_net.in_chans), patch_size=patch_size)
        return crop_cost_share(cost, rows, cols, height=height, width=width, patch_size=patch_size,
                               batch_size=batch_size) <= CROPS_COST_SHARE
    if why_not is not None:
        raise ConfigError(f"--train-input crops needs a network with an exact dense pass and no per-patch "
                          f"augmentation; here {why_not}. Use --train-input patches or auto.")
    return True
