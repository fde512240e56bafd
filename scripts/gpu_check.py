#!/usr/bin/env python
"""One-command check of the GPU path: gpu tests, benchmark, bf16 accuracy, an end-to-end run.

Developer script (never imported by ``hsi``). From a fresh machine holding the repository
(the package need not be installed: the checkout is put on ``PYTHONPATH``), in order:

1. ``environment``: versions, GPUs, missing packages; with ``--wheels DIR`` the missing
   ones are installed from there (``pip install --no-index --find-links DIR``).
2. ``gpu_tests``: ``pytest -m gpu tests/gpu`` (on a machine without CUDA they skip; with
   ``--device cuda`` a skip counts as a failure).
3. ``bench``: ``scripts/bench.py --device DEVICE`` on every case.
4. ``accuracy``: ``scripts/bench.py --cases salinas_a`` with and without ``--fp32`` over
   seeds 0, 1, 2: test OA of the bf16 path against fp32 on real Salinas-A.
5. ``train``: ``hsi-classify train --dataset salinas_a --recipe paper`` end to end, its wall seconds, peak
   GPU memory (``torch.cuda.max_memory_allocated`` in the run's process, and
   ``nvidia-smi`` polled) and peak host RSS (``os.wait4`` of that process); then the same job
   with the default recipe, and the ratio of the two walls (issue 29's target: at most 1.2).

Writes ``--out DIR/gpu_check.json`` (every figure, a status per step) and
``DIR/summary.txt`` (the figures against the targets), plus each step's log under
``DIR/logs/``. A failed step is recorded and the next one still runs; the exit code is 1
if any step failed. The whole run keeps within ``--budget`` seconds (default 450, under 8
minutes on one H100/H200).

Usage::

    python scripts/gpu_check.py --device cuda --out gpu-check/                   # on the GPU
    python scripts/gpu_check.py --device cpu --quick --out /tmp/gpu-check        # CPU rehearsal
    python scripts/gpu_check.py --device cuda --out gpu-check/ --wheels wheels/  # offline installs

``--quick`` is a CPU rehearsal of every step at tiny settings (bench ``--quick`` on
``salinas_a`` only, seed 0, a 1-epoch 5x5 train run; ``--cube``/``--gt`` for a custom scene).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "scripts" / "bench.py"
STEPS = ("environment", "gpu_tests", "bench", "accuracy", "train")
# Most of --budget one step may take, so that a hung step leaves time for the next ones.
STEP_SHARE = {"environment": 0.1, "gpu_tests": 0.35, "bench": 0.3, "accuracy": 0.3, "train": 0.25}
FULL_SEEDS, QUICK_SEEDS = (0, 1, 2), (0,)
# Largest acceptable |mean OA bf16 - mean OA fp32| on Salinas-A's 4,814 test pixels: about 24 pixels.
BF16_OA_TOLERANCE = 0.005
# HybridSN's smallest input: its three 3-D kernels span 13 bands, its four 3x3 layers 9 pixels.
QUICK_TRAIN = ["--epochs", "1", "--patch-size", "9", "--pca-components", "15", "--batch-size", "64",
               "--train-ratio", "0.1"]
# The run's own process reports its peak GPU memory (it dies with its CUDA context).
TRAIN_CHILD = """\
import json, sys
import torch
from hsi.cli.main import main
code = main(sys.argv[2:])
peak = None
if torch.cuda.is_available() and torch.cuda.is_initialized():
    n = torch.cuda.device_count()
    peak = {"allocated": max(torch.cuda.max_memory_allocated(i) for i in range(n)),
            "reserved": max(torch.cuda.max_memory_reserved(i) for i in range(n))}
with open(sys.argv[1], "w") as fh:
    json.dump({"exit_code": code, "peak_gpu_bytes": peak}, fh)
