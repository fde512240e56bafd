"""`hsi-classify repeat`: train the same setup several times and report how much the numbers move.

A repeat folder ``<out>/<name>/`` holds ``repeat.json`` (settings and seeds, for resuming), one train run
folder per run (``run-<k>-seed<s>/``) and the report of :mod:`hsi.reporting.stability_report`. Invoking it
again trains only the runs not ``complete`` (discarding their folders), then rewrites its own report only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hsi._core.errors import ConfigError, DataFormatError
from hsi.config import RunConfig, migrate
from hsi.data.scene import Scene, labels_from_ground_truth
from hsi.experiments.engine import Engine, make_engine
from hsi.experiments.run_dir import read_status
from hsi.experiments.steps import load_config_scene
from hsi.experiments.train import RunJob, prepare, train_runs, validate_config
from hsi.reporting.files import atomic_save_json
from hsi.reporting.stability_report import (
    find_comparison,
    source_paragraph,
    stability_report,
    write_stability_report,
)
from hsi.reporting.tables import format_kappa, format_percent
from hsi.reporting.vary import ALL, VARY
from hsi.reporting.vary_all_report import all_report, series_member, write_all_report
from hsi.training.recipe import resolve_recipe

log = logging.getLogger(__name__)

__all__ = ["ALL", "VARY", "PlannedRun", "RepeatResult", "distinct_runs", "plan_runs", "plan_series", "repeat_runs"]

REPEAT_FILE = "repeat.json"
#: Settings that say where and on what a repeat runs, not what it measures: they may change on resume.
_RUNTIME_KEYS = frozenset({"device", "out", "data_dir", "download"})
#: Also ignored when matching side-by-side repeat folders: the seeds (what varies) and determinism.
_NOT_COMPARED = _RUNTIME_KEYS | {"seed", "split_seed", "deterministic"}


@dataclass(frozen=True)
class PlannedRun:
    """One run of a repeat: position ``index``, the varying ``seed``, and the two seeds it resolves to."""

    index: int
    seed: int
    init_seed: int  # RunConfig.seed: initial weights, dropout, batch order
    split_seed: int  # RunConfig.split_seed: the split and PCA
    dir: str = ""  # the folder's name when not run-<index>-seed<seed> (--vary all: named by its two seeds)

    @property
    def name(self) -> str:
        """The run folder's name inside the repeat folder."""
        return self.dir or f"run-{self.index}-seed{self.seed}"


@dataclass
class RepeatResult:
    """A finished repeat: its folder, the stability report (fractions) and what this call trained."""

    repeat_dir: Path
    report: dict[str, Any]
    n_trained: int
    n_reused: int


def plan_runs(config: RunConfig, seeds: Sequence[int], vary: str) -> list[PlannedRun]:
    """The runs of a repeat: run k varies seed ``seeds[k]`` (the same seed twice: two runs of it).

    ``config.seed`` is held for the initialisation when only the split varies, and
    ``config.split_seed`` (default ``config.seed``) for the split when only the initialisation does.

    Raises:
        ConfigError: unknown ``vary`` (a key of :data:`VARY`); fewer than 2 seeds; ``--split-seed``
            or a fixed split where the split varies.
    """
    if vary not in VARY:
        raise ConfigError(f"--vary must be one of {', '.join(VARY)}; got {vary!r}.")
    _check_plan(config, seeds, vary, varies_split=VARY[vary].split)
    rule = VARY[vary]
    return [PlannedRun(k, int(s), init_seed=int(s) if rule.init else config.seed,
                       split_seed=int(s) if rule.split else config.resolved_split_seed)
            for k, s in enumerate(seeds)]


def _check_plan(config: RunConfig, seeds: Sequence[int], vary: str, *, varies_split: bool) -> None:
    """Raises the :func:`plan_runs` refusals (fewer than 2 seeds, a fixed split that ``vary`` varies)."""
    if len(seeds) < 2:
        raise ConfigError(f"repeat needs at least 2 seeds (a stability report compares runs); got {list(seeds)}. "
                          "Give two or more, e.g. --seeds 0,1,2 or --runs 3.")
    if varies_split and config.split_seed is not None:
        raise ConfigError(f"--split-seed fixes the split, but --vary {vary} varies it; drop --split-seed or use "
                          "--vary init.")
    if varies_split and (config.split == "masks" or config.train_gt is not None or config.test_gt is not None):
        raise ConfigError(f"--train-gt/--test-gt give a fixed split that no seed changes, but --vary {vary} varies "
                          "the split; use --vary init.")


