"""Fixtures for the data layer: MATLAB v7.3 copies of the synthetic scene and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.io

SALINAS_A_CUBE = "SalinasA_corrected.mat"
_MATLAB_CLASS = {np.dtype(t): t for t in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")}
_MATLAB_CLASS |= {np.dtype("float64"): "double", np.dtype("float32"): "single"}


@pytest.fixture(name="write_mat_v73")
def write_mat_v73_fixture() -> Callable[[Path, dict[str, np.ndarray | str]], Path]:
    """The :func:`write_mat_v73` helper, for tests that build their own v7.3 files."""
    return write_mat_v73


def write_mat_v73(path: Path, arrays: dict[str, np.ndarray | str]) -> Path:
    """Writes ``arrays`` as MATLAB does with ``save -v7.3``.

    An HDF5 file behind a 512-byte user block whose first 128 bytes are the MAT header
    (text, version 0x0200, endian mark 'IM'); each variable is a root dataset holding the
    array in column-major order, so its HDF5 shape is the MATLAB shape reversed, with a
    ``MATLAB_class`` attribute; large arrays are chunked and gzip-compressed.
    """
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in arrays.items():
            data, matlab_class = _matlab_layout(value)
            compress = {"compression": "gzip", "chunks": True} if data.size > 1000 else {}
            dataset = f.create_dataset(name, data=data, **compress)
            dataset.attrs.create("MATLAB_class", np.bytes_(matlab_class))
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with path.open("r+b") as f:
        f.write(text.ljust(116) + b"\x00" * 8 + b"\x00\x02" + b"IM")
    return path


def _matlab_layout(value: np.ndarray | str) -> tuple[np.ndarray, str]:
    """(HDF5 data, MATLAB class) of one variable: the transpose, as MATLAB is column-major."""
    if isinstance(value, str):  # a MATLAB (1, n) char array: UTF-16 code units, HDF5 shape (n, 1)
        return np.array([[ord(c)] for c in value], dtype=np.uint16), "char"
    if value.dtype == np.bool_:
        return value.T.astype(np.uint8), "logical"
    return value.T, _MATLAB_CLASS[value.dtype]


@pytest.fixture(scope="session")
def synthetic_v5(synthetic_scene: Any) -> dict[str, np.ndarray]:
    """The synthetic scene's arrays as read by scipy (the reference for every other format)."""
    return {"cube": scipy.io.loadmat(synthetic_scene.cube)["cube"], "gt": scipy.io.loadmat(synthetic_scene.gt)["gt"]}


@pytest.fixture
def synthetic_v73(tmp_path: Path, synthetic_v5: dict[str, np.ndarray]) -> dict[str, Path]:
    """A MATLAB v7.3 copy of the synthetic scene: cube and gt files with the original keys."""
    return {
        "cube": write_mat_v73(tmp_path / "synthetic_cube_v73.mat", {"cube": synthetic_v5["cube"]}),
        "gt": write_mat_v73(tmp_path / "synthetic_gt_v73.mat", {"gt": synthetic_v5["gt"]}),
    }


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; paths ending in ``.cut`` announce 1 MB but send 10 bytes and hang up."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.endswith(".cut.mat"):
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@dataclass
class LocalServer:
    """A running HTTP server: files under ``root`` are served at ``url``."""

    root: Path
    url: str


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1 (random port) serving an empty tmp folder."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield LocalServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def salinas_a_mirror(http_server: LocalServer, shared_data_dir: Path) -> LocalServer:
    """The local server serving a mirror of the REAL ``shared/data/salinas_a`` at ``<url>/salinas_a/`` (e2e)."""
    shutil.copytree(shared_data_dir / "salinas_a", http_server.root / "salinas_a")
    return http_server


@pytest.fixture
def synthetic_mirror(http_server: LocalServer, synthetic_scene: Any) -> LocalServer:
    """The local server serving the synthetic cube under Salinas-A's name: ``<url>/salinas_a/SalinasA_corrected.mat``.

    Its sha256 is the synthetic file's (``file_sha256(synthetic_scene.cube)``), not the published one.
    """
    folder = http_server.root / "salinas_a"
    folder.mkdir()
    shutil.copyfile(synthetic_scene.cube, folder / SALINAS_A_CUBE)
    return http_server


@pytest.fixture
def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
