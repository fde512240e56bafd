"""The Python API under the command line: what ``hsi-classify`` does, callable from a notebook.

The options are the CLI's flags with the same names (underscored), defaults and checks: a
wrong one raises the tool's own :class:`~hsi._core.errors.HSIError` with the CLI's one-line
text. Results are plain data (dicts and arrays) with their figures:

    >>> scene = hsi.load_scene("salinas_a", data_dir="../shared/data")
    >>> run = hsi.train(scene, split="disjoint", train_ratio=0.1, epochs=5, quiet=True)
    >>> run.metrics["overall_accuracy"], run.prediction.shape
    >>> run.save("my-run")          # the folder `hsi-classify train` writes
    >>> hsi.load_model("my-run").predict(scene)

``train``, ``repeat`` and ``compare`` run the same code as the commands: each command parses its
flags, makes one call into this module and prints what it returns. Without ``out=`` they
work in a private temporary folder that goes away with the returned object, so nothing lands
in your folders until ``save``; with ``out=`` the folder is written there, as the CLI does.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import shutil
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hsi._core.errors import ConfigError, HSIError
from hsi._core.files import copy_folder, private_folder
from hsi.config import RunConfig, config_from_options
from hsi.data.scene import LazyScene, Scene

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hsi.experiments.compare import CompareResult
    from hsi.experiments.engine import Engine
    from hsi.experiments.repeat import RepeatResult
    from hsi.experiments.train import RunResult

__all__ = ["Compare", "HSIError", "Model", "Repeat", "Run", "compare", "load_model", "load_scene", "repeat", "train"]

AnyScene = Scene | LazyScene


def load_scene(name: str | None = None, *, cube: str | Path | None = None, gt: str | Path | None = None,
               data_dir: str | Path | None = None, cube_key: str | None = None, gt_key: str | None = None,
               nan_policy: str = "error", download: bool = True) -> AnyScene:
    """A built-in scene by ``name``, or your own ``cube`` (and ``gt``) files.

    Returns:
        The scene: ``cube`` (H, W, B) float32, ``labels`` (H, W) with classes 0..K-1 (-1 =
        unlabelled), ``class_ids`` (the file's own label ids), ``class_names``, ``palette``,
        ``wavelengths`` where known. A cube too big for memory (HDF5, GeoTIFF, or a large ENVI /
        ``.npy`` file) stays on disk and is read window by window, as ``train --cube`` does.

    Raises:
        ConfigError: neither or both of ``name`` and ``cube``; a bad option.
        DatasetNotFoundError, DataFormatError: as the CLI's ``--dataset`` / ``--cube``.
    """
    from hsi.data import scene as scenes

    if (name is None) == (cube is None):
        raise ConfigError("load_scene needs a built-in scene's name or cube=FILE (with gt=FILE to train on it); "
                          f"got {'both' if name is not None else 'neither'}.")
    if name is not None:
        options: dict[str, Any] = {"dataset": name, "data_dir": None if data_dir is None else str(data_dir),
                                   "download": download, "nan_policy": nan_policy}
        config_from_options(options)  # the CLI's checks of each option
        loaded: AnyScene = scenes.load_scene(name, data_dir=data_dir, download=download, nan_policy=nan_policy)
    else:
        options = {"cube": str(cube), "gt": None if gt is None else str(gt), "cube_key": cube_key,
                   "gt_key": gt_key, "nan_policy": nan_policy}
        config_from_options(options)
        lazy = gt is not None and scenes.lazy_decision(str(cube), cube_key, "auto")[0]
        loaded = (scenes.load_lazy_scene(str(cube), str(gt), cube_key=cube_key, gt_key=gt_key, nan_policy=nan_policy)
                  if lazy else
                  scenes.load_custom_scene(str(cube), None if gt is None else str(gt), cube_key=cube_key,
                                           gt_key=gt_key, nan_policy=nan_policy))
    loaded.load_options = {k: v for k, v in options.items() if v is not None}
    return loaded


def _scene_options(scene: AnyScene) -> dict[str, Any]:
    if not isinstance(scene, Scene | LazyScene) or not scene.load_options:
        raise ConfigError("train, repeat and compare take a scene from hsi.load_scene (it records how to load the "
                          f"scene again, for config.json); got {type(scene).__name__}.")
    return dict(scene.load_options)


def _config(scene: AnyScene, options: Mapping[str, Any], out: Path) -> RunConfig:
    clash = {"dataset", "cube", "gt", "cube_key", "gt_key", "data_dir"} & set(options)
    if clash:
        raise ConfigError(f"{', '.join(sorted(clash))}: the scene says where its data is; pass them to "
                          "hsi.load_scene instead.")
    return config_from_options({**_scene_options(scene), **options, "out": str(out)})


def _copy_folder(source: Path, folder: str | Path) -> Path:
    """Copies a finished result folder to ``folder`` (new, or an empty folder)."""
    target = Path(folder)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"save needs a new or empty folder; {target} exists and is not empty. Pass another path.")
    return copy_folder(source, target)


def _png_figure(path: Path) -> Figure:
    """A saved report figure as a matplotlib Figure, at its own size."""
    import matplotlib.image as mpimg
    from matplotlib.figure import Figure

    image = mpimg.imread(path)
    fig = Figure(figsize=(image.shape[1] / 100, image.shape[0] / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.set_axis_off()
    return fig


def _report_iframe(report: Path) -> str:
    """report.html inside an iframe: its styles stay out of the notebook's page."""
    return (f'<iframe srcdoc="{html.escape(report.read_text(), quote=True)}" '
            'style="width:100%;height:900px;border:0"></iframe>')


class Run:
    """A finished ``train``: its figures and scores as data, and the folder ``train`` writes.

    Attributes:
        folder: where its files are (temporary until :meth:`save` unless ``out=`` was given).
        metrics: what metrics.json holds (fractions).
        config: config.json: the settings (``run``) and what they resolved to (``resolved``).
        prediction: the scene's own class ids of every pixel, (H, W) uint16.
        split: ``{"train", "val", "test"}`` boolean masks (H, W).
        history: one dict per network epoch (history.csv); empty for one-shot models.
    """

    def __init__(self, folder: Path, scene: AnyScene) -> None:
        self.folder, self.scene = folder, scene
        self.metrics: dict[str, Any] = json.loads((folder / "metrics.json").read_text())
        self.config: dict[str, Any] = json.loads((folder / "config.json").read_text())
        self.prediction: np.ndarray = np.load(folder / "prediction.npy")
        self.split = {part: np.load(folder / f"split_{part}.npy") for part in ("train", "val", "test")}
        history = folder / "history.csv"
        self.history: list[dict[str, Any]] = (
            [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(history.open())]
            if history.is_file() else [])

    def save(self, folder: str | Path) -> Path:
        """Writes the run's folder (as ``train`` writes it) to ``folder``, new or empty; returns it."""
        return _copy_folder(self.folder, folder)

    def figure(self, name: str) -> Figure:
        """A figure of the run, drawn from its data: ``map``, ``map_labelled``, ``ground_truth``,
        ``errors``, ``split``, ``confusion``, ``false_colour`` or ``training_curve``."""
        from hsi.data.splits import Split
        from hsi.reporting.run_report import run_caption, run_training_curve, scene_figure

        if name == "training_curve":
            if not self.history:
                raise ConfigError("this run trained no network epochs: it has no training curve.")
            return run_training_curve(self.history, self.metrics)
        if isinstance(self.scene, LazyScene):
            return _png_figure(self.folder / f"{name}.png")
        classes = np.searchsorted(np.asarray(self.scene.class_ids), self.prediction)
        split_kind = str(self.config["run"].get("split"))
        reason = {"disjoint": "guard band", "masks": "in neither file"}.get(split_kind, "unused")
        split = Split(train=self.split["train"], val=self.split["val"], test=self.split["test"],
                      excluded=_excluded(self.scene, self.split), info={"excluded_reason": reason})
        return scene_figure(name, self.scene, classes, split=split, metrics=self.metrics,
                            caption=run_caption(self.scene.name, RunConfig.from_json_file(self.folder / "config.json")))

    def _repr_html_(self) -> str:
        return _report_iframe(self.folder / "report.html")

    def __repr__(self) -> str:
        m = self.metrics
        return (f"Run({self.config['run'].get('model')}: OA {m['overall_accuracy']:.4f}, "
                f"AA {m['average_accuracy']:.4f}, kappa {m['kappa']:.3f}; {self.folder})")


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _excluded(scene: AnyScene, split: Mapping[str, np.ndarray]) -> np.ndarray:
    """Labelled pixels in no part of the split (a disjoint split's guard band)."""
    return (scene.labels >= 0) & ~(split["train"] | split["val"] | split["test"])


def _run_in(out: str | Path | None, call: Any) -> tuple[Path, bool, Any]:
    """Runs ``call(folder)`` in ``out``, or in a new temporary folder (removed again if the call fails)."""
    temporary = out is None
    folder = private_folder() if out is None else Path(out)
    try:
        return folder, temporary, call(folder)
    except BaseException:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _tie_to(owner: object, folder: Path, temporary: bool) -> None:
    if temporary:  # the temporary folder lives as long as the object that reads it
        weakref.finalize(owner, shutil.rmtree, str(folder), True)


def train(scene: AnyScene, *, out: str | Path | None = None, quiet: bool = False, **options: Any) -> Run:
    """Trains on ``scene`` and classifies every pixel, as ``hsi-classify train`` does.

    Args:
        scene: from :func:`load_scene`.
        out: the folder that receives the run folder (as ``--out``); None: a temporary folder
            (see :meth:`Run.save`).
        quiet: no progress bars.
        **options: the ``train`` flags, underscored (``patch_size=11``, ``recipe="paper"``).

    Raises:
        HSIError: a bad option or data the settings cannot take, with the CLI's one-line text;
            raised before anything is written.
    """
    config = _config(scene, options, Path(out or "runs"))  # options checked before any folder exists
    # The run reads its scene as `hsi-classify train` does (the same lazy decision, the same record), so
    # the two write the same folder; the scene in hand serves the figures.
    folder, temporary, result = _run_in(out, lambda folder: _train_config(
        dataclasses.replace(config, out=str(folder)), progress=not quiet))
    run = Run(result.run_dir, scene)
    _tie_to(run, folder, temporary)
    return run


class Model:
    """A saved model, ready to classify: ``predict`` and ``predict_proba`` of a scene or a cube.

    The checkpoint's own front-end (denoiser, PCA or MNF) and map smoothing apply, as in
    ``hsi-classify predict``; a cube of another band count is refused the same way.
    """

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        from hsi.training.checkpoint import load_run_model
        from hsi.training.device import resolve_device
        from hsi.training.factory import classifier_from_state

        self.path = Path(path)
        self.checkpoint = load_run_model(path)
        self.device = resolve_device(device)
        # Built once (a forest's estimator is read and checked, networks are made): every predict reuses it.
        self.classifier = classifier_from_state(self.checkpoint.classifier_state, self.device)
        self.class_ids: tuple[int, ...] = self.checkpoint.class_ids
        self.class_names: tuple[str, ...] = self.checkpoint.class_names

    def _classify(self, scene_or_cube: AnyScene | np.ndarray, probabilities: bool) -> tuple[np.ndarray, Any]:
        from hsi._core.validation import check_cube
        from hsi.experiments.predict import check_scene_fits, classify_scene

        if isinstance(scene_or_cube, LazyScene):
            raise ConfigError("predict_proba and predict take a scene held in memory; classify a cube read window "
                              "by window with `hsi-classify predict --cube FILE` (tile by tile).")
        if isinstance(scene_or_cube, Scene):
            check_scene_fits(self.checkpoint, scene_or_cube, has_labels=False)
            cube = scene_or_cube.cube
        else:
            cube = check_cube(np.asarray(scene_or_cube), name="cube")
        classes, proba, _ = classify_scene(self.checkpoint, cube, device=self.device, probabilities=probabilities,
                                           classifier=self.classifier)
        return classes, proba

    def predict(self, scene_or_cube: AnyScene | np.ndarray) -> np.ndarray:
        """The class id (the training scene's own label ids) of every pixel, (H, W) uint16."""
        classes, _ = self._classify(scene_or_cube, probabilities=False)
        return np.asarray(self.class_ids, dtype=np.uint16)[classes]

    def predict_proba(self, scene_or_cube: AnyScene | np.ndarray) -> np.ndarray:
        """Class probabilities of every pixel, (H, W, K) float32, classes in ``class_ids`` order
        (before the run's map smoothing, if it had one)."""
        return self._classify(scene_or_cube, probabilities=True)[1]

    def __repr__(self) -> str:
        return f"Model({self.checkpoint.model_name}, {len(self.class_ids)} classes; {self.path})"


def load_model(path: str | Path, *, device: str = "auto") -> Model:
    """A saved model: a run folder, its ``model.json`` or a legacy ``model.pt``; refused as ``predict`` refuses."""
    return Model(path, device=device)


class Repeat:
    """A finished ``repeat``: the stability report as plain data, and its figures.

    Attributes:
        folder: the repeat folder (temporary unless ``out=`` was given; see :meth:`save`).
        report: what stability.json holds: mean, std, min/max and 95% interval of OA / AA / kappa
            and each class (fractions), over the runs; with ``vary="all"`` one report per series.
        runs: each run's metrics (fractions), in run order.
        answer: see :attr:`answer`.
    """

    def __init__(self, folder: Path, report: dict[str, Any]) -> None:
        self.folder, self.report = folder, report
        self.runs = [json.loads((folder / str(run["dir"]).removeprefix("../") / "metrics.json").read_text())
                     for run in report["runs"]]

    @property
    def answer(self) -> str | None:
        """Whether the split or the initialisation moves OA more, in words (``vary="all"``, or a
        series compared with its sibling folders); None where there is nothing to compare."""
        if "answer" in self.report:
            return str(self.report["answer"]["text"])
        comparison = self.report.get("comparison")
        return None if comparison is None else str(comparison.get("text"))

    def figure(self, name: str = "stability") -> Figure:
        """A figure of the report as written (``stability``, ``agreement``, ``consensus``)."""
        path = self.folder / f"{name}.png"
        if not path.is_file():
            raise ConfigError(f"no figure {name!r} in {self.folder}; there are "
                              f"{', '.join(sorted(p.stem for p in self.folder.glob('*.png')))}.")
        return _png_figure(path)

    def save(self, folder: str | Path) -> Path:
        """Writes the repeat folder (as ``hsi-classify repeat`` writes it) to ``folder``, new or empty."""
        return _copy_folder(self.folder, folder)

    def _repr_html_(self) -> str:
        return _report_iframe(self.folder / "report.html")


def repeat(scene: AnyScene, *, runs: int | None = None, seeds: Sequence[int] | None = None, vary: str = "both",
           out: str | Path | None = None, quiet: bool = False, **options: Any) -> Repeat:
    """Trains the same setup several times, as ``hsi-classify repeat`` does: ``runs`` seeds from
    ``seed`` on, or exactly ``seeds``; ``vary`` ``split``, ``init``, ``both`` or ``all``."""
    config = _config(scene, options, Path(out or "runs"))
    chosen = _seeds(config.seed, runs, seeds, least=2)
    folder, temporary, result = _run_in(out, lambda folder: _repeat_config(
        dataclasses.replace(config, out=str(folder)), chosen, vary=vary, progress=not quiet))
    repeated = Repeat(result.repeat_dir, result.report)
    _tie_to(repeated, folder, temporary)
    return repeated


class Compare:
    """A finished ``compare``: one summary per model (plain data) and the comparison figure.

    Attributes:
        folder: the compare folder (temporary unless ``out=`` was given; see :meth:`save`).
        results: one dict per model, in the order given: ``model``, ``overall_accuracy``,
            ``average_accuracy``, ``kappa`` (each mean / std / ... over seeds, fractions),
            ``parameters``, train and inference seconds, per-class accuracy and its runs.
    """

    def __init__(self, folder: Path, results: list[dict[str, Any]]) -> None:
        self.folder, self.results = folder, results

    def figure(self) -> Figure:
        """The comparison chart as written (OA and AA in percent, kappa a coefficient)."""
        return _png_figure(self.folder / "compare.png")

    def save(self, folder: str | Path) -> Path:
        """Writes the compare folder (as ``hsi-classify compare`` writes it) to ``folder``, new or empty."""
        return _copy_folder(self.folder, folder)

    def _repr_html_(self) -> str:
        return _report_iframe(self.folder / "report.html")


def compare(scene: AnyScene, *, models: Sequence[str], runs: int | None = None, seeds: Sequence[int] | None = None,
            out: str | Path | None = None, quiet: bool = False, **options: Any) -> Compare:
    """Trains every model on the same split(s), as ``hsi-classify compare`` does."""
    config = _config(scene, options, Path(out or "runs"))
    chosen = _seeds(config.seed, runs, seeds, least=1)
    folder, temporary, result = _run_in(out, lambda folder: _compare_config(
        dataclasses.replace(config, out=str(folder)), list(models), seeds=chosen, progress=not quiet))
    compared = Compare(result.compare_dir, result.results)
    _tie_to(compared, folder, temporary)
    return compared


def _seeds(first: int, runs: int | None, seeds: Sequence[int] | None, *, least: int) -> list[int]:
    """``runs`` seeds from ``first`` on, or ``seeds``, as ``--runs`` / ``--seeds``."""
    if (runs is None) == (seeds is None):
        if runs is None and least == 1:
            return [first]
        raise ConfigError("give runs=N or seeds=[...], not both" if runs is not None else
                          f"give runs=N (at least {least}) or seeds=[...]")
    if seeds is not None:
        return [int(s) for s in seeds]
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < least:
        raise ConfigError(f"runs must be an integer of at least {least}; got {runs!r}.")
    return list(range(first, first + runs))


# ---------------------------------------------------------------- what the commands call
# A command holds resolved settings (flags over a --config file), not a scene, names its engine and
# prints where its folder went: these take that and return the experiments' own results, and the
# public functions above call the same ones. ``engine``: make_engine's keywords (``name``, ``jobs``,
# ``ray_address`` ...), built here with the run's device; None: the experiment's default.


def _check_run_inputs(config: RunConfig) -> None:
    """``train``, ``repeat``, ``compare``: the settings, scene name and input files, checked without torch."""
    from hsi.experiments.validate import check_run_inputs

    check_run_inputs(config)


def _check_predict_inputs(out: str | Path, config: RunConfig) -> None:
    """``predict``: ``out`` writable, and the scene's name and files (``config``), checked without torch."""
    from hsi.experiments.run_dir import check_writable
    from hsi.experiments.validate import check_input_files

    check_writable(out)
    check_input_files(config)


def _engine(settings: Mapping[str, Any] | None, device: str, notify: Callable[[str], None] | None) -> Engine | None:
    """The engine ``settings`` name (checked before anything runs: Ray missing, a flag of the other engine)."""
    from hsi.experiments.engine import make_engine

    return None if settings is None else make_engine(**settings, device=device, notify=notify)


def _train_config(config: RunConfig, *, progress: bool = True) -> RunResult:
    """``hsi-classify train``: trains ``config`` into a new run folder under ``config.out``."""
    from hsi.experiments.train import train_run

    return train_run(config, progress=progress)


def _resume(run_dir: str | Path, overrides: Mapping[str, Any], *, progress: bool = True) -> RunResult:
    """``hsi-classify train --resume``: continues ``run_dir`` with its saved settings; ``overrides`` may change
    only where the data is and what runs it (a ``config`` key is refused)."""
    from hsi.experiments.train import resume_run

    return resume_run(run_dir, progress=progress, overrides=dict(overrides))


def _repeat_config(config: RunConfig, seeds: Sequence[int], *, vary: str = "both", name: str | None = None,
                   engine: Mapping[str, Any] | None = None, progress: bool = True,
                   notify: Callable[[str], None] | None = None) -> RepeatResult:
    """``hsi-classify repeat``: one run per seed into a repeat folder under ``config.out``, then its report."""
    from hsi.experiments.repeat import repeat_runs

    built = _engine(engine, config.device, notify)
    return repeat_runs(config, seeds, vary=vary, name=name, engine=built, progress=progress, notify=notify)


def _compare_config(config: RunConfig, models: str | Sequence[str], *, seeds: Sequence[int] | None = None,
                    engine: Mapping[str, Any] | None = None, progress: bool = True,
                    notify: Callable[[str], None] | None = None) -> CompareResult:
    """``hsi-classify compare``: every model of ``models`` on the same split(s), into a compare folder."""
    from hsi.experiments.compare import compare_models

    built = _engine(engine, config.device, notify)
    return compare_models(config, models, seeds=seeds, progress=progress, engine=built)


def _predict_folder(checkpoint: str | Path, *, device: str = "auto", engine: Mapping[str, Any] | None = None,
                    notify: Callable[[str], None] | None = None,
                    **options: Any) -> tuple[Path, dict[str, Any] | None]:
    """``hsi-classify predict``: classifies a scene with a saved model into a new output folder.

    Args:
        checkpoint: a run folder, its ``model.json`` or a legacy ``model.pt``.
        **options: ``out``, and the fields of :class:`~hsi.experiments.predict.SceneToClassify` (``dataset``,
            ``cube`` ...) and :class:`~hsi.experiments.predict.PredictSettings` (``batch_size``, ``tile_size`` ...),
            as the command's flags name them.

    Returns:
        The output folder, and its metrics (fractions) where the scene had ground truth, else None.
    """
    from hsi.experiments.predict import PredictSettings, SceneToClassify, predict_run, predict_summary

    out = options.pop("out", "runs")
    settings_names = {f.name for f in dataclasses.fields(PredictSettings)}
    settings = PredictSettings(device=device, **{k: options.pop(k) for k in list(options) if k in settings_names})
    scene = SceneToClassify(**options)  # the rest: an option of neither fails here, as a wrong keyword did
    built = _engine(engine, device, notify)
    folder = predict_run(checkpoint, scene, out=out, settings=settings, engine=built)
    return folder, predict_summary(folder)["metrics"]
