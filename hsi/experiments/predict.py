"""`hsi-classify predict`: classify a scene with a checkpoint alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from hsi._core.errors import CheckpointError, ConfigError
from hsi.config import Inference
from hsi.data.patches import PatchSource
from hsi.data.scene import Scene, load_custom_scene, load_scene
from hsi.evaluation.predict import predict_scene, resolve_inference
from hsi.experiments.run_dir import check_writable, create_run_dir, write_status
from hsi.features.pca import SpectralPCA
from hsi.reporting.files import atomic_save_json, atomic_save_npy
from hsi.reporting.run_report import class_id_map, progress, write_predict_outputs
from hsi.training.checkpoint import load_run_model
from hsi.training.classifier import classifier_from_state
from hsi.training.device import resolve_device


def check_scene_fits(checkpoint: dict, scene: Scene, *, has_labels: bool) -> None:
    """Refuses a scene whose band count (or, with labels, class count) differs from the checkpoint's."""
    n_bands = int(checkpoint["scene"]["n_bands"])
    if scene.n_bands != n_bands:
        raise CheckpointError(
            f"checkpoint was trained on {n_bands}-band cubes ({checkpoint['scene']['name']}); got a cube with "
            f"{scene.n_bands} bands. Use a scene from the same sensor, or train a model for this one."
        )
    n_classes = len(checkpoint["classes"]["ids"])
    if has_labels and scene.n_classes != n_classes:
        raise CheckpointError(
            f"checkpoint predicts {n_classes} classes; the ground truth given has {scene.n_classes}. "
            "Use the ground truth of the scene the model was trained for."
        )


def predict_run(
    checkpoint_path: str | Path,
    *,
    dataset: str | None = None,
    cube: str | None = None,
    cube_key: str | None = None,
    data_dir: str | None = None,
    download: bool = True,
    out: str | Path = "runs",
    device: str = "auto",
    batch_size: int | None = None,
    nan_policy: str = "error",
    inference: Inference = "auto",
    gt: str | None = None,
    gt_key: str | None = None,
) -> Path:
    """Classifies every pixel of a scene with a saved model; writes map.png and prediction.npy.

    ``inference``: ``auto`` (dense where the model has an exact dense pass), ``dense`` or ``patches``;
    prediction.json records which was used. With ground truth (``dataset``, or ``cube`` with
    ``gt``) the prediction is scored on every labelled pixel: metrics.json, report.md, the
    errors map (as ``train`` writes them); report.html in every case.

    Returns:
        The new output folder.
    """
    checkpoint = load_run_model(checkpoint_path)  # a run folder, model.json or a legacy model.pt
    check_writable(out)
    torch_device = resolve_device(device)
    if dataset is not None:
        scene = load_scene(dataset, data_dir=data_dir, download=download, nan_policy=nan_policy)
        check_scene_fits(checkpoint, scene, has_labels=True)
    elif cube is not None:
        scene = load_custom_scene(cube, gt, cube_key=cube_key, gt_key=gt_key, nan_policy=nan_policy)
        check_scene_fits(checkpoint, scene, has_labels=gt is not None)
    else:
        raise ConfigError("predict needs --dataset NAME or --cube FILE: the scene to classify; got neither.")
    classes = checkpoint["classes"]
    scene.class_ids = tuple(int(i) for i in classes["ids"])
    scene.class_names = tuple(classes["names"])
    scene.palette = tuple(classes["palette"])
    classifier = classifier_from_state(checkpoint, torch_device)
    used = resolve_inference(classifier, inference)  # --inference dense on a model without it fails here
    pca = SpectralPCA.from_state_dict(
        {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in checkpoint["pca"].items()}
    )
    source = PatchSource(pca.transform(scene.cube), patch_size=classifier.receptive_field,
                         pad_mode=str(checkpoint["pad_mode"]), device=torch_device)
    progress.info("classifying every pixel of %s (%d x %d)", scene.name, *scene.shape[:2])
    prediction = predict_scene(classifier, source, batch_size=batch_size, inference=used)
    run_dir = create_run_dir(out, f"predict_{scene.name}")
    try:
        write_status(run_dir, "running")
        atomic_save_json(run_dir / "prediction.json", {"checkpoint": str(Path(checkpoint_path).resolve()),
                                                        "scene": scene.name, "sources": scene.sources,
                                                        "inference": used})
        atomic_save_npy(run_dir / "prediction.npy", class_id_map(scene, prediction))
        progress.info("writing figures and reports into %s", run_dir)
        write_predict_outputs(run_dir, scene, prediction, model=str(checkpoint.get("config", {}).get("model", "model")),
                              checkpoint=str(checkpoint_path), labelled=dataset is not None or gt is not None)
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


__all__ = ["predict_run", "predict_summary"]
