"""Fixtures of the model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Runs each model test on one intra-op thread, then restores the setting.

    The inputs are tiny, so threads gain nothing; and when another process keeps a core
    busy, OpenMP threads waiting on each other made this suite ~10x slower (106 s vs 10 s
    on 2 cores).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
