"""Patches cut on the fly from a padded cube held as one tensor (never all patches at once)."""

from __future__ import annotations

import numpy as np
import torch

from hsi._core.validation import check_patch_size
from hsi.data.padding import pad_cube


class PatchSource:
    """Gathers ``(N, C, p, p)`` patches centred on given pixels of a cube.

    The cube is padded once by ``p // 2`` on each side (as the pad mode of
    :data:`hsi.data.padding.PAD_MODES` says) and kept as a ``(C, H + p - 1, W + p - 1)``
    tensor on ``device``, so every pixel, border pixels included, has a full patch, and a
    batch is one indexing operation on the device, with no per-sample Python.

    Args:
        cube: shape (H, W, C) float32.
        patch_size: odd window side p.
        pad_mode: a name of :data:`hsi.data.padding.PAD_MODES`, e.g. ``"constant"``.
        device: where the padded cube lives and patches are produced.
    """

    def __init__(
        self, cube: np.ndarray, *, patch_size: int, pad_mode: str = "constant", device: torch.device | str = "cpu"
    ) -> None:
        height, width, _ = cube.shape
        check_patch_size(patch_size, height=height, width=width)
        padded = pad_cube(cube, patch_size // 2, pad_mode)
        self.patch_size = patch_size
        self.height, self.width, self.n_channels = cube.shape
        self.padded = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))).to(device)
        self._offsets = torch.arange(patch_size, device=self.padded.device)

    @property
    def device(self) -> torch.device:
        return self.padded.device

    def gather(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Patches centred on pixels ``(rows[i], cols[i])``.

        Args:
            rows, cols: int64 tensors of shape (N,) on :attr:`device`.

        Returns:
            shape (N, C, p, p) float32.
        """
        # In the padded frame, the window of pixel (r, c) starts at (r, c).
        row_idx = (rows[:, None] + self._offsets)[:, :, None]  # (N, p, 1)
        col_idx = (cols[:, None] + self._offsets)[:, None, :]  # (N, 1, p)
        return self.padded[:, row_idx, col_idx].permute(1, 0, 2, 3).contiguous()

    def pixel_coordinates(self, mask: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Row and column tensors of the pixels where ``mask`` (H, W) is true (all pixels if None)."""
        if mask is None:
            mask = np.ones((self.height, self.width), dtype=bool)
        rows, cols = np.nonzero(mask)
        return (
            torch.from_numpy(rows.astype(np.int64)).to(self.device),
            torch.from_numpy(cols.astype(np.int64)).to(self.device),
        )
