"""`hsi-classify predict`: classify a scene with a checkpoint alone."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hsi._core.errors import CheckpointError, ConfigError, DependencyNotFoundError, HSIError, InputTooLargeError
from hsi._core.files import DiskFullError, check_free_space, create_work_array, free_space, write_work_rows
from hsi.config import Inference
from hsi.data.lazy import is_lazy_readable
from hsi.data.patches import PatchSource
from hsi.data.scene import Scene, load_custom_scene, load_scene
from hsi.evaluation.predict import predict_scene, predict_scene_proba, resolve_inference
from hsi.experiments.engine import (
    TILES_PER_SLOT,
    Engine,
    EngineError,
    Finished,
    LocalEngine,
    worker_cache,
    worker_device,
)
from hsi.experiments.run_dir import check_writable, create_run_dir, write_status
from hsi.reporting.files import atomic_save_json, atomic_save_npy
from hsi.reporting.run_report import class_id_map, progress, write_predict_outputs
from hsi.training.checkpoint import RunModel, load_run_model
from hsi.training.device import resolve_device
from hsi.training.factory import classifier_from_state
from hsi.training.frontend import apply_features, frontend_radius

if TYPE_CHECKING:
    from hsi.evaluation.predict import Tile
    from hsi.training.classifier import Classifier


@dataclass(frozen=True)
class SceneToClassify:
    """The scene ``predict`` classifies: a built-in ``dataset``, or a ``cube`` file (with its ``gt`` to score it).

    Attributes:
        dataset: a built-in scene's name (read from ``data_dir``, downloaded unless ``download`` is False).
        cube, cube_key: a cube file, and its variable inside a .mat file.
        gt, gt_key: the cube's ground truth file, and its variable inside a .mat file.
        nan_policy: what non-finite values inside the data do (``--nan-policy``).
    """

    dataset: str | None = None
    cube: str | Path | None = None
    cube_key: str | None = None
    gt: str | None = None
    gt_key: str | None = None
    data_dir: str | None = None
    download: bool = True
    nan_policy: str = "error"


@dataclass(frozen=True)
class PredictSettings:
    """How ``predict`` classifies: ``device`` (``auto``, ``cpu``, ``cuda[:i]`` or a torch device), patches per
    forward pass (``batch_size``, None = sized to the device), ``inference``; for a cube classified tile by tile
    the tile side (``tile_size``, None = :data:`DEFAULT_TILE_SIZE`) and whether to write ``probabilities``."""

    device: str | torch.device = "auto"
    batch_size: int | None = None
    inference: Inference = "auto"
    tile_size: int | None = None
    probabilities: bool = False


def check_scene_fits(checkpoint: RunModel, scene: Scene, *, has_labels: bool) -> None:
    """Refuses a scene whose band count (or, with labels, class count) differs from the checkpoint's."""
    n_bands = checkpoint.n_bands
    if scene.n_bands != n_bands:
        raise CheckpointError(
            f"checkpoint was trained on {n_bands}-band cubes ({checkpoint.scene_name}); got a cube with "
            f"{scene.n_bands} bands. Use a scene from the same sensor, or train a model for this one."
        )
    n_classes = checkpoint.n_classes
    if has_labels and scene.n_classes != n_classes:
        raise CheckpointError(
            f"checkpoint predicts {n_classes} classes; the ground truth given has {scene.n_classes}. "
            "Use the ground truth of the scene the model was trained for."
        )


