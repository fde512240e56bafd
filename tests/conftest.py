"""Shared fixtures: the real data folder, a headless matplotlib, no network."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HSI_TEST_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real scenes (../shared/data); tests that need it skip without it."""
    if not (SHARED_DATA / "salinas_a" / "SalinasA_corrected.mat").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuses connections to anything but loopback, so no test reaches the internet."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
            raise OSError(f"tests may not reach the network ({host})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keeps the user's data directory, mirror and cache out of tests."""
    monkeypatch.delenv("HSI_DATA_DIR", raising=False)
    monkeypatch.delenv("HSI_DATASET_MIRROR", raising=False)
    monkeypatch.setenv("HSI_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
