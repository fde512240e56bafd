"""`hsi-classify train`: the steps of :mod:`hsi.experiments.steps` in order, in a guarded run folder; and the
training runs of ``repeat`` and ``compare`` on an engine (:func:`train_runs`)."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hsi._core.errors import ConfigError, DataFormatError
from hsi._core.files import atomic_write_bytes
from hsi.config import RunConfig
from hsi.data.scene import Scene
from hsi.evaluation.leakage import control_summary
from hsi.evaluation.metrics import classification_summary
from hsi.experiments.engine import Engine, worker_device
from hsi.experiments.resume import ResumePoint, epoch_saver, load_resume_point, resumable_config
from hsi.experiments.run_dir import STATUS_FILE, create_run_dir, guard_run
from hsi.experiments.steps import (
    Features,
    Prepared,
    classify,
    environment,
    evaluate,
    fit,
    lazy_mode,
    predict,
    prepare,
    prepare_lazy,
    reduce,
    run_checkpoint,
    validate_config,
)
from hsi.features.controls import NO_CONTROL, control_cube
from hsi.reporting.run_report import (
    class_id_map,
    excluded_label,
    self_training_warning,
    write_control_outputs,
    write_run_outputs,
    write_scene_figures,
)
from hsi.training.checkpoint import save_run_model
from hsi.training.device import device_name

log = logging.getLogger(__name__)
progress_log = logging.getLogger("hsi.progress")  # the CLI shows these lines on stderr unless --quiet

__all__ = [
    "Prepared", "RunFiles", "RunJob", "RunResult", "class_id_map", "clock_free", "excluded_label", "prepare",
    "resume_run", "train_run", "train_runs", "validate_config", "write_scene_figures",
]


def clock_free(metrics: dict[str, Any]) -> dict[str, Any]:
    """A run's metrics without what the clock decides (every ``*_seconds``, and the ``seconds`` of each
    ensemble network and self-training round): what two runs of one config and seed on one machine share
    exactly."""
    kept = {k: v for k, v in metrics.items() if not k.endswith("_seconds")}
    for record, rows in (("ensemble", "networks"), ("self_training", "rounds")):
        if kept.get(record):
            kept[record] = {**kept[record], rows: [{k: v for k, v in row.items() if k != "seconds"}
                                                   for row in kept[record][rows]]}
    return kept


@dataclass
class RunResult:
    """A finished run: its folder and its metrics (fractions)."""

    run_dir: Path
    metrics: dict[str, Any]


def train_run(config: RunConfig, *, progress: bool = True, run_name: str | None = None,
              scene: Scene | None = None) -> RunResult:
    """Runs the whole train command and writes the run folder.

    Bad input raises an :class:`HSIError` before any folder exists. An interrupted run
    keeps its folder marked ``interrupted`` in ``status.json``; any other failure after the
    folder was made removes it. ``run_name`` names the folder ``<out>/<run_name>`` exactly
    (used by ``repeat``); by default it is ``<out>/<dataset>_<model>_<timestamp>``. ``scene``: the
    config's scene already loaded (see :func:`~hsi.experiments.steps.prepare`).
    """
    lazy, reason = (False, "scene given in memory") if scene is not None else lazy_mode(config)
    stem = f"{config.dataset or Path(str(config.cube)).stem}_{config.model}"
    prepared: Prepared[Any]
    if lazy:
        progress_log.info("opening %s window by window (%s) and drawing the %s split", config.cube, reason,
                          config.split)
        prepared = prepare_lazy(config, reason)
    else:
        progress_log.info("loading %s and drawing the %s split", config.dataset or config.cube, config.split)
        prepared = prepare(config, scene=scene)
        prepared.lazy_reason = reason
    run_dir = create_run_dir(config.out, stem, name=run_name)
    # config.json first (as given; a lazy run's as resolved): even epoch 1 can be resumed
    with guard_run(run_dir, config=(prepared.config if lazy else config).to_dict()):
        return _execute(prepared, run_dir, progress=progress)


def resume_run(run_dir: str | Path, *, progress: bool = True, overrides: dict[str, Any] | None = None) -> RunResult:
    """Continues an interrupted run in its own folder from its last saved epoch, then writes every output.

    ``overrides`` may change only where the data is and what runs it (see
    :mod:`hsi.experiments.resume`). Bad input raises an :class:`HSIError` and leaves the folder as it was.
    """
    run_dir = Path(run_dir)
    config = resumable_config(run_dir, overrides)
    if config.lazy == "on":
        raise ConfigError(f"run {run_dir} read its cube window by window, which keeps no resume point; "
                          "train it again (same config.json: --config RUN_DIR/config.json).")
    prepared = prepare(config)
    point = load_resume_point(run_dir, prepared.scene, prepared.config)
    if point is not None:
        prepared.split = point.split  # the split the run started with, whatever the split code does today
    with guard_run(run_dir, resumed=True):
        return _execute(prepared, run_dir, progress=progress, resume=point)


def run_control(prepared: Prepared[Scene], run_dir: Path, *, progress: bool) -> dict[str, Any]:
    """Runs the identical protocol on the control cube ``config.control`` and scores it.

    Writes ``control/metrics.json`` and ``control/map.png``; returns the
    :func:`~hsi.evaluation.leakage.control_summary` for the main run's metrics.
    """
    config, scene, split = prepared.config, prepared.scene, prepared.split
    control_scene = dataclasses.replace(scene, cube=control_cube(config.control, scene.cube, seed=config.seed))
    features = reduce(config, control_scene, split)
    # a control's model is meant to learn nothing: its self-training rounds stopping is recorded, not warned
    fitted = fit(config, control_scene, split, features, prepared.device, progress=progress)
    prediction = predict(fitted)
    del control_scene, features
    test = split.test
    summary = classification_summary(scene.labels[test], prediction.labels[test], class_names=list(scene.class_names))
    control = control_summary(config.control, summary, scene.labels[test], scene.labels[split.train])
    write_control_outputs(run_dir, {
        **summary, "control": control, "train_seconds": fitted.train_seconds,
        "inference_seconds": prediction.inference_seconds, "seed": config.seed,
        **fitted.record(),  # as the main run's: the ensemble's networks, the self-training rounds, the kept epoch
    }, prediction.labels, scene=scene, control=config.control)
    return control


def _execute(prepared: Prepared[Any], run_dir: Path, *, progress: bool, resume: ResumePoint | None = None
             ) -> RunResult:
    """The run's steps on a scene in memory or one read window by window (PCA on a sample, the training
    windows only, the map streamed from the saved model; no resume point, its fingerprint would read the cube)."""
    config, scene, split, device = prepared.config, prepared.scene, prepared.split, prepared.device
    features = _features(prepared, resume)
    saver = None if prepared.lazy else epoch_saver(run_dir, config=config, scene=scene, split=split,
                                                   pca=features.pca, denoiser=features.denoiser, resume=resume)
    if prepared.lazy:
        progress_log.info("reading the windows of %d training and validation pixels",
                          int((split.train | split.val).sum()))
    fitted = fit(config, scene, split, features, device, progress=progress,
                 resume=resume.fit_resume() if resume else None, on_epoch_end=saver)
    stopped = self_training_warning(fitted.self_training) if fitted.self_training else None
    if stopped:
        warnings.warn(stopped, stacklevel=2)
    save_run_model(run_dir, run_checkpoint(fitted, features, scene, config))  # model.safetensors + model.json
    train_seconds = fitted.train_seconds + (resume.train_seconds if resume else 0.0)
    mosaic_shape = list(fitted.source.padded.shape) if fitted.source is not None else []
    progress_log.info("classifying every pixel (%d x %d)%s", *scene.shape[:2], " tile by tile" * prepared.lazy)
    prediction = classify(prepared, fitted, run_dir)
    metrics: dict[str, Any] = {
        # The audit reads what a class reads: a CNN's patch or an SVM's centre pixel, widened by --smooth's window.
        **evaluate(scene, split, prediction, patch_size=fitted.decision_window, smooth=fitted.smooth),
        **_run_record(config, features, fitted.record(), train_seconds=train_seconds,
                      inference_seconds=prediction.inference_seconds, lazy=prepared.lazy,
                      read_seconds=fitted.read_seconds),
    }
    if config.control != NO_CONTROL:  # a whole-cube option: never a cube read window by window
        metrics["control"] = run_control(prepared, run_dir, progress=progress)
    lazy = ({"on": True, "reason": prepared.lazy_reason, "training_mosaic_shape": mosaic_shape,
             "map": prediction.tiles} if prepared.lazy else {"on": False, "reason": prepared.lazy_reason})
    resolved = _resolved(prepared, features, fitted.classifier.n_parameters, lazy)
    write_run_outputs(run_dir, config, resolved, metrics, fitted.history, scene, split, prediction.labels,
                      streamed=prediction.streamed)
    if prediction.streamed is not None:
        shutil.rmtree(prediction.streamed.parent, ignore_errors=True)
    return RunResult(run_dir, metrics)


def _features(prepared: Prepared[Any], resume: ResumePoint | None) -> Features:
    """The run's reduced scene: fitted here, or the front end and PCA a resumed run started with."""
    config, scene, split = prepared.config, prepared.scene, prepared.split
    progress_log.info("PCA: %d bands -> %d components%s", scene.n_bands, config.pca_components,
                      f", fitted on a sample of at most {config.pca_sample_pixels} pixels read from disk"
                      if prepared.lazy else "")
    if resume is None:
        return reduce(config, scene, split)
    cube = scene.cube if resume.denoiser is None else resume.denoiser.apply(scene.cube)
    # fitted on as many pixels as the run's own PCA
    fit_pixels = min(int((split.train | split.val).sum() if config.pca_fit == "train" else split.train.size),
                     config.pca_sample_pixels)
    return Features(resume.pca.transform(cube), resume.pca, resume.denoiser, fit_pixels)


