"""`hsi-classify train`: load, reduce, split, train, classify every pixel, report."""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hsi
from hsi._core.errors import ConfigError
from hsi._core.validation import check_fraction, check_patch_size
from hsi.config import RunConfig
from hsi.data.patches import PAD_MODES, PatchSource
from hsi.data.scene import Scene, load_custom_scene, load_scene
from hsi.data.splits import (
    Split,
    merge_mask_labels,
    read_label_map,
    split_disjoint,
    split_masks,
    split_per_class,
    split_random,
)
from hsi.evaluation.leakage import control_summary, leakage_audit
from hsi.evaluation.metrics import classification_summary
from hsi.evaluation.predict import predict_scene, predict_scene_classical
from hsi.experiments.resume import (
    ResumePoint,
    epoch_saver,
    load_resume_point,
    resumable_config,
)
from hsi.experiments.run_dir import check_writable, create_run_dir, guard_run
from hsi.features.controls import CONTROLS, control_cube
from hsi.features.pca import SpectralPCA
from hsi.models import MODELS, create_model
from hsi.reporting import figures, tables
from hsi.reporting.files import atomic_save_figure, atomic_save_json, atomic_save_npy, atomic_write_text
from hsi.reporting.honesty import control_notes, leakage_notes
from hsi.training.batchnorm import recalibrate_batchnorm
from hsi.training.checkpoint import save_checkpoint
from hsi.training.device import device_name, flush_denormals, resolve_device
from hsi.training.seed import seed_everything, set_deterministic
from hsi.training.trainer import PixelSet, TrainState, fit

log = logging.getLogger(__name__)

SPLITS = ("random", "per-class", "disjoint", "masks")


@dataclass
class Prepared:
    """Everything decided before a run folder exists: validated config, scene, split, device."""

    config: RunConfig
    scene: Scene
    split: Split
    device: torch.device


@dataclass
class RunResult:
    """A finished run: its folder and its metrics (fractions)."""

    run_dir: Path
    metrics: dict[str, Any]


