"""Seeding: every random draw of a run follows from its one seed, without touching anyone else's.

Library code never changes process-wide state for good: :func:`seeded_run` seeds torch's
generators and sets the determinism switches for one block and restores them afterwards.
Process-wide settings that have no way back (flushing subnormal floats) are made once by
the process's entry point (the CLI's ``main``, a worker's entry function).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's global and torch's generators (CPU and CUDA), for scripts and tests."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Switches torch to deterministic algorithms (slower on GPU; identical results per seed)."""
    if enabled:
        # cuBLAS needs this workspace setting for deterministic matrix products.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    _use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def _use_deterministic_algorithms(enabled: bool) -> None:
    """``torch.use_deterministic_algorithms(enabled)`` where it changes something: its first call imports
    ``torch._inductor`` (about a second on a 2-core machine). A network's optimiser imports it anyway
    (torch's ``add_param_group``); an estimator's run (SVM, forest) then never does."""
    if torch.are_deterministic_algorithms_enabled() != enabled or torch.is_deterministic_algorithms_warn_only_enabled():
        torch.use_deterministic_algorithms(enabled, warn_only=False)


@contextlib.contextmanager
def seeded_run(seed: int, *, deterministic: bool) -> Iterator[None]:
    """Runs a block with torch's generators seeded from ``seed`` and determinism set as asked.

    On exit the CPU and CUDA generator states and the determinism switches are what they
    were before, so a run inside a test, a notebook or a worker never disturbs its caller.
    (Everything else draws from explicit generators seeded from the run's seed.)

    Args:
        seed: the run's seed (initial state of the global torch generators, e.g. dropout).
        deterministic: deterministic algorithms and cuDNN kernels for the block.
    """
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        set_deterministic(deterministic)
        try:
            yield
        finally:
            _use_deterministic_algorithms(before[0])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's batch order and dropout, so a resumed run repeats it exactly."""
    return (seed * 1_000_003 + epoch) % 2**63
