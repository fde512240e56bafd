"""What a train run writes: config, metrics, report, history, split, prediction and every figure.

The run folder's layout lives here (not in the experiment code), so ``train``, ``predict``
and the control run write the same files the same way, each through the atomic writers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hsi._core.errors import ConfigError
from hsi.config import RunConfig, config_record
from hsi.data.scene import LazyScene, Scene
from hsi.data.splits import Split
from hsi.reporting import figures, tables
from hsi.reporting.files import (
    atomic_save_figure,
    atomic_save_json,
    atomic_save_npy,
    atomic_write_bytes,
    atomic_write_text,
)
from hsi.reporting.honesty import control_notes, leakage_notes
from hsi.reporting.html_report import Card, FigureRef, write_html_report
from hsi.reporting.tables import format_kappa, format_percent
from hsi.training.recipe import recipe_line, recipe_record

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "SCENE_FIGURES", "class_id_map", "counts_text", "excluded_label", "headline_cards", "progress", "run_caption",
    "scene_figure", "write_control_outputs", "write_html_run_report", "write_predict_outputs", "write_run_outputs",
    "write_scene_figures",
]

progress = logging.getLogger("hsi.progress")


def training_share(config: RunConfig) -> str:
    """How much of the scene trains, in words: ``10% training``, ``5 training pixels per class``, ..."""
    if config.split == "per-class":
        return f"{config.train_per_class} training pixels per class"
    if config.split == "masks":
        return "training pixels from --train-gt"
    return f"{100 * config.train_ratio:g}% training"


def run_caption(scene_name: str, config: RunConfig) -> str:
    """Scene, model, split and training share in words, e.g. ``salinas_a: hybridsn, random split, 10% training``."""
    front = [f"corrupted by {', '.join(config.corrupt)}"] if config.corrupt else []
    front += [f"{config.denoise} denoiser"] if config.denoise != "none" else []
    front += ["MNF"] if config.reduce == "mnf" else []
    return f"{scene_name}: {config.model}, {config.split} split, {training_share(config)}" + "".join(
        f", {part}" for part in front)


def headline_cards(metrics: dict[str, Any]) -> list[Card]:
    """OA and AA of a metrics dict as percentages, kappa as a coefficient, for report.html's cards."""
    n = metrics.get("n_test")
    note = f"{n:,} test pixels" if isinstance(n, int) else ""
    return [Card("Overall accuracy", f"{format_percent(metrics['overall_accuracy'])}%", note),
            Card("Average accuracy", f"{format_percent(metrics['average_accuracy'])}%", "mean over classes"),
            Card("Kappa", format_kappa(metrics["kappa"]), "agreement beyond chance (0 = chance, 1 = perfect)")]


#: The figures of a run folder, as report.html groups them.
RUN_FIGURES: tuple[tuple[str, tuple[FigureRef, ...]], ...] = (
    ("Maps", (FigureRef("map_labelled.png", "Prediction on the labelled pixels"),
              FigureRef("ground_truth.png", "Ground truth"),
              FigureRef("errors.png", "Errors on the test pixels (correct blue, wrong orange, training yellow)"),
              FigureRef("false_colour.png", "False colour"))),
    ("The whole scene and the split", (FigureRef("map.png", "Prediction on every pixel"),
                                       FigureRef("split.png", "Training / validation / test pixels"),
                                       FigureRef("control/map.png", "Control run: prediction on every pixel"))),
    ("Confusion matrix and training", (FigureRef("confusion.png", "Confusion matrix (rows: true class)"),
                                       FigureRef("training_curve.png", "Training curve", wide=True))),
)