def _run_record(config: RunConfig, features: Features, fit_record: dict[str, Any], *, train_seconds: float,
                inference_seconds: float, lazy: bool, read_seconds: float | None = None) -> dict[str, Any]:
    """metrics.json's entries beside the scores, the same for a run in memory and one read window by window
    (``read_seconds``: the training windows' reading, part of ``train_seconds``)."""
    return {
        "train_seconds": train_seconds,
        **({"read_seconds": read_seconds} if lazy else {}),
        **fit_record,
        "inference_seconds": inference_seconds,
        "seed": config.seed,
        "lazy": lazy,
        "pca_sample_pixels": config.pca_sample_pixels,
        "pca_fit_pixels": features.fit_pixels,
    }


def _resolved(prepared: Prepared[Any], features: Features, n_parameters: int | None,
              lazy: dict[str, Any]) -> dict[str, Any]:
    """What config.json records beside the settings: the device, the scene, the split and the environment."""
    scene, device = prepared.scene, prepared.device
    return {
        "device": str(device),
        "device_name": device_name(device),
        "dataset": scene.name,
        "scene_shape": list(scene.shape),
        "n_classes": scene.n_classes,
        "class_ids": list(scene.class_ids),
        "class_names": list(scene.class_names),
        "sources": scene.sources,
        "pca_explained_variance_ratio": float(features.pca.explained_variance_ratio_.sum()),
        "n_parameters": n_parameters,
        "split": prepared.split.info,
        "lazy": lazy,
        "environment": environment(),
    }


