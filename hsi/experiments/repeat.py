"""`hsi-classify repeat`: train the same setup several times and report how much the numbers move.

A repeat folder ``<out>/<name>/`` holds ``repeat.json`` (the resolved settings and the
seed of every run), one ordinary train run folder per run (``run-<k>-seed<s>/``) and the
report: ``stability.json``, ``stability.md``, ``stability.png``, ``agreement.png``,
``agreement.npy`` and ``consensus.png``.

What changes between runs is chosen with ``vary``:

- ``split``: run k draws its train/test split (and the PCA fitted on it) from seed ``s_k``;
  initial weights, dropout and batch order keep the base ``seed``.
- ``init``: the split keeps the base split seed; weights, dropout and batch order use ``s_k``.
- ``both``: everything follows ``s_k``, like independent ``train --seed s_k`` runs.

A run counts as finished when its ``status.json`` says ``complete``; invoking the same
repeat again trains only the missing runs (an unfinished run folder is discarded and
redone), then rewrites the report. Repeat folders of the same settings side by side (same
parent) that varied the split and the initialisation are compared in each other's report.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsi._core.errors import ConfigError, DataFormatError
from hsi.config import RunConfig
from hsi.data.scene import Scene, labels_from_ground_truth
from hsi.evaluation.metrics import classification_summary
from hsi.evaluation.stability import (
    HEADLINE_METRICS,
    aggregate_runs,
    agreement_map,
    std_ratio_interval,
)
from hsi.experiments.run_dir import read_status
from hsi.experiments.train import prepare, train_run, validate_config
from hsi.reporting import figures, tables
from hsi.reporting.files import (
    atomic_save_figure,
    atomic_save_json,
    atomic_save_npy,
    atomic_write_text,
)
from hsi.training.device import resolve_device

log = logging.getLogger(__name__)

__all__ = [
    "VARY",
    "PlannedRun",
    "RepeatResult",
    "default_jobs",
    "parse_seeds",
    "plan_runs",
    "repeat_runs",
]

#: What may change between the runs of a repeat.
VARY = ("split", "init", "both")
REPEAT_FILE = "repeat.json"
STABILITY_FILE = "stability.json"
#: Settings that say where and on what a repeat runs, not what it measures: they may change on resume.
_RUNTIME_KEYS = frozenset({"device", "out", "data_dir", "download"})
#: Also ignored when matching side-by-side repeat folders: the seeds (what varies) and determinism.
_NOT_COMPARED = _RUNTIME_KEYS | {"seed", "split_seed", "deterministic"}
_VARY_WORDS = {"split": "the split", "init": "the initialisation", "both": "split and initialisation"}

Notify = Callable[[str], None]


@dataclass(frozen=True)
class PlannedRun:
    """One run of a repeat.

    Attributes:
        index: position k in the repeat, from 0.
        seed: the seed that varies (recorded as the run's seed in the report).
        init_seed: seed of initial weights, dropout and batch order (``RunConfig.seed``).
        split_seed: seed of the train/test split and PCA (``RunConfig.split_seed``).
    """

    index: int
    seed: int
    init_seed: int
    split_seed: int

    @property
    def name(self) -> str:
        """The run folder's name inside the repeat folder."""
        return f"run-{self.index}-seed{self.seed}"


@dataclass
class RepeatResult:
    """A finished repeat: its folder, the stability report (fractions) and what this call trained."""

    repeat_dir: Path
    report: dict[str, Any]
    n_trained: int
    n_reused: int


# ------------------------------------------------------------------ planning


def parse_seeds(text: str) -> list[int]:
    """``"0,1,5"`` -> ``[0, 1, 5]``.

    Raises:
        ConfigError: an entry is not an integer, or there is none.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers such as 0,1,2; got {text!r}.") from None
    if not seeds:
        raise ConfigError(f"--seeds must name at least one seed, e.g. 0,1,2; got {text!r}.")
    return seeds


def plan_runs(config: RunConfig, *, runs: int | None, seeds: Sequence[int] | None, vary: str) -> list[PlannedRun]:
    """The runs of a repeat: run k varies seed ``seeds[k]`` (default ``config.seed + k``).

    Args:
        config: the base settings; ``config.seed`` is the base seed (held fixed for the
            initialisation with ``vary='split'``), ``config.split_seed`` the held split seed
            with ``vary='init'`` (default ``config.seed``).
        runs: number of runs, or None when ``seeds`` gives them.
        seeds: explicit seeds, one per run (repeats allowed: same seed, same run), or None.
        vary: ``"split"``, ``"init"`` or ``"both"``.

    Returns:
        One :class:`PlannedRun` per run, in order.

    Raises:
        ConfigError: unknown ``vary``, no runs, ``runs`` and ``seeds`` disagree, or
            ``--split-seed`` given where the split is meant to vary.
    """
    if vary not in VARY:
        raise ConfigError(f"--vary must be one of {', '.join(VARY)}; got {vary!r}.")
    if seeds is None:
        if runs is None or runs < 1:
            raise ConfigError(f"--runs must be an integer >= 1 (or give --seeds 0,1,...); got {runs}.")
        seeds = [config.seed + k for k in range(runs)]
    elif runs is not None and runs != len(seeds):
        raise ConfigError(f"--runs {runs} disagrees with --seeds, which names {len(seeds)} seeds; give one of the two.")
    if not seeds:
        raise ConfigError("--seeds must name at least one seed, e.g. 0,1,2.")
    if vary != "init" and config.split_seed is not None:
        raise ConfigError(
            f"--split-seed fixes the split, but --vary {vary} varies it; drop --split-seed or use --vary init."
        )
    if vary != "init" and (config.split == "masks" or config.train_gt is not None or config.test_gt is not None):
        raise ConfigError(
            f"--train-gt/--test-gt give a fixed split that no seed changes, but --vary {vary} varies the split; "
            "use --vary init."
        )
    planned = []
    for k, s in enumerate(int(s) for s in seeds):
        if vary == "split":
            planned.append(PlannedRun(k, s, init_seed=config.seed, split_seed=s))
        elif vary == "init":
            planned.append(PlannedRun(k, s, init_seed=s, split_seed=config.resolved_split_seed))
        else:
            planned.append(PlannedRun(k, s, init_seed=s, split_seed=s))
    return planned


def _run_config(base: RunConfig, run: PlannedRun, repeat_dir: Path) -> RunConfig:
    return dataclasses.replace(base, seed=run.init_seed, split_seed=run.split_seed, out=str(repeat_dir))


def default_jobs(config: RunConfig) -> int:
    """One job per visible GPU when the runs go to CUDA without a fixed index, else 1."""
    device = resolve_device(config.device)
    if device.type == "cuda" and config.device in ("auto", "cuda"):
        return max(1, torch.cuda.device_count())
    return 1


def _lane_devices(config: RunConfig, jobs: int) -> list[str]:
    """The device of each concurrent job: GPUs round-robin, or the configured device for all."""
    device = resolve_device(config.device)
    if device.type == "cuda" and config.device in ("auto", "cuda"):
        n = max(1, torch.cuda.device_count())
        return [f"cuda:{i % n}" for i in range(jobs)]
    return [str(device)] * jobs


def default_name(config: RunConfig, vary: str) -> str:
    """``<dataset>_<model>_vary-<vary>``: the same settings find the same folder again."""
    stem = config.dataset or Path(str(config.cube)).stem
    return f"{stem}_{config.model}_vary-{vary}"


def _check_name(name: str) -> str:
    if not name or name in (".", "..") or Path(name).name != name or "/" in name or "\\" in name:
        raise ConfigError(f"--name must be a plain folder name (no path separators); got {name!r}.")
    return name


# ------------------------------------------------------------------ the repeat folder


def _repeat_record(config: RunConfig, vary: str, plan: Sequence[PlannedRun]) -> dict[str, Any]:
    return {
        "vary": vary,
        "seeds": [r.seed for r in plan],
        "runs": [{**dataclasses.asdict(r), "dir": r.name} for r in plan],
        "config": config.to_dict(),
    }


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    # A setting added to RunConfig after the folder was made counts as its default there.
    old = {**RunConfig().to_dict(), **old}
    keys = sorted((set(old) | set(new)) - _RUNTIME_KEYS)
    return [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k)]


def _check_resumable(repeat_dir: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    """The folder's stored record, or None for a new folder; raises when it cannot be resumed."""
    if not repeat_dir.exists():
        return None
    stored_path = repeat_dir / REPEAT_FILE
    if not stored_path.is_file():
        if repeat_dir.is_dir() and not any(repeat_dir.iterdir()):
            return None
        raise ConfigError(
            f"{repeat_dir} exists and is not a repeat folder (no {REPEAT_FILE}); choose another --name or --out."
        )
    try:
        stored = json.loads(stored_path.read_text())
        old_config, old_vary, old_seeds = stored["config"], stored["vary"], [int(s) for s in stored["seeds"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{stored_path} is unreadable ({err}); remove the folder or choose another --name.") from None
    diffs = _differences(old_config, record["config"])
    if old_vary != record["vary"]:
        diffs.insert(0, f"vary: {old_vary!r} there, {record['vary']!r} now")
    new_seeds = record["seeds"]
    if new_seeds[: len(old_seeds)] != old_seeds:
        diffs.append(f"seeds: {old_seeds} there, {new_seeds} now (a resumed repeat may only add runs)")
    if diffs:
        raise ConfigError(
            f"repeat folder {repeat_dir} was made with other settings ({'; '.join(diffs[:4])}"
            f"{'; ...' if len(diffs) > 4 else ''}); pass the same settings to resume it, or --name NEW for a new repeat."
        )
    return stored


def _is_finished(run_dir: Path) -> bool:
    return read_status(run_dir) == "complete" and (run_dir / "metrics.json").is_file()


# ------------------------------------------------------------------ running


def _train_in_worker(config: dict[str, Any], run_name: str, threads: int | None) -> dict[str, Any]:
    """One run in a worker process (top level, so it pickles); returns its metrics."""
    if threads:
        torch.set_num_threads(threads)
    return train_run(RunConfig.from_dict(config), progress=False, run_name=run_name).metrics


def _run_all(
    base: RunConfig,
    repeat_dir: Path,
    todo: Sequence[PlannedRun],
    *,
    jobs: int,
    progress: bool,
    done: Callable[[PlannedRun, dict[str, Any]], None],
    say: Notify,
) -> None:
    """Trains ``todo``: in this process with one job, else one worker process per job."""
    if jobs == 1 or len(todo) <= 1:
        for run in todo:
            done(run, train_run(_run_config(base, run, repeat_dir), progress=progress, run_name=run.name).metrics)
        return
    devices = _lane_devices(base, min(jobs, len(todo)))
    threads = None
    if torch.device(devices[0]).type == "cpu":
        threads = max(1, (os.cpu_count() or 1) // len(devices))
        say(f"running {len(devices)} CPU jobs at once: they compete for the {os.cpu_count()} cores "
            f"({threads} torch thread(s) per job)")
    # spawn: a forked CUDA context is unusable, and each worker must seed torch by itself.
    context = multiprocessing.get_context("spawn")
    pools = [ProcessPoolExecutor(max_workers=1, mp_context=context) for _ in devices]
    pending, free = list(todo), list(range(len(devices)))
    running: dict[Future[dict[str, Any]], tuple[int, PlannedRun]] = {}
    try:
        while pending or running:
            while pending and free:
                lane, run = free.pop(0), pending.pop(0)
                config = dataclasses.replace(_run_config(base, run, repeat_dir), device=devices[lane])
                running[pools[lane].submit(_train_in_worker, config.to_dict(), run.name, threads)] = (lane, run)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                lane, run = running.pop(future)
                free.append(lane)
                done(run, future.result())  # a failed run raises here; the running ones still finish
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


def repeat_runs(
    config: RunConfig,
    *,
    runs: int | None = None,
    seeds: Sequence[int] | None = None,
    vary: str = "both",
    name: str | None = None,
    jobs: int | None = None,
    progress: bool = True,
    notify: Notify | None = None,
) -> RepeatResult:
    """Trains the runs of a repeat that are not finished yet, then writes the stability report.

    Args:
        config: the base settings; ``config.out`` is the parent of the repeat folder.
        runs: number of runs (run k varies seed ``config.seed + k``), or None with ``seeds``.
        seeds: explicit seeds, one per run.
        vary: ``"split"``, ``"init"`` or ``"both"`` (see the module docstring).
        name: the repeat folder's name; default ``<dataset>_<model>_vary-<vary>``.
        jobs: runs trained at once; default one per visible GPU, 1 on CPU. On CPU more
            than one job makes the runs compete for the same cores.
        progress: show each run's progress bar (one job only).
        notify: receives one line per event (run finished, resumed runs), for the CLI.

    Returns:
        A :class:`RepeatResult`.

    Raises:
        ConfigError: bad settings, or the folder holds a repeat of other settings; raised
            before any folder is made.
    """
    say = notify or (lambda message: log.info("%s", message))
    validate_config(config)
    plan = plan_runs(config, runs=runs, seeds=seeds, vary=vary)
    jobs = default_jobs(config) if jobs is None else jobs
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1; got {jobs}.")
    repeat_dir = Path(config.out) / _check_name(name or default_name(config, vary))
    record = _repeat_record(config, vary, plan)
    stored = _check_resumable(repeat_dir, record)
    # Validates the data and the settings (patch size, model, ...) before anything is written.
    scene = prepare(_run_config(config, plan[0], repeat_dir)).scene

    created = not repeat_dir.exists()
    repeat_dir.mkdir(parents=True, exist_ok=True)
    if stored is None or stored["seeds"] != record["seeds"]:
        atomic_save_json(repeat_dir / REPEAT_FILE, record)
    todo = []
    for run in plan:
        run_dir = repeat_dir / run.name
        if _is_finished(run_dir):
            continue
        if run_dir.exists():
            say(f"{run.name}: unfinished ({read_status(run_dir) or 'no status'}), discarded and redone")
            shutil.rmtree(run_dir)
        todo.append(run)
    n_reused = len(plan) - len(todo)
    if n_reused:
        say(f"{repeat_dir}: {n_reused} of {len(plan)} runs already finished, {len(todo)} to train")

    count = [n_reused]

    def done(run: PlannedRun, metrics: dict[str, Any]) -> None:
        count[0] += 1
        say(f"[{count[0]}/{len(plan)}] {run.name}: OA {tables.format_percent(metrics['overall_accuracy'])}%, "
            f"AA {tables.format_percent(metrics['average_accuracy'])}%, kappa {tables.format_percent(metrics['kappa'])}")

    try:
        _run_all(config, repeat_dir, todo, jobs=jobs, progress=progress, done=done, say=say)
    except Exception:
        if created and count[0] == 0:
            shutil.rmtree(repeat_dir, ignore_errors=True)
        raise
    report = write_report(repeat_dir, plan, vary=vary, config=config, scene=scene)
    return RepeatResult(repeat_dir, report, n_trained=len(todo), n_reused=n_reused)


# ------------------------------------------------------------------ the report


def _load_run(run_dir: Path, scene: Scene) -> tuple[dict[str, Any], np.ndarray, np.ndarray, str]:
    """A finished run's metrics, class-index prediction (H, W), test mask (H, W) and device."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    resolved = json.loads((run_dir / "config.json").read_text()).get("resolved", {})
    class_ids = tuple(int(i) for i in resolved.get("class_ids", scene.class_ids))
    if class_ids != tuple(scene.class_ids):
        raise DataFormatError(
            f"{run_dir} classified classes {list(class_ids)}, the scene has {list(scene.class_ids)}; "
            "remove that run folder so it is redone."
        )
    # prediction.npy holds the scene's own label ids; back to class indices 0..K-1.
    prediction, _ = labels_from_ground_truth(
        np.load(run_dir / "prediction.npy"), class_ids, name=f"{run_dir / 'prediction.npy'}"
    )
    test = np.load(run_dir / "split_test.npy")
    return metrics, prediction, test, str(resolved.get("device", ""))


def _source_paragraph(vary: str, plan: Sequence[PlannedRun], *, gpu_nondeterministic: bool) -> str:
    seeds = ", ".join(str(r.seed) for r in plan)
    if vary == "split":
        text = (
            f"**What varied: the split.** Every run started from the same initial weights, dropout and "
            f"batch-order seed ({plan[0].init_seed}) and drew its own random train/test split (split seeds "
            f"{seeds}). The spread below is the effect of which pixels happen to be chosen for training and "
            "testing: how far one figure from a single random split can be trusted."
        )
    elif vary == "init":
        text = (
            f"**What varied: the initialisation.** Every run used the same train/test split (split seed "
            f"{plan[0].split_seed}: identical training and test pixels) and changed only the initial weights, "
            f"dropout draws and batch order (seeds {seeds}). The spread below is the training procedure's own "
            "randomness, not easier or harder test pixels."
        )
    else:
        text = (
            f"**What varied: split and initialisation.** Each run drew its own split and its own initialisation "
            f"(seeds {seeds}), like independent `train --seed` runs. The spread below is the total of both "
            "sources; run `repeat --vary split` and `repeat --vary init` with the same settings and `--out` to "
            "see which one dominates."
        )
    if gpu_nondeterministic:
        text += (" The runs were trained on a GPU without `--deterministic`, so non-deterministic GPU kernels "
                 "add a little to the spread.")
    return text


def _comparison_paragraph(comparison: dict[str, Any]) -> str:
    members = comparison["members"]
    split, init = members["split"], members["init"]

    def pts(member: dict[str, Any]) -> str:
        return f"±{tables.format_percent(member['overall_accuracy_std'])} points"

    text = (
        f"**Split or initialisation?** Side by side with the same settings, the split moves OA by {pts(split)} "
        f"(std over {split['n_runs']} runs, `{split['dir']}`), the initialisation by {pts(init)} "
        f"(std over {init['n_runs']} runs, `{init['dir']}`)"
    )
    s, i = split["overall_accuracy_std"], init["overall_accuracy_std"]
    if s == i:
        text += ": both sources move it equally."
    elif i == 0 or s == 0:
        text += f": only {'the split' if s > i else 'the initialisation'} moves it."
    else:
        larger, ratio = ("the split", s / i) if s > i else ("the initialisation", i / s)
        text += f": {larger} moves it more (about {ratio:.1f}×)."
        interval = std_ratio_interval(s, split["n_runs"], i, init["n_runs"])
        if interval is not None:
            low, high = interval
            if low <= 1.0 <= high:
                text += (f" With this many runs that difference is not significant: the 95% interval of the "
                         f"ratio split/initialisation std is [{low:.2f}, {high:.2f}], which holds 1; re-run both "
                         "with a larger `--runs` (finished runs are kept) to tell the two apart.")
            else:
                text += f" The 95% interval of the ratio split/initialisation std is [{low:.2f}, {high:.2f}]."
    if "both" in members:
        text += f" Varying both gives {pts(members['both'])} over {members['both']['n_runs']} runs."
    return text


def _comparison(repeat_dir: Path, own: dict[str, Any]) -> dict[str, Any] | None:
    """Finds repeat folders of the same settings beside this one; compares their OA spread by ``vary``."""
    key = {k: v for k, v in own["config"].items() if k not in _NOT_COMPARED}
    members: dict[str, dict[str, Any]] = {}
    candidates = [repeat_dir] + sorted(p for p in repeat_dir.parent.iterdir() if p.is_dir() and p != repeat_dir)
    for folder in candidates:
        try:
            report = own if folder == repeat_dir else json.loads((folder / STABILITY_FILE).read_text())
            config, vary, n_runs = report["config"], report["vary"], int(report["n_runs"])
            std = report["overall_accuracy"]["std"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if std is None or {k: v for k, v in config.items() if k not in _NOT_COMPARED} != key:
            continue
        best = members.get(vary)
        # This folder always stands for its own vary; among other folders, the one with most runs.
        if best is not None and (best["dir"] == repeat_dir.name or n_runs <= best["n_runs"]):
            continue
        members[vary] = {"dir": folder.name, "n_runs": n_runs, "overall_accuracy_std": std,
                         "overall_accuracy_mean": report["overall_accuracy"]["mean"]}
    if "split" not in members or "init" not in members:
        return None
    return {"members": members, "text": _comparison_paragraph({"members": members})}


def render_markdown(report: dict[str, Any]) -> str:
    """``stability.md`` from the content of ``stability.json``."""
    paragraph = report["source"]
    if report.get("comparison"):
        paragraph += "\n\n" + report["comparison"]["text"]
    title = f"Stability of {report['model']} on {report['dataset']}: {report['n_runs']} runs varying " \
            f"{_VARY_WORDS[report['vary']]}"
    parts = [tables.stability_markdown(report, seeds=report["seeds"], paragraph=paragraph, title=title,
                                       class_ids=report["class_ids"])]
    parts.append("## Runs\n")
    rows = [[r["dir"], r["seed"], r["init_seed"], r["split_seed"], *(tables.format_percent(r[m]) for m in HEADLINE_METRICS)]
            for r in report["runs"]]
    parts.append(tables.markdown_table(
        ["Run folder", "Seed", "Init seed", "Split seed", "OA (%)", "AA (%)", "Kappa (×100)"], rows,
        align=["l", "r", "r", "r", "r", "r", "r"]))
    ag, co = report["agreement"], report["consensus"]
    parts.append("## Agreement and consensus\n")
    parts.append(
        f"Per pixel, the share of runs that predict the majority class (`agreement.npy`, `agreement.png`): "
        f"{tables.format_percent(ag['mean_labelled'])}% on average over the labelled pixels, and all runs "
        f"agree on {tables.format_percent(ag['unanimous_labelled'])}% of them "
        f"({tables.format_percent(ag['mean_all'])}% on average over the whole scene).\n"
    )
    where = ("all test pixels (the split was the same in every run)" if report["vary"] == "init"
             else "the pixels that were test pixels in every run (the intersection of the runs' test sets)")
    if co["n_pixels"]:
        parts.append(
            f"The majority-vote map (`consensus.png`) is scored on {where}: {co['n_pixels']:,} of "
            f"{co['n_labelled']:,} labelled pixels. On them it reaches OA "
            f"{tables.format_percent(co['overall_accuracy'])}%, AA {tables.format_percent(co['average_accuracy'])}%, "
            f"kappa {tables.format_percent(co['kappa'])}; the single runs reach OA "
            f"{tables.format_percent(co['mean_run_overall_accuracy'])}% on average on the same pixels.\n"
        )
    else:
        parts.append(f"The majority-vote map (`consensus.png`) cannot be scored: no pixel was a test pixel in "
                     f"every run ({where}).\n")
    parts.append("## Settings\n")
    parts.append(tables.markdown_table(["Setting", "Value"],
                                       [[k, str(v)] for k, v in report["config"].items() if v is not None]))
    return "\n".join(parts)


def write_report(
    repeat_dir: Path, plan: Sequence[PlannedRun], *, vary: str, config: RunConfig, scene: Scene
) -> dict[str, Any]:
    """Writes stability.json/.md/.png, agreement.npy/.png and consensus.png from the finished runs.

    Args:
        repeat_dir: the repeat folder; every planned run folder in it is finished.
        plan: the runs, in order.
        vary: what varied between runs.
        config: the base settings (recorded in the report).
        scene: the scene the runs classified (labels, class names, palette).

    Returns:
        The content of ``stability.json`` (fractions).
    """
    names = list(scene.class_names)
    loaded = [_load_run(repeat_dir / r.name, scene) for r in plan]
    run_metrics = [m for m, _, _, _ in loaded]
    predictions = np.stack([p for _, p, _, _ in loaded])  # (R, H, W), class indices
    consensus, agreement = agreement_map(predictions)
    labelled = scene.labels >= 0
    common = np.logical_and.reduce([t for _, _, t, _ in loaded])  # test pixels in every run
    consensus_info: dict[str, Any] = {"n_pixels": int(common.sum()), "n_labelled": int(labelled.sum())}
    if common.any():
        truth = scene.labels[common]
        summary = classification_summary(truth, consensus[common], class_names=names)
        consensus_info.update(
            {m: summary[m] for m in HEADLINE_METRICS},
            mean_run_overall_accuracy=float(np.mean([(p[common] == truth).mean() for p in predictions])),
        )
    gpu_nondeterministic = not config.deterministic and any(d.startswith("cuda") for _, _, _, d in loaded)
    report: dict[str, Any] = {
        "dataset": scene.name,
        "model": config.model,
        "vary": vary,
        "seeds": [r.seed for r in plan],
        "runs": [
            {"dir": r.name, "seed": r.seed, "init_seed": r.init_seed, "split_seed": r.split_seed,
             **{k: m[k] for k in HEADLINE_METRICS}}
            for r, m in zip(plan, run_metrics, strict=True)
        ],
        **aggregate_runs(run_metrics, names),
        "class_ids": list(scene.class_ids),
        "agreement": {
            "mean_labelled": float(agreement[labelled].mean()),
            "unanimous_labelled": float((agreement[labelled] == 1.0).mean()),
            "mean_all": float(agreement.mean()),
        },
        "consensus": consensus_info,
        "source": _source_paragraph(vary, plan, gpu_nondeterministic=gpu_nondeterministic),
        "comparison": None,
        "config": config.to_dict(),
    }
    report["comparison"] = _comparison(repeat_dir, report)
    _write_report_files(repeat_dir, report)
    atomic_save_npy(repeat_dir / "agreement.npy", agreement)
    title = f"{scene.name}, {config.model}: {len(plan)} runs varying {_VARY_WORDS[vary]}"
    atomic_save_figure(figures.stability_figure(run_metrics, names, title=title), repeat_dir / "stability.png")
    atomic_save_figure(figures.agreement_figure(agreement, title=f"Agreement between {len(plan)} runs"),
                       repeat_dir / "agreement.png")
    atomic_save_figure(
        figures.classification_map(consensus, class_names=names, palette=list(scene.palette),
                                   title=f"{scene.name}: majority vote of {len(plan)} runs"),
        repeat_dir / "consensus.png",
    )
    if report["comparison"]:
        _update_siblings(repeat_dir, report["comparison"])
    return report


def _write_report_files(repeat_dir: Path, report: dict[str, Any]) -> None:
    atomic_save_json(repeat_dir / STABILITY_FILE, report)
    atomic_write_text(repeat_dir / "stability.md", render_markdown(report))


def _update_siblings(repeat_dir: Path, comparison: dict[str, Any]) -> None:
    """Adds the comparison to the reports of the other folders it names, so each report shows it."""
    for member in comparison["members"].values():
        folder = repeat_dir.parent / member["dir"]
        if folder == repeat_dir:
            continue
        try:
            report = json.loads((folder / STABILITY_FILE).read_text())
        except (OSError, ValueError):
            continue
        if report.get("comparison") != comparison:
            report["comparison"] = comparison
            _write_report_files(folder, report)
