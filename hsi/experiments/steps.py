"""The steps of a run, each a function with explicit inputs and outputs.

``prepare(config) -> Prepared`` (validated settings, scene, split, device; writes nothing; a cube
larger than memory: :func:`prepare_lazy`, whose scene stays on disk),
``reduce(config, scene, split) -> Features`` (PCA), ``fit(...) -> Fitted`` (a
:class:`~hsi.training.classifier.Classifier` of any kind), ``run_checkpoint(...) -> RunModel`` (what is
saved), ``classify(prepared, fitted, run_dir) -> Prediction`` (every pixel; :func:`predict` in memory),
``evaluate(...) -> metrics`` (test pixels only); the report is
:func:`hsi.reporting.run_report.write_run_outputs`. ``train``, ``repeat``, ``compare`` and
the studies call these in order; a later feature replaces one step, not the run.

A cube read window by window (``--lazy``, :func:`lazy_mode`) takes the same steps:
:func:`reduce` fits PCA on a seeded sample of the fitting pixels read from disk
(:meth:`~hsi.data.lazy.LazyCube.gather`), :func:`fit` reads only the windows around the
training and validation pixels (:func:`~hsi.data.lazy.gather_mosaic`), and
:func:`classify` streams the map tile by tile from the saved model through ``predict``'s own path
(:func:`predict_streamed`).
"""

from __future__ import annotations

import dataclasses
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch

import hsi
from hsi._core.errors import ConfigError, DataFormatError
from hsi._core.options import Option
from hsi._core.validation import check_patch_size
from hsi._core.windows import window_any
from hsi.config import Inference, RunConfig, run_options
from hsi.data.corrupt import corrupt_cube
from hsi.data.lazy import gather_mosaic
from hsi.data.patches import PatchSource
from hsi.data.scene import (
    LazyScene,
    Scene,
    clean_window,
    lazy_decision,
    load_custom_scene,
    load_lazy_scene,
    load_scene,
)
from hsi.data.splits import Split, draw_split
from hsi.evaluation.leakage import leakage_audit
from hsi.evaluation.metrics import classification_summary
from hsi.evaluation.predict import predict_scene, resolve_inference
from hsi.experiments.predict import PredictSettings, SceneToClassify, stream_predict_run
from hsi.experiments.validate import check_settings, split_settings
from hsi.features.pca import SpectralPCA, fit_sample
from hsi.models import MODELS
from hsi.training.checkpoint import RunModel, load_run_model
from hsi.training.classifier import Classifier, FitReport, FitSettings, NetworkCallback, Resume
from hsi.training.crops import use_crops
from hsi.training.denoise_fit import Denoiser, fit_denoiser
from hsi.training.device import resolve_device
from hsi.training.factory import build_classifier
from hsi.training.frontend import denoise_settings, fit_reducer
from hsi.training.recipe import PostProcessing, recipe_of, resolve_recipe
from hsi.training.seed import seeded_run
from hsi.training.self_training import self_train
from hsi.training.trainer import PixelSet, training_precision

__all__ = [
    "Features", "Fitted", "Prediction", "Prepared", "classify", "environment", "evaluate",
    "fit", "lazy_mode", "load_config_scene", "predict", "predict_streamed", "prepare", "prepare_lazy", "reduce",
    "run_checkpoint", "split_settings", "validate_config",
]

#: A scene in memory or on disk (the steps that take either keep its kind).
SceneT = TypeVar("SceneT", Scene, LazyScene)


@dataclass
class Prepared(Generic[SceneT]):
    """Everything decided before a run folder exists: validated config, scene, split, device.

    ``scene``: a :class:`Scene` in memory (:func:`prepare`) or a :class:`LazyScene` read window by window
    (:func:`prepare_lazy`); the steps after it take either. ``lazy_reason`` says why (config.json).
    """

    config: RunConfig
    scene: SceneT
    split: Split
    device: torch.device
    lazy_reason: str = "in memory"

    @property
    def lazy(self) -> bool:
        """Whether the cube is read window by window."""
        return isinstance(self.scene, LazyScene)


@dataclass
class Features:
    """The scene as the models see it: ``cube`` of shape (H, W, n_components) float32 (None for a cube
    on disk: :func:`fit` reads the windows it needs), its PCA and the number of pixels PCA was fitted on."""

    cube: np.ndarray | None
    pca: SpectralPCA
    denoiser: Denoiser | None = None  # the --denoise front-end applied before the reduction
    fit_pixels: int | None = None