def validate_config(config: RunConfig) -> None:
    """Checks every setting that does not need the data; raises :class:`ConfigError`."""
    if (config.dataset is None) == (config.cube is None):
        raise ConfigError("give either --dataset NAME or --cube FILE --gt FILE (exactly one of the two).")
    if config.cube is not None and config.gt is None:
        raise ConfigError("--cube needs --gt FILE (the ground-truth labels of the same scene).")
    check_patch_size(config.patch_size)
    check_fraction(config.train_ratio, name="train ratio (--train-ratio)")
    check_fraction(config.resolved_val_ratio, name="validation ratio (--val-ratio)", allow_zero=True)
    if config.pad_mode not in PAD_MODES:
        raise ConfigError(f"--pad-mode must be one of {', '.join(PAD_MODES)}; got {config.pad_mode!r}.")
    if config.pca_fit not in ("train", "all"):
        raise ConfigError(f"--pca-fit must be train or all; got {config.pca_fit!r}.")
    if config.split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}; got {config.split!r}.")
    if config.split == "per-class" and config.train_per_class is None:
        raise ConfigError("--split per-class needs --train-per-class N (training pixels per class).")
    if config.split == "masks" and (config.train_gt is None or config.test_gt is None):
        raise ConfigError("--split masks needs --train-gt FILE and --test-gt FILE (the train and test ground truths).")
    if config.block_size is not None and config.block_size < 1:
        raise ConfigError(f"--block-size must be >= 1 (pixels); got {config.block_size}. Leave it out for the default.")
    if config.control not in ("none", *CONTROLS):
        raise ConfigError(f"--control must be one of none, {', '.join(CONTROLS)}; got {config.control!r}.")
    for name in ("epochs", "batch_size", "pca_components"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1; got {getattr(config, name)}.")
    if not config.lr > 0:
        raise ConfigError(f"--lr must be > 0; got {config.lr}.")
    MODELS.get(config.model)  # unknown names fail here, with suggestions
    check_writable(config.out)


def load_config_scene(config: RunConfig) -> Scene:
    """Loads the built-in or custom scene the config names."""
    if config.dataset is not None:
        return load_scene(
            config.dataset, data_dir=config.data_dir, download=config.download, nan_policy=config.nan_policy
        )
    return load_custom_scene(
        config.cube, config.gt, cube_key=config.cube_key, gt_key=config.gt_key, nan_policy=config.nan_policy
    )


def make_split(config: RunConfig, labels: np.ndarray, class_ids: tuple[int, ...] | None = None) -> Split:
    """The train/val/test split the config asks for (``masks``: see :func:`make_mask_split`)."""
    if config.split == "disjoint":
        return split_disjoint(labels, patch_size=config.patch_size, train_ratio=config.train_ratio,
                              val_ratio=config.resolved_val_ratio, block_size=config.block_size,
                              seed=config.resolved_split_seed, class_ids=class_ids)
    if config.split == "masks":
        raise ConfigError("--split masks needs the scene's class ids; call make_mask_split(config, scene).")
    if config.split == "per-class":
        return split_per_class(
            labels, n_per_class=int(config.train_per_class or 0), val_ratio=config.resolved_val_ratio,
            seed=config.resolved_split_seed, class_ids=class_ids,
        )
    return split_random(labels, train_ratio=config.train_ratio, val_ratio=config.resolved_val_ratio,
                        seed=config.resolved_split_seed, class_ids=class_ids)


def prepare(config: RunConfig) -> Prepared:
    """Validates the config against the data and draws the split; writes nothing."""
    validate_config(config)
    config = dataclasses.replace(config, val_ratio=config.resolved_val_ratio)  # config.json shows the value used
    device = resolve_device(config.device)
    scene = load_config_scene(config)
    check_patch_size(config.patch_size, height=scene.shape[0], width=scene.shape[1])
    if config.pca_components > scene.n_bands:
        raise ConfigError(
            f"--pca-components must be at most the band count ({scene.n_bands}); got {config.pca_components}. "
            f"Lower --pca-components to {scene.n_bands} or less."
        )
    info = MODELS.entry(config.model).obj
    if info.kind == "torch":
        # Builds and drops a model once, so an unsupported patch size fails before any file is written.
        create_model(config.model, in_chans=config.pca_components, num_classes=scene.n_classes,
                     patch_size=config.patch_size)
    if config.split == "masks":
        scene, split = make_mask_split(config, scene)
    else:
        split = make_split(config, scene.labels, scene.class_ids)
    if config.split == "disjoint" and config.pca_fit == "all":
        warnings.warn(
            "--pca-fit all with --split disjoint fits PCA on the test regions too, so their spectra shape the "
            "features; use --pca-fit train (the default) for a clean spatially disjoint estimate.",
            stacklevel=2,
        )
    return Prepared(config, scene, split, device)


def make_mask_split(config: RunConfig, scene: Scene) -> tuple[Scene, Split]:
    """The split of ``--train-gt`` / ``--test-gt``, and the scene labelled where either file labels it."""
    shape = (scene.shape[0], scene.shape[1])
    train_labels = read_label_map(str(config.train_gt), class_ids=scene.class_ids, shape=shape, name="--train-gt")
    test_labels = read_label_map(str(config.test_gt), class_ids=scene.class_ids, shape=shape, name="--test-gt")
    split = split_masks(scene.labels, train_labels, test_labels, val_ratio=config.resolved_val_ratio,
                        seed=config.resolved_split_seed)
    labels = merge_mask_labels(scene.labels, train_labels, test_labels)
    return dataclasses.replace(scene, labels=labels), split


def reduce_bands(config: RunConfig, scene: Scene, split: Split) -> tuple[np.ndarray, SpectralPCA]:
    """Fits PCA on the training-side pixels (or all pixels with ``pca_fit='all'``) and reduces the cube."""
    fit_mask = (split.train | split.val) if config.pca_fit == "train" else np.ones(scene.shape[:2], dtype=bool)
    # PCA belongs to the data side: it follows the split's seed, so `repeat --vary init` keeps it fixed.
    pca = SpectralPCA(config.pca_components, seed=config.resolved_split_seed).fit(scene.cube[fit_mask])
    return pca.transform(scene.cube), pca


def _pixel_set(source: PatchSource, labels: np.ndarray, mask: np.ndarray) -> PixelSet:
    rows, cols = source.pixel_coordinates(mask)
    targets = torch.from_numpy(labels[mask].astype(np.int64)).to(source.device)
    return PixelSet(rows, cols, targets)


def environment() -> dict[str, str]:
    """Package versions and machine, recorded in every config.json."""
    import sklearn

    return {
        "hsi_classify": hsi.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "platform": platform.platform(),
        "cuda": str(torch.version.cuda),
    }


def train_run(config: RunConfig, *, progress: bool = True, run_name: str | None = None) -> RunResult:
    """Runs the whole train command and writes the run folder.

    Bad input raises an :class:`HSIError` before any folder exists. An interrupted run
    keeps its folder marked ``interrupted`` in ``status.json``; any other failure after the
    folder was made removes it. ``run_name`` names the folder ``<out>/<run_name>`` exactly
    (used by ``repeat``); by default it is ``<out>/<dataset>_<model>_<timestamp>``.
    """
    prepared = prepare(config)
    stem = f"{config.dataset or Path(str(config.cube)).stem}_{config.model}"
    run_dir = create_run_dir(config.out, stem, name=run_name)
    with guard_run(run_dir, config=config.to_dict()):  # config.json first: even epoch 1 can be resumed
        return _execute(prepared, run_dir, progress=progress)


def resume_run(run_dir: str | Path, *, progress: bool = True, overrides: dict[str, Any] | None = None) -> RunResult:
    """Continues an interrupted run in its own folder from its last saved epoch, then writes every output.

    ``overrides`` may change only where the data is and what runs it (see
    :mod:`hsi.experiments.resume`). Bad input raises an :class:`HSIError` and leaves the folder as it was.
    """
    run_dir = Path(run_dir)
    prepared = prepare(resumable_config(run_dir, overrides))
    point = load_resume_point(run_dir, prepared.scene, prepared.config)
    if point is not None:
        prepared.split = point.split  # the split the run started with, whatever the split code does today
    with guard_run(run_dir, resumed=True):
        return _execute(prepared, run_dir, progress=progress, resume=point)


@dataclass
class Fitted:
    """One pass of band reduction, training and full-scene prediction."""

    prediction: np.ndarray  # (H, W) class indices 0..K-1
    pca: SpectralPCA
    model: torch.nn.Module | None  # None for scikit-learn models
    history: list[dict[str, float]]
    extra: dict[str, Any]
    train_seconds: float
    inference_seconds: float
    n_parameters: int | None


def fit_predict(
    config: RunConfig, scene: Scene, split: Split, device: torch.device, *, progress: bool,
    resume_dir: Path | None = None, resume: ResumePoint | None = None,
) -> Fitted:
    """Reduces the bands, trains on the split and classifies every pixel; writes nothing but ``resume.pt``.

    Seeds everything from ``config.seed`` first, so two calls on the same inputs (e.g. a
    real cube and its control) follow the identical protocol. With ``resume_dir`` a network
    saves ``resume_dir/resume.pt`` after its epochs (see :func:`~hsi.experiments.resume.epoch_saver`);
    with ``resume`` it continues from one.
    """
    seed_everything(config.seed)
    set_deterministic(config.deterministic)
    flush_denormals()
    features, pca = reduce_bands(config, scene, split) if resume is None else resume.reduce(scene)
    info = MODELS.entry(config.model).obj
    history: list[dict[str, float]] = []
    extra: dict[str, Any] = {}
    model = None
    train_started = time.perf_counter()
    if info.kind == "sklearn":
        estimator = create_model(config.model, in_chans=config.pca_components, num_classes=scene.n_classes,
                                 patch_size=config.patch_size, seed=config.seed)
        fit_mask = split.train | split.val
        estimator.fit(features[fit_mask], scene.labels[fit_mask])
        train_seconds = time.perf_counter() - train_started
        infer_started = time.perf_counter()
        prediction = predict_scene_classical(estimator, features)
        n_parameters = None
    else:
        model = create_model(config.model, in_chans=config.pca_components, num_classes=scene.n_classes,
                             patch_size=config.patch_size).to(device)
        n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
        source = PatchSource(features, patch_size=config.patch_size, pad_mode=config.pad_mode, device=device)
        train_set = _pixel_set(source, scene.labels, split.train)
        val_set = _pixel_set(source, scene.labels, split.val) if split.val.any() else None
        if resume is not None:
            model.load_state_dict(resume.model_state)
        saver = None if resume_dir is None else epoch_saver(
            resume_dir, config=config, scene=scene, split=split, pca=pca, started=train_started, resume=resume)
        state: TrainState = fit(model, source, train_set, val_set, epochs=config.epochs,
                                batch_size=config.batch_size, lr=config.lr, seed=config.seed, progress=progress,
                                state=resume and resume.state, optimizer_state=resume and resume.optimizer_state,
                                on_epoch_end=saver)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - train_started + (resume.train_seconds if resume else 0.0)
        history = state.history
        if state.best_state is not None:
            model.load_state_dict(state.best_state)
            extra["selected_epoch"] = state.best_epoch
        else:
            extra["selected_epoch"] = state.epoch
        # The moving-average BN statistics lag fast-changing weights in short runs; recompute them.
        calibrate_started = time.perf_counter()
        recalibrate_batchnorm(model, source, train_set, batch_size=config.batch_size, seed=config.seed)
        train_seconds += time.perf_counter() - calibrate_started
        infer_started = time.perf_counter()
        prediction = predict_scene(model, source)  # batch sized to the device
    inference_seconds = time.perf_counter() - infer_started
    return Fitted(prediction, pca, model, history, extra, train_seconds, inference_seconds, n_parameters)


def run_control(prepared: Prepared, run_dir: Path, *, progress: bool) -> dict[str, Any]:
    """Runs the identical protocol on the control cube ``config.control`` and scores it.

    Writes ``control/metrics.json`` and ``control/map.png``; returns the
    :func:`~hsi.evaluation.leakage.control_summary` for the main run's metrics.
    """
    config, scene, split = prepared.config, prepared.scene, prepared.split
    cube = control_cube(config.control, scene.cube, seed=config.seed)
    control_scene = dataclasses.replace(scene, cube=cube)
    fitted = fit_predict(config, control_scene, split, prepared.device, progress=progress)
    del cube, control_scene
    test = split.test
    summary = classification_summary(scene.labels[test], fitted.prediction[test], class_names=list(scene.class_names))
    control = control_summary(config.control, summary, scene.labels[test], scene.labels[split.train])
    atomic_save_json(run_dir / "control" / "metrics.json", {
        **summary, "control": control, "train_seconds": fitted.train_seconds,
        "inference_seconds": fitted.inference_seconds, "seed": config.seed, **fitted.extra,
    })
    atomic_save_figure(
        figures.classification_map(fitted.prediction, class_names=list(scene.class_names),
                                   palette=list(scene.palette), title=f"{scene.name}: {config.control} control"),
        run_dir / "control" / "map.png",
    )
    return control


def _execute(prepared: Prepared, run_dir: Path, *, progress: bool, resume: ResumePoint | None = None) -> RunResult:
    config, scene, split, device = prepared.config, prepared.scene, prepared.split, prepared.device
    fitted = fit_predict(config, scene, split, device, progress=progress, resume_dir=run_dir, resume=resume)
    prediction, pca = fitted.prediction, fitted.pca
    if fitted.model is not None:
        save_checkpoint(run_dir / "model.pt", {
            "model": {"name": config.model, "in_chans": config.pca_components, "num_classes": scene.n_classes,
                      "patch_size": config.patch_size},
            "state_dict": fitted.model.state_dict(),
            "pca": pca.state_dict(),
            "classes": {"ids": list(scene.class_ids), "names": list(scene.class_names),
                        "palette": list(scene.palette)},
            "scene": {"name": scene.name, "n_bands": scene.n_bands, "rgb_bands": list(scene.rgb_bands)},
            "pad_mode": config.pad_mode,
            "config": config.to_dict(),
        })

    test = split.test
    summary = classification_summary(scene.labels[test], prediction[test], class_names=list(scene.class_names))
    metrics: dict[str, Any] = {
        **summary,
        **split.counts(),
        "train_seconds": fitted.train_seconds,
        "inference_seconds": fitted.inference_seconds,
        "seed": config.seed,
        **fitted.extra,
        "leakage": leakage_audit(split.train, split.test, patch_size=config.patch_size),
    }
    if config.control != "none":
        metrics["control"] = run_control(prepared, run_dir, progress=progress)
    resolved = {
        "device": str(device),
        "device_name": device_name(device),
        "dataset": scene.name,
        "scene_shape": list(scene.shape),
        "n_classes": scene.n_classes,
        "class_ids": list(scene.class_ids),
        "class_names": list(scene.class_names),
        "sources": scene.sources,
        "pca_explained_variance_ratio": float(pca.explained_variance_ratio_.sum()),
        "n_parameters": fitted.n_parameters,
        "split": split.info,
        "environment": environment(),
    }
    write_run_outputs(run_dir, config, resolved, metrics, fitted.history, scene, split, prediction)
    return RunResult(run_dir, metrics)


def class_id_map(scene: Scene, prediction: np.ndarray) -> np.ndarray:
    """Maps class indices 0..K-1 to the scene's own label ids, shape (H, W)."""
    return np.asarray(scene.class_ids, dtype=np.int64)[prediction]


def excluded_label(split: Split) -> str:
    """How reports name the labelled pixels a split left out, e.g. ``excluded (guard band)``."""
    return f"excluded ({split.info.get('excluded_reason', 'unused')})"


def write_run_outputs(
    run_dir: Path,
    config: RunConfig,
    resolved: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, float]],
    scene: Scene,
    split: Split,
    prediction: np.ndarray,
) -> None:
    """Writes config, metrics, report, history, split, prediction and every figure of a run."""
    atomic_save_json(run_dir / "config.json", {"run": config.to_dict(), "resolved": resolved})
    counts = split.counts()
    report_extra = {
        "dataset": scene.name,
        "model": config.model,
        "seed": config.seed,
        "split": str(split.info.get("method", config.split)),
        "training / validation / test pixels": f"{counts['n_train']} / {counts['n_val']} / {counts['n_test']}",
        f"labelled pixels {excluded_label(split)}": counts["n_excluded"],
        "train seconds": f"{metrics['train_seconds']:.1f}",
        "inference seconds (full scene)": f"{metrics['inference_seconds']:.2f}",
        "device": resolved["device_name"],
    }
    notes = leakage_notes(metrics["leakage"]) if "leakage" in metrics else []
    if "control" in metrics:
        notes += control_notes(metrics["control"], overall_accuracy=metrics["overall_accuracy"],
                               split_method=str(split.info.get("method", config.split)))
    report = tables.metrics_markdown(
        metrics, class_ids=list(scene.class_ids), title=f"{scene.name}: {config.model}", extra=report_extra,
        notes=notes,
    )
    if history:
        headers = list(history[0].keys())
        atomic_write_text(run_dir / "history.csv", tables.csv_text(headers, [[row.get(h) for h in headers] for row in history]))
        atomic_save_figure(figures.training_curve(history), run_dir / "training_curve.png")
    atomic_save_npy(run_dir / "prediction.npy", class_id_map(scene, prediction))
    for part in ("train", "val", "test"):
        atomic_save_npy(run_dir / f"split_{part}.npy", getattr(split, part))
    write_scene_figures(run_dir, scene, prediction, split=split, metrics=metrics)
    # Last: a folder with metrics.json and report.md is a finished run (run_dir.FINAL_FILES).
    atomic_save_json(run_dir / "metrics.json", metrics)
    atomic_write_text(run_dir / "report.md", report)