sys.exit(code)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json, summary.txt and logs/")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:<index> or cpu (default cuda)")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a CPU rehearsal of every step")
    parser.add_argument("--data-dir", help="folder holding <scene>/<files> (default $HSI_DATA_DIR or ../shared/data)")
    parser.add_argument("--wheels", help="folder of wheels to install missing packages from (no index)")
    parser.add_argument("--cube", help="with --quick: the train step's cube file instead of Salinas-A")
    parser.add_argument("--gt", help="with --quick: the train step's ground-truth file")
    parser.add_argument("--budget", type=float, help="seconds for the whole check (default 450; --quick 170)")
    args = parser.parse_args(argv)
    if (args.cube is None) != (args.gt is None):
        parser.error("--cube and --gt go together")
    if args.cube and not args.quick:
        parser.error("--cube/--gt replace Salinas-A only with --quick; the full check measures the real scene")
    if args.budget is None:
        args.budget = 170.0 if args.quick else 450.0
    # Absolute: the children run in the repository root, not where the command was typed.
    args.data_dir = Path(args.data_dir or os.environ.get("HSI_DATA_DIR") or REPO.parent / "shared" / "data").resolve()
    args.cube, args.gt = (None if p is None else Path(p).resolve() for p in (args.cube, args.gt))
    return args


# ---------------------------------------------------------------- child processes


class Child:
    """One finished child process: exit code, seconds, its own peak RSS, whether it timed out."""

    def __init__(self, code: int, seconds: float, peak_rss_mb: float, timed_out: bool) -> None:
        self.code, self.seconds, self.peak_rss_mb, self.timed_out = code, seconds, peak_rss_mb, timed_out


def child_env() -> dict[str, str]:
    """This environment with the checkout first on ``PYTHONPATH``: ``hsi`` imports without installing."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def run_child(cmd: list[str], *, log: Path, timeout: float, env: dict[str, str] | None = None) -> Child:
    """Runs ``cmd`` with stdout and stderr to ``log``; kills its process group after ``timeout`` seconds.

    Waits with ``os.wait4``, which returns this child's own resource usage: its peak RSS
    is not mixed with that of earlier children, as ``RUSAGE_CHILDREN``'s would be.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w") as fh:
        process = subprocess.Popen(cmd, cwd=REPO, env=env or child_env(), stdout=fh, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own group: a timeout kills bench's case too
        timed_out = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout and not timed_out:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.05)
    process.returncode = code = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    return Child(code, round(time.perf_counter() - started, 3), round(usage.ru_maxrss * scale / 2**20, 1), timed_out)


def child_failure(child: Child, what: str, log: Path) -> str:
    """One line saying how a child failed, pointing at its log."""
    if child.timed_out:
        return f"{what} ran past its time limit ({child.seconds:.0f} s) and was killed; see {log}"
    return f"{what} exited with status {child.code}; see {log}"


class GpuMemoryPoller:
    """Peak ``nvidia-smi`` memory.used of one GPU while a child runs, minus what was used before it."""

    def __init__(self, index: int) -> None:
        self.index, self.peak, self._stop = index, None, threading.Event()
        self.baseline = self._used()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _used(self) -> float | None:
        try:
            out = subprocess.run(["nvidia-smi", f"--id={self.index}", "--query-gpu=memory.used",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10,
                                 check=False)
            return float(out.stdout.strip().splitlines()[0])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None

    def _poll(self) -> None:
        while not self._stop.is_set():
            used = self._used()
            if used is not None:
                self.peak = used if self.peak is None else max(self.peak, used)
            self._stop.wait(0.2)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self) -> float | None:
        """MiB above the baseline at the peak, or None when nvidia-smi gave nothing."""
        if self.peak is None or self.baseline is None:
            return None
        return round(self.peak - self.baseline, 1)


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects among a log's lines (bench prints one per measurement)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    return records


# ---------------------------------------------------------------- steps


class StepFailed(RuntimeError):
    """A step that failed but still has figures to record."""

    def __init__(self, message: str, figures: dict[str, Any]) -> None:
        super().__init__(message)
        self.figures = figures


class Step:
    """What every step gets: the options, the output folder and the time left."""

    def __init__(self, args: argparse.Namespace, out: Path, deadline: float) -> None:
        self.args, self.out, self.deadline = args, out, deadline
        self.step_deadline = deadline

    def start(self, name: str) -> None:
        """Starts step ``name``: it may use its share of the budget, within what is left."""
        share = max(STEP_SHARE[name] * self.args.budget, 30.0)  # torch's import alone can take 15 s on a busy CPU
        self.step_deadline = min(self.deadline, time.perf_counter() + share)

    def time_left(self) -> float:
        left = self.step_deadline - time.perf_counter()
        if left < 5:
            raise RuntimeError("no time left for this step within --budget")
        return left

    def log(self, name: str) -> Path:
        return self.out / "logs" / name

    def bench(self, name: str, *extra: str) -> tuple[Child, list[dict[str, Any]]]:
        """``scripts/bench.py --device D --data-dir D [--quick] EXTRA``; its records (an error record counts)."""
        cmd = [sys.executable, str(BENCH), "--device", self.args.device, "--data-dir", str(self.args.data_dir), *extra]
        if self.args.quick:
            cmd.append("--quick")
        log = self.log(f"{name}.log")
        child = run_child(cmd, log=log, timeout=self.time_left())
        records = read_json_lines(log)
        if child.code or child.timed_out or any("error" in r for r in records):
            raise StepFailed(child_failure(child, "scripts/bench.py", log), {"records": records})
        return child, records