def write_html_run_report(
    run_dir: Path, *, title: str, subtitle: str, metrics: dict[str, Any] | None, report: str, warnings: list[str]
) -> None:
    """Writes a run folder's report.html from its report.md text and its figures.

    ``warnings``: plain-text warnings that ``report`` does not hold; its own ``**Warning:`` paragraphs
    are shown at the top of the page (once). A subtitle that repeats the title shows only the rest.
    """
    subtitle = subtitle.removeprefix(f"{title}, ")
    write_html_report(run_dir, title=title, subtitle=subtitle, headline=headline_cards(metrics) if metrics else [],
                      warnings=warnings, figure_groups=RUN_FIGURES, markdown=report)


def class_id_map(scene: Scene, prediction: np.ndarray) -> np.ndarray:
    """Maps class indices 0..K-1 to the scene's own label ids, shape (H, W) uint16.

    uint16 like the tiled ``predict``'s map (0 = outside the data there), so every ``prediction.npy``
    has one dtype; label ids are at most :data:`~hsi.data.scene.MAX_LABEL_ID`.
    """
    return np.asarray(scene.class_ids, dtype=np.uint16)[prediction]


def ensemble_line(ensemble: dict[str, Any]) -> str:
    """An ensemble's networks in words: how many trained, screened and kept, each with its validation accuracy."""
    networks = ensemble["networks"]
    finished = [n for n in networks if n["selected_epoch"] is not None]  # not stopped at the screening
    last = max(n["epochs"] for n in finished or networks)
    text = f"{len(networks)} networks from different seeds, {len(ensemble['kept'])} kept"
    if "screen_epoch" in ensemble:
        text += f"; after epoch {ensemble['screen_epoch']} only the {len(finished)} best on the validation pixels "
        text += "trained on" + ("" if ensemble.get("patience") else f" to epoch {last}")
    if ensemble.get("patience"):
        text += (f"{',' if 'screen_epoch' in ensemble else ';'} each until {ensemble['patience']} epochs passed "
                 f"without a better validation score (the longest: {last} epochs)")
    if "member_margin" in ensemble:
        text += f"; kept: within {format_percent(ensemble['member_margin'], digits=1)} points of the best there"

    def state(n: dict[str, Any]) -> str:
        accuracy = f"{format_percent(n['val_accuracy'], digits=1)}% " if "val_accuracy" in n else ""
        status = "kept" if n["kept"] else ("dropped" if n["selected_epoch"] is not None
                                           else f"stopped after epoch {n['epochs']}")
        trained = f" (trained {n['epochs']} epochs)" if ensemble.get("patience") and n["selected_epoch"] else ""
        return f"network {n['network']} {accuracy}{status}{trained}"

    return f"{text} ({'; '.join(state(n) for n in networks)})"


#: What each ``--unlabelled`` value let self-training read, in plain words.
UNLABELLED_WORDS = {
    "transductive": "every pixel that is neither a training nor a validation pixel, none in a validation pixel's "
                    "patch; the test pixels' spectra were used, never their labels",
    "inductive": "only pixels outside the labelled ground truth, none in a validation pixel's patch; no test pixel "
                 "was read",
}


def self_training_line(record: dict[str, Any]) -> str:
    """One line for report.md: the pixels self-training read and the pseudo-labels of each round (why the rounds
    stopped early is the report's warning: :func:`self_training_warning`)."""
    rounds = ", ".join(f"round {r['round']}: {r['pseudo_labels']:,}" + ("" if r.get("kept", True) else " (not kept)")
                       for r in record["rounds"])
    count = len(record["rounds"])
    epochs = sorted({r["epochs"] for r in record["rounds"] if r.get("continued")})
    trained = (f"; each round trained the model's networks on for {', '.join(map(str, epochs))} epochs" if epochs
               else "")
    return (f"{count} round{'s' if count != 1 else ''} on {record['candidates']:,} {record['pixels']} pixels "
            f"({UNLABELLED_WORDS[record['pixels']]}); pseudo-labels at probability >= {record['threshold']:g}: "
            f"{rounds}{trained}")