@dataclass
class Fitted:
    """A fitted classifier, the source of pixels it was fitted on, its history and its seconds.

    ``inference`` is the config's ``auto`` / ``dense`` / ``patches``: how :func:`predict` classifies the scene.
    """

    classifier: Classifier
    source: PatchSource | None  # None once released (:meth:`release_training_data`)
    history: list[dict[str, float]]
    selected_epoch: int | None
    train_seconds: float
    inference: Inference = "auto"
    #: a cube on disk: seconds spent reading the training and validation windows (part of ``train_seconds``).
    read_seconds: float | None = None
    #: what the training steps ran on: ``patches`` or ``crops`` (``--train-input`` resolved); None: no network.
    train_input: str | None = None
    #: what the training steps computed in, ``float32`` or ``bfloat16``.
    train_precision: str | None = None
    #: patches per optimiser step (``--batch-size`` shrunk by the recipe's ``min_steps``); None: no network.
    train_batch_size: int | None = None
    #: an ensemble's networks: seed, epochs trained, selected epoch, validation scores, kept, seconds
    #: (:meth:`~hsi.training.ensemble.EnsembleClassifier.fit`); None for one model.
    ensemble: dict[str, Any] | None = None
    #: the recipe's post-processing stage: test-time flips (the classifier applies them) and map smoothing.
    post_processing: PostProcessing = field(default_factory=PostProcessing)
    #: the rounds of self-training and the pixels they read (:func:`~hsi.training.self_training.self_train`).
    self_training: dict[str, Any] | None = None

    @property
    def smooth(self) -> int:
        """The map smoothing's majority-vote window (0 = none)."""
        return self.post_processing.smooth

    @property
    def decision_window(self) -> int:
        """The side of the window a pixel's class is read from (the leakage audit's patch size)."""
        return self.post_processing.window(self.classifier.receptive_field)

    def release_training_data(self) -> None:
        """Drops the patch source (a cube on disk: the training windows' mosaic), so that its memory is free
        while the map is streamed from the saved model."""
        self.source = None

    def record(self) -> dict[str, Any]:
        """What metrics.json says of the fit, each entry only where it applies: what the steps ran on and
        in, the batch, the ensemble's networks, the self-training rounds and the kept epoch."""
        values = {"train_input": self.train_input, "train_precision": self.train_precision,
                  "train_batch_size": self.train_batch_size, "ensemble": self.ensemble,
                  "self_training": self.self_training}
        kept = {"selected_epoch": self.selected_epoch} if self.selected_epoch is not None else {}
        return {**{k: v for k, v in values.items() if v}, **kept}


@dataclass
class Prediction:
    """Class indices 0..K-1 of every pixel, shape (H, W) int64 (a streamed cube: int16, -1 outside the data), the
    seconds it took and how (dense or patches).

    A cube read window by window is classified tile by tile from the saved model (:func:`predict_streamed`):
    ``streamed`` is the folder of that prediction (its quick-look map and GeoTIFF) and ``tiles`` its tiling.
    """

    labels: np.ndarray
    inference_seconds: float
    inference: str
    streamed: Path | None = None
    tiles: dict[str, Any] = field(default_factory=dict)


def validate_config(config: RunConfig) -> None:
    """Checks every setting that does not need the data (:func:`~hsi.experiments.validate.check_settings`) and
    the model name; raises :class:`ConfigError`."""
    check_settings(config)
    MODELS.get(config.model)  # unknown names fail here, with suggestions


def load_config_scene(config: RunConfig) -> Scene:
    """Loads the built-in or custom scene the config names."""
    if config.dataset is not None:
        return load_scene(
            config.dataset, data_dir=config.data_dir, download=config.download, nan_policy=config.nan_policy
        )
    return load_custom_scene(
        str(config.cube), config.gt, cube_key=config.cube_key, gt_key=config.gt_key, nan_policy=config.nan_policy
    )