def required() -> list[str]:
    """The package's requirements from pyproject.toml, and pytest, e.g. ``["torch>=2.1", ..., "pytest"]``."""
    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib

        requirements = tomllib.loads(text)["project"]["dependencies"]
    except ImportError:  # Python 3.10: no tomllib
        block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.DOTALL | re.MULTILINE)
        requirements = re.findall(r'"([^"]+)"', block.group(1)) if block else []
    return [*requirements, "pytest"]


def _missing(requirements: list[str]) -> list[str]:
    """The requirements whose distribution is not installed (versions are not checked)."""
    missing = []
    for requirement in requirements:
        try:
            importlib.metadata.version(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0])
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def step_environment(step: Step) -> dict[str, Any]:
    """Versions and GPUs; missing packages installed from ``--wheels``; CUDA present when asked for."""
    missing = _missing(required())
    result: dict[str, Any] = {"missing_before": missing, "installed_from_wheels": []}
    if missing and step.args.wheels:
        log = step.log("pip.log")
        child = run_child([sys.executable, "-m", "pip", "install", "--no-index", "--find-links",
                           str(Path(step.args.wheels).resolve()), *missing], log=log, timeout=step.time_left())
        if child.code or child.timed_out:
            what = f"pip install of {', '.join(missing)} from {step.args.wheels}"
            raise RuntimeError(child_failure(child, what, log))
        result["installed_from_wheels"] = missing
        importlib.invalidate_caches()
        missing = _missing(missing)
    result["missing"] = missing
    if missing:
        hint = "" if step.args.wheels else " (give --wheels DIR to install them from wheels)"
        raise RuntimeError(f"missing packages: {', '.join(missing)}{hint}")
    # torch in a child: this process never holds a CUDA context or torch's memory.
    probe = ("import json, torch; from importlib.metadata import version; print(json.dumps({"
             "'torch': torch.__version__, 'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(), "
             "'numpy': version('numpy'), 'scikit_learn': version('scikit-learn'), "
             "'cuda_available': torch.cuda.is_available(), "
             "'gpus': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())], "
             "'threads': torch.get_num_threads()}))")
    log = step.log("environment.log")
    child = run_child([sys.executable, "-c", probe], log=log, timeout=min(step.time_left(), 120))
    records = read_json_lines(log)
    if child.code or not records:
        raise RuntimeError(child_failure(child, "importing torch", log))
    result.update(records[-1])
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30, check=False)
        result["nvidia_smi"] = smi.stdout.strip().splitlines()
    if step.args.device.startswith("cuda") and not result["cuda_available"]:
        raise RuntimeError(f"--device {step.args.device} asked for, but torch {result['torch']} sees no CUDA GPU")
    return result


def junit_counts(path: Path) -> dict[str, int]:
    """passed, failed, errors, skipped from pytest's JUnit XML."""
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for suite in ElementTree.parse(path).getroot().iter("testsuite"):
        counts["tests"] += int(suite.get("tests", 0))
        counts["failed"] += int(suite.get("failures", 0))
        counts["errors"] += int(suite.get("errors", 0))
        counts["skipped"] += int(suite.get("skipped", 0))
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


