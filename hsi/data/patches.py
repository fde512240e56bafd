"""Patches cut on the fly from a padded cube held as one tensor (never all patches at once)."""

from __future__ import annotations

import numpy as np
import torch

from hsi._core.errors import ConfigError
from hsi._core.validation import check_patch_size

PAD_MODES = ("constant", "reflect")


class PatchSource:
    """Gathers ``(N, C, p, p)`` patches centred on given pixels of a cube.

    The cube is padded once by ``p // 2`` on each side (zeros for ``"constant"``, the
    paper's choice; mirrored for ``"reflect"``) and kept as a ``(C, H + p - 1, W + p - 1)``
    tensor on ``device``, so every pixel, border pixels included, has a full patch, and a
    batch is one indexing operation on the device, with no per-sample Python.

    Args:
        cube: shape (H, W, C) float32.
        patch_size: odd window side p.
        pad_mode: ``"constant"`` or ``"reflect"``.
        device: where the padded cube lives and patches are produced.
    """

    def __init__(
        self, cube: np.ndarray, *, patch_size: int, pad_mode: str = "constant", device: torch.device | str = "cpu"
    ) -> None:
        height, width, _ = cube.shape
        check_patch_size(patch_size, height=height, width=width)
        if pad_mode not in PAD_MODES:
            raise ConfigError(f"pad mode must be one of {PAD_MODES}; got {pad_mode!r}.")
        self.patch_size = patch_size
        self.height, self.width, self.n_channels = cube.shape
        radius = patch_size // 2
        chw = torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1))).to(device)
        mode = "constant" if pad_mode == "constant" else "reflect"
        # F.pad's reflect needs a batch dimension for 3-D input.
        self.padded = torch.nn.functional.pad(chw[None], (radius,) * 4, mode=mode)[0].contiguous()
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
