"""Seeding: every random draw of a run follows from its one seed."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's global and torch's generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Switches torch to deterministic algorithms (slower on GPU; identical results per seed)."""
    if enabled:
        # cuBLAS needs this workspace setting for deterministic matrix products.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's batch order and dropout, so a resumed run repeats it exactly."""
    return (seed * 1_000_003 + epoch) % 2**63