def step_gpu_tests(step: Step) -> dict[str, Any]:
    """``pytest -m gpu tests/gpu``; with a CUDA device every test must run and pass."""
    xml, log = step.log("gpu_tests.xml"), step.log("gpu_tests.log")
    env = {**child_env(), "HSI_TEST_DATA_DIR": str(step.args.data_dir)}
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rs", "-p", "no:cacheprovider",
           f"--junitxml={xml}"]
    child = run_child(cmd, log=log, timeout=step.time_left(), env=env)
    if not xml.is_file():
        raise RuntimeError(child_failure(child, "pytest", log))
    result: dict[str, Any] = {**junit_counts(xml), "seconds": child.seconds}
    if child.code or child.timed_out:
        raise StepFailed(child_failure(child, "pytest -m gpu", log), result)
    if result["tests"] == 0:
        raise StepFailed("pytest collected no gpu test", result)
    if step.args.device.startswith("cuda") and result["passed"] != result["tests"]:
        raise StepFailed(f"{result['skipped']} gpu test(s) skipped on a CUDA run; see {log}", result)
    return result


def step_bench(step: Step) -> dict[str, Any]:
    """``scripts/bench.py`` on every case (``--quick``: salinas_a only)."""
    extra = ["--cases", "salinas_a"] if step.args.quick else []
    child, records = step.bench("bench", *extra)
    return {"records": records, "seconds": child.seconds}


def step_accuracy(step: Step, bench_records: list[dict[str, Any]]) -> dict[str, Any]:
    """Test OA on Salinas-A per seed: the device's own precision (bf16 autocast on CUDA) against ``--fp32``."""
    seeds = QUICK_SEEDS if step.args.quick else FULL_SEEDS

    def salinas_a(name: str, seed: int, *flags: str) -> dict[str, Any]:
        _, records = step.bench(f"accuracy_{name}_seed{seed}", "--cases", "salinas_a", "--seed", str(seed), *flags)
        (record,) = [r for r in records if r.get("case") == "salinas_a"]
        return record

    # The bench step's salinas_a run is seed 0 at the device's own precision.
    fast = {}
    for record in bench_records:
        if record.get("case") == "salinas_a" and record.get("overall_accuracy") is not None:
            fast[0] = record
    for seed in seeds:
        if seed not in fast:
            fast[seed] = salinas_a("default", seed)
    fp32 = {seed: salinas_a("fp32", seed, "--fp32") for seed in seeds}
    oa, oa_fp32 = ({s: runs[s]["overall_accuracy"] for s in seeds} for runs in (fast, fp32))
    mean, mean_fp32 = sum(oa.values()) / len(seeds), sum(oa_fp32.values()) / len(seeds)
    return {
        "seeds": list(seeds),
        "precision": fast[seeds[0]]["precision"],
        "overall_accuracy": {str(s): oa[s] for s in seeds},
        "overall_accuracy_fp32": {str(s): oa_fp32[s] for s in seeds},
        "mean_overall_accuracy": round(mean, 4),
        "mean_overall_accuracy_fp32": round(mean_fp32, 4),
        "mean_difference": round(mean - mean_fp32, 4),
        "max_seed_difference": round(max(abs(oa[s] - oa_fp32[s]) for s in seeds), 4),
    }


def step_train(step: Step) -> dict[str, Any]:
    """``hsi-classify train --dataset salinas_a --device D`` end to end with ``paper``, then with the default
    recipe, each in a process of its own: the figures of the first, and the default's walls beside them."""
    paper = _train_run(step, "paper", step.out / "runs")
    default = _train_run(step, None, step.out / "runs-default")
    return {**paper, "default_recipe": {k: default[k] for k in ("command", "wall_seconds", "train_seconds",
                                                                 "overall_accuracy", "peak_gpu_memory_allocated_mb")},
            "default_over_paper_wall": round(default["wall_seconds"] / paper["wall_seconds"], 3)}


