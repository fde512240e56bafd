"""Fixtures of the engine tests: placeholder figures in this process, and a real two-node Ray cluster.

The cluster (tests marked ``ray`` only) is two raylets on this host, each with 1 CPU: a head
started with ``ray start --head`` and a second node with ``ray start --address``. Its addresses
are 127.0.0.2, a loopback address: Ray rewrites 127.0.0.1 (and ``localhost``) to the host's
network address, so the cluster would listen there instead. Teardown is the cluster's own
``ray stop``, also when a test fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RAY_HOST = "127.0.0.2"  # loopback; see the module docstring


@dataclass(frozen=True)
class RayCluster:
    """A running local cluster: its ``address`` (host:port) and the environment its clients need."""

    address: str
    env: dict[str, str]


def _ray(*args: str, env: dict[str, str], timeout: float = 120) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "ray"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")


def _free_port() -> int:
    # Outside Ray's default worker ports (10002-19999): the kernel's ephemeral range.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A head and a second node, 1 CPU each, on loopback; stopped with ``ray stop`` afterwards."""
    pytest.importorskip("ray")
    # A short folder of its own: Ray's socket paths must stay under the 107-byte limit.
    temp_dir = tempfile.mkdtemp(prefix="hsiray")
    # Authentication off, explicitly: left unset, Ray turns it on when it finds a token in ~/.ray
    # (one `ray.init()` on this machine makes one) and the second node, without it, is refused.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"{RAY_HOST}:{port}"
    common = ["--num-cpus=1", f"--node-ip-address={RAY_HOST}", "--object-store-memory=100000000"]
    try:
        _ray("start", "--head", f"--port={port}", "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={temp_dir}", *common, env=env)
        _ray("start", f"--address={address}", *common, env=env)
        yield RayCluster(address, env)
    finally:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], env=env,
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(temp_dir, ignore_errors=True)
