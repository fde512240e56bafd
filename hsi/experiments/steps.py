"""The steps of a run, each a function with explicit inputs and outputs.

``prepare(config) -> Prepared`` (validated settings, scene, split, device; writes nothing),
``reduce(config, scene, split) -> Features`` (PCA), ``fit(...) -> Fitted`` (a
:class:`~hsi.training.classifier.Classifier` of any kind), ``predict(fitted) -> Prediction``
(every pixel), ``evaluate(...) -> metrics`` (test pixels only); the report is
:func:`hsi.reporting.run_report.write_run_outputs`. ``train``, ``repeat``, ``compare`` and
the studies call these in order; a later feature replaces one step, not the run.
"""

from __future__ import annotations

import dataclasses
import platform
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import hsi
from hsi._core.errors import ConfigError
from hsi._core.validation import check_fraction, check_patch_size
from hsi.config import Inference, RunConfig
from hsi.data.corrupt import corrupt_cube, parse_corruptions
from hsi.data.padding import PAD_MODES
from hsi.data.patches import PatchSource
from hsi.data.scene import NAN_POLICIES, Scene, load_custom_scene, load_scene
from hsi.data.splits import SPLITS, Split, SplitSettings, check_split_settings, draw_split
from hsi.evaluation.leakage import leakage_audit
from hsi.evaluation.metrics import classification_summary
from hsi.evaluation.predict import predict_scene, resolve_inference
from hsi.experiments.run_dir import check_writable
from hsi.features.controls import CONTROLS, NO_CONTROL
from hsi.features.pca import SpectralPCA
from hsi.models import MODELS
from hsi.training.classifier import Classifier, FitSettings, Resume, build_classifier
from hsi.training.crops import use_crops
from hsi.training.denoise_fit import Denoiser, fit_denoiser
from hsi.training.device import resolve_device
from hsi.training.frontend import denoise_settings, fit_reducer
from hsi.training.recipe import recipe_of, resolve_recipe
from hsi.training.seed import seeded_run
from hsi.training.trainer import EpochCallback, PixelSet

__all__ = [
    "Features", "Fitted", "Prediction", "Prepared", "environment", "evaluate", "fit", "load_config_scene",
    "predict", "prepare", "reduce", "run_checkpoint", "split_settings", "validate_config",
]


@dataclass
class Prepared:
    """Everything decided before a run folder exists: validated config, scene, split, device."""

    config: RunConfig
    scene: Scene
    split: Split
    device: torch.device


@dataclass
class Features:
    """The scene as the models see it: ``cube`` of shape (H, W, n_components) float32, and its PCA."""

    cube: np.ndarray
    pca: SpectralPCA
    denoiser: Denoiser | None = None  # the --denoise front-end applied before the reduction


@dataclass
class Fitted:
    """A fitted classifier, the source of pixels it was fitted on, its history and its seconds.

    ``inference`` is the config's ``auto`` / ``dense`` / ``patches``: how :func:`predict` classifies the scene.
    """

    classifier: Classifier
    source: PatchSource
    history: list[dict[str, float]]
    selected_epoch: int | None
    train_seconds: float
    inference: Inference = "auto"
    #: ``--ensemble`` members after the first: seed, selected epoch, training seconds (their cost, apart).
    ensemble_members: list[dict[str, float]] = dataclasses.field(default_factory=list)


@dataclass
class Prediction:
    """Class indices 0..K-1 of every pixel, shape (H, W) int64, the seconds it took and how (dense or patches)."""

    labels: np.ndarray
    inference_seconds: float
    inference: str


def _check_registered(value: str, flag: str, names: list[str]) -> None:
    if value not in names:
        raise ConfigError(f"{flag} must be one of {', '.join(names)}; got {value!r}.")


def split_settings(config: RunConfig) -> SplitSettings:
    """The split options of a config, resolved (validation ratio, split seed)."""
    return SplitSettings(
        train_ratio=config.train_ratio, val_ratio=config.resolved_val_ratio, patch_size=config.patch_size,
        seed=config.resolved_split_seed, train_per_class=config.train_per_class, block_size=config.block_size,
        train_gt=config.train_gt, test_gt=config.test_gt,
    )