def write_scene_figures(
    run_dir: Path, scene: Scene, prediction: np.ndarray, *, split: Split | None = None,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Writes map.png and false_colour.png, and with a split and labels the figures that need them."""
    names, palette = list(scene.class_names), list(scene.palette)
    atomic_save_figure(
        figures.classification_map(prediction, class_names=names, palette=palette,
                                   title=f"{scene.name}: every pixel classified"),
        run_dir / "map.png",
    )
    atomic_save_figure(figures.false_colour(scene.cube, scene.rgb_bands), run_dir / "false_colour.png")
    if split is None or metrics is None:
        return
    labelled = scene.labels >= 0
    atomic_save_figure(
        figures.classification_map(np.where(labelled, prediction, -1), class_names=names, palette=palette,
                                   title=f"{scene.name}: labelled pixels"),
        run_dir / "map_labelled.png",
    )
    atomic_save_figure(
        figures.classification_map(scene.labels, class_names=names, palette=palette,
                                   title=f"{scene.name}: ground truth"),
        run_dir / "ground_truth.png",
    )
    atomic_save_figure(figures.error_map(split.test, prediction == scene.labels), run_dir / "errors.png")
    atomic_save_figure(figures.confusion_figure(np.asarray(metrics["confusion_matrix"]), names), run_dir / "confusion.png")
    atomic_save_figure(
        figures.split_map(split.train, split.val, split.test, excluded_mask=split.excluded,
                          excluded_label=excluded_label(split)), run_dir / "split.png",
    )