def prepare(config: RunConfig, *, scene: Scene | None = None) -> Prepared[Scene]:
    """Validates the config against the data and draws the split; writes nothing.

    ``scene``: the config's scene as :func:`load_config_scene` returns it, already loaded (an
    engine sends one copy to every run), used instead of reading the config's files again.
    """
    validate_config(config)
    if config.lazy == "on":
        raise ConfigError("--lazy on reads the cube window by window, which only `train --cube FILE --gt FILE` does; "
                          "use --lazy auto or off here.")
    # config.json shows the values used: validation ratio, every recipe part, the in-memory read
    config = dataclasses.replace(resolve_recipe(config), lazy="off")
    device = resolve_device(config.device)
    scene = load_config_scene(config) if scene is None else scene
    if config.corrupt:  # before anything else sees the cube; seeded on the data side, like the split
        scene = dataclasses.replace(scene, cube=corrupt_cube(scene.cube, config.corrupt,
                                                             seed=config.resolved_split_seed))
    _check_against_scene(config, scene.shape, scene.n_classes)
    scene, split = _draw_split(config, scene)
    return Prepared(config, scene, split, device)


def _draw_split(config: RunConfig, scene: SceneT) -> tuple[SceneT, Split]:
    """The config's split of ``scene``, and the scene with the labels the split completes (``masks``)."""
    drawn = draw_split(config.split, scene.labels, split_settings(config), scene.class_ids)
    if drawn.labels is not None:
        scene = dataclasses.replace(scene, labels=drawn.labels)
    return scene, drawn.split


def _check_against_scene(config: RunConfig, shape: tuple[int, int, int], n_classes: int) -> None:
    """The checks that need the scene's shape: classes, patch size, component count, model, inference, crops."""
    if n_classes < 2:
        raise DataFormatError(
            f"the ground truth labels {n_classes} class{'' if n_classes == 1 else 'es'}; a classifier needs at least "
            "2. Pass a ground truth with two or more labelled classes (0 = unlabelled)."
        )
    check_patch_size(config.patch_size, height=shape[0], width=shape[1])
    if config.pca_components > shape[2]:
        raise ConfigError(
            f"--pca-components must be at most the band count ({shape[2]}); got {config.pca_components}. "
            f"Lower --pca-components to {shape[2]} or less."
        )
    # Builds and drops the model once, so an unsupported input (or --inference dense for a
    # model without a dense pass) fails before any file is written.
    probe = build_classifier(config.model, in_chans=config.pca_components, num_classes=n_classes,
                             patch_size=config.patch_size, seed=0)
    resolve_inference(probe, config.inference)
    use_crops(config.train_input, getattr(probe, "network", None), recipe_of(config), name=config.model)
    if config.split == "disjoint" and config.pca_fit == "all":
        warnings.warn(
            "--pca-fit all with --split disjoint fits PCA on the test regions too, so their spectra shape the "
            "features; use --pca-fit train (the default) for a clean spatially disjoint estimate.",
            stacklevel=3,
        )


def lazy_mode(config: RunConfig) -> tuple[bool, str]:
    """Whether ``train`` reads this config's cube window by window, and why (see
    :func:`hsi.data.scene.lazy_decision`); validates the config first."""
    validate_config(config)
    if config.cube is None:
        if config.lazy == "on":
            raise ConfigError("--lazy on reads a cube file window by window: give --cube FILE --gt FILE, "
                              "not --dataset.")
        return False, "built-in dataset"
    return lazy_decision(config.cube, config.cube_key, config.lazy)


#: Settings that need the whole cube in memory, refused for a cube read window by window (declared ``whole_cube``).
_NOT_LAZY = {name: declared.whole_cube for name, declared in run_options().items() if declared.whole_cube}


def _neutral(declared: Option) -> Any:
    """An option's value that asks for nothing: a recipe part's ``off``, any other option's default."""
    return declared.off if declared.recipe_part else declared.default


def prepare_lazy(config: RunConfig, reason: str) -> Prepared[LazyScene]:
    """As :func:`prepare`, for a cube read window by window: reads its header and the ground truth only.

    Raises:
        ConfigError: a setting that needs the whole cube in memory (:data:`_NOT_LAZY`).
    """
    validate_config(config)
    cube_path, gt_path = config.cube, config.gt
    if cube_path is None or gt_path is None:
        raise ConfigError("a cube read window by window needs --cube FILE --gt FILE.")
    config = dataclasses.replace(resolve_recipe(config), lazy="on")
    # Resolved: a recipe's own value of a part counts as much as a flag's.
    declared = run_options()
    refused = [text for name, text in _NOT_LAZY.items()
               if getattr(config, name) not in (None, _neutral(declared[name]))]
    if refused:
        raise ConfigError(
            f"{refused[0]} needs the whole cube in memory, but this cube is read window by window ({reason}); "
            "leave it out, or pass --lazy off on a machine with the memory for it."
        )
    device = resolve_device(config.device)
    scene = load_lazy_scene(cube_path, gt_path, cube_key=config.cube_key, gt_key=config.gt_key,
                            nan_policy=config.nan_policy)
    _check_against_scene(config, scene.shape, scene.n_classes)
    lazy_scene, split = _draw_split(config, scene)
    return Prepared(config, lazy_scene, split, device, reason)