def plan_series(config: RunConfig, seeds: Sequence[int], vary: str) -> dict[str, list[PlannedRun]]:
    """The series of a repeat, ``{vary: runs}``: one for a key of :data:`VARY`, all three for ``"all"``.

    With ``"all"`` a run is named by its two seeds (``run-init<i>-split<s>``; ``-2``, ``-3`` ... for
    a seed given again), so the series that hold the same run (e.g. seed ``--seed`` for both) name
    the same folder and :func:`distinct_runs` trains it once.

    Raises:
        ConfigError: unknown ``vary``, or as :func:`plan_runs`.
    """
    if vary != ALL:
        if vary not in VARY:
            raise ConfigError(f"--vary must be one of {', '.join([*VARY, ALL])}; got {vary!r}.")
        return {vary: plan_runs(config, seeds, vary)}
    _check_plan(config, seeds, ALL, varies_split=True)
    series: dict[str, list[PlannedRun]] = {}
    for name in VARY:
        seen: dict[tuple[int, int], int] = {}
        series[name] = []
        for run in plan_runs(config, seeds, name):
            copy = seen[run.init_seed, run.split_seed] = seen.get((run.init_seed, run.split_seed), 0) + 1
            folder = f"run-init{run.init_seed}-split{run.split_seed}" + (f"-{copy}" if copy > 1 else "")
            series[name].append(dataclasses.replace(run, dir=folder))
    return series


def distinct_runs(series: dict[str, list[PlannedRun]]) -> list[PlannedRun]:
    """Each run folder of ``series`` once, the first time it appears: run k of every series before run k + 1."""
    distinct: dict[str, PlannedRun] = {}
    for k in range(max(len(runs) for runs in series.values())):
        for runs in series.values():
            if k < len(runs):
                distinct.setdefault(runs[k].name, runs[k])
    return list(distinct.values())


def _run_config(base: RunConfig, run: PlannedRun, repeat_dir: Path) -> RunConfig:
    return dataclasses.replace(base, seed=run.init_seed, split_seed=run.split_seed, out=str(repeat_dir))


def _check_name(name: str) -> str:
    if not name or name in (".", "..") or Path(name).name != name or "/" in name or "\\" in name:
        raise ConfigError(f"--name must be a plain folder name (no path separators); got {name!r}.")
    return name


