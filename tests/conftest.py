"""Shared fixtures: the tiny synthetic scene, the real data folder (e2e tests), a headless matplotlib, no network.

Unit tests use the SYNTHETIC scene under ``tests/data/synthetic_scene/`` (made by its
``data.py``). Tests that need the real scenes of ``../shared/data`` are marked ``e2e``; without
that folder they are skipped, and the run says so on one line at the end.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
import scipy.io

matplotlib.use("Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HSI_TEST_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
SYNTHETIC_DIR = REPO_ROOT / "tests" / "data" / "synthetic_scene"
_REAL_DATA_FOUND = (SHARED_DATA / "salinas_a" / "SalinasA_corrected.mat").exists()
_skipped_e2e: list[str] = []


@pytest.hookimpl(trylast=True)  # after -m has deselected, so only tests that would run are counted
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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def figures_not_drawn() -> Iterator[None]:
    """Writes each figure as a bare PNG signature instead of drawing it (for the module using it).

    A run writes about ten figures, and drawing them took most of the time of the tests that
    run the pipeline; what the figures show is tested in tests/reporting/test_figures.py, the
    pipeline tests check only that each file is written. Processes a test starts still draw theirs.
    """
    from matplotlib.figure import Figure

    def save(self: Figure, target: Any, *args: Any, **kwargs: Any) -> None:
        if hasattr(target, "write"):
            target.write(PNG_SIGNATURE)
        else:
            Path(target).write_bytes(PNG_SIGNATURE)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", save)
        yield


#: The test folders whose modules run the pipeline in this process: their figures are placeholders.
PIPELINE_FOLDERS = ("api", "bigscene", "cli", "engine", "experiments")


@pytest.fixture(scope="module", autouse=True)
def _pipeline_figures_not_drawn(request: pytest.FixtureRequest) -> None:
    """The modules of :data:`PIPELINE_FOLDERS` write placeholder figures (:func:`figures_not_drawn`)."""
    if Path(str(request.path)).parent.name in PIPELINE_FOLDERS:
        request.getfixturevalue("figures_not_drawn")


@pytest.fixture(scope="session")
def synthetic_scene() -> SyntheticScene:
    """The committed tiny synthetic scene (see tests/data/synthetic_scene/data.py)."""
    return SyntheticScene(
        cube=SYNTHETIC_DIR / "synthetic_cube.mat", gt=SYNTHETIC_DIR / "synthetic_gt.mat",
        cube_npy=SYNTHETIC_DIR / "synthetic_cube.npy", gt_npy=SYNTHETIC_DIR / "synthetic_gt.npy",
    )


FAKE_SALINAS_A_COUNTS = (220, 330, 440, 550, 660, 770)  # pixels of ids 1, 10, 11, 12, 13, 14


@pytest.fixture(scope="session")
def fake_salinas_a_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding FAKE ``salinas_a/`` files: the real names, keys, shapes and class ids.

    For tests of the built-in scene path (lookup, spec shape checks, class-count checks) without
    the real data. Cube int16 (83, 86, 204) of made-up spectra; ground truth uint8 with ids 1, 10..14
    as horizontal fields of FAKE_SALINAS_A_COUNTS pixels, the rest 0. Files on disk are not re-hashed,
    so load_scene accepts them; a download would not.
    """
    root = tmp_path_factory.mktemp("fake_data")
    folder = root / "salinas_a"
    folder.mkdir()
    rng = np.random.default_rng(0)
    gt = np.zeros((83, 86), dtype=np.uint8)
    for k, class_id in enumerate((1, 10, 11, 12, 13, 14)):
        gt[2 + 13 * k : 13 + 13 * k, 3 : 3 + 10 * (k + 2)] = class_id  # 11 rows x 10 (k + 2) columns
    means = 1000.0 + 300.0 * gt[..., None] * np.linspace(0.5, 1.5, 204)
    cube = np.round(means + rng.normal(0.0, 50.0, size=(83, 86, 204))).astype(np.int16)
    scipy.io.savemat(folder / "SalinasA_corrected.mat", {"salinasA_corrected": cube})
    scipy.io.savemat(folder / "SalinasA_gt.mat", {"salinasA_gt": gt})
    return root


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
