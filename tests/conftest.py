"""Shared fixtures: the tiny synthetic scene, the real data folder (e2e tests), a headless matplotlib, no network.

Unit tests use the SYNTHETIC scene under ``tests/data/synthetic_scene/`` (made by its
``data.py``). Tests that need the real scenes of ``../shared/data`` are marked ``e2e``; without
that folder they are skipped, and the run says so on one line at the end.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HSI_TEST_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
SYNTHETIC_DIR = REPO_ROOT / "tests" / "data" / "synthetic_scene"
_REAL_DATA_FOUND = (SHARED_DATA / "salinas_a" / "SalinasA_corrected.mat").exists()
_skipped_e2e: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips the ``e2e`` tests, and only them, when the real data is absent."""
    if _REAL_DATA_FOUND:
        return
    skip = pytest.mark.skip(reason=f"e2e: real data not found at {SHARED_DATA}")
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(skip)
            _skipped_e2e.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_e2e:
        terminalreporter.write_line(
            f"skipped {len(_skipped_e2e)} e2e tests: real data not found at {SHARED_DATA} "
            "(put ../shared/data beside the checkout or set HSI_TEST_DATA_DIR)"
        )


@dataclass(frozen=True)
class SyntheticScene:
    """Paths of the tiny synthetic scene (30 x 26 pixels, 24 bands, label ids 2, 3, 5, 9)."""

    cube: Path
    gt: Path
    cube_npy: Path
    gt_npy: Path
    label_ids: tuple[int, ...] = (2, 3, 5, 9)
    shape: tuple[int, int, int] = (30, 26, 24)

    def args(self) -> list[str]:
        """``--cube FILE --gt FILE`` for the CLI."""
        return ["--cube", str(self.cube), "--gt", str(self.gt)]


@pytest.fixture(scope="session")
def synthetic_scene() -> SyntheticScene:
    """The committed tiny synthetic scene (see tests/data/synthetic_scene/data.py)."""
    return SyntheticScene(
        cube=SYNTHETIC_DIR / "synthetic_cube.mat", gt=SYNTHETIC_DIR / "synthetic_gt.mat",
        cube_npy=SYNTHETIC_DIR / "synthetic_cube.npy", gt_npy=SYNTHETIC_DIR / "synthetic_gt.npy",
    )


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real scenes (../shared/data), for tests marked ``e2e`` only."""
    if not _REAL_DATA_FOUND:
        pytest.skip(f"e2e: real data not found at {SHARED_DATA}")
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