def _check_resumable(repeat_dir: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    """The folder's stored record, or None for a new folder; raises when it cannot be resumed."""
    stored_path = repeat_dir / REPEAT_FILE
    if not repeat_dir.exists() or (repeat_dir.is_dir() and not any(repeat_dir.iterdir())):
        return None
    if not stored_path.is_file():
        raise ConfigError(f"{repeat_dir} exists and is not a repeat folder (no {REPEAT_FILE}); choose another "
                          "--name or --out.")
    try:
        stored = json.loads(stored_path.read_text())
        old_config, old_vary, old_seeds = stored["config"], stored["vary"], [int(s) for s in stored["seeds"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{stored_path} is unreadable ({err}); remove the folder or choose another --name.") from None
    # An option added since the folder was made: as migrate() reads a run's record (a recipe part did not
    # act then: its off value); a part stored as None (an unresolved config) stays a difference.
    old, new = migrate({"run": old_config})["run"], record["config"]
    diffs = [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now"
             for k in sorted((set(old) | set(new)) - _RUNTIME_KEYS) if old.get(k) != new.get(k)]
    if old_vary != record["vary"]:
        diffs.insert(0, f"vary: {old_vary!r} there, {record['vary']!r} now")
    if record["seeds"][: len(old_seeds)] != old_seeds:
        diffs.append(f"seeds: {old_seeds} there, {record['seeds']} now (a resumed repeat may only add runs)")
    if diffs:
        listed = "; ".join(diffs[:4]) + ("; ..." if len(diffs) > 4 else "")
        raise ConfigError(f"repeat folder {repeat_dir} was made with other settings ({listed}); pass the same "
                          "settings to resume it, or --name NEW for a new repeat.")
    return stored


def repeat_runs(config: RunConfig, seeds: Sequence[int], *, vary: str = "both", name: str | None = None,
                jobs: int | None = None, engine: Engine | None = None, progress: bool = True,
                notify: Callable[[str], None] | None = None) -> RepeatResult:
    """Trains the runs of a repeat that are not finished yet, then writes its stability report.

    Args:
        config: the base settings; ``config.out`` is the parent of the repeat folder.
        seeds: run k's seed ``s_k``; vary: what follows it, as :func:`plan_runs`, or ``"all"``: the three
            series in one folder (:func:`plan_series`), each distinct run trained once.
        name: the repeat folder's name; default ``<dataset>_<model>_vary-<vary>``.
        jobs: runs trained at once by the default local engine; default one per visible GPU, 1 on CPU
            (more on CPU share the cores).
        engine: where the runs train (:mod:`hsi.experiments.engine`); default this machine, ``jobs`` at once.
        progress: show each run's progress bar (one job in this process only).
        notify: receives one line per event (run finished, resumed runs), for the CLI.

    Raises:
        ConfigError: bad settings, or the folder holds a repeat of other settings; raised
            before any folder is made.
    """
    say = notify or (lambda message: log.info("%s", message))
    validate_config(config)
    series = plan_series(config, seeds, vary)
    plan = distinct_runs(series)  # the runs to train; one series: the series itself
    if engine is None:
        engine = make_engine("local", device=config.device, jobs=jobs, notify=say)
    elif jobs is not None:
        raise ConfigError("give repeat_runs either jobs (for the local engine) or an engine, not both.")
    stem = config.dataset or Path(str(config.cube)).stem  # the same settings find the same folder again
    repeat_dir = Path(config.out) / _check_name(name or f"{stem}_{config.model}_vary-{vary}")
    # The recipe's parts, not only its name: a recipe redefined since the folder was made (another
    # version of the tool) does not resume as if it were the same.
    record: dict[str, Any] = {"vary": vary, "seeds": [int(s) for s in seeds], "runs": _record_runs(series, plan),
                              "config": resolve_recipe(config).to_dict()}
    stored = _check_resumable(repeat_dir, record)
    # Validates the data and the settings (patch size, model, ...) before anything is written; the
    # scene is read once here and handed to every run.
    loaded = load_config_scene(config)
    scene = prepare(_run_config(config, plan[0], repeat_dir), scene=loaded).scene

    created = not repeat_dir.exists()
    repeat_dir.mkdir(parents=True, exist_ok=True)
    retries: dict[str, int] = dict((stored or {}).get("engine", {}).get("retries", {}))
    if stored is None or stored["seeds"] != record["seeds"]:
        atomic_save_json(repeat_dir / REPEAT_FILE, {**record, "engine": {**engine.describe(), "retries": retries}})
    todo = _unfinished(repeat_dir, plan, say)
    n_reused = len(plan) - len(todo)
    if n_reused:
        say(f"{repeat_dir}: {n_reused} of {len(plan)} runs already finished, {len(todo)} to train")
    count = n_reused
    jobs_todo = [RunJob(run.name, _run_config(config, run, repeat_dir).to_dict(), progress=progress) for run in todo]
    try:
        for job, metrics, n_retries in train_runs(engine, jobs_todo, scene=loaded):
            count += 1
            retries[job.name] = n_retries
            # Which engine trained the runs, and how often a lost worker's run was resubmitted.
            atomic_save_json(repeat_dir / REPEAT_FILE, {**record, "engine": {**engine.describe(), "retries": retries}})
            again = f" (after {n_retries} lost worker{'s' * (n_retries > 1)})" if n_retries else ""
            say(f"[{count}/{len(plan)}] {job.name}: OA {format_percent(metrics['overall_accuracy'])}%, "
                f"AA {format_percent(metrics['average_accuracy'])}%, kappa {format_kappa(metrics['kappa'])}{again}")
    except Exception:
        if created and count == 0:
            shutil.rmtree(repeat_dir, ignore_errors=True)
        raise
    if vary == ALL:
        report = write_all(repeat_dir, series, config=config, scene=scene)
    else:
        report = write_report(repeat_dir, plan, vary=vary, config=config, scene=scene)
    return RepeatResult(repeat_dir, report, n_trained=len(todo), n_reused=n_reused)


def _record_runs(series: dict[str, list[PlannedRun]], plan: Sequence[PlannedRun]) -> list[dict[str, Any]]:
    """``repeat.json``'s ``runs``: each run of ``plan``; with several series, its position k in each."""
    if len(series) == 1:
        return [{**dataclasses.asdict(r), "dir": r.name} for r in plan]
    return [{"dir": r.name, "init_seed": r.init_seed, "split_seed": r.split_seed,
             "series": {vary: p.index for vary, runs in series.items() for p in runs if p.name == r.name}}
            for r in plan]


def _unfinished(repeat_dir: Path, plan: Sequence[PlannedRun], say: Callable[[str], None]) -> list[PlannedRun]:
    """The runs of ``plan`` not ``complete``; their folders (interrupted, failed) are removed."""
    todo = []
    for run in plan:
        run_dir = repeat_dir / run.name
        if read_status(run_dir) == "complete" and (run_dir / "metrics.json").is_file():
            continue
        if run_dir.exists():
            say(f"{run.name}: unfinished ({read_status(run_dir) or 'no status'}), discarded and redone")
            shutil.rmtree(run_dir)
        todo.append(run)
    return todo


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
    prediction, _ = labels_from_ground_truth(np.load(run_dir / "prediction.npy"), class_ids,
                                             name=f"{run_dir / 'prediction.npy'}")
    return metrics, prediction, np.load(run_dir / "split_test.npy"), str(resolved.get("device", ""))


def _series_report(repeat_dir: Path, plan: Sequence[PlannedRun], *, vary: str, config: RunConfig, scene: Scene,
                   in_all: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stability report of one series (fractions) and :func:`write_stability_report`'s other keywords.

    The runs are read from ``repeat_dir``. ``in_all``: a series of a ``--vary all`` folder, whose
    report is written one folder down and names each run ``../<run folder>``.
    """
    prefix = "../" if in_all else ""
    names = list(scene.class_names)
    metrics, predictions, tests, devices = zip(*(_load_run(repeat_dir / r.name, scene) for r in plan), strict=True)
    source = source_paragraph(
        vary, seeds=[r.seed for r in plan], init_seed=plan[0].init_seed, split_seed=plan[0].split_seed,
        gpu_nondeterministic=not config.deterministic and any(d.startswith("cuda") for d in devices),
        in_all=in_all)
    report, consensus, agreement, no_majority = stability_report(
        dataset=scene.name, model=config.model, vary=vary,
        runs=[{"dir": prefix + r.name, "seed": r.seed, "init_seed": r.init_seed, "split_seed": r.split_seed}
              for r in plan],
        run_metrics=metrics, predictions=np.stack(predictions), tests=np.stack(tests), labels=scene.labels,
        class_names=names, class_ids=scene.class_ids, source=source, config=config.to_dict())
    return report, {"run_metrics": metrics, "agreement": agreement, "consensus": consensus, "class_names": names,
                    "palette": list(scene.palette), "no_majority": no_majority}


def write_report(repeat_dir: Path, plan: Sequence[PlannedRun], *, vary: str, config: RunConfig,
                 scene: Scene) -> dict[str, Any]:
    """Writes the report of ``repeat_dir`` (all of ``plan`` finished); returns ``stability.json``'s content."""
    report, rest = _series_report(repeat_dir, plan, vary=vary, config=config, scene=scene)
    report["comparison"] = find_comparison(repeat_dir, report, ignore=_NOT_COMPARED)
    write_stability_report(repeat_dir, report, **rest)
    return report


def write_all(repeat_dir: Path, series: dict[str, list[PlannedRun]], *, config: RunConfig,
              scene: Scene) -> dict[str, Any]:
    """Writes a ``--vary all`` folder's reports (every run finished); returns its own ``stability.json``'s content.

    Each series gets a full stability report in ``repeat_dir/<vary>/``; the folder's own report
    (:func:`~hsi.reporting.vary_all_report.write_all_report`) opens with which source dominates.
    The series are compared with each other only, never with folders beside ``repeat_dir``.
    """
    built = {vary: _series_report(repeat_dir, runs, vary=vary, config=config, scene=scene, in_all=True)
             for vary, runs in series.items()}
    reports = {vary: report for vary, (report, _) in built.items()}
    summary = all_report(reports, members={vary: series_member(vary, r) for vary, r in reports.items()},
                         config=config.to_dict())
    for vary, (report, rest) in built.items():
        report["comparison"] = summary["comparison"]
        (repeat_dir / vary).mkdir(exist_ok=True)
        write_stability_report(repeat_dir / vary, report, **rest)
    write_all_report(repeat_dir, summary)
    return summary
