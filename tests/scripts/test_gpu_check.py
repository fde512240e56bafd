"""scripts/gpu_check.py: its CPU rehearsal runs every step, and a failing step never stops the next ones."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.py"
STEPS = ["environment", "gpu_tests", "bench", "accuracy", "train"]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ~45 s (six fresh processes, each importing torch): outside the 2-minute default suite; .ci/run
# runs the `slow` tests as a step of their own.
@pytest.mark.slow
@pytest.mark.e2e
def test_quick_cpu_run_records_every_step(shared_data_dir: Path, synthetic_scene, tmp_path: Path) -> None:
    out = tmp_path / "check"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out), "--data-dir",
         str(shared_data_dir), "--cube", str(synthetic_scene.cube), "--gt", str(synthetic_scene.gt)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads((out / "gpu_check.json").read_text())
    steps = result["steps"]
    assert list(steps) == STEPS and result["ok"] is True
    assert {name: s["status"] for name, s in steps.items()} == dict.fromkeys(STEPS, "ok")
    assert all(_number(s["seconds"]) and s["seconds"] > 0 for s in steps.values())

    assert steps["environment"]["cuda_available"] is False and steps["environment"]["missing"] == []
    tests = steps["gpu_tests"]  # collected, and skipped for want of CUDA
    assert tests["tests"] >= 4 and tests["skipped"] == tests["tests"] and tests["failed"] == tests["errors"] == 0

    (record,) = steps["bench"]["records"]
    assert record["case"] == "salinas_a" and record["device"] == "cpu" and record["quick"] is True
    for key in ("train_seconds", "full_scene_seconds", "pixels_per_second", "peak_host_rss_mb", "overall_accuracy"):
        assert _number(record[key]) and record[key] > 0, key

    accuracy = steps["accuracy"]
    assert accuracy["seeds"] == [0] and accuracy["precision"] == "fp32"  # CPU: both paths are fp32
    assert set(accuracy["overall_accuracy"]) == set(accuracy["overall_accuracy_fp32"]) == {"0"}
    for key in ("mean_overall_accuracy", "mean_overall_accuracy_fp32"):
        assert 0 <= accuracy[key] <= 1
    assert _number(accuracy["mean_difference"]) and abs(accuracy["mean_difference"]) <= 1

    train = steps["train"]
    assert train["device"] == "cpu" and "--epochs 1" in train["command"]
    for key in ("wall_seconds", "train_seconds", "inference_seconds", "peak_host_rss_mb"):
        assert _number(train[key]) and train[key] > 0, key
    assert train["wall_seconds"] > train["train_seconds"] and 100 < train["peak_host_rss_mb"] < 4096
    assert 0 <= train["overall_accuracy"] <= 1 and train["n_train"] > 0
    assert train["peak_gpu_memory_allocated_mb"] is None and train["peak_gpu_memory_used_mb_nvidia_smi"] is None
    assert (Path(train["run_dir"]) / "metrics.json").is_file()
    # The same job with the default recipe (no --recipe flag), and its wall against paper's (issue 29).
    default = train["default_recipe"]
    assert "--recipe" not in default["command"] and default["wall_seconds"] > 0
    assert train["default_over_paper_wall"] == pytest.approx(default["wall_seconds"] / train["wall_seconds"], rel=1e-2)

    # A quick run measures none of the targets: judged as not measured, never as met.
    assert len(result["targets"]) == 8 and all(t["value"] is None and t["met"] is None for t in result["targets"])
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("gpu_check passed: device cpu, quick")
    for name in STEPS:
        assert f"\n{name:<12} ok " in summary


def test_failed_steps_are_recorded_and_the_next_ones_still_run(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    gpu_check = _load_script()
    out = tmp_path / "check"
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(out), "--budget", "1"]) == 1
    result = json.loads((out / "gpu_check.json").read_text())
    assert list(result["steps"]) == STEPS and result["ok"] is False
    for step in result["steps"].values():
        assert step["status"] == "failed" and "no time left" in step["error"] and "\n" not in step["error"]
    assert (out / "summary.txt").read_text().startswith("gpu_check FAILED")
    assert "gpu_check FAILED" in capsys.readouterr().out


def test_targets_are_judged_on_full_bench_records() -> None:
    gpu_check = _load_script()

    def record(case: str, ratio: float, train: float, scene: float, rss: float) -> dict:
        return {"case": case, "train_ratio": ratio, "train_seconds": train, "full_scene_seconds": scene,
                "full_scene_seconds_dense": scene / 10, "peak_host_rss_mb": rss, "quick": False}

    records = [record("indian_pines_shape", 0.3, 5.0, 0.05, 900.0), record("indian_pines_shape", 0.1, 2.5, 0.2, 950.0),
               record("salinas_a", 0.1, 3.0, 0.02, 800.0), record("pavia_u_shape", 0.3, 0.0, 1.0, 2500.0)]
    result = {"quick": False, "steps": {"bench": {"records": records}, "accuracy": {"mean_difference": -0.002},
                                        "train": {"default_over_paper_wall": 1.35}}}
    judged = {t["target"]: (t["value"], t["met"]) for t in gpu_check.targets(result)}
    assert list(judged.values()) == [(5.0, True), (2.5, False), (0.2, False), (0.02, True), (950.0, True),
                                     (2500.0, False), (0.002, True), (1.35, False)]
    del result["steps"]["train"]  # a train step that failed: its ratio is not measured, not judged
    assert gpu_check.targets(result)[-1]["met"] is None


def test_missing_requirements_are_named_with_their_versions() -> None:
    gpu_check = _load_script()
    assert gpu_check._missing(["pytest", "no-such-distribution-xyz>=1.0"]) == ["no-such-distribution-xyz>=1.0"]
    assert "pytest" in gpu_check.required() and any(r.startswith("torch") for r in gpu_check.required())
