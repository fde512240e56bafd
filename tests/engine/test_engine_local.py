"""The engine seam without a cluster: the local engine's worker lanes, `--engine` flags, Ray missing,
and the Ray engine's retry bookkeeping against a stand-in for the ``ray`` module.

The real two-node Ray cluster is in test_engine_ray.py (marker ``ray``).
"""

from __future__ import annotations

import json
import os
import sys
import types
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import torch

from hsi._core.errors import ConfigError, DataFormatError, HSIError
from hsi.cli.main import build_parser, main
from hsi.experiments import engine as engine_module
from hsi.experiments import train as train_module
from hsi.experiments.engine import ENGINES, RayEngine, make_engine


def _repeat(scene: Any, out: Path, *flags: str) -> list[str]:
    return ["repeat", *scene.args(), "--model", "svm", "--patch-size", "5", "--pca-components", "15",
            "--train-ratio", "0.1", "--out", str(out), "--quiet", "--runs", "2", *flags]


@pytest.mark.parametrize("command", ["repeat", "compare"])
def test_engine_ray_without_ray_installed_is_one_line_and_exit_2(
    synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when it is missing
    argv = (_repeat(synthetic_scene, tmp_path / "out", "--engine", "ray") if command == "repeat" else
            ["compare", *synthetic_scene.args(), "--models", "svm", "--patch-size", "5", "--out",
             str(tmp_path / "out"), "--engine", "ray"])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("hsi-classify: error: --engine ray needs Ray, which is not installed here: "
                   "pip install 'hsi-classify[ray]' (or use --engine local).")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "expected"), [
    (["--ray-address", "127.0.0.1:6379"], "--ray-address set(s) how runs go to a Ray cluster, but --engine is local"),
    (["--gpus-per-run", "0.5", "--cpus-per-run", "2"], "--gpus-per-run, --cpus-per-run set(s)"),
    (["--engine", "ray", "--jobs", "2"], "with --engine ray the cluster runs as many as its resources allow"),
    (["--engine", "ray", "--gpus-per-run", "-1"], "--gpus-per-run must be >= 0"),
    (["--engine", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be >= 1"),
    (["--jobs", "0"], "--jobs must be >= 1"),
])
def test_engine_flags_of_the_other_engine_or_out_of_range_exit_2(
    synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    assert main(_repeat(synthetic_scene, tmp_path / "out", *flags)) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_engine_choices_come_from_the_declaration() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("repeat", "compare", "predict"):
        engine = next(a for a in sub.choices[command]._actions if a.dest == "engine")
        assert tuple(engine.choices) == tuple(ENGINES) == ("local", "ray") and engine.default == "local"


class _InlinePool:
    """Stands in for the process pool: starts each worker's entry in this process, runs each job at once."""

    def __init__(self, max_workers: int, *, mp_context: Any, initializer: Any, initargs: tuple[Any, ...]) -> None:
        for _ in range(max_workers):
            initializer(*initargs)

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def test_local_jobs_2_hands_runs_to_workers_with_their_own_device_threads_and_the_scene(
    synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    monkeypatch.setattr(engine_module, "ProcessPoolExecutor", _InlinePool)
    monkeypatch.setattr(engine_module, "_WORKER", {})
    monkeypatch.setattr(torch, "set_num_threads", threads.append)  # a worker's own setting, not this process's
    loads: list[Any] = []
    from hsi.experiments import repeat as repeat_module

    monkeypatch.setattr(repeat_module, "load_config_scene",
                        lambda config, _load=repeat_module.load_config_scene: loads.append(config) or _load(config))
    assert main([*_repeat(synthetic_scene, tmp_path), "--jobs", "2", "--name", "two_jobs"]) == 0
    assert "compete for the" in capsys.readouterr().err  # CPU jobs share the cores, and the user is told
    assert threads == [max(1, (os.cpu_count() or 1) // 2)] * 2 and engine_module._WORKER["device"] == "cpu"
    assert engine_module._WORKER["shared"].name == "synthetic_cube" and len(loads) == 1  # read once, shared
    runs = sorted(p for p in (tmp_path / "two_jobs").iterdir() if p.is_dir())
    assert [json.loads((r / "status.json").read_text())["state"] for r in runs] == ["complete", "complete"]
    engine = json.loads((tmp_path / "two_jobs" / "repeat.json").read_text())["engine"]
    assert engine == {"engine": "local", "jobs": 2, "retries": {"run-0-seed0": 0, "run-1-seed1": 0}}


class _Crashed(Exception):
    """Stands in for ray.exceptions.WorkerCrashedError."""


class _TaskError(Exception):
    """Stands in for ray.exceptions.RayTaskError: the task's own error, as ``cause``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"task failed\nTraceback ...\n{cause}")
        self.cause = cause


def _fake_ray(crashes: dict[Any, int]) -> tuple[types.ModuleType, list[str]]:
    """A ``ray`` module running tasks at ``get``; item ``i`` crashes its worker the first ``crashes[i]`` times."""
    ray = types.ModuleType("ray")
    calls: list[str] = []
    state = {"up": False}

    class Remote:
        def __init__(self, fn: Any) -> None:
            self.fn = fn

        def options(self, **resources: Any) -> Remote:
            calls.append(f"options {sorted(resources.items())}")
            return self

        def remote(self, *args: Any) -> tuple[Any, ...]:
            return (self.fn, *args)

    def get(ref: tuple[Any, ...]) -> Any:
        fn, task, shared, item, threads = ref
        if crashes.get(item, 0) > 0:
            crashes[item] -= 1
            raise _Crashed("The worker died unexpectedly while executing this task.")
        try:
            return task(shared, item)
        except Exception as err:
            raise _TaskError(err) from None

    ray.is_initialized = lambda: state["up"]  # type: ignore[attr-defined]
    ray.init = lambda **kw: (calls.append(f"init {sorted(kw)}"), state.update(up=True))  # type: ignore[attr-defined]
    ray.shutdown = lambda: (calls.append("shutdown"), state.update(up=False))  # type: ignore[attr-defined]
    ray.nodes = lambda: [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"GPU": 1.0}}]  # type: ignore[attr-defined]
    ray.remote = Remote  # type: ignore[attr-defined]
    ray.put = lambda value: (calls.append("put"), value)[1]  # type: ignore[attr-defined]
    ray.wait = lambda refs, num_returns: (refs[:1], refs[1:])  # type: ignore[attr-defined]
    ray.get = get  # type: ignore[attr-defined]
    ray.cancel = lambda ref, force: calls.append("cancel")  # type: ignore[attr-defined]
    ray.exceptions = types.SimpleNamespace(WorkerCrashedError=_Crashed, RayTaskError=_TaskError)  # type: ignore[attr-defined]
    return ray, calls


def _double(shared: int, item: int) -> int:
    if item < 0:
        raise ConfigError(f"item {item} is negative")
    return shared * item


def test_ray_engine_resubmits_lost_runs_counts_them_and_stops_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray, calls = _fake_ray({2: 1, 3: 2})
    monkeypatch.setitem(sys.modules, "ray", ray)
    done = {(f.item, f.result, f.retries) for f in RayEngine(max_retries=2).map(_double, [1, 2, 3], shared=10)}
    assert done == {(1, 10, 0), (2, 20, 1), (3, 30, 2)}
    # The scene goes into the object store once; Ray's own retries are off (the engine counts its own);
    # the embedded instance it started is stopped.
    assert calls.count("put") == 1 and calls[-1] == "shutdown"
    assert "options [('max_retries', 0), ('num_cpus', 1), ('num_gpus', 0.0)]" in calls

    ray, calls = _fake_ray({5: 3})
    monkeypatch.setitem(sys.modules, "ray", ray)
    with pytest.raises(HSIError, match="died 3 times .* rerun the same command to do the rest"):
        list(RayEngine(max_retries=2).map(_double, [5], shared=1))
    assert calls[-1] == "shutdown"

    ray, calls = _fake_ray({})
    monkeypatch.setitem(sys.modules, "ray", ray)
    with pytest.raises(ConfigError, match=r"^item -1 is negative$"):  # the run's own error, unwrapped
        list(RayEngine().map(_double, [-1], shared=1))


def test_ray_engine_reads_items_lazily_and_bounds_those_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two 1-CPU slots (the stand-in's alive node has 2 CPUs) x lookahead 2: at most 4 items drawn and unfinished."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray, calls = _fake_ray({3: 1})
    monkeypatch.setitem(sys.modules, "ray", ray)
    drawn: list[int] = []

    def items() -> Any:
        for item in range(1, 11):
            drawn.append(item)
            yield item

    finished = 0
    for done in RayEngine().map(_double, items(), shared=10, lookahead=2):
        finished += 1
        assert len(drawn) - finished == min(4, 10 - finished)  # submitted, unfinished: refilled before each yield
        assert done.result == 10 * done.item and done.retries == (done.item == 3)
    assert finished == len(drawn) == 10
    ray, calls = _fake_ray({})
    monkeypatch.setitem(sys.modules, "ray", ray)
    assert list(RayEngine().map(_double, iter([]), shared=1, lookahead=2)) == [] and calls == []  # nothing: no Ray


def test_ray_engine_refuses_a_gpu_share_the_cluster_cannot_give(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.2:1")
    ray, calls = _fake_ray({})
    monkeypatch.setitem(sys.modules, "ray", ray)
    with pytest.raises(ConfigError, match=r"asks for 0.5 GPU\(s\) but no node of the Ray cluster 127.0.0.2:1 has that many \(the most is 0\)"):
        list(RayEngine(gpus_per_run=0.5).map(_double, [1], shared=1))
    assert calls == ["init ['address', 'configure_logging', 'log_to_driver']", "shutdown"]
    with pytest.raises(ConfigError, match=r"^no Ray cluster answers at 127.0.0.2:1 \("):  # $RAY_ADDRESS, refused
        make_engine("ray", device="cpu")
    monkeypatch.setenv("RAY_ADDRESS", "ray://127.0.0.2:1")  # Ray Client addresses are left to Ray
    assert make_engine("ray", device="cpu").describe()["address"] == "ray://127.0.0.2:1"


def test_a_run_folder_sent_back_may_not_leave_its_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="leaves its folder"):
        train_module._write_run_folder(tmp_path / "run", {"../escape.txt": b"x"})
    train_module._write_run_folder(tmp_path / "run", {"status.json": b"{}", "a/b.npy": b"1", "config.json": b"2"})
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "run/a/b.npy", "run/config.json", "run/status.json"]