def reduce(config: RunConfig, scene: Scene | LazyScene, split: Split, *, denoiser: Denoiser | None = None
           ) -> Features:
    """Denoises the cube (``--denoise``), fits PCA or MNF (``--reduce``) on the training-side pixels
    (or all pixels with ``pca_fit='all'``), at most ``pca_sample_pixels`` of them (a seeded
    sample), and reduces the cube.

    A cube on disk (:class:`LazyScene`): PCA is fitted on the same sample, read pixel by pixel
    in sorted order (:meth:`~hsi.data.lazy.LazyCube.gather`), so it equals the in-memory fit;
    nothing is reduced here (``Features.cube`` is None).

    Args:
        denoiser: an already fitted denoiser of this very cube to reuse (it uses no label and no
            split, so a study fits it once per cube); default: fitted here if the config asks for one.
    """
    fit_mask = (split.train | split.val) if config.pca_fit == "train" else np.ones(scene.shape[:2], dtype=bool)
    n_fit = min(int(fit_mask.sum()), config.pca_sample_pixels)
    if isinstance(scene, LazyScene):
        return Features(None, _fit_pca_lazy(config, scene, fit_mask), None, n_fit)
    cube = scene.cube
    settings = denoise_settings(config)
    if settings is not None:
        denoiser = denoiser or fit_denoiser(cube, settings, device=resolve_device(config.device))
        cube = denoiser.apply(cube)
    # PCA belongs to the data side: it follows the split's seed, so `repeat --vary init` keeps it fixed.
    pca = fit_reducer(config.reduce, cube, fit_mask, n_components=config.pca_components,
                      seed=config.resolved_split_seed, max_fit_pixels=config.pca_sample_pixels)
    return Features(pca.transform(cube), pca, denoiser if settings is not None else None, n_fit)


