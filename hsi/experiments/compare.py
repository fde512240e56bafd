"""`hsi-classify compare`: several models trained on the same split(s), one table.

Each model is trained with :func:`~hsi.experiments.train.train_run` once per seed; every
run writes its usual run folder, ``<model>-seed<s>/``, inside one compare folder,
``<out>/compare_<dataset>_<timestamp>/``. Seed ``s`` draws the same split for every model
(the split depends only on the data, the split settings and the seed), so the models are
compared on identical training and test pixels; ``compare.json`` records a fingerprint of
each run's test mask to show it. The tables, chart and JSON are written by
:mod:`hsi.reporting.compare_report`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hsi._core.errors import ConfigError
from hsi.config import RunConfig
from hsi.evaluation.stability import HEADLINE_METRICS, aggregate_runs, summarize
from hsi.experiments.engine import Engine, LocalEngine
from hsi.experiments.run_dir import create_run_dir, write_status
from hsi.experiments.steps import load_config_scene
from hsi.experiments.train import RunJob, RunResult, prepare, train_runs
from hsi.models import MODELS
from hsi.reporting.compare_report import SUMMARISED, write_comparison

log = logging.getLogger(__name__)

__all__ = ["CompareResult", "compare_models", "parse_model_list"]


@dataclass
class CompareResult:
    """A finished comparison: its folder and one summary dict per model (fractions, seconds)."""

    compare_dir: Path
    results: list[dict[str, Any]]


def parse_model_list(models: str | Sequence[str]) -> list[str]:
    """Splits ``"a,b,c"`` (or takes a list), and checks every name before anything runs.

    Args:
        models: comma-separated registry names, or a sequence of names.

    Returns:
        The names in the given order.

    Raises:
        ConfigError: no name, or a name given twice.
        UnknownNameError: a name is not registered (the message suggests close names).
    """
    names = [n.strip() for n in (models.split(",") if isinstance(models, str) else models)]
    names = [n for n in names if n]
    if not names:
        raise ConfigError("--models needs at least one model name, e.g. --models hybridsn,resnet,svm.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--models names each model once; {', '.join(repeated)} appears more than once.")
    for name in names:
        MODELS.get(name)
    return names


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    """The seeds as ints; each names one run folder per model, so each may appear once."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("--seeds must name at least one seed, e.g. --seeds 0,1,2 (or give --runs N).")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ConfigError(f"compare runs each seed once per model (one run folder each); --seeds repeats "
                          f"{', '.join(map(str, repeated))}. Name each seed once.")
    return seeds


def _mask_sha256(path: Path) -> str:
    """Fingerprint of a boolean split mask file: equal masks give equal strings."""
    mask = np.ascontiguousarray(np.load(path), dtype=bool)
    return hashlib.sha256(mask.tobytes() + str(mask.shape).encode()).hexdigest()


def _summarise_model(model: str, runs: list[RunResult], seeds: list[int], compare_dir: Path,
                     retries: list[int]) -> dict[str, Any]:
    """One model's row: summaries over its runs plus each run's own figures."""
    metrics = [r.metrics for r in runs]
    stability = aggregate_runs(metrics, list(metrics[0]["per_class"]))
    info = MODELS.get(model)
    row: dict[str, Any] = {"model": model, "kind": info.kind, "paper": info.paper, "n_runs": len(runs)}
    for key in HEADLINE_METRICS:
        row[key] = stability[key]
    for key in ("train_seconds", "inference_seconds"):
        row[key] = summarize([m[key] for m in metrics])
    # What the run recorded about itself in config.json: parameters, device.
    resolved = json.loads((runs[0].run_dir / "config.json").read_text())["resolved"]
    row["parameters"] = None if resolved.get("n_parameters") is None else int(resolved["n_parameters"])
    row["device"] = resolved.get("device_name")
    row["per_class_accuracy"] = stability["per_class"]
    row["runs"] = [
        {
            "seed": seed,
            "run_dir": str(r.run_dir.relative_to(compare_dir)),
            **{k: r.metrics[k] for k in SUMMARISED},
            "n_train": r.metrics["n_train"],
            "n_test": r.metrics["n_test"],
            "split_test_sha256": _mask_sha256(r.run_dir / "split_test.npy"),
            "retries": n_retries,  # resubmissions after its engine lost the worker (Ray); 0 locally
        }
        for seed, r, n_retries in zip(seeds, runs, retries, strict=True)
    ]
    return row


def compare_models(
    base: RunConfig, models: str | Sequence[str], *, seeds: Sequence[int] | None = None, progress: bool = True,
    engine: Engine | None = None,
) -> CompareResult:
    """Trains every model on the same split(s) and writes the comparison.

    Args:
        base: the settings shared by every run (its ``model`` is ignored; its ``out`` is the
            folder that receives the compare folder).
        models: registry names, comma-separated or as a sequence, in table order.
        seeds: the seed of each run of every model; seed ``s`` gives every model the same
            split. Default=None runs once, with ``base.seed``.
        progress: show each run's progress bar (runs in this process only).
        engine: where the runs train (:mod:`hsi.experiments.engine`); default one at a time in this process.

    Returns:
        The compare folder and one dict per model: ``overall_accuracy``,
        ``average_accuracy``, ``kappa``, ``train_seconds`` and ``inference_seconds`` as
        :func:`~hsi.evaluation.stability.summarize` dicts (fractions, seconds),
        ``parameters``, ``per_class_accuracy`` and the list of its ``runs``.

    Raises:
        HSIError: an unknown model name, a seed given twice, a bad setting, or data a
            model cannot take; all of these are found before any training starts and
            before any folder is created.
    """
    names = parse_model_list(models)
    seeds = _check_seeds([base.seed] if seeds is None else seeds)
    engine = engine or LocalEngine()
    # Every check that needs the data (patch size per model, band count, classes) runs now,
    # so a bad combination fails in seconds, not after the first models have trained. The
    # scene is read once and handed to every run.
    loaded = load_config_scene(base)
    scene_name = ""
    for name in names:
        scene_name = prepare(dataclasses.replace(base, model=name), scene=loaded).scene.name
    stem = base.dataset or Path(str(base.cube)).stem
    compare_dir = create_run_dir(base.out, f"compare_{stem}")
    status = {"models": names, "seeds": seeds, "engine": engine.describe()}
    write_status(compare_dir, "running", **status)
    jobs = [RunJob(f"{name}-seed{seed}", dataclasses.replace(base, model=name, seed=seed, out=str(compare_dir))
                   .to_dict(), progress=progress) for name in names for seed in seeds]
    finished: dict[str, tuple[RunResult, int]] = {}
    try:
        for job, metrics, retries in train_runs(engine, jobs, scene=loaded):
            log.info("compare: %s finished (%d/%d)", job.name, len(finished) + 1, len(jobs))
            finished[job.name] = (RunResult(compare_dir / job.name, metrics), retries)
        results: list[dict[str, Any]] = []
        for name in names:
            runs = [finished[f"{name}-seed{seed}"] for seed in seeds]
            results.append(_summarise_model(name, [r for r, _ in runs], seeds, compare_dir, [n for _, n in runs]))
        write_comparison(compare_dir, base, names, seeds, scene_name, results)
    except KeyboardInterrupt:
        write_status(compare_dir, "interrupted", **status)
        raise
    except BaseException as err:
        # Finished runs stay: they are valid run folders, and costly to redo.
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        write_status(compare_dir, "failed", **status, error=reason)
        raise
    write_status(compare_dir, "complete", **status)
    return CompareResult(compare_dir, results)
