"""Where the training runs of ``repeat`` and ``compare``, and the tiles of ``predict``, execute.

An engine maps a task over items: ``engine.map(task, items, shared=x)`` yields a :class:`Finished`
``(item, result, retries)`` as each item completes. ``task(shared, item)`` is a top-level function
(pickled by reference) and ``shared`` (the scene, or the model) is sent once, not with every item.
``repeat`` and ``compare`` hand their runs to :func:`hsi.experiments.train.train_runs`, tiled
``predict`` its tiles to :func:`hsi.experiments.predict.classify_tiles`, with an engine; neither
asks which. The tasks live beside the code they call; this module imports nothing else of
``hsi.experiments``.

- ``local`` (:class:`LocalEngine`, the default, no extra dependency): in this process with one job,
  else a spawned process pool with one device lane per worker. Runs write their folders themselves.
- ``ray`` (:class:`RayEngine`): one Ray task per item with its CPU/GPU share declared; ``shared`` is
  put into the object store once. No filesystem is shared: a run trains into a scratch folder on its
  worker and returns the run folder's files as data, a tile task gets its window's pixels as data and
  returns its classes; only the driver writes, with the atomic writer, so the outputs are laid out as
  local ones. An item whose worker or node dies is resubmitted, at most ``max_retries`` times, and the
  count is returned. See docs/cluster.md.

This module imports nothing heavy at load time: the CLI reads :data:`ENGINES` to build ``--engine``.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol

from hsi._core.errors import ConfigError, DependencyNotFoundError, HSIError

log = logging.getLogger(__name__)

__all__ = [
    "ENGINES", "TILES_PER_SLOT", "ClusterUnavailableError", "Engine", "EngineError", "Finished", "LocalEngine",
    "RayEngine", "WorkerLostError", "make_engine", "worker_cache", "worker_device",
]

#: The one declaration of ``--engine``: name -> one line for ``--help``.
ENGINES: dict[str, str] = {
    "local": "this machine (default): in this process, or --jobs worker processes",
    "ray": "a Ray cluster: --ray-address, else $RAY_ADDRESS, else a Ray instance started on this machine "
           "(needs pip install 'hsi-classify[ray]'; see docs/cluster.md)",
}
RAY_MISSING = ("--engine ray needs Ray, which is not installed here: pip install 'hsi-classify[ray]' "
               "(or use --engine local).")
DEFAULT_MAX_RETRIES = 3
#: Tiles in flight per task slot (a slot: one task's CPU/GPU share): one running, one waiting, so a
#: worker never idles while the driver reads the next window, and the driver holds at most this many.
TILES_PER_SLOT = 2


class EngineError(HSIError):
    """The engine failed, not an item: what finished is kept (a caller must not discard its partial work)."""


class ClusterUnavailableError(EngineError, ConfigError):
    """The Ray cluster cannot be reached, or none of its nodes has one task's CPU/GPU share."""


class WorkerLostError(EngineError):
    """An item's Ray worker (or node) died more times than ``--max-retries`` allows."""


@dataclass(frozen=True)
class Finished:
    """One item done: the ``item`` given, the task's ``result`` and how many times it was resubmitted."""

    item: Any
    result: Any
    retries: int = 0


class Engine(Protocol):
    """Runs ``task(shared, item)`` for every item; yields each :class:`Finished` as it completes."""

    name: str
    #: True when tasks run where the driver's folders are (they write them); False: results come back as data.
    shares_files: bool

    def map(self, task: Callable[[Any, Any], Any], items: Iterable[Any], *, shared: Any = None,
            lookahead: int | None = None) -> Iterator[Finished]:
        """Runs every item; a task's own error is raised here (after the running ones are stopped).

        ``lookahead``: None submits every item at once; k reads ``items`` lazily and keeps at most
        k items per task slot submitted and unfinished, so a source larger than memory stays bounded.
        """
        ...

    def describe(self) -> dict[str, Any]:
        """What ran the runs, for the repeat/compare JSON."""
        ...


_WORKER: dict[str, Any] = {}  # a worker process's own device (and, in a local pool, the shared value)