def run_split_of(checkpoint_path: str | Path, checkpoint: RunModel, scene: Scene
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``(train, test)`` masks (H, W) of the checkpoint's run when ``scene`` is the scene it was trained on.

    Same scene = the checkpoint's scene name and the shape of the run's ``split_test.npy``; None
    otherwise (another scene, or a model file without its run folder's split masks).
    """
    path = Path(checkpoint_path)
    folder = path if path.is_dir() else path.parent
    test_file, train_file = folder / "split_test.npy", folder / "split_train.npy"
    if scene.name != checkpoint.scene_name or not test_file.is_file():
        return None
    try:
        test = np.load(test_file, allow_pickle=False)
        train = np.load(train_file, allow_pickle=False) if train_file.is_file() else np.zeros_like(test)
    except (OSError, ValueError):  # a damaged mask: score all labelled pixels, and say so
        return None
    if test.dtype != np.bool_ or test.shape != scene.shape[:2] or train.shape != test.shape:
        return None
    return train.astype(bool), test


def classify_scene(
    checkpoint: RunModel, cube: np.ndarray, *, device: Any, batch_size: int | None = None,
    inference: Inference = "auto", probabilities: bool = False, classifier: Classifier | None = None,
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Every pixel of a cube held in memory, classified as the checkpoint's run classified its scene.

    The run's front-end (its denoiser, if any, then its PCA or MNF; a cube of other bands is
    refused), the classifier, then the run's map smoothing.

    Args:
        checkpoint: as :func:`~hsi.training.checkpoint.load_run_model` returns it.
        cube: (H, W, B) float32, the band count the run was trained on.
        device: a torch device.
        probabilities: also return the class probabilities.
        classifier: the checkpoint's classifier on ``device``, when the caller keeps one built
            (:func:`~hsi.training.factory.classifier_from_state`); None builds it.

    Returns:
        ``(classes, probabilities, inference)``: class indices 0..K-1 (H, W) int64, smoothed as
        the run smoothed; (H, W, K) float32 probabilities (before smoothing) or None; ``dense``
        or ``patches``, the inference used.
    """
    if classifier is None:
        classifier = classifier_from_state(checkpoint.classifier_state, device)
    used = resolve_inference(classifier, inference)  # --inference dense on a model without it fails here
    source = PatchSource(apply_features(checkpoint, cube, device=device), patch_size=classifier.receptive_field,
                         pad_mode=checkpoint.pad_mode, device=device)
    proba: np.ndarray | None = None
    if probabilities:
        proba = predict_scene_proba(classifier, source, batch_size=batch_size, inference=used)
        labels = torch.from_numpy(proba).argmax(0).numpy()  # the argmax predict_scene takes
    else:
        labels = predict_scene(classifier, source, batch_size=batch_size, inference=used)
    classes = checkpoint.post_processing.apply(labels, n_classes=checkpoint.n_classes)
    return classes, None if proba is None else proba.transpose(1, 2, 0), used


def predict_run(
    checkpoint_path: str | Path,
    scene: SceneToClassify,
    *,
    out: str | Path = "runs",
    settings: PredictSettings | None = None,
    engine: Engine | None = None,
) -> Path:
    """Classifies every pixel of a scene with a saved model; writes map.png and prediction.npy.

    ``settings.inference``: ``auto`` (dense where the model has an exact dense pass), ``dense`` or
    ``patches``; prediction.json records which was used. With ground truth (``scene.dataset``, or
    ``scene.cube`` with ``scene.gt``) the prediction is scored on every labelled pixel: metrics.json,
    report.md, the errors map (as ``train`` writes them); report.html in every case.

    A cube without ground truth in a format read window by window (ENVI, ``.npy``, HDF5,
    GeoTIFF: :func:`hsi.data.lazy.is_lazy_readable`) is classified tile by tile
    (:func:`stream_predict_run`, ``tile_size``, ``probabilities``): memory bounded by the tile,
    resumable, a GeoTIFF where the cube is georeferenced; ``engine`` (default: this process) classifies
    the tiles, e.g. on a Ray cluster. Other scenes are read whole and classified in this process.

    Returns:
        The new output folder.

    Raises:
        ConfigError: tile settings, or an engine other than this machine's, for a scene read whole.
    """
    settings = settings or PredictSettings()
    checkpoint = load_run_model(checkpoint_path)  # a run folder, model.json or a legacy model.pt
    check_writable(out)
    if scene.cube is not None and scene.gt is None and scene.dataset is None and is_lazy_readable(scene.cube):
        return stream_predict_run(checkpoint_path, checkpoint, scene, out=out, settings=settings, engine=engine)
    torch_device = resolve_device(str(settings.device))  # a tiled prediction resolves its own
    _refuse_tile_options(engine, settings)
    whole = _scene_to_classify(checkpoint, scene)
    progress.info("classifying every pixel of %s (%d x %d)", whole.name, *whole.shape[:2])
    prediction, _, used = classify_scene(checkpoint, whole.cube, device=torch_device, batch_size=settings.batch_size,
                                         inference=settings.inference)
    return _write_prediction(out, checkpoint_path, checkpoint, whole, prediction, inference=used,
                             labelled=scene.dataset is not None or scene.gt is not None)


def _refuse_tile_options(engine: Engine | None, settings: PredictSettings) -> None:
    """Refuses the options of a tiled prediction for a scene read whole.

    Raises:
        ConfigError: an engine other than this machine's, ``settings.tile_size`` or ``settings.probabilities``.
    """
    if engine is not None and not engine.shares_files:
        raise ConfigError(
            f"--engine {engine.name} classifies a cube tile by tile: --cube FILE (ENVI, .npy, HDF5 or GeoTIFF) without "
            "--gt; built-in scenes, .mat files and scored scenes are read whole and classified here: drop --engine."
        )
    if settings.tile_size is not None or settings.probabilities:
        raise ConfigError(
            "--tile-size and --probabilities apply to a cube classified tile by tile: --cube FILE (ENVI, .npy, HDF5 or "
            "GeoTIFF) without --gt; leave them out for built-in scenes, .mat files and scored scenes."
        )


def _scene_to_classify(checkpoint: RunModel, request: SceneToClassify) -> Scene:
    """The scene :func:`predict_run` reads whole, checked against the checkpoint and given its classes.

    Raises:
        ConfigError: neither ``dataset`` nor ``cube``.
        CheckpointError: the scene's bands (or, with labels, classes) differ from the checkpoint's.
        InputTooLargeError: the cube does not fit in memory (with a hint where it could be tiled).
    """
    if request.dataset is not None:
        scene = load_scene(request.dataset, data_dir=request.data_dir, download=request.download,
                           nan_policy=request.nan_policy)
        check_scene_fits(checkpoint, scene, has_labels=True)
    elif request.cube is not None:
        try:
            scene = load_custom_scene(request.cube, request.gt, cube_key=request.cube_key, gt_key=request.gt_key,
                                      nan_policy=request.nan_policy)
        except InputTooLargeError as error:
            if request.gt is None or not is_lazy_readable(request.cube):
                raise
            # A scored scene is read whole; without --gt the same cube is classified tile by tile.
            raise InputTooLargeError(f"{error} A scored prediction reads the cube whole: leave out --gt to classify "
                                     "it tile by tile in bounded memory.") from None
        check_scene_fits(checkpoint, scene, has_labels=request.gt is not None)
    else:
        raise ConfigError("predict needs --dataset NAME or --cube FILE: the scene to classify; got neither.")
    scene.class_ids = checkpoint.class_ids
    scene.class_names = checkpoint.class_names
    scene.palette = checkpoint.palette
    return scene


def _write_prediction(out: str | Path, checkpoint_path: str | Path, checkpoint: RunModel, scene: Scene,
                      prediction: np.ndarray, *, inference: str, labelled: bool) -> Path:
    """Writes a whole scene's prediction into a new output folder (removed again if a write fails); returns it."""
    run_dir = create_run_dir(out, f"predict_{scene.name}")
    try:
        write_status(run_dir, "running")
        atomic_save_json(run_dir / "prediction.json", {"checkpoint": str(Path(checkpoint_path).resolve()),
                                                        "scene": scene.name, "sources": scene.sources,
                                                        "inference": inference,
                                                        "smooth": checkpoint.post_processing.smooth})
        atomic_save_npy(run_dir / "prediction.npy", class_id_map(scene, prediction))
        progress.info("writing figures and reports into %s", run_dir)
        write_predict_outputs(run_dir, scene, prediction, model=checkpoint.model_name,
                              checkpoint=str(checkpoint_path), labelled=labelled,
                              run_split=run_split_of(checkpoint_path, checkpoint, scene))
    except BaseException:  # Ctrl-C or a failed write: a half-written output folder is worth nothing
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    write_status(run_dir, "complete")
    return run_dir


def predict_summary(run_dir: Path) -> dict[str, Any]:
    """What ``predict`` reports when it ends: the folder and, where the scene was scored, its metrics."""
    metrics_file = Path(run_dir) / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    return {"run_dir": Path(run_dir), "metrics": metrics}


__all__ = ["PredictSettings", "SceneToClassify", "TileResult", "TileWindow", "check_cube_fits", "classify_scene",
           "classify_tile", "predict_run", "predict_summary", "read_tile_window", "run_split_of", "stream_predict_run",
           "tile_features"]


# ---------------------------------------------------------------- scenes larger than memory, tile by tile

#: Default ``--tile-size``: a 512 x 512 tile of a 224-band float32 cube is 235 MB, its halo a little more.
DEFAULT_TILE_SIZE = 512
_PROGRESS = "progress.json"
#: Stored probabilities are ``round(p * PROBABILITY_SCALE)`` in uint8, so one value is left for the pixels
#: outside the data: GIS tools read it as the GeoTIFFs' nodata (0 is a real probability).
PROBABILITY_SCALE = 254
PROBABILITY_NODATA = 255
_WORK_FILES = {"labels": "labels.npy", "probabilities": "probabilities.npy"}


def tile_features(checkpoint: RunModel, raw: np.ndarray, *, nan_policy: str, ignore_value: float | None = None,
                  where: str = "cube", origin: tuple[int, int] = (0, 0), device: torch.device | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's feature transform of one window, and its pixels outside the data.

    The one place a stored window becomes what the model reads: the window cleaned as
    training reads it (:func:`~hsi.data.scene.clean_window`: float32, outside pixels set to 0,
    other non-finite values handled by ``nan_policy``), then the checkpoint's front end
    (:func:`~hsi.training.frontend.apply_features`: its denoiser, if any, then PCA or MNF),
    applied to the window as a whole (:func:`read_tile_window` widens it by the front end's reach).

    Args:
        raw: (h, w, B) in the stored dtype.
        where, origin: the cube's name and the window's top-left pixel in the scene, for messages.

    Returns:
        ``(features (h, w, C) float32, outside (h, w) bool)``.

    Raises:
        DataFormatError: non-finite values inside the data with ``nan_policy="error"``.
    """
    from hsi.data.scene import clean_window

    cube, outside = clean_window(raw, nan_policy=nan_policy, ignore_value=ignore_value, where=where, origin=origin)
    return apply_features(checkpoint, cube, device=device), outside


def check_cube_fits(checkpoint: RunModel, n_bands: int, wavelengths: tuple[float, ...] | None, where: str) -> None:
    """Refuses a cube whose band count, or band wavelengths where both are known, differ from the checkpoint's."""
    if n_bands != checkpoint.n_bands:
        raise CheckpointError(
            f"checkpoint was trained on {checkpoint.n_bands}-band cubes ({checkpoint.scene_name}); got a cube with "
            f"{n_bands} bands ({where}). Use a scene from the same sensor, or train a model for this one."
        )
    trained = checkpoint.wavelengths
    if wavelengths is None or trained is None or len(trained) != n_bands:
        return
    trained_nm = np.asarray(trained, dtype=np.float64)
    spacing = float(np.median(np.abs(np.diff(trained_nm)))) if len(trained_nm) > 1 else 1.0
    shift = np.abs(np.asarray(wavelengths) - trained_nm)
    if shift.max() > spacing / 2:
        band = int(shift.argmax())
        raise CheckpointError(
            f"checkpoint's band {band} is at {trained_nm[band]:.1f} nm; cube {where}'s is at "
            f"{wavelengths[band]:.1f} nm (more than half a band apart): a different sensor or band set. "
            "Resample the cube to the checkpoint's bands, or train a model for this one."
        )


def _resume_key(checkpoint_path: Path, cube_path: Path, settings: dict[str, Any]) -> str:
    """What makes two runs the same prediction: the checkpoint's and cube's files (path, size, time) and settings."""
    import hashlib

    parts = []
    for path in (checkpoint_path, cube_path):
        target = path / "model.json" if path.is_dir() else path
        stat = target.stat()
        parts.append([str(target.resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps([parts, settings], sort_keys=True).encode()).hexdigest()[:16]


def stream_predict_run(
    checkpoint_path: str | Path, checkpoint: RunModel, scene: SceneToClassify, *, out: str | Path = "runs",
    settings: PredictSettings | None = None, engine: Engine | None = None,
) -> Path:
    """Classifies a cube read window by window, tile after tile; memory is bounded by the tile.

    Each tile is read with a halo of ``receptive_field // 2``, plus half the window of the run's map
    smoothing (:meth:`~hsi.training.recipe.PostProcessing.apply`), the scene's edges padded as the
    checkpoint's pad mode pads a whole scene, and classified by :func:`classify_tile`: the classes
    equal those of the whole scene classified at once. ``engine`` runs the tiles: this process
    (the default), or Ray tasks that get each window's pixels from this process (no file of the
    cube or checkpoint is read elsewhere) and send the classes back
    (:func:`classify_tiles`). Finished tiles are written here, into
    ``<out>/.predict_<scene>_<key>.partial/``, and recorded in its ``progress.json``; the same
    command run again after an interruption (with either engine: they give the same classes)
    continues with the unfinished tiles. Only when every tile is done is the output folder created:
    ``prediction.npy`` (uint16 class ids, 0 = outside the data), ``prediction.json``, ``map.png``
    (a quick look, downsampled for big scenes), ``report.html``, and with georeferencing
    ``prediction.tif`` (+ ``probabilities.tif`` and ``confidence.tif`` with ``probabilities``).

    Args:
        checkpoint_path, checkpoint: where the model was read from, and the model.
        scene: ``cube`` (a file read window by window), ``cube_key`` and ``nan_policy``; no ground truth.

    Returns:
        The new output folder.
    """
    from hsi.data.lazy import open_lazy_cube
    from hsi.evaluation.predict import tile_grid

    if scene.cube is None:
        raise ValueError("stream_predict_run classifies a cube file; the scene names none")
    settings = settings or PredictSettings()
    engine = engine or LocalEngine()
    device = resolve_device(str(settings.device))
    cube_path = Path(scene.cube)
    cube = open_lazy_cube(cube_path, scene.cube_key)
    classifier, used, halo = _tiled_classifier(checkpoint, cube, str(cube_path), device=device,
                                               inference=settings.inference)
    tile_size, probabilities = settings.tile_size or DEFAULT_TILE_SIZE, settings.probabilities
    tiles = tile_grid(*cube.shape[:2], tile_size)
    name = cube_path.stem
    keyed = {"tile_size": tile_size, "inference": used, "probabilities": probabilities,
             "nan_policy": scene.nan_policy, "cube_key": scene.cube_key}
    # The engine is not part of the key: both give the same classes, so either may finish the other's work.
    work = Path(out) / f".predict_{name}_{_resume_key(Path(checkpoint_path), cube_path, keyed)}.partial"
    done = _open_work(work, cube.shape[:2], checkpoint.n_classes, probabilities, len(tiles))
    if done:
        progress.info("resuming %s: %d of %d tiles done already (%s)", name, len(done), len(tiles), work)
    where = f"cube ({cube_path})"
    windows = (read_tile_window(tile, cube, checkpoint, halo=halo, where=where)
               for tile in tiles if tile.index not in done)
    n_pixels, retries, seconds = _classify_into(
        work, done, len(tiles), engine, windows, checkpoint=checkpoint, classifier=classifier,
        device=device, settings={"nan_policy": scene.nan_policy, "batch_size": settings.batch_size,
                                 "inference": used, "probabilities": probabilities})
    record = {"checkpoint": str(Path(checkpoint_path).resolve()), "scene": name,
              "sources": {"cube": str(cube_path)}, "inference": used, "tiled": True, **keyed,
              "smooth": checkpoint.post_processing.smooth,
              "n_tiles": len(tiles), "shape": list(cube.shape),
              "engine": {**engine.describe(), "retries": retries},
              "pixels_per_second_this_session": round(n_pixels / seconds, 1) if n_pixels else None,
              "nodata": "0: pixels whose spectrum is all zero, all NaN/inf or all the header's "
                        "'data ignore value'"}
    return _publish_tiles(out, name, work, cube, checkpoint, checkpoint_path=str(checkpoint_path),
                          probabilities=probabilities, record=record)


def _tiled_classifier(checkpoint: RunModel, cube: Any, where: str, *, device: torch.device | str,
                      inference: Inference) -> tuple[Any, str, int]:
    """The classifier of a tiled prediction, the inference it uses, and the halo each tile is read with.

    Raises:
        CheckpointError: the cube's bands differ from the checkpoint's.
        ConfigError: the model's patch does not fit the scene, or it has no dense pass for ``inference="dense"``.
    """
    from hsi._core.validation import check_patch_size

    height, width, n_bands = cube.shape
    check_cube_fits(checkpoint, n_bands, cube.wavelengths, where)
    classifier = classifier_from_state(checkpoint.classifier_state, device)
    used = resolve_inference(classifier, inference)
    p = classifier.receptive_field
    check_patch_size(p, height=height, width=width)
    halo = p // 2 + checkpoint.post_processing.margin  # the vote reads the classes of a margin around a tile
    return classifier, used, halo


def _classify_into(work: Path, done: set[int], n_tiles: int, engine: Engine, windows: Iterable[TileWindow], *,
                   checkpoint: RunModel, classifier: Any, device: torch.device,
                   settings: dict[str, Any]) -> tuple[int, int, float]:
    """Classifies ``windows`` on ``engine`` into the working files, recording each finished tile in ``done``.

    Returns:
        ``(pixels, retries, seconds)`` of this session: pixels classified, tasks retried, time taken.

    Raises:
        EngineError, DependencyNotFoundError, DiskFullError: the finished tiles are kept, to continue.
        HSIError: bad input; the working files are removed.
    """
    started, n_pixels, retries = time.perf_counter(), 0, 0
    try:
        for finished in classify_tiles(engine, windows, checkpoint=checkpoint, classifier=classifier, device=device,
                                       settings=settings):
            result: TileResult = finished.result
            _write_tile(work, result)
            done.add(result.tile.index)
            atomic_save_json(work / _PROGRESS, {"n_tiles": n_tiles, "done": sorted(done)})
            n_pixels, retries = n_pixels + int(result.ids.size), retries + finished.retries
            progress.info("tile %d of %d done (%d x %d pixels)", len(done), n_tiles, *result.ids.shape)
    except (EngineError, DependencyNotFoundError, DiskFullError):  # not the input: the finished tiles are kept
        raise
    except HSIError:  # bad input: the same command would fail again, and other options are another prediction
        shutil.rmtree(work, ignore_errors=True)
        raise
    return n_pixels, retries, time.perf_counter() - started


def _publish_tiles(out: str | Path, name: str, work: Path, cube: Any, checkpoint: RunModel, *, checkpoint_path: str,
                   probabilities: bool, record: dict[str, Any]) -> Path:
    """Creates the output folder from the finished working files (removed again if a write fails), then removes
    the working files; returns the folder."""
    run_dir = create_run_dir(out, f"predict_{name}")
    try:
        write_status(run_dir, "running")
        _finish(run_dir, work, cube, checkpoint, checkpoint_path=checkpoint_path, probabilities=probabilities,
                record=record)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    write_status(run_dir, "complete")
    shutil.rmtree(work, ignore_errors=True)
    return run_dir


@dataclass(frozen=True)
class TileWindow:
    """One tile's stored pixels, read by the driver: all a task needs to classify the tile, and no file.

    Attributes:
        tile: the output window.
        raw: (h, w, B) in the stored dtype: the tile, its halo and the front end's reach, clipped to the scene.
        origin: ``raw``'s top-left pixel in the scene.
        rows, cols: the tile and its halo in scene pixels (inside ``raw``).
        pads: (top, bottom, left, right) padding the scene's edges take instead of the halo.
        ignore_value: the cube header's data ignore value (outside the data), or None.
        where: the cube's name, for messages.
    """

    tile: Tile
    raw: np.ndarray
    origin: tuple[int, int]
    rows: slice
    cols: slice
    pads: tuple[int, int, int, int]
    ignore_value: float | None
    where: str


@dataclass(frozen=True)
class TileResult:
    """One classified tile: ``ids`` (h, w) uint16 class ids (0 = outside the data) and, when asked,
    ``proba`` (h, w, K) uint8 class probabilities x 254 (:data:`PROBABILITY_SCALE`; 255 outside the data)."""

    tile: Tile
    ids: np.ndarray
    proba: np.ndarray | None


def read_tile_window(tile: Tile, cube: Any, checkpoint: RunModel, *, halo: int, where: str = "cube") -> TileWindow:
    """Reads a tile with a halo of ``halo`` pixels, widened by the reach of the checkpoint's front end.

    A front end that reads neighbouring pixels (a denoiser: :func:`~hsi.training.frontend.frontend_radius`)
    is applied to the wider window and cut back (:func:`window_features`), so every pixel of the
    halo window has the features the whole scene gives it.
    """
    height, width = cube.shape[:2]
    rows, cols, pads = tile.reads(halo, height, width)
    wide_rows, wide_cols, _ = tile.reads(halo + frontend_radius(checkpoint), height, width)
    return TileWindow(tile, cube.read(wide_rows, wide_cols), (wide_rows.start, wide_cols.start), rows, cols, pads,
                      cube.ignore_value, where)


def window_features(window: TileWindow, checkpoint: RunModel, *, nan_policy: str, device: torch.device | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The features (h, w, C) and outside-the-data mask (h, w) of the window's ``rows`` x ``cols``."""
    top, left = window.origin
    features, outside = tile_features(checkpoint, window.raw, nan_policy=nan_policy, ignore_value=window.ignore_value,
                                      where=window.where, origin=window.origin, device=device)
    keep = (slice(window.rows.start - top, window.rows.stop - top),
            slice(window.cols.start - left, window.cols.stop - left))
    return features[keep], outside[keep]


def classify_tile(window: TileWindow, checkpoint: RunModel, classifier: Any, *, nan_policy: str, batch_size: int | None,
                  inference: Inference, probabilities: bool, device: torch.device) -> TileResult:
    """Classifies one tile from its window: the one inference path of a tile, in the driver or in a Ray task.

    Front end (:func:`window_features`), then :func:`~hsi.evaluation.predict.predict_window`, the run's
    map smoothing (:meth:`~hsi.training.recipe.PostProcessing.apply`: the window's halo holds its margin;
    probabilities are not smoothed), then the checkpoint's class ids; no file is read or written.
    """
    from hsi.evaluation import predict as evaluation

    features, outside = window_features(window, checkpoint, nan_policy=nan_policy, device=device)
    result = evaluation.predict_window(classifier, features, window.pads, pad_mode=checkpoint.pad_mode,
                                       device=device, batch_size=batch_size, inference=inference,
                                       probabilities=probabilities)
    labels = torch.from_numpy(result).argmax(0).numpy() if probabilities else result  # (h, w) class indices
    tile = window.tile
    post = checkpoint.post_processing
    margin = post.margin
    if margin:  # classified: the tile and a margin the majority vote reads (beyond the scene: padding, no vote)
        rows = np.arange(labels.shape[0]) + tile.rows.start - margin
        cols = np.arange(labels.shape[1]) + tile.cols.start - margin
        in_rows = (rows >= window.rows.start) & (rows < window.rows.stop)  # the window holds the scene's part
        in_cols = (cols >= window.cols.start) & (cols < window.cols.stop)
        voters = np.zeros(labels.shape, dtype=bool)
        voters[np.ix_(in_rows, in_cols)] = ~outside[np.ix_(rows[in_rows] - window.rows.start,
                                                            cols[in_cols] - window.cols.start)]
        keep = (slice(margin, margin + tile.rows.stop - tile.rows.start),
                slice(margin, margin + tile.cols.stop - tile.cols.start))
        labels = post.apply(labels, n_classes=checkpoint.n_classes, voters=voters)[keep]
        result = result[:, keep[0], keep[1]] if probabilities else result
    inner = (slice(tile.rows.start - window.rows.start, tile.rows.stop - window.rows.start),
             slice(tile.cols.start - window.cols.start, tile.cols.stop - window.cols.start))
    ids = np.asarray(checkpoint.class_ids, dtype=np.uint16)
    tile_ids = np.where(outside[inner], 0, ids[labels]).astype(np.uint16)
    # Quantised here, so a task sends back a quarter of the float32 bytes.
    proba = None
    if probabilities:
        proba = np.rint(result.transpose(1, 2, 0) * PROBABILITY_SCALE).astype(np.uint8)
        proba[outside[inner]] = PROBABILITY_NODATA
    return TileResult(tile, tile_ids, proba)


class TilesKeptDiskFullError(EngineError, DiskFullError):
    """The disk filled during a tiled prediction: its finished tiles are kept, so the same command continues.

    An :class:`~hsi.experiments.engine.EngineError` (the caller keeps the partial work) and a
    :class:`~hsi._core.files.DiskFullError` (one line, exit code 2).
    """


def _tiles_kept(error: DiskFullError, work: Path, what: str) -> TilesKeptDiskFullError:
    """``error``'s line, with what was kept and how to continue."""
    where = "there" if error.folder == work else f"in {work}"
    return TilesKeptDiskFullError(error.problem, fix=f"{what} {where}: free some space and run the same command "
                                  "again to continue", folder=error.folder, needed=error.needed, free=error.free)


def _open_work(work: Path, shape: tuple[int, int], n_classes: int, probabilities: bool, n_tiles: int) -> set[int]:
    """The tiles a partial prediction holds already; creates its files when there is none.

    The working files' disk space is checked, then reserved (:func:`~hsi._core.files.create_work_array`):
    a disk too full for them is told now, in one line, not by ``SIGBUS`` halfway through the scene.

    Raises:
        DiskFullError: the disk has less free than the working files need (nothing is left behind).
    """
    progress_file = work / _PROGRESS
    if progress_file.is_file():
        try:
            state = json.loads(progress_file.read_text())
            if state.get("n_tiles") == n_tiles and all((work / f).is_file() for k, f in _WORK_FILES.items()
                                                       if k == "labels" or probabilities):
                return {int(i) for i in state["done"]}
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged record: start again
    # Working files updated in place, tile by tile (an atomic rewrite per tile would copy the scene
    # each time); they are copied into the output folder through the atomic writer at the end.
    files: dict[str, tuple[type, tuple[int, ...]]] = {"labels": (np.uint16, shape)}
    if probabilities:
        files["probabilities"] = (np.uint8, (*shape, n_classes))
    needed = sum(int(np.prod(size)) * np.dtype(dtype).itemsize + 128 for dtype, size in files.values())
    fix = ("free some space there, or pass an --out folder on another disk, and run the command again "
           "(the outputs need about as much again)")
    check_free_space(work.parent, needed, what="for the tiled prediction's working files", fix=fix)
    work.mkdir(parents=True, exist_ok=True)
    try:
        for key, (dtype, size) in files.items():
            create_work_array(work / _WORK_FILES[key], dtype, size)
        atomic_save_json(progress_file, {"n_tiles": n_tiles, "done": []})
    except DiskFullError:  # nothing is finished yet: leave nothing behind
        shutil.rmtree(work, ignore_errors=True)
        check_free_space(work.parent, needed, what="for the tiled prediction's working files", fix=fix)
        raise
    return set()


#: Free space a tile write leaves for the progress record (rewritten after each tile), beyond its size.
_PROGRESS_ROOM = 64 << 10


def _write_tile(work: Path, result: TileResult) -> None:
    """Writes one tile into the working files with positioned writes (no memory map: a full disk is an error,
    never ``SIGBUS``), then makes sure the progress record that follows has room.

    Raises:
        TilesKeptDiskFullError: the disk is full; the tiles finished before this one are kept.
    """
    tile = result.tile
    try:
        write_work_rows(work / _WORK_FILES["labels"], tile.rows, tile.cols, result.ids)
        if result.proba is not None:
            write_work_rows(work / _WORK_FILES["probabilities"], tile.rows, tile.cols, result.proba)
        progress_file = work / _PROGRESS
        room = (progress_file.stat().st_size if progress_file.is_file() else 0) + _PROGRESS_ROOM
        if free_space(work) < room:  # the record of this tile would not fit: stop while the work is consistent
            check_free_space(work, room, what="recording a finished tile")
    except DiskFullError as error:
        raise _tiles_kept(error, work, "the finished tiles are kept") from error


#: Longest side of the quick-look map, in pixels.
QUICK_LOOK_SIDE = 1500


def _finish(run_dir: Path, work: Path, cube: Any, checkpoint: RunModel, *, checkpoint_path: str, probabilities: bool,
            record: dict[str, Any]) -> None:
    """Copies the finished working files into the output folder, with the GeoTIFFs and the quick look.

    Raises:
        TilesKeptDiskFullError: the disk filled; every tile is classified and kept, the same command writes the
            outputs.
    """
    try:
        _write_outputs(run_dir, work, cube, checkpoint, checkpoint_path=checkpoint_path, probabilities=probabilities,
                       record=record)
    except DiskFullError as error:
        if isinstance(error, TilesKeptDiskFullError):
            raise
        raise _tiles_kept(error, work, "every tile is classified and kept") from error


def _write_outputs(run_dir: Path, work: Path, cube: Any, checkpoint: RunModel, *, checkpoint_path: str,
                   probabilities: bool, record: dict[str, Any]) -> None:
    """:func:`_finish`'s writing: prediction.npy/.json, the GeoTIFFs, the quick look and report.html."""
    from hsi.reporting import figures
    from hsi.reporting.files import atomic_save_figure
    from hsi.reporting.run_report import write_html_run_report

    ids, names, palette = list(checkpoint.class_ids), list(checkpoint.class_names), list(checkpoint.palette)
    labels = np.load(work / _WORK_FILES["labels"], mmap_mode="r")
    height, width = labels.shape
    georef = cube.georef
    record["georeferenced"] = georef is not None
    if georef is not None:
        record["crs"], record["transform"] = georef.crs, list(georef.transform)
    atomic_save_json(run_dir / "prediction.json", record)
    atomic_save_npy(run_dir / "prediction.npy", labels)
    model = checkpoint.model_name
    if georef is not None:
        from hsi.reporting.geotiff import write_bands_geotiff, write_class_geotiff

        progress.info("writing prediction.tif")
        write_class_geotiff(run_dir / "prediction.tif", labels, georef, ids=ids, names=names, palette=palette,
                            scene=record["scene"], model=model)
        if probabilities:
            proba = np.load(work / _WORK_FILES["probabilities"], mmap_mode="r")
            write_bands_geotiff(run_dir / "probabilities.tif", proba, georef, nodata=PROBABILITY_NODATA,
                                descriptions=[f"p({n}) x {PROBABILITY_SCALE}" for n in names])
            confidence: Any = _Confidence(proba)
            write_bands_geotiff(run_dir / "confidence.tif", confidence, georef, nodata=PROBABILITY_NODATA,
                                descriptions=[f"max class probability x {PROBABILITY_SCALE}"])
    elif probabilities:
        atomic_save_npy(run_dir / "probabilities.npy", np.load(work / _WORK_FILES["probabilities"], mmap_mode="r"))
    step = max(1, -(-max(height, width) // QUICK_LOOK_SIDE))
    small = np.asarray(labels[::step, ::step])
    codes = np.searchsorted(np.asarray(ids), small)  # id -> class index; 0 (nodata) -> -1 below
    codes[small == 0] = -1
    shown = f"1 pixel in {step} along each side shown" if step > 1 else "every pixel"
    title = f"{record['scene']}: {model} (predict)\n{height:,} x {width:,} pixels; {shown}"
    atomic_save_figure(figures.classification_map(codes, class_names=names, palette=palette, title=title,
                                                  missing_label="no data (outside the scene's data)",
                                                  georef=georef, pixel_step=step),
                       run_dir / "map.png")
    geo = (f"georeferenced ({georef.crs if len(georef.crs) < 40 else 'CRS in prediction.tif'}): prediction.tif"
           if georef is not None else "no georeferencing in the cube: prediction.npy only")
    report = (f"# {record['scene']}: {model}\n\nEvery pixel classified with `{checkpoint_path}`, tile by tile "
              f"({record['n_tiles']} tiles of up to {record['tile_size']} pixels); {geo}. Pixels outside the data "
              "(spectrum all zero, all NaN or the header's data ignore value) are 0 (nodata).\n")
    write_html_run_report(run_dir, title=f"{record['scene']}: {model}, prediction", subtitle=title, metrics=None,
                          report=report, warnings=[])


class _Confidence:
    """The largest class probability of each pixel, (H, W, 1) uint8, computed strip by strip from (H, W, K)."""

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba
        self.shape = (*proba.shape[:2], 1)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self.proba[rows]).max(axis=2, keepdims=True)


# ---------------------------------------------------------------- tiles of a big scene on an engine


@dataclass(frozen=True)
class TileModel:
    """What classifies the tiles of one ``predict``: sent once to each worker, rebuilt there once.

    Attributes:
        key: names this model in a worker's cache (new for every command).
        checkpoint: as :func:`~hsi.training.checkpoint.load_run_model` returned it in the driver:
            tensors and plain data, so a worker needs no file of it.
        settings: keyword arguments of :func:`hsi.experiments.predict.classify_tile` (nan policy,
            batch size, inference, probabilities).
        classifier, device: the driver's built classifier and its device, when the tasks run in the
            driver's process (local engine); None elsewhere: each worker builds its own, once.
    """

    key: str
    checkpoint: RunModel
    settings: dict[str, Any]
    classifier: Any = None
    device: Any = None


def _tile_classifier(model: TileModel) -> tuple[Any, Any]:
    """The model's classifier and device in this process; a worker builds it on its first tile only."""
    if model.classifier is not None:
        return model.classifier, model.device
    cache = worker_cache()
    cached = cache.get("tile_model")
    if cached is None or cached[0] != model.key:
        device = torch.device(worker_device() or "cpu")  # the device the engine gave this worker
        classifier = classifier_from_state(model.checkpoint.classifier_state, device)
        cache["tile_model"] = cached = (model.key, classifier, device)
    return cached[1], cached[2]


def _classify_tile(model: TileModel, window: Any) -> Any:
    """A tile task: one :class:`TileWindow` in, its ``TileResult`` out (data only)."""
    classifier, device = _tile_classifier(model)
    return classify_tile(window, model.checkpoint, classifier, device=device, **model.settings)


def classify_tiles(engine: Engine, windows: Iterable[Any], *, checkpoint: RunModel, classifier: Any,
                   device: Any, settings: dict[str, Any]) -> Iterator[Finished]:
    """Classifies tile windows on ``engine``; yields ``Finished(window, TileResult, retries)`` as each completes.

    Every tile goes through :func:`hsi.experiments.predict.classify_tile`, here or on a worker. The
    local engine classifies in this process with ``classifier``; Ray sends ``checkpoint`` once
    (each worker builds its classifier on its first tile) and each window with its task, reading
    ``windows`` lazily: at most :data:`TILES_PER_SLOT` per task slot are in flight.

    Args:
        windows: :class:`~hsi.experiments.predict.TileWindow` items, read by the driver.
        checkpoint, classifier, device: the model as the driver loaded and built it.
        settings: :func:`~hsi.experiments.predict.classify_tile`'s other keyword arguments.
    """
    local = (classifier, device) if engine.shares_files else ()
    model = TileModel(uuid.uuid4().hex, checkpoint, settings, *local)
    return engine.map(_classify_tile, windows, shared=model, lookahead=TILES_PER_SLOT)