def _train_run(step: Step, recipe: str | None, runs: Path) -> dict[str, Any]:
    """One train run (``recipe`` None: the default recipe, no ``--recipe`` flag) and its figures."""
    args = step.args
    scene = ["--cube", str(args.cube), "--gt", str(args.gt)] if args.cube else [
        "--dataset", "salinas_a", "--data-dir", str(args.data_dir), "--no-download"]
    cli = ["train", *scene, "--device", args.device, "--out", str(runs), "--quiet",
           *(["--recipe", recipe] if recipe else []), *(QUICK_TRAIN if args.quick else [])]
    name = recipe or "default"
    report, log = step.log(f"train_child_{name}.json"), step.log(f"train_{name}.log")
    cmd = [sys.executable, "-c", TRAIN_CHILD, str(report), *cli]
    index = int(args.device.partition(":")[2] or 0) if args.device.startswith("cuda") else None
    if index is not None and shutil.which("nvidia-smi"):
        poller = GpuMemoryPoller(index)
        poller.start()
        try:
            child = run_child(cmd, log=log, timeout=step.time_left())
        finally:
            poller.stop()
        smi_peak = poller.peak_mb()
    else:
        child, smi_peak = run_child(cmd, log=log, timeout=step.time_left()), None
    if child.code or child.timed_out:
        raise RuntimeError(child_failure(child, f"hsi-classify {' '.join(cli)}", log))
    peak_gpu = json.loads(report.read_text())["peak_gpu_bytes"]
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    resolved = json.loads((run_dir / "config.json").read_text())["resolved"]
    return {
        "command": "hsi-classify " + " ".join(cli),
        "device": resolved["device"],
        "device_name": resolved["device_name"],
        "wall_seconds": child.seconds,
        "train_seconds": round(metrics["train_seconds"], 3),
        "inference_seconds": round(metrics["inference_seconds"], 3),
        "overall_accuracy": metrics["overall_accuracy"],
        "n_train": metrics["n_train"],
        "peak_host_rss_mb": child.peak_rss_mb,
        "peak_gpu_memory_allocated_mb": round(peak_gpu["allocated"] / 2**20, 1) if peak_gpu else None,
        "peak_gpu_memory_reserved_mb": round(peak_gpu["reserved"] / 2**20, 1) if peak_gpu else None,
        "peak_gpu_memory_used_mb_nvidia_smi": smi_peak,
        "run_dir": str(run_dir),
    }


