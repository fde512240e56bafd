"""`repeat --engine ray` on a real two-node Ray cluster on loopback (marker ``ray``: `pytest -m ray`).

A Ray command runs in its own interpreter, as a user runs it (the Ray driver must not live in
the pytest process); the local reference runs here with the single torch thread a Ray run gets
(``--cpus-per-run 1``), so the two are comparable number for number. Each node has 1 CPU and
each run asks for 1, so the four runs are necessarily spread over both nodes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hsi.experiments.train import clock_free

pytestmark = pytest.mark.ray

SEEDS = "3,4,5,6"


def _repeat(scene: Any, out: Path, name: str, *engine: str) -> list[str]:
    return [sys.executable, "-m", "hsi", "repeat", *scene.args(), "--model", "hybridsn", "--patch-size", "5",
            "--pca-components", "15", "--epochs", "2", "--batch-size", "64", "--train-ratio", "0.2",
            "--deterministic", "--seeds", SEEDS, "--out", str(out), "--name", name, "--quiet", *engine]


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def _run_metrics(repeat_dir: Path) -> dict[str, dict[str, Any]]:
    """Each run's metrics.json, timing left out, by run folder."""
    runs = sorted(p for p in repeat_dir.iterdir() if p.is_dir())
    return {r.name: clock_free(json.loads((r / "metrics.json").read_text())) for r in runs}


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def local_repeat(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same repeat with ``--engine local`` in this process, on one torch thread as each Ray run has."""
    import torch

    from hsi.cli.main import main

    out, threads = tmp_path_factory.mktemp("local"), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_repeat(synthetic_scene, out, "local")[3:]) == 0
    finally:
        torch.set_num_threads(threads)
    return out / "local"


def test_ray_repeat_on_two_nodes_equals_the_local_one(
    ray_cluster: Any, local_repeat: Path, synthetic_scene: Any, tmp_path: Path
) -> None:
    _run(_repeat(synthetic_scene, tmp_path, "ray", "--engine", "ray", "--ray-address", ray_cluster.address),
         ray_cluster.env)
    ray_dir = tmp_path / "ray"
    assert _files(ray_dir) == _files(local_repeat)  # the same layout, file for file
    stability = {name: json.loads((d / "stability.json").read_text()) for name, d in (("ray", ray_dir),
                                                                                          ("local", local_repeat))}
    assert stability["ray"]["runs"] == stability["local"]["runs"]  # per-run OA, AA, kappa and seeds
    assert _run_metrics(ray_dir) == _run_metrics(local_repeat)  # and every other metric of each run
    for key in ("overall_accuracy", "average_accuracy", "kappa", "per_class", "agreement"):
        assert stability["ray"][key] == stability["local"][key]
    engine = json.loads((ray_dir / "repeat.json").read_text())["engine"]
    assert engine["engine"] == "ray" and engine["address"] == ray_cluster.address
    assert engine["retries"] == {f"run-{k}-seed{s}": 0 for k, s in enumerate((3, 4, 5, 6))}
    states = {json.loads((r / "status.json").read_text())["state"] for r in ray_dir.iterdir() if r.is_dir()}
    assert states == {"complete"}


def _running_task_pids() -> list[int]:
    """Ray workers executing one of our runs (Ray titles a busy worker ``ray::<function>``)."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("ray::_call_on_ray"):
            pids.append(proc.info["pid"])
    return pids


def test_a_killed_worker_is_retried_and_the_repeat_completes(
    ray_cluster: Any, local_repeat: Path, synthetic_scene: Any, tmp_path: Path
) -> None:
    argv = _repeat(synthetic_scene, tmp_path, "killed", "--engine", "ray", "--ray-address", ray_cluster.address)
    driver = subprocess.Popen(argv, env=ray_cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and driver.poll() is None and time.monotonic() < deadline:
            pids = _running_task_pids()
            if pids:
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        _, stderr = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert killed is not None, "no Ray worker was seen running a run"
    assert driver.returncode == 0, stderr[-3000:]
    folder = tmp_path / "killed"
    assert _run_metrics(folder) == _run_metrics(local_repeat)  # all runs, the same numbers
    retries = json.loads((folder / "repeat.json").read_text())["engine"]["retries"]
    assert sorted(retries) == [f"run-{k}-seed{s}" for k, s in enumerate((3, 4, 5, 6))]
    assert sum(retries.values()) == 1, retries
    assert "lost worker" in stderr