def validate_config(config: RunConfig) -> None:
    """Checks every setting that does not need the data; raises :class:`ConfigError`."""
    if (config.dataset is None) == (config.cube is None):
        raise ConfigError("give either --dataset NAME or --cube FILE --gt FILE (exactly one of the two).")
    if config.cube is not None and config.gt is None:
        raise ConfigError("--cube needs --gt FILE (the ground-truth labels of the same scene).")
    config.check_choices()
    _check_registered(config.pad_mode, "--pad-mode", PAD_MODES.names())
    _check_registered(config.split, "--split", SPLITS.names())
    _check_registered(config.control, "--control", [NO_CONTROL, *CONTROLS.names()])
    _check_registered(config.nan_policy, "--nan-policy", list(NAN_POLICIES))
    check_patch_size(config.patch_size)
    check_fraction(config.train_ratio, name="train ratio (--train-ratio)")
    check_fraction(config.resolved_val_ratio, name="validation ratio (--val-ratio)", allow_zero=True)
    check_split_settings(config.split, split_settings(config))
    if config.block_size is not None and config.block_size < 1:
        raise ConfigError(f"--block-size must be >= 1 (pixels); got {config.block_size}. Leave it out for the default.")
    for name in ("epochs", "batch_size", "pca_components"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1; got {getattr(config, name)}.")
    if not config.lr > 0:
        raise ConfigError(f"--lr must be > 0; got {config.lr}.")
    parse_corruptions(config.corrupt)  # unknown kinds and bad levels fail before any file is written
    for name in ("denoise_depth", "denoise_width", "denoise_steps"):
        if getattr(config, name) < (2 if name == "denoise_depth" else 1):
            raise ConfigError(f"--{name.replace('_', '-')} must be >= {2 if name == 'denoise_depth' else 1}; "
                              f"got {getattr(config, name)}.")
    if config.denoise_neighbours < 0:
        raise ConfigError(f"--denoise-neighbours must be >= 0; got {config.denoise_neighbours}.")
    MODELS.get(config.model)  # unknown names fail here, with suggestions
    recipe_of(config)  # unknown recipe, parts out of range
    check_writable(config.out)


def load_config_scene(config: RunConfig) -> Scene:
    """Loads the built-in or custom scene the config names."""
    if config.dataset is not None:
        return load_scene(
            config.dataset, data_dir=config.data_dir, download=config.download, nan_policy=config.nan_policy
        )
    return load_custom_scene(
        str(config.cube), config.gt, cube_key=config.cube_key, gt_key=config.gt_key, nan_policy=config.nan_policy
    )


def prepare(config: RunConfig, *, scene: Scene | None = None) -> Prepared:
    """Validates the config against the data and draws the split; writes nothing.

    ``scene``: the config's scene as :func:`load_config_scene` returns it, already loaded (an
    engine sends one copy to every run), used instead of reading the config's files again.
    """
    validate_config(config)
    config = resolve_recipe(config)  # config.json shows the values used: validation ratio, every recipe part
    device = resolve_device(config.device)
    scene = load_config_scene(config) if scene is None else scene
    if config.corrupt:  # before anything else sees the cube; seeded on the data side, like the split
        scene = dataclasses.replace(scene, cube=corrupt_cube(scene.cube, config.corrupt,
                                                             seed=config.resolved_split_seed))
    check_patch_size(config.patch_size, height=scene.shape[0], width=scene.shape[1])
    if config.pca_components > scene.n_bands:
        raise ConfigError(
            f"--pca-components must be at most the band count ({scene.n_bands}); got {config.pca_components}. "
            f"Lower --pca-components to {scene.n_bands} or less."
        )
    # Builds and drops the model once, so an unsupported input (or --inference dense for a
    # model without a dense pass) fails before any file is written.
    probe = build_classifier(config.model, in_chans=config.pca_components, num_classes=scene.n_classes,
                             patch_size=config.patch_size, seed=0)
    resolve_inference(probe, config.inference)
    use_crops(config.train_input, getattr(probe, "network", None), recipe_of(config), name=config.model)
    drawn = draw_split(config.split, scene.labels, split_settings(config), scene.class_ids)
    if drawn.labels is not None:
        scene = dataclasses.replace(scene, labels=drawn.labels)
    if config.split == "disjoint" and config.pca_fit == "all":
        warnings.warn(
            "--pca-fit all with --split disjoint fits PCA on the test regions too, so their spectra shape the "
            "features; use --pca-fit train (the default) for a clean spatially disjoint estimate.",
            stacklevel=2,
        )
    return Prepared(config, scene, drawn.split, device)


def reduce(config: RunConfig, scene: Scene, split: Split, *, denoiser: Denoiser | None = None) -> Features:
    """Denoises the cube (``--denoise``), fits PCA or MNF (``--reduce``) on the training-side pixels
    (or all pixels with ``pca_fit='all'``) and reduces the cube.

    Args:
        denoiser: an already fitted denoiser of this very cube to reuse (it uses no label and no
            split, so a study fits it once per cube); default: fitted here if the config asks for one.
    """
    fit_mask = (split.train | split.val) if config.pca_fit == "train" else np.ones(scene.shape[:2], dtype=bool)
    cube = scene.cube
    settings = denoise_settings(config)
    if settings is not None:
        denoiser = denoiser or fit_denoiser(cube, settings, device=resolve_device(config.device))
        cube = denoiser.apply(cube)
    # PCA belongs to the data side: it follows the split's seed, so `repeat --vary init` keeps it fixed.
    pca = fit_reducer(config.reduce, cube, fit_mask, n_components=config.pca_components,
                      seed=config.resolved_split_seed)
    return Features(pca.transform(cube), pca, denoiser if settings is not None else None)


def _pixel_set(source: PatchSource, labels: np.ndarray, mask: np.ndarray) -> PixelSet:
    rows, cols = source.pixel_coordinates(mask)
    targets = torch.from_numpy(labels[mask].astype(np.int64)).to(source.device)
    return PixelSet(rows, cols, targets)


def fit(
    config: RunConfig, scene: Scene, split: Split, features: Features, device: torch.device, *,
    progress: bool = False, resume: Resume | None = None, on_epoch_end: EpochCallback | None = None,
) -> Fitted:
    """Builds the config's model and fits it on the split's training (and validation) pixels.

    Torch's generators are seeded from ``config.seed`` for the step and restored afterwards
    (:func:`~hsi.training.seed.seeded_run`), so two calls on the same inputs (e.g. a real
    cube and its control) follow the identical protocol.

    Args:
        resume: continue a network's training from a saved epoch.
        on_epoch_end: called after every epoch (saves ``resume.pt``).
    """
    started = time.perf_counter()
    with seeded_run(config.seed, deterministic=config.deterministic):
        classifier = build_classifier(config.model, in_chans=config.pca_components, num_classes=scene.n_classes,
                                      patch_size=config.patch_size, device=device, seed=config.seed)
        source = PatchSource(features.cube, patch_size=classifier.receptive_field, pad_mode=config.pad_mode,
                             device=device)
        train_set = _pixel_set(source, scene.labels, split.train)
        val_set = _pixel_set(source, scene.labels, split.val) if split.val.any() else None
        settings = FitSettings(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                               recipe=recipe_of(config), train_input=config.train_input)
        report = classifier.fit(source, train_set, val_set, settings=settings, progress=progress, resume=resume,
                                on_epoch_end=on_epoch_end)
    return Fitted(classifier, source, report.history, report.selected_epoch, time.perf_counter() - started,
                  inference=config.inference, ensemble_members=report.members)


def predict(fitted: Fitted, *, batch_size: int | None = None) -> Prediction:
    """Classifies every pixel of the source the classifier was fitted on, as ``fitted.inference`` says."""
    started = time.perf_counter()
    inference = resolve_inference(fitted.classifier, fitted.inference)
    labels = predict_scene(fitted.classifier, fitted.source, batch_size=batch_size, inference=inference)
    return Prediction(labels, time.perf_counter() - started, inference)


def evaluate(scene: Scene, split: Split, prediction: Prediction, *, patch_size: int) -> dict[str, Any]:
    """Metrics on the test pixels (fractions), the split's counts, its leakage audit and the inference used."""
    test = split.test
    summary = classification_summary(scene.labels[test], prediction.labels[test], class_names=list(scene.class_names))
    return {**summary, **split.counts(), "leakage": leakage_audit(split.train, split.test, patch_size=patch_size),
            "inference": prediction.inference}


def run_checkpoint(fitted: Fitted, features: Features, scene: Scene, config: RunConfig) -> dict[str, Any]:
    """A run's model (model.safetensors + model.json): classifier state, PCA, classes, scene facts, settings."""
    return {
        **fitted.classifier.state(),
        "pca": features.pca.state_dict(),  # PCA or MNF: the same linear map (hsi.features.mnf)
        **({"denoiser": features.denoiser.state()} if features.denoiser is not None else {}),
        "classes": {"ids": list(scene.class_ids), "names": list(scene.class_names), "palette": list(scene.palette)},
        "scene": {"name": scene.name, "n_bands": scene.n_bands, "rgb_bands": list(scene.rgb_bands),
                  **scene_wavelengths(scene, config)},
        "pad_mode": config.pad_mode,
        "config": config.to_dict(),
    }


def scene_wavelengths(scene: Scene, config: RunConfig) -> dict[str, list[float]]:
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