def worker_device() -> str | None:
    """The device the engine gave this worker process, or None in the driver (the run's own ``device``)."""
    return _WORKER.get("device")


def worker_cache() -> dict[str, Any]:
    """This process's own store for what a task keeps between its items (e.g. a model built once per worker)."""
    return _WORKER


def _start_local_worker(devices: Any, threads: int | None, shared: Any) -> None:
    """A local pool worker's entry: its lane's device from the queue, the shared value; CPU jobs split the cores."""
    _WORKER.update(device=devices.get(), shared=shared)
    if threads:
        import torch

        torch.set_num_threads(threads)


def _call_in_local_worker(task: Callable[[Any, Any], Any], item: Any) -> Any:
    return task(_WORKER["shared"], item)


@dataclass
class LocalEngine:
    """This machine: one job runs in this process; more run in spawned worker processes, one device each.

    Args:
        jobs: runs at once.
        device: the runs' ``--device``; with CUDA and no fixed index, lanes go round the visible GPUs.
        notify: receives one line when CPU jobs will share the cores.
    """

    jobs: int = 1
    device: str = "auto"
    notify: Callable[[str], None] | None = None
    name: str = field(default="local", init=False)
    shares_files: bool = field(default=True, init=False)

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "jobs": self.jobs}

    def map(self, task: Callable[[Any, Any], Any], items: Iterable[Any], *, shared: Any = None,
            lookahead: int | None = None) -> Iterator[Finished]:
        if self.jobs == 1:  # one item at a time, read as it is needed
            for item in items:
                yield Finished(item, task(shared, item))
            return
        items = list(items)  # a pool takes them all at once (its runs are small settings, not data)
        if len(items) <= 1:
            for item in items:
                yield Finished(item, task(shared, item))
            return
        import torch

        from hsi.training.device import resolve_device

        lanes, n_gpus = min(self.jobs, len(items)), _gpu_lanes(self.device)
        devices = ([f"cuda:{i % n_gpus}" for i in range(lanes)] if n_gpus
                   else [str(resolve_device(self.device))] * lanes)
        threads = None
        if torch.device(devices[0]).type == "cpu":
            threads = max(1, (os.cpu_count() or 1) // lanes)
            (self.notify or log.info)(f"running {lanes} CPU jobs at once: they compete for the {os.cpu_count()} "
                                      f"cores ({threads} torch thread(s) per job)")
        # spawn: a forked CUDA context is unusable, and each worker must seed torch by itself.
        context = multiprocessing.get_context("spawn")
        queue = context.SimpleQueue()
        for device in devices:
            queue.put(device)
        pool = ProcessPoolExecutor(lanes, mp_context=context, initializer=_start_local_worker,
                                   initargs=(queue, threads, shared))
        try:
            futures = {pool.submit(_call_in_local_worker, task, item): item for item in items}
            for future in as_completed(futures):
                yield Finished(futures[future], future.result())  # a failed run raises; the running ones finish
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _gpu_lanes(device: str) -> int:
    """Visible GPUs when runs go to CUDA without a fixed index (one job each by default), else 0."""
    import torch

    from hsi.training.device import resolve_device

    if resolve_device(device).type == "cuda" and device in ("auto", "cuda"):
        return max(1, torch.cuda.device_count())
    return 0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DependencyNotFoundError(RAY_MISSING) from None
    return ray


def _lost_worker_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose worker, node or inputs were lost (not the task's own error)."""
    names = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OutOfMemoryError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


def _call_on_ray(task: Callable[[Any, Any], Any], shared: Any, item: Any, threads: int) -> Any:
    """A Ray task's entry: the process-wide settings the CLI makes for itself, the device Ray assigned."""
    import ray
    import torch

    if "entered" not in _WORKER:
        from hsi.training.device import flush_denormals

        flush_denormals()  # as `hsi-classify` does at its start, so numbers match a local run
        _WORKER["entered"] = True
    # Ray sets CUDA_VISIBLE_DEVICES to the GPUs it granted this task: they are cuda:0.. here.
    _WORKER["device"] = "cuda" if ray.get_gpu_ids() else "cpu"
    torch.set_num_threads(threads)
    return task(shared, item)


@dataclass
class RayEngine:
    """A Ray cluster: one task per item with ``cpus_per_run`` CPUs (its torch threads) and ``gpus_per_run`` GPUs.

    Args:
        address: the cluster (``host:port`` or ``ray://host:10001``); None: ``$RAY_ADDRESS``, else
            a Ray instance started on this machine for the call and stopped after it.
        gpus_per_run: GPUs per run; a fraction shares a GPU (0.25: four runs on one).
        cpus_per_run: CPUs per run, also its torch thread count.
        max_retries: resubmissions of an item whose worker or node died; then the error is raised.
    """

    address: str | None = None
    gpus_per_run: float = 0.0
    cpus_per_run: int = 1
    max_retries: int = DEFAULT_MAX_RETRIES
    name: str = field(default="ray", init=False)
    shares_files: bool = field(default=False, init=False)

    def describe(self) -> dict[str, Any]:
        address = self.address or os.environ.get("RAY_ADDRESS") or "a Ray instance on this machine"
        return {"engine": self.name, "address": address, "gpus_per_run": self.gpus_per_run,
                "cpus_per_run": self.cpus_per_run, "max_retries": self.max_retries}

    def _connect(self, ray: Any) -> bool:
        """Connects (or starts an embedded instance); returns True when this call must shut it down."""
        if ray.is_initialized():
            return False
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        try:
            if address is None:
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as err:
            reason = (str(err).splitlines() or [type(err).__name__])[0]
            raise ClusterUnavailableError(f"could not reach the Ray cluster at {address} ({reason}); start it with "
                              "`ray start --head` there, or check --ray-address / $RAY_ADDRESS.") from None
        # A task needs one node with its whole share, or it would wait forever.
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        for what, need in (("GPU", self.gpus_per_run), ("CPU", self.cpus_per_run)):
            have = max((float(r.get(what, 0.0)) for r in nodes), default=0.0)
            if need > have:
                ray.shutdown()
                where = address or "on this machine"
                raise ClusterUnavailableError(
                    f"each task asks for {need:g} {what}(s) but no node of the Ray cluster {where} has that many "
                    f"(the most is {have:g}); lower --{what.lower()}s-per-run or add a node with more {what}s.")
        return True

    def _slots(self, ray: Any) -> int:
        """How many tasks the alive nodes run at once, each with its CPU and GPU share (at least 1)."""
        slots = 0
        for node in ray.nodes():
            if node.get("Alive"):
                have = node.get("Resources", {})
                fits = int(float(have.get("CPU", 0.0)) // self.cpus_per_run)
                if self.gpus_per_run > 0:
                    fits = min(fits, int(float(have.get("GPU", 0.0)) // self.gpus_per_run))
                slots += fits
        return max(1, slots)

    def map(self, task: Callable[[Any, Any], Any], items: Iterable[Any], *, shared: Any = None,
            lookahead: int | None = None) -> Iterator[Finished]:
        source = iter(items)
        first = next(source, _NOTHING)
        if first is _NOTHING:  # nothing to do: no cluster to reach
            return
        source = itertools.chain([first], source)
        ray = _import_ray()
        started = self._connect(ray)
        lost = _lost_worker_errors(ray)
        # Retries are the driver's, not Ray's, so each is counted and bounded here.
        remote = ray.remote(_call_on_ray).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                                  max_retries=0)
        limit = None if lookahead is None else lookahead * self._slots(ray)
        pending: dict[Any, tuple[Any, int]] = {}  # task ref -> (item, resubmissions so far)
        try:
            shared_ref = ray.put(shared)  # once; each task gets it from the object store of its node

            def submit(item: Any, tries: int) -> None:
                # An item's data (a tile's window) goes to the object store with the task, Ray's own doing.
                pending[remote.remote(task, shared_ref, item, self.cpus_per_run)] = (item, tries)

            def fill() -> None:
                while limit is None or len(pending) < limit:
                    item = next(source, _NOTHING)
                    if item is _NOTHING:
                        return
                    submit(item, 0)

            fill()
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                item, tries = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except lost as err:
                    if tries >= self.max_retries:
                        reason = (str(err).splitlines() or [type(err).__name__])[0]
                        raise WorkerLostError(f"a task's Ray worker died {tries + 1} times (last: {reason}); what "
                                              "finished is kept: rerun the same command to do the rest.") from None
                    log.warning("a Ray worker died (%s); resubmitting its task (retry %d of at most %d)",
                                type(err).__name__, tries + 1, self.max_retries)
                    submit(item, tries + 1)
                    continue
                except ray.exceptions.RayTaskError as err:
                    cause = getattr(err, "cause", None)
                    if isinstance(cause, BaseException):
                        raise cause from None  # the task's own error, one line as in a local run
                    raise
                fill()  # the next items run while the caller handles this result
                yield Finished(item, result, tries)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


_NOTHING = object()  # the end of an item iterator


def _check_reachable(address: str | None) -> None:
    """Refuses a ``host:port`` where nothing listens, at once (Ray itself would wait minutes)."""
    if address is None or "://" in address or address in ("auto", "local") or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=10):
            pass
    except (OSError, ValueError) as err:
        raise ConfigError(f"no Ray cluster answers at {address} ({err}); start one there with `ray start --head "
                          "--port PORT`, or correct --ray-address / $RAY_ADDRESS.") from None


def make_engine(name: str, *, device: str = "auto", jobs: int | None = None, ray_address: str | None = None,
                gpus_per_run: float | None = None, cpus_per_run: int | None = None,
                max_retries: int | None = None, notify: Callable[[str], None] | None = None) -> Engine:
    """The engine ``name`` (a key of :data:`ENGINES`) with its settings checked before anything runs.

    Args:
        device: the runs' ``--device``: local lanes follow it; Ray's default GPU share is 1 when it is CUDA.
        jobs: local only; default one per visible GPU, else 1.
        ray_address, gpus_per_run, cpus_per_run, max_retries: Ray only.

    Raises:
        ConfigError: unknown name, a setting of the other engine, or a value out of range.
        DependencyNotFoundError: ``ray`` without Ray installed.
    """
    if name not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}; got {name!r}.")
    ray_given = {"--ray-address": ray_address, "--gpus-per-run": gpus_per_run, "--cpus-per-run": cpus_per_run,
                 "--max-retries": max_retries}
    if name == "local":
        given = [flag for flag, value in ray_given.items() if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} set(s) how runs go to a Ray cluster, but --engine is local; "
                              "add --engine ray or drop them.")
        if jobs is not None and jobs < 1:
            raise ConfigError(f"--jobs must be >= 1; got {jobs}.")
        return LocalEngine(jobs=max(1, _gpu_lanes(device)) if jobs is None else jobs, device=device, notify=notify)
    if jobs is not None:
        raise ConfigError(f"--jobs {jobs} sets how many runs this machine trains at once; with --engine ray the "
                          "cluster runs as many as its resources allow. Drop --jobs, or set --cpus-per-run.")
    if gpus_per_run is not None and not gpus_per_run >= 0:
        raise ConfigError(f"--gpus-per-run must be >= 0 (a fraction shares a GPU); got {gpus_per_run}.")
    if cpus_per_run is not None and cpus_per_run < 1:
        raise ConfigError(f"--cpus-per-run must be >= 1; got {cpus_per_run}.")
    if max_retries is not None and not 0 <= max_retries <= 100:
        raise ConfigError(f"--max-retries must be between 0 and 100; got {max_retries}.")
    _import_ray()  # missing: say so now, before any folder exists
    _check_reachable(ray_address or os.environ.get("RAY_ADDRESS") or None)
    if gpus_per_run is None:
        from hsi.training.device import resolve_device

        gpus_per_run = 1.0 if device != "cpu" and resolve_device(device).type == "cuda" else 0.0
    return RayEngine(address=ray_address, gpus_per_run=float(gpus_per_run), cpus_per_run=cpus_per_run or 1,
                     max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries)