# ---------------------------------------------------------------- targets and report


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value (None when not measured) and whether it is met.

    Targets are for the full settings on an H100/H200; a ``--quick`` run measures none of them.
    """
    records = result["steps"]["bench"].get("records", [])

    def bench(case: str, key: str, ratio: float | None = None, worst: bool = False) -> float | None:
        values = [r[key] for r in records if r.get("case") == case and r.get(key) is not None
                  and (ratio is None or r.get("train_ratio") == ratio) and not r.get("quick")]
        return (max(values) if worst else values[0]) if values else None

    accuracy = result["steps"]["accuracy"]
    difference = accuracy.get("mean_difference") if not result["quick"] else None
    ip = "indian_pines_shape"
    rows = [
        (f"{ip}: training at 30%, 100 epochs", bench(ip, "train_seconds", 0.3), 6.0, "s"),
        (f"{ip}: training at 10%, 100 epochs", bench(ip, "train_seconds", 0.1), 2.0, "s"),
        (f"{ip}: full scene (slower of two)", bench(ip, "full_scene_seconds", worst=True), 0.1, "s"),
        (f"{ip}: full scene, dense pass (issue 14)", bench(ip, "full_scene_seconds_dense", worst=True), 0.02, "s"),
        (f"{ip}: peak host memory", bench(ip, "peak_host_rss_mb", worst=True), 1024.0, "MB"),
        ("pavia_u_shape: peak host memory", bench("pavia_u_shape", "peak_host_rss_mb"), 2048.0, "MB"),
        ("salinas_a: |mean OA bf16 - fp32|", None if difference is None else abs(difference), BF16_OA_TOLERANCE,
         "fraction"),
        ("train: default recipe / paper, whole job (issue 29)",
         None if result["quick"] else result["steps"].get("train", {}).get("default_over_paper_wall"), 1.2, "ratio"),
    ]
    return [{"target": name, "value": value, "limit": limit, "unit": unit,
             "met": None if value is None else value <= limit} for name, value, limit, unit in rows]


def _fmt(value: float | None, unit: str) -> str:
    """A figure for the summary: fractions to 4 places, seconds to 3 significant digits, MB whole."""
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{value:.4f}"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "ratio":
        return f"{value:.2f}x"
    return f"{value:.3g} s" if value < 1000 else f"{value:.0f} s"


def step_line(name: str, step: dict[str, Any]) -> str:
    """One summary line per step."""
    head = f"{name:<12} {step['status']:<7} {step.get('seconds', 0):7.1f} s  "
    if step["status"] != "ok":
        return head + step.get("error", "")
    if name == "environment":
        gpus = ", ".join(step.get("gpus") or []) or "no GPU"
        return head + f"torch {step.get('torch')} (CUDA {step.get('cuda')}), {gpus}"
    if name == "gpu_tests":
        return head + f"{step['passed']} passed, {step['failed']} failed, {step['skipped']} skipped"
    if name == "bench":
        parts = [f"{r['case']} at {r['train_ratio']}, {r['epochs']} epochs, {r['precision']}: train "
                 f"{_fmt(r['train_seconds'], 's')}, full scene {_fmt(r['full_scene_seconds'], 's')}, host peak "
                 f"{_fmt(r['peak_host_rss_mb'], 'MB')}, GPU peak {_fmt(r['peak_gpu_memory_mb'], 'MB')}"
                 for r in step["records"]]
        return head + f"{len(parts)} measurements" + "".join(f"\n{'':14}{p}" for p in parts)
    if name == "accuracy":
        return head + (f"seeds {','.join(map(str, step['seeds']))}: mean test OA {step['mean_overall_accuracy']:.4f} "
                       f"({step['precision']}), {step['mean_overall_accuracy_fp32']:.4f} with --fp32 "
                       f"(difference {step['mean_difference']:+.4f})")
    return head + (f"wall {_fmt(step['wall_seconds'], 's')}, train {_fmt(step['train_seconds'], 's')}, full scene "
                   f"{_fmt(step['inference_seconds'], 's')}, OA {step['overall_accuracy']:.4f}, host peak "
                   f"{_fmt(step['peak_host_rss_mb'], 'MB')}, GPU peak "
                   f"{_fmt(step['peak_gpu_memory_allocated_mb'], 'MB')} "
                   f"allocated / {_fmt(step['peak_gpu_memory_used_mb_nvidia_smi'], 'MB')} nvidia-smi; default recipe "
                   f"wall {_fmt(step['default_recipe']['wall_seconds'], 's')} "
                   f"({step['default_over_paper_wall']:.2f}x paper's)")


def summary_text(result: dict[str, Any]) -> str:
    env = result["steps"]["environment"]
    lines = [
        (f"gpu_check {'passed' if result['ok'] else 'FAILED'}: device {result['device']}, "
         f"{'quick (tiny settings, no target judged)' if result['quick'] else 'full'}, "
         f"{result['wall_seconds']:.0f} s on {result['machine']['hostname']} ({result['machine']['cpu_count']} CPUs, "
         f"torch {env.get('torch', '?')}), {result['finished']}"),
        "",
        "steps",
        *(step_line(name, result["steps"][name]) for name in STEPS),
        "",
        "targets (H100/H200, full settings)",
    ]
    for row in result["targets"]:
        met = "not measured" if row["met"] is None else "met" if row["met"] else "MISSED"
        lines.append(f"  {row['target']:<50} {_fmt(row['value'], row['unit']):>12}  <= "
                     f"{_fmt(row['limit'], row['unit']):<9} {met}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if (out / "runs").exists():  # the train step finds its run as the only folder there
        shutil.rmtree(out / "runs")
    began = time.perf_counter()
    step = Step(args, out, began + args.budget)
    result: dict[str, Any] = {
        "device": args.device,
        "quick": args.quick,
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"hostname": socket.gethostname(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "data_dir": str(args.data_dir),
        "steps": {},
    }
    runners = {
        "environment": lambda: step_environment(step),
        "gpu_tests": lambda: step_gpu_tests(step),
        "bench": lambda: step_bench(step),
        "accuracy": lambda: step_accuracy(step, result["steps"]["bench"].get("records", [])),
        "train": lambda: step_train(step),
    }
    for name in STEPS:
        started = time.perf_counter()
        print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
        step.start(name)
        try:
            figures, status, error = runners[name](), "ok", None
        except StepFailed as err:
            figures, status, error = err.figures, "failed", str(err)
        except Exception as err:  # noqa: BLE001 - recorded, and the next step still runs
            figures, status, error = {}, "failed", f"{type(err).__name__}: {err}"
        record = {"status": status, **figures, "seconds": round(time.perf_counter() - started, 3)}
        if error:
            record["error"] = error.splitlines()[0]  # one line
        result["steps"][name] = record
        print(f"gpu_check: {step_line(name, record)}", file=sys.stderr, flush=True)
    result["ok"] = all(s["status"] == "ok" for s in result["steps"].values())
    result["wall_seconds"] = round(time.perf_counter() - began, 3)
    result["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    result["targets"] = targets(result)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    summary = summary_text(result)
    (out / "summary.txt").write_text(summary)
    sys.stdout.write(summary)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
