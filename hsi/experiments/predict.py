"""`hsi-classify predict`: classify a scene with a checkpoint alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from hsi._core.errors import CheckpointError, ConfigError
from hsi.data.patches import PatchSource
from hsi.data.scene import Scene, load_custom_scene, load_scene
from hsi.evaluation.predict import predict_scene
from hsi.experiments.run_dir import check_writable, create_run_dir, write_status
from hsi.features.pca import SpectralPCA
from hsi.reporting.files import atomic_save_json, atomic_save_npy
from hsi.reporting.run_report import class_id_map, write_scene_figures
from hsi.training.checkpoint import load_checkpoint
from hsi.training.classifier import Classifier, classifier_from_state
from hsi.training.device import resolve_device


def load_classifier(checkpoint: dict, device: torch.device) -> Classifier:
    """Rebuilds the fitted classifier (network or scikit-learn estimator) a checkpoint describes."""
    return classifier_from_state(checkpoint, device)


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
) -> Path:
    """Classifies every pixel of a scene with a saved model; writes map.png and prediction.npy.

    Returns:
        The new output folder.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    check_writable(out)
    torch_device = resolve_device(device)
    if dataset is not None:
        scene = load_scene(dataset, data_dir=data_dir, download=download, nan_policy=nan_policy)
        check_scene_fits(checkpoint, scene, has_labels=True)
    elif cube is not None:
        scene = load_custom_scene(cube, None, cube_key=cube_key, nan_policy=nan_policy)
        check_scene_fits(checkpoint, scene, has_labels=False)
    else:
        raise ConfigError("predict needs --dataset NAME or --cube FILE: the scene to classify; got neither.")
    classes = checkpoint["classes"]
    scene.class_ids = tuple(int(i) for i in classes["ids"])
    scene.class_names = tuple(classes["names"])
    scene.palette = tuple(classes["palette"])
    classifier = load_classifier(checkpoint, torch_device)
    pca = SpectralPCA.from_state_dict(
        {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in checkpoint["pca"].items()}
    )
    source = PatchSource(pca.transform(scene.cube), patch_size=classifier.receptive_field,
                         pad_mode=str(checkpoint["pad_mode"]), device=torch_device)
    prediction = predict_scene(classifier, source, batch_size=batch_size)
    run_dir = create_run_dir(out, f"predict_{scene.name}")
    try:
        write_status(run_dir, "running")
        atomic_save_json(run_dir / "prediction.json", {"checkpoint": str(Path(checkpoint_path).resolve()),
                                                        "scene": scene.name, "sources": scene.sources})
        atomic_save_npy(run_dir / "prediction.npy", class_id_map(scene, prediction))
        write_scene_figures(run_dir, scene, prediction)
    except BaseException:  # Ctrl-C or a failed write: a half-written output folder is worth nothing
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    write_status(run_dir, "complete")
    return run_dir


__all__ = ["load_classifier", "predict_run"]