# ---------------------------------------------------------------- training runs on an engine


@dataclass(frozen=True)
class RunJob:
    """One training run: its folder ``name`` inside ``config["out"]`` (the driver's folder) and its settings."""

    name: str
    config: dict[str, Any]
    progress: bool = False  # a progress bar, when it runs in the driver's own process


@dataclass(frozen=True)
class RunFiles:
    """A run trained elsewhere: its metrics and its folder's files, ``{relative path: content}``."""

    metrics: dict[str, Any]
    files: dict[str, bytes]


def _run_config(job: RunJob, **changes: Any) -> RunConfig:
    device = worker_device()
    return RunConfig.from_dict({**job.config, **({"device": device} if device else {}), **changes})


def _train_here(scene: Any, job: RunJob) -> dict[str, Any]:
    """Trains ``job`` into the driver's folder; returns its metrics."""
    progress = job.progress and worker_device() is None
    return train_run(_run_config(job), progress=progress, run_name=job.name, scene=scene).metrics


def _train_elsewhere(scene: Any, job: RunJob) -> RunFiles:
    """Trains ``job`` in a scratch folder of this (worker) machine; returns the run folder as data."""
    with tempfile.TemporaryDirectory(prefix="hsi-run-") as scratch:
        result = train_run(_run_config(job, out=scratch), progress=False, run_name=job.name, scene=scene)
        files = {p.relative_to(result.run_dir).as_posix(): p.read_bytes()
                 for p in sorted(result.run_dir.rglob("*")) if p.is_file()}
    return RunFiles(result.metrics, files)


def _write_run_folder(run_dir: Path, files: dict[str, bytes]) -> None:
    """Writes a run folder that came back as data; ``status.json`` last, so a cut-short copy reads unfinished."""
    for name in sorted(files, key=lambda n: n == STATUS_FILE):
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
            raise DataFormatError(f"a run sent back the file name {name!r}, which leaves its folder; expected a "
                                  "relative path inside it. The run is not written.")
        atomic_write_bytes(run_dir.joinpath(*parts), files[name])


def train_runs(engine: Engine, jobs: Sequence[RunJob], *, scene: Any) -> Iterator[tuple[RunJob, dict[str, Any], int]]:
    """Trains every job on ``engine``; yields ``(job, metrics, retries)`` once its run folder is written.

    Args:
        jobs: the runs; each is written to ``<job.config["out"]>/<job.name>``.
        scene: the loaded scene the configs name (as ``load_config_scene`` returns it), sent once.
    """
    if engine.shares_files:
        for done in engine.map(_train_here, jobs, shared=scene):
            yield done.item, done.result, done.retries
        return
    for done in engine.map(_train_elsewhere, jobs, shared=scene):
        job: RunJob = done.item
        _write_run_folder(Path(job.config["out"]) / job.name, done.result.files)
        yield job, done.result.metrics, done.retries