def self_training_warning(record: dict[str, Any]) -> str | None:
    """Why self-training stopped early and what to do, in one sentence (None when every round was kept)."""
    if not record.get("stopped"):
        return None
    return (f"self-training: {record['stopped']}. Pseudo-labels from a model this unsure teach little or mislead; "
            "train longer (--epochs) or leave --self-training off.")


def _training_detail(metrics: dict[str, Any]) -> str:
    """`` (on patches, bfloat16), batches of 117`` for report.md's training line; empty for a one-shot estimator."""
    inside = ", ".join(str(metrics[key]) for key in ("train_input", "train_precision") if metrics.get(key))
    detail = f" (on {inside})" if inside else ""
    return detail + (f", batches of {metrics['train_batch_size']}" if metrics.get("train_batch_size") else "")


def excluded_label(split: Split) -> str:
    """How reports name the labelled pixels a split left out, e.g. ``excluded (guard band)``."""
    return f"excluded ({split.info.get('excluded_reason', 'unused')})"


def write_run_outputs(
    run_dir: Path,
    config: RunConfig,
    resolved: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, float]],
    scene: Scene | LazyScene,
    split: Split,
    prediction: np.ndarray,
    *,
    streamed: Path | None = None,
) -> None:
    """Writes config, metrics, report, history, split, prediction and every figure of a run.

    ``prediction``: class indices 0..K-1 (H, W). For a cube on disk (:class:`LazyScene`) ``streamed`` is the
    folder its map was streamed into (-1 in ``prediction``: outside the data): its ``prediction.npy`` (label
    ids, 0 outside the data), quick-look ``map.png`` (downsampled) and ``prediction.tif`` are copied, and no
    full-resolution figure of the scene is drawn.
    """
    atomic_save_json(run_dir / "config.json", config_record(config.to_dict(), resolved=resolved))
    metrics = {**metrics, "recipe": recipe_record(config)}  # the training recipe and each part's setting
    counts = split.counts()
    report_extra = {
        "dataset": scene.name,
        "model": config.model,
        "recipe": recipe_line(metrics["recipe"]),
        "seed": config.seed,
        "split": str(split.info.get("method", config.split)),
        "training / validation / test pixels": f"{counts['n_train']} / {counts['n_val']} / {counts['n_test']}",
        f"labelled pixels {excluded_label(split)}": counts["n_excluded"],
        "train seconds": f"{metrics['train_seconds']:.1f}{_training_detail(metrics)}",
        "inference seconds (full scene)": f"{metrics['inference_seconds']:.2f}"
                                          + (f" ({metrics['inference']})" if metrics.get("inference") else ""),
        **({"ensemble": ensemble_line(metrics["ensemble"])} if metrics.get("ensemble") else {}),
        **({"self-training": self_training_line(metrics["self_training"])} if metrics.get("self_training") else {}),
        "device": resolved["device_name"],
    }
    notes = leakage_notes(metrics["leakage"]) if "leakage" in metrics else []
    stopped = self_training_warning(metrics["self_training"]) if metrics.get("self_training") else None
    if stopped:  # the terminal's warning, on the page's warning panel too
        notes.append(f"**Warning: {stopped}**")
    if "control" in metrics:
        notes += control_notes(metrics["control"], overall_accuracy=metrics["overall_accuracy"],
                               split_method=str(split.info.get("method", config.split)))
    report = tables.metrics_markdown(
        metrics, class_ids=list(scene.class_ids), title=f"{scene.name}: {config.model}", extra=report_extra,
        notes=notes,
    )
    caption = run_caption(scene.name, config)
    progress.info("writing figures and reports into %s", run_dir)
    if history:
        headers = list(history[0].keys())
        rows = [[row.get(h) for h in headers] for row in history]
        atomic_write_text(run_dir / "history.csv", tables.csv_text(headers, rows))
        atomic_save_figure(run_training_curve(history, metrics), run_dir / "training_curve.png")
    for part in ("train", "val", "test"):
        atomic_save_npy(run_dir / f"split_{part}.npy", getattr(split, part))
    if isinstance(scene, Scene):
        atomic_save_npy(run_dir / "prediction.npy", class_id_map(scene, prediction))
        write_scene_figures(run_dir, scene, prediction, split=split, metrics=metrics, caption=caption)
    else:
        for name in ("prediction.npy", "map.png", "prediction.tif"):
            if streamed is not None and (streamed / name).is_file():
                atomic_write_bytes(run_dir / name, (streamed / name).read_bytes())
        atomic_save_figure(figures.confusion_figure(np.asarray(metrics["confusion_matrix"]),
                                                    list(scene.class_names)), run_dir / "confusion.png")
    write_html_run_report(run_dir, title=f"{scene.name}: {config.model}", subtitle=caption, metrics=metrics,
                          report=report, warnings=[])  # the report's own warning paragraphs are shown
    # Last: a folder with metrics.json and report.md is a finished run (run_dir.FINAL_FILES).
    atomic_save_json(run_dir / "metrics.json", metrics)
    atomic_write_text(run_dir / "report.md", report)


