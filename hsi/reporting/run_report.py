"""What a train run writes: config, metrics, report, history, split, prediction and every figure.

The run folder's layout lives here (not in the experiment code), so ``train``, ``predict``
and the control run write the same files the same way, each through the atomic writers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hsi.config import RunConfig
from hsi.data.scene import Scene
from hsi.data.splits import Split
from hsi.reporting import figures, tables
from hsi.reporting.files import atomic_save_figure, atomic_save_json, atomic_save_npy, atomic_write_text
from hsi.reporting.honesty import control_notes, leakage_notes

__all__ = ["class_id_map", "excluded_label", "write_control_outputs", "write_run_outputs", "write_scene_figures"]


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
        rows = [[row.get(h) for h in headers] for row in history]
        atomic_write_text(run_dir / "history.csv", tables.csv_text(headers, rows))
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
    confusion = np.asarray(metrics["confusion_matrix"])
    atomic_save_figure(figures.confusion_figure(confusion, names), run_dir / "confusion.png")
    atomic_save_figure(
        figures.split_map(split.train, split.val, split.test, excluded_mask=split.excluded,
                          excluded_label=excluded_label(split)), run_dir / "split.png",
    )


def write_control_outputs(
    run_dir: Path, metrics: dict[str, Any], prediction: np.ndarray, *, scene: Scene, control: str
) -> None:
    """Writes ``control/metrics.json`` and ``control/map.png`` of a control run (``--control``)."""
    atomic_save_json(run_dir / "control" / "metrics.json", metrics)
    atomic_save_figure(
        figures.classification_map(prediction, class_names=list(scene.class_names), palette=list(scene.palette),
                                   title=f"{scene.name}: {control} control"),
        run_dir / "control" / "map.png",
    )
