"""Checkpoints carry a checksum of their content: altered weights are refused, older files still load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hsi._core.errors import CheckpointError
from hsi.training.checkpoint import FORMAT, load_checkpoint, save_checkpoint


def test_altered_weights_fail_the_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"state_dict": {"w": torch.arange(50_000, dtype=torch.float32)},
                           "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "betas": (0.9, 0.999)},
                           "names": ["a", "b"], "scale": 0.5, "missing": None})
    assert load_checkpoint(path)["optimizer"]["betas"] == [0.9, 0.999]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: the zip and the pickle stay valid
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its integrity check"):
        load_checkpoint(path)


def test_a_format_1_checkpoint_without_checksum_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save({"format": FORMAT, "format_version": 1, "state_dict": {"w": torch.ones(2)}}, path)
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(2))