def run_training_curve(history: list[dict[str, Any]], metrics: dict[str, Any]) -> Figure:
    """A run's training curve: an ensemble's networks named as its record says (kept, stopped at the screening,
    dropped), whatever epoch each stopped at."""
    ensemble = metrics.get("ensemble")
    if not ensemble:
        return figures.training_curve(history)
    stopped = [n["network"] for n in ensemble["networks"] if n["selected_epoch"] is None]
    return figures.training_curve(history, kept=ensemble["kept"], stopped=stopped)


#: The figures of a run's scene, by name (``<name>.png`` in the run folder): those after the first two
#: need a split and the scores.
SCENE_FIGURES = ("map", "false_colour", "map_labelled", "ground_truth", "errors", "confusion", "split")


def scene_figure(
    name: str, scene: Scene, prediction: np.ndarray, *, split: Split | None = None,
    metrics: dict[str, Any] | None = None, caption: str | None = None,
) -> Figure:
    """One of :data:`SCENE_FIGURES`, drawn from the run's data.

    Args:
        prediction: class indices 0..K-1 of every pixel, shape (H, W).
        split, metrics: the run's split and metrics (fractions); needed by every figure after the first two.
        caption: heads every map title (e.g. :func:`run_caption`); default: the scene's name.
    """
    names, palette, georef = list(scene.class_names), list(scene.palette), getattr(scene, "georef", None)
    caption = caption or scene.name
    if name == "map":
        return figures.classification_map(prediction, class_names=names, palette=palette,
                                          title=f"{caption}\nprediction, every pixel", georef=georef)
    if name == "false_colour":
        return figures.false_colour(scene.cube, scene.rgb_bands, title=f"{scene.name}: false colour",
                                    wavelengths=getattr(scene, "wavelengths", None))
    if name not in SCENE_FIGURES:
        raise ConfigError(f"figure must be one of {', '.join(SCENE_FIGURES)}; got {name!r}.")
    if split is None or metrics is None:
        raise ConfigError(f"the {name} figure needs the run's split and scores; this run has none.")
    labelled = scene.labels >= 0
    if name == "map_labelled":
        return figures.classification_map(np.where(labelled, prediction, -1), class_names=names, palette=palette,
                                          title=f"{caption}\nprediction on the labelled pixels", georef=georef)
    if name == "ground_truth":
        return figures.classification_map(scene.labels, class_names=names, palette=palette,
                                          title=f"{scene.name}: ground truth", georef=georef)
    if name == "errors":
        return figures.error_map(split.test, prediction == scene.labels, train_mask=split.train,
                                 labelled_mask=labelled, title=f"{caption}\nerrors on the test pixels")
    if name == "confusion":
        return figures.confusion_figure(np.asarray(metrics["confusion_matrix"]), names)
    return figures.split_map(split.train, split.val, split.test, excluded_mask=split.excluded,
                             excluded_label=excluded_label(split))


