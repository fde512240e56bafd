"""scripts/bench.py --quick runs every case and prints one JSON line each.

The cases run in this process on the synthetic scene (``--cube``/``--gt``: no real file is read),
the driver (a fresh process per case) once on one case, and (e2e) real Salinas-A and a real
ground truth.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "case", "device", "device_name", "torch", "threads", "epochs", "batch_size", "micro_batch", "n_train",
    "train_seconds", "samples_per_second", "full_scene_pixels", "full_scene_seconds", "pixels_per_second",
    "inference_batch", "peak_host_rss_mb", "peak_gpu_memory_mb", "note", "overall_accuracy",
}
CASES = ["indian_pines_shape", "salinas_a", "pavia_u_shape"]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """scripts/bench.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("hsi_bench_script", REPO / "scripts" / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def _torch_settings_restored() -> Iterator[None]:
    """run_case sets torch's global switches (as each bench process does); put them back for later tests."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn


def _check(records: list[dict]) -> None:
    for record in records:
        assert KEYS <= set(record), KEYS - set(record)
        assert record["device"] == "cpu" and record["peak_gpu_memory_mb"] is None
        assert record["full_scene_seconds"] > 0 and record["pixels_per_second"] > 0
        assert record["peak_host_rss_mb"] > 0


def _run_cases(bench: ModuleType, *args: str, cases: list[str] = CASES) -> list[dict]:
    """The cases in this process, as ``bench.py --run-case CASE`` would; JSON round-tripped."""
    records = []
    for case in cases:
        parsed = bench.parse_args(["--quick", "--device", "cpu", "--run-case", case, *args])
        records += [json.loads(json.dumps(record)) for record in bench.run_case(parsed)]
    _check(records)
    return records


@pytest.mark.usefixtures("_torch_settings_restored")
def test_bench_quick_gives_one_record_per_measurement(bench: ModuleType, synthetic_scene: Any, tmp_path: Path) -> None:
    # --data-dir points at an empty folder: with --cube/--gt no real file may be read
    records = _run_cases(bench, "--cube", str(synthetic_scene.cube), "--gt", str(synthetic_scene.gt),
                         "--data-dir", str(tmp_path))
    assert [r["case"] for r in records] == ["indian_pines_shape", "indian_pines_shape", "salinas_a", "pavia_u_shape"]
    ip30, ip10, scene, pavia = records
    assert (ip30["train_ratio"], ip10["train_ratio"]) == (0.3, 0.1)
    assert ip30["epochs"] == 1 and ip30["samples_per_second"] > 0 and "random" in ip30["note"]
    assert ip30["scene_shape"] == [30, 26, 200] and pavia["scene_shape"] == [30, 26, 103]  # over the given layout
    assert scene["note"] == "custom scene synthetic_cube.mat" and scene["full_scene_pixels"] == 30 * 26
    assert scene["scene_shape"] == [30, 26, 24]
    assert 0 <= scene["overall_accuracy"] <= 1
    assert pavia["epochs"] == 0 and pavia["samples_per_second"] is None


def test_bench_driver_runs_each_case_in_a_fresh_process(synthetic_scene: Any, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--device", "cpu", "--threads", "1",
         "--cases", "pavia_u_shape", "--cube", str(synthetic_scene.cube), "--gt", str(synthetic_scene.gt),
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    _check(records)
    (record,) = records
    assert record["case"] == "pavia_u_shape" and record["threads"] == 1 and record["scene_shape"] == [30, 26, 103]
    assert 0 < record["peak_host_rss_mb"] < 2048  # that case's process alone


def test_bench_cube_needs_gt(synthetic_scene: Any) -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--cube", str(synthetic_scene.cube)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "--cube needs --gt" in done.stderr


@pytest.mark.e2e
@pytest.mark.usefixtures("_torch_settings_restored")
def test_bench_quick_on_the_real_files(bench: ModuleType, shared_data_dir: Path) -> None:
    # real Salinas-A, and a real ground truth under a stand-in cube (indian_pines_shape reads its own the same way)
    records = _run_cases(bench, "--data-dir", str(shared_data_dir), cases=["salinas_a", "pavia_u_shape"])
    assert [r["case"] for r in records] == ["salinas_a", "pavia_u_shape"]
    salinas, pavia = records
    assert pavia["scene_shape"] == [40, 40, 103]  # --quick crops the 610 x 340 ground truth
    assert salinas["note"] == "real scene" and salinas["full_scene_pixels"] == 83 * 86
    assert 0 <= salinas["overall_accuracy"] <= 1
    assert pavia["epochs"] == 0 and pavia["samples_per_second"] is None