def _clean(scene: LazyScene, raw: np.ndarray, origin: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~hsi.data.scene.clean_window` with the scene's NaN policy and data ignore value."""
    return clean_window(raw, nan_policy=scene.nan_policy, ignore_value=scene.cube.ignore_value,
                        where=f"cube ({scene.cube.path})", origin=origin)


def _fit_pca_lazy(config: RunConfig, scene: LazyScene, fit_mask: np.ndarray) -> SpectralPCA:
    """PCA fitted on :func:`~hsi.features.pca.fit_sample` of the fitting pixels, read from disk:
    the pixels (and order) :class:`SpectralPCA` would pick from the cube in memory."""
    # Flat indices in row-major order, as np.nonzero and cube[fit_mask] give them; with --pca-fit all
    # the sample is drawn without listing every pixel of the scene.
    n_fit = int(fit_mask.sum())
    keep = fit_sample(n_fit, config.pca_sample_pixels, config.resolved_split_seed)
    if n_fit == fit_mask.size:
        flat = keep if keep is not None else np.arange(n_fit)
    else:
        flat = np.flatnonzero(fit_mask)
        flat = flat[keep] if keep is not None else flat
    rows, cols = np.divmod(flat, fit_mask.shape[1])
    spectra, _ = _clean(scene, scene.cube.gather(rows, cols)[:, None, :])
    return SpectralPCA(config.pca_components, seed=config.resolved_split_seed,
                       max_fit_pixels=config.pca_sample_pixels).fit(spectra[:, 0, :])


def _lazy_training_pixels(config: RunConfig, scene: LazyScene, split: Split, pca: SpectralPCA, patch_size: int,
                          device: torch.device) -> tuple[PatchSource, PixelSet, PixelSet | None]:
    """The training and validation pixels' windows read from disk, reduced and laid out as a mosaic.

    Pixel sets keep the row-major order of the in-memory run, so batches (and results) are the same.
    """
    wanted = split.train | split.val
    rows, cols = np.nonzero(wanted)

    def features(raw: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
        return pca.transform(_clean(scene, raw, origin)[0])

    mosaic = gather_mosaic(scene.cube, rows, cols, patch_size=patch_size, pad_mode=config.pad_mode,
                           transform=features)
    source = mosaic.source(patch_size=patch_size, device=device)

    def pixel_set(mask: np.ndarray) -> PixelSet:
        chosen = mask[rows, cols]
        targets = torch.from_numpy(scene.labels[rows[chosen], cols[chosen]].astype(np.int64)).to(device)
        return PixelSet(torch.from_numpy(mosaic.rows[chosen]).to(device),
                        torch.from_numpy(mosaic.cols[chosen]).to(device), targets)

    return source, pixel_set(split.train), pixel_set(split.val) if split.val.any() else None


#: Self-training labels at most this many candidate pixels each round (a seeded sample of a bigger set).
MAX_UNLABELLED = 200_000


def unlabelled_pixels(config: RunConfig, scene: Scene | LazyScene, split: Split) -> np.ndarray:
    """(H, W) bool: the pixels self-training may read (``--unlabelled``); of the ground truth it reads only
    whether a pixel is labelled (inductive), never which class.

    ``transductive``: every pixel that is neither a training nor a validation pixel (test pixels included);
    ``inductive``: only those outside the labelled ground truth. Either way never a pixel whose patch holds a
    validation pixel: a pseudo-label there would teach the validation pixels' own patches, and the
    validation score that picks each round's epochs and networks would no longer be spatially
    independent (the disjoint split's guard band keeps that for the training pixels). Above
    :data:`MAX_UNLABELLED`, a sample seeded by the run's seed.
    """
    mask = ~(split.train | split.val)
    if split.val.any():
        mask &= ~window_any(split.val, config.patch_size)
    if config.unlabelled == "inductive":
        mask &= scene.labels < 0
    rows, cols = np.nonzero(mask)
    if len(rows) > MAX_UNLABELLED:
        keep = np.random.default_rng(config.seed).choice(len(rows), MAX_UNLABELLED, replace=False)
        mask = np.zeros_like(mask)
        mask[rows[keep], cols[keep]] = True
    return mask


def _pixel_set(source: PatchSource, labels: np.ndarray, mask: np.ndarray) -> PixelSet:
    rows, cols = source.pixel_coordinates(mask)
    targets = torch.from_numpy(labels[mask].astype(np.int64)).to(source.device)
    return PixelSet(rows, cols, targets)


def fit(
    config: RunConfig, scene: Scene | LazyScene, split: Split, features: Features, device: torch.device, *,
    progress: bool = False, resume: Resume | None = None, on_epoch_end: NetworkCallback | None = None,
) -> Fitted:
    """Builds the config's model and fits it on the split's training (and validation) pixels.

    Torch's generators are seeded from ``config.seed`` for the step and restored afterwards
    (:func:`~hsi.training.seed.seeded_run`), so two calls on the same inputs (e.g. a real
    cube and its control) follow the identical protocol.

    Args:
        resume: continue the networks' training from their saved epochs.
        on_epoch_end: called after every epoch of every network (saves the resume points).
    """
    started = time.perf_counter()
    recipe = recipe_of(config)

    def build(seed: int) -> Classifier:  # the run's model, and each self-training round's
        return build_classifier(config.model, in_chans=config.pca_components, num_classes=scene.n_classes,
                                patch_size=config.patch_size, device=device, seed=seed, recipe=recipe)

    with seeded_run(config.seed, deterministic=config.deterministic):
        classifier = build(config.seed)
        read_seconds = None
        if isinstance(scene, LazyScene):  # only the windows of the training and validation pixels, from disk
            read_started = time.perf_counter()
            source, train_set, val_set = _lazy_training_pixels(config, scene, split, features.pca,
                                                               classifier.receptive_field, device)
            read_seconds = time.perf_counter() - read_started
        else:
            if features.cube is None:
                raise ConfigError("an in-memory scene needs its reduced cube (Features.cube); got None.")
            source = PatchSource(features.cube, patch_size=classifier.receptive_field, pad_mode=config.pad_mode,
                                 device=device)
            train_set = _pixel_set(source, scene.labels, split.train)
            val_set = _pixel_set(source, scene.labels, split.val) if split.val.any() else None
        settings = FitSettings(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                               recipe=recipe, train_input=config.train_input)
        report = classifier.fit(source, train_set, val_set, settings=settings, progress=progress, resume=resume,
                                on_epoch_end=on_epoch_end)
        self_training = None
        if recipe.composition.self_training:
            classifier, report, self_training = _self_train(config, scene, split, classifier, build, report, source,
                                                            train_set, val_set, settings, progress=progress,
                                                            resume=resume, on_epoch_end=on_epoch_end)
    return Fitted(classifier, source, report.history, report.selected_epoch, time.perf_counter() - started,
                  inference=config.inference, read_seconds=read_seconds, train_input=report.train_input,
                  train_precision=training_precision(source.device, recipe.cpu_bf16) if report.train_input else None,
                  train_batch_size=report.batch_size, ensemble=report.ensemble,
                  post_processing=recipe.post_processing, self_training=self_training)


def _self_train(
    config: RunConfig, scene: Scene | LazyScene, split: Split, first: Classifier, build: Callable[[int], Classifier],
    report: FitReport, source: PatchSource, train_set: PixelSet, val_set: PixelSet | None, settings: FitSettings, *,
    progress: bool, resume: Resume | None, on_epoch_end: NetworkCallback | None,
) -> tuple[Classifier, FitReport, dict[str, Any]]:
    """The recipe's rounds of self-training after ``first`` (:func:`~hsi.training.self_training.self_train`) on
    the pixels ``--unlabelled`` names (an in-memory scene: :func:`prepare_lazy` refuses the part): the last
    round's model and fit report, and the record of the rounds."""
    rows, cols = source.pixel_coordinates(unlabelled_pixels(config, scene, split))
    candidates = PixelSet(rows, cols, torch.full_like(rows, -1))  # positions only: no label is read
    model, last, record = self_train(first, build, source, train_set, val_set, candidates,
                                     parts=recipe_of(config).composition, settings=settings,
                                     num_classes=scene.n_classes, class_names=scene.class_names,
                                     progress=progress, resume=resume,
                                     on_epoch_end=on_epoch_end)
    return model, last or report, {"pixels": config.unlabelled, **record}


def predict(fitted: Fitted, *, batch_size: int | None = None) -> Prediction:
    """Classifies every pixel of the source the classifier was fitted on, as ``fitted.inference`` says,
    then post-processes the map as the recipe says (:meth:`~hsi.training.recipe.PostProcessing.apply`)."""
    if fitted.source is None:
        raise ValueError("predict needs the fitted patch source; it was released (Fitted.release_training_data).")
    started = time.perf_counter()
    inference = resolve_inference(fitted.classifier, fitted.inference)
    labels = predict_scene(fitted.classifier, fitted.source, batch_size=batch_size, inference=inference)
    labels = fitted.post_processing.apply(labels, n_classes=fitted.classifier.num_classes)
    return Prediction(labels, time.perf_counter() - started, inference)


def evaluate(scene: Scene | LazyScene, split: Split, prediction: Prediction, *, patch_size: int, smooth: int = 0
             ) -> dict[str, Any]:
    """Metrics on the test pixels (fractions), the split's counts, its leakage audit and the inference used.

    ``patch_size`` is the window a pixel's class is read from (:attr:`Fitted.decision_window`), of
    which ``smooth`` is the map smoothing's share (the audit records it). A streamed map's test pixels
    outside the data (no spectrum: nothing to classify) are left out of the scores and counted in
    ``n_test_outside_data``.
    """
    scored = split.test & (prediction.labels >= 0)
    summary = classification_summary(scene.labels[scored], prediction.labels[scored],
                                     class_names=list(scene.class_names))
    outside = {"n_test_outside_data": int((split.test & ~scored).sum())} if prediction.streamed is not None else {}
    return {**summary, **split.counts(), **outside, "leakage": _leakage(split, patch_size, smooth),
            "inference": prediction.inference}


def _leakage(split: Split, window: int, smooth: int) -> dict[str, Any]:
    audit = leakage_audit(split.train, split.test, patch_size=window)
    return {**audit, "smooth": smooth} if smooth else audit


def predict_streamed(run_dir: Path, scene: LazyScene, config: RunConfig, device: torch.device) -> tuple[
        np.ndarray, Path, dict[str, Any]]:
    """Classifies a cube on disk tile by tile with the run's saved model, through ``predict``'s own path
    (:func:`hsi.experiments.predict.stream_predict_run`): the map ``predict RUN_DIR --cube`` gives.

    Args:
        run_dir: the run folder, its model.safetensors + model.json written already.

    Returns:
        ``(ids, folder, record)``: the scene's label ids per pixel, shape (H, W) uint16 (0 =
        outside the data), the streamed output folder (inside ``run_dir``; prediction.npy, map.png,
        prediction.tif where georeferenced) and its prediction.json.
    """
    import json

    cube = SceneToClassify(cube=scene.cube.path, cube_key=config.cube_key, nan_policy=config.nan_policy)
    folder = stream_predict_run(run_dir, load_run_model(run_dir), cube, out=run_dir / _STREAM_DIR,
                                settings=PredictSettings(device=device, inference=config.inference))
    ids = np.load(folder / "prediction.npy", allow_pickle=False)
    return ids, folder, json.loads((folder / "prediction.json").read_text())


#: Where :func:`predict_streamed` writes inside the run folder (removed once its files are copied).
_STREAM_DIR = ".stream"


def classify(prepared: Prepared[Any], fitted: Fitted, run_dir: Path) -> Prediction:
    """Every pixel of the prepared scene: in memory, :func:`predict`; a cube on disk, tile by tile from the run's
    saved model (:func:`predict_streamed`), the training windows released first."""
    if not prepared.lazy:
        return predict(fitted)
    fitted.release_training_data()
    started = time.perf_counter()
    ids, streamed, record = predict_streamed(run_dir, prepared.scene, prepared.config, prepared.device)
    # uint16 label ids -> class indices; id 0 (outside the data) is never a class id, so it maps to -1. The
    # smallest signed type that holds them (int16 for any real scene), not int64: a flight line's map is the
    # biggest array of the run.
    lookup = np.full(np.iinfo(np.uint16).max + 1, -1, dtype=np.int16 if prepared.scene.n_classes < 2**15 else np.int32)
    lookup[np.asarray(prepared.scene.class_ids)] = np.arange(prepared.scene.n_classes)
    labels = lookup[ids]
    return Prediction(labels, time.perf_counter() - started, str(record.get("inference")), streamed,
                      {k: record[k] for k in ("tile_size", "n_tiles", "georeferenced") if k in record})


def run_checkpoint(fitted: Fitted, features: Features, scene: Scene | LazyScene, config: RunConfig) -> RunModel:
    """A run's model (model.safetensors + model.json): classifier state, PCA, classes, scene facts, settings."""
    wavelengths = scene_wavelengths(scene, config).get("wavelengths")
    return RunModel(
        classifier_state=fitted.classifier.state(),
        pca=features.pca.state_dict(),  # PCA or MNF: the same linear map (hsi.features.mnf)
        denoiser=features.denoiser.state() if features.denoiser is not None else None,
        class_ids=tuple(int(i) for i in scene.class_ids),
        class_names=tuple(str(name) for name in scene.class_names),
        palette=tuple(str(colour) for colour in scene.palette),
        scene_name=scene.name,
        n_bands=int(scene.n_bands),
        rgb_bands=tuple(int(band) for band in scene.rgb_bands),
        wavelengths=None if wavelengths is None else tuple(wavelengths),
        pad_mode=config.pad_mode,
        config=config.to_dict(),
    )


def scene_wavelengths(scene: Scene | LazyScene, config: RunConfig) -> dict[str, list[float]]:
    """``{"wavelengths": [nm, ...]}`` when the scene or its cube file's header (ENVI, GeoTIFF) gives them, else ``{}``:
    ``predict`` then refuses a cube whose bands lie elsewhere."""
    from hsi._core.errors import HSIError
    from hsi.data.lazy import is_lazy_readable, open_lazy_cube

    known = getattr(scene, "wavelengths", None)
    if known is None and config.cube is not None and is_lazy_readable(config.cube):
        try:
            known = open_lazy_cube(config.cube, config.cube_key).wavelengths  # the header only
        except HSIError:
            known = None
    return {"wavelengths": [float(w) for w in known]} if known is not None and len(known) == scene.n_bands else {}


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