def write_scene_figures(
    run_dir: Path, scene: Scene, prediction: np.ndarray, *, split: Split | None = None,
    metrics: dict[str, Any] | None = None, caption: str | None = None,
) -> None:
    """Writes map.png and false_colour.png, and with a split and labels the other :data:`SCENE_FIGURES`."""
    drawn = SCENE_FIGURES if split is not None and metrics is not None else SCENE_FIGURES[:2]
    for name in drawn:
        atomic_save_figure(scene_figure(name, scene, prediction, split=split, metrics=metrics, caption=caption),
                           run_dir / f"{name}.png")


def write_predict_outputs(
    run_dir: Path, scene: Scene, prediction: np.ndarray, *, model: str, checkpoint: str, labelled: bool,
    run_split: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any] | None:
    """What ``predict`` writes besides prediction.npy: the maps, and with labels the scores and reports.

    With ground truth (``labelled``) the prediction is scored on every labelled pixel, like a
    train run's test pixels: metrics.json, report.md, errors.png, confusion.png. Those pixels
    may include the ones the model was trained on, and the reports say so. ``run_split``
    ``(train, test)`` masks (H, W) of the checkpoint's own run, when this is its scene: then only
    the run's test pixels are scored (``metrics["scored_on"]`` says which). report.html always.

    Returns:
        The metrics (fractions), or None without labels.
    """
    from hsi.data.splits import Split
    from hsi.evaluation.metrics import classification_summary

    caption = f"{scene.name}: {model} (predict)"
    if not labelled or not (scene.labels >= 0).any():
        write_scene_figures(run_dir, scene, prediction, caption=caption)
        write_html_run_report(run_dir, title=f"{scene.name}: {model}, prediction", subtitle=caption, metrics=None,
                              report=f"# {scene.name}: {model}\n\nEvery pixel classified with `{checkpoint}`; "
                              "the scene has no ground truth, so nothing is scored.\n", warnings=[])
        return None
    test = scene.labels >= 0
    none = np.zeros_like(test)
    if run_split is not None:
        test = test & run_split[1]
        split = Split(train=run_split[0] & ~test, val=none, test=test, excluded=none.copy(),
                      info={"method": "the run's test pixels"})
        scored_on = f"the run's {int(test.sum()):,} test pixels"
        note = (f"Scored on {scored_on} only: this is the scene the model was trained on (same name and shape), "
                "so its training pixels are left out, as in the run's own report.")
    else:
        split = Split(train=none, val=none, test=test, excluded=none.copy(), info={"method": "all labelled pixels"})
        scored_on = f"all {int(test.sum()):,} labelled pixels (the model may have trained on some)"
        note = ("Scored on every labelled pixel of the scene. If this is the scene the model was trained on, "
                "its training pixels are among them and these figures are optimistic: the run folder's report.md "
                "has the honest test-pixel figures.")
    metrics: dict[str, Any] = {
        **classification_summary(scene.labels[test], prediction[test], class_names=list(scene.class_names)),
        **split.counts(), "scored_on": scored_on,
    }
    report = tables.metrics_markdown(
        metrics, class_ids=list(scene.class_ids), title=f"{scene.name}: {model}, prediction",
        extra={"dataset": scene.name, "model": model, "checkpoint": checkpoint,
               "scored pixels": scored_on},
        notes=[note],
    )
    write_scene_figures(run_dir, scene, prediction, split=split, metrics=metrics, caption=caption)
    atomic_save_json(run_dir / "metrics.json", metrics)
    atomic_write_text(run_dir / "report.md", report)
    write_html_run_report(run_dir, title=f"{scene.name}: {model}, prediction", subtitle=caption, metrics=metrics,
                          report=report, warnings=[])
    return metrics


def counts_text(n: int) -> str:
    """``12,345``."""
    return f"{n:,}"


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
