"""Training on scene crops: each batch's dense convolutions run once per crop, not once per patch.

A batch of 25x25 patches recomputes the convolutions of every position its patches share;
on a scene of 10% training density most positions are shared many times. Here the batch is
the same random draw of training pixels as with patches, grouped by the fixed grid of
``side`` x ``side`` blocks they fall in: the network's fully convolutional trunk
(``model.dense_features``) runs once over each block that holds batch pixels (with its halo
of p // 2), and the dense head is applied to each pixel's window. For networks whose dense
pass is exact (``supports_dense``) the logits, loss and gradients equal those of the patch
batch (tested), so training follows the same path; only the cost differs: a step costs the
blocks' padded areas instead of ``batch x p^2`` positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from hsi._core.errors import ConfigError
from hsi.data.patches import PatchSource
from hsi.training.recipe import Recipe

__all__ = ["Crop", "batch_crops", "crop_logits", "crops_pay", "use_crops"]

#: block side (output pixels). On 2 CPU cores, Salinas-A (83x86), 10% training, batch 256, p=25,
#: one epoch (median of 3, alternating with patches): side 32 as slow as patches, 48 1.8x faster,
#: 64 1.6x, 96 (the scene in one block) 2.5x: the trunk runs fastest on few large convolutions.
#: On a large scene with sparse batch pixels :func:`crops_pay` falls back to patches.
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


def crops_pay(rows: torch.Tensor, cols: torch.Tensor, *, height: int, width: int, patch_size: int,
              batch_size: int, side: int = BLOCK_SIDE) -> bool:
    """Whether an epoch of crops costs at most half the convolution positions of patches.

    Patches cost ``N * p^2`` positions per epoch; crops the padded areas of the blocks each
    batch touches (counted on one seeded batch order).
    """
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))
    crop_positions = 0
    for batch in order.split(batch_size):
        for crop in batch_crops(rows[batch].cpu(), cols[batch].cpu(), height=height, width=width, side=side):
            crop_positions += (crop.height + patch_size - 1) * (crop.width + patch_size - 1)
    return 2 * crop_positions <= len(rows) * patch_size**2


def crop_logits(model: nn.Module, source: PatchSource, crop: Crop, rows: torch.Tensor,
                cols: torch.Tensor) -> torch.Tensor:
    """Logits (n, K) of the crop's training pixels from one dense pass over the crop.

    Equals ``model(source.gather(rows[crop.members], cols[crop.members]))`` for a model whose
    dense pass is exact: ``model.dense_features`` maps a padded tile (1, C, h + p - 1, w + p - 1)
    to (1, F, h + s - 1, w + s - 1) maps whose s x s window at (i, j) is what the head sees for
    pixel (i, j) of the tile; ``model.forward_head`` takes those windows.
    """
    p = source.patch_size
    network = cast(Any, model)  # a dense-capable PatchClassifier (see use_crops)
    tile = source.padded[:, crop.top : crop.top + crop.height + p - 1, crop.left : crop.left + crop.width + p - 1]
    maps = network.dense_features(tile.unsqueeze(0))[0]  # (F, h + s - 1, w + s - 1)
    side = int(network.feature_side)
    offsets = torch.arange(side, device=maps.device)
    r = rows[crop.members] - crop.top
    c = cols[crop.members] - crop.left
    windows = maps[:, (r[:, None] + offsets)[:, :, None], (c[:, None] + offsets)[:, None, :]]  # (F, n, s, s)
    return network.forward_head(windows.permute(1, 0, 2, 3))


def use_crops(train_input: str, network: nn.Module, recipe: Recipe, source: PatchSource, rows: torch.Tensor,
              cols: torch.Tensor, *, batch_size: int) -> bool:
    """Resolves ``--train-input``: ``patches`` -> False; ``crops`` -> True where exact, else an error;
    ``auto`` -> crops where exact and :func:`crops_pay`.

    Exact needs a network with an exact dense pass and no per-patch augmentation (a crop would
    flip or scale its pixels together).

    Raises:
        ConfigError: ``crops`` for a network or recipe that cannot train on crops.
    """
    if train_input == "patches":
        return False
    why_not = None
    if not getattr(network, "supports_dense", False) or not hasattr(network, "dense_features"):
        why_not = f"{type(network).__name__} at this patch size has no exact dense pass"
    elif recipe.augment or recipe.jitter > 0:
        why_not = "the recipe augments each patch on its own (flips, spectral jitter)"
    if train_input == "crops" and why_not is not None:
        raise ConfigError(f"--train-input crops needs a network with an exact dense pass and no per-patch "
                          f"augmentation; here {why_not}. Use --train-input patches (or auto).")
    if why_not is not None:
        return False
    return train_input == "crops" or crops_pay(rows, cols, height=source.height, width=source.width,
                                               patch_size=source.patch_size, batch_size=batch_size)
