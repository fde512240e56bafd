"""scripts/bench.py --quick runs every case on the real ground truths and prints one JSON line each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "case", "device", "device_name", "torch", "threads", "epochs", "batch_size", "micro_batch", "n_train",
    "train_seconds", "samples_per_second", "full_scene_pixels", "full_scene_seconds", "pixels_per_second",
    "inference_batch", "peak_host_rss_mb", "peak_gpu_memory_mb", "note", "overall_accuracy",
}


def test_bench_quick_prints_one_json_record_per_measurement(shared_data_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--device", "cpu", "--threads", "1",
         "--data-dir", str(shared_data_dir)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [r["case"] for r in records] == ["indian_pines_shape", "indian_pines_shape", "salinas_a", "pavia_u_shape"]
    for record in records:
        assert KEYS <= set(record), KEYS - set(record)
        assert record["device"] == "cpu" and record["peak_gpu_memory_mb"] is None
        assert record["full_scene_seconds"] > 0 and record["pixels_per_second"] > 0
        assert 0 < record["peak_host_rss_mb"] < 2048
    ip30, ip10, salinas, pavia = records
    assert (ip30["train_ratio"], ip10["train_ratio"]) == (0.3, 0.1)
    assert ip30["epochs"] == 1 and ip30["samples_per_second"] > 0 and "random" in ip30["note"]
    assert salinas["note"] == "real scene" and salinas["full_scene_pixels"] == 83 * 86
    assert 0 <= salinas["overall_accuracy"] <= 1
    assert pavia["epochs"] == 0 and pavia["samples_per_second"] is None
