"""The run configuration: one flat, typed record of every setting of a run, each declared once.

Each field of :class:`RunConfig` is an option's one declaration (name, type, default, constraint,
help, stage; :func:`hsi._core.options.option`). From it come the command line of ``train``,
``repeat`` and ``compare`` (:mod:`hsi.cli.options`), the validation of every way in
(:func:`config_from_options`: flags, ``--config`` files, run folders, Python callers) and the
table in docs/options.md. Each run writes its settings, resolved, to ``config.json`` with a
:data:`SCHEMA_VERSION`; :func:`migrate` reads older folders' files, so any figure can be
reproduced from its run folder alone.

Choice-valued settings are declared once. Plain switches are ``Literal`` types here
(:data:`PcaFit`, :data:`Inference`; :func:`choices` reads them). Settings backed by an implementation are
registries beside it (an option's ``registry`` names it): ``split`` in :data:`hsi.data.splits.SPLITS`,
``pad_mode`` in :data:`hsi.data.padding.PAD_MODES`, ``control`` in :data:`hsi.features.controls.CONTROLS`,
``nan_policy`` in :data:`hsi.data.scene.NAN_POLICIES`, ``model`` in :data:`hsi.models.MODELS`, the
recipe and its parts in :mod:`hsi.training.recipe`; they are checked where they are registered.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hsi._core.errors import ConfigError
from hsi._core.options import Option, Range, Rule, declarations, option, unknown_option
from hsi._core.validation import is_odd_patch_size, is_smoothing_window

#: Which pixels the PCA is fitted on: the training side only, or every pixel (the paper's way).
PcaFit = Literal["train", "all"]
#: How the full scene is classified: one fully convolutional pass where the model has an exact
#: one (``auto`` picks it, else patch by patch), always ``dense`` (an error if it has none), or ``patches``.
Inference = Literal["auto", "dense", "patches"]
#: What a training step runs on: patch batches, or scene crops (one dense pass per crop, the loss at
#: its training pixels: the same gradients per pixel; hsi.training.crops; a dense-capable model only);
#: ``auto`` takes crops where they are exact and compute at most half the positions (hsi.training.crops.use_crops).
TrainInput = Literal["auto", "patches", "crops"]
#: The band reduction: principal components, or minimum noise fraction (components by signal-to-noise).
Reduce = Literal["pca", "mnf"]
#: A denoiser fitted on the scene itself (no label) and applied before the reduction.
Denoise = Literal["none", "dncnn"]
#: Whether ``train`` reads the cube window by window instead of loading it: ``auto`` when the cube
#: file is one the lazy readers handle and its float32 size exceeds a share of the free memory
#: (hsi.data.scene.lazy_decision), ``on`` always (such files only), ``off`` never.
Lazy = Literal["auto", "on", "off"]
#: Which pixels self-training may read (never their labels): every pixel that is neither a training nor a
#: validation pixel (the test pixels' spectra included), or only the pixels outside the labelled ground truth.
Unlabelled = Literal["transductive", "inductive"]

# A spatially disjoint estimate needs its epoch chosen on spatially disjoint pixels too,
# not fixed in advance or, worse, by looking at the test score.
DISJOINT_VAL_RATIO = 0.2

ODD_PATCH = "an odd integer >= 1 (a window centred on its pixel)"
def _odd_size(found: Any) -> str:
    return f"Use e.g. {max(1, int(found) | 1)}."


FRACTION = Range(0, 1, low_open=True, high_open=True, fix="Pass a fraction such as 0.1.")


@dataclass
class RunConfig:
    """Every setting of a ``train`` run; defaults follow the HybridSN paper (Roy et al. 2020).

    Each field is an option's one declaration (:func:`hsi._core.options.option`): its name, type and
    default here, with its stage, constraint and help; a recipe part (``off=``) defaults to None, the
    recipe's value, and ``off`` is the value that does nothing (the ``paper`` recipe's).
    """

    # data
    dataset: str | None = option(stage="data", help="built-in scene name (see `hsi-classify datasets`)")
    cube: str | None = option(stage="data", help="custom scene: the cube file (H x W x bands): {formats} (.mat v7.3 "
                              "included; ENVI: the .hdr or its data file)")
    gt: str | None = option(stage="data", help="custom scene: the ground-truth file (H x W, 0 = unlabelled): "
                            "{formats}")
    cube_key: str | None = option(stage="data", help="variable name of the cube inside a .mat file")
    gt_key: str | None = option(stage="data", help="variable name of the ground truth inside a .mat file")
    data_dir: str | None = option(stage="data", help="folder with <dataset>/<files>",
                                  default_text="$HSI_DATA_DIR, then the cache")
    download: bool = option(True, stage="data", flag="--no-download",
                            help="never download; fail if the files are not on disk")
    nan_policy: str = option("error", stage="data", registry="hsi.data.scene.NAN_POLICIES",
                             help="what to do with NaN/infinite cube values")
    corrupt: list[str] = option(  # KIND:LEVEL items (data/corrupt.py)
        stage="data", factory=list, metavar="KIND:LEVEL", registry="hsi.data.corrupt.CORRUPTIONS",
        whole_cube="--corrupt (adds noise to the whole cube)",
        help="add seeded noise to the cube before anything else (repeatable or a comma list; seed: the split's): "
        "{choices}")
    # features
    pca_components: int = option(30, stage="features", check=Range(1), help="PCA bands kept")
    pca_fit: PcaFit = option("train", stage="features",
                             help="fit PCA on training pixels only, or on all pixels as the paper does")
    pca_sample_pixels: int = option(  # PCA/MNF fitted on a seeded sample of at most this many fitting pixels
        200_000, stage="features", check=Range(1),
        help="fit PCA/MNF on a seeded random sample of at most this many of its pixels (recorded in config.json "
        "and metrics.json)")
    patch_size: int = option(25, stage="features", check=Rule(is_odd_patch_size, ODD_PATCH, _odd_size),
                             help="odd patch side in pixels")
    pad_mode: str = option("constant", stage="features", registry="hsi.data.padding.PAD_MODES",
                           help="border padding: {choices}")
    reduce: Reduce = option("pca", stage="features", whole_cube="--reduce mnf (noise estimated from the whole scene)",
                            help="band reduction: pca, or mnf (minimum noise fraction: components ordered by "
                            "signal-to-noise, noise from neighbouring-pixel differences)")
    denoise: Denoise = option("none", stage="features", whole_cube="--denoise dncnn (fitted on the whole scene)",
                              help="denoiser fitted on the scene itself (no label; Noise2Void blind spots) and "
                              "applied before the reduction, saved in the checkpoint: none or dncnn")
    denoise_depth: int = option(17, stage="features", check=Range(2), help="DnCNN layers (the paper's by default; "
                                "fewer on a CPU)")
    denoise_width: int = option(64, stage="features", check=Range(1), help="DnCNN channels (the paper's by default)")
    denoise_neighbours: int = option(0, stage="features", check=Range(0),
                                     help="adjacent bands each side as DnCNN input channels (0: band by band)")
    denoise_steps: int = option(500, stage="features", check=Range(1), help="DnCNN training steps of 16 crops")
    # split
    split: str = option("random", stage="split", registry="hsi.data.splits.SPLITS",
                        help="how labelled pixels are split: {choices}")
    train_ratio: float = option(0.3, stage="split", check=FRACTION,
                                help="share of each class used for training (the paper's by default)")
    val_ratio: float | None = option(
        stage="selection", off=0.0, check=Range(0, 1, high_open=True, fix="Pass a fraction such as 0.1."),
        default_text=f"with --split disjoint {DISJOINT_VAL_RATIO}",
        help="share of the training pixels held out to keep the epoch --select ranks best (0 = the last epoch); "
        "with --split disjoint, validation pixels per training pixel, as whole test-side blocks")
    train_per_class: int | None = option(stage="split", check=Range(1),
                                         help="with --split per-class: training pixels per class")
    block_size: int | None = option(stage="split", check=Range(1, note="pixels", fix="Leave it out for the default."),
                                    default_text="1.5 x the patch size",
                                    help="with --split disjoint: block side in pixels")
    train_gt: str | None = option(stage="split",
                                  help="with --split masks: ground truth of the training pixels (0 = not in it)")
    test_gt: str | None = option(stage="split",
                                 help="with --split masks: ground truth of the test pixels (0 = not in it)")
    control: str = option("none", stage="features", registry="hsi.features.controls.CONTROLS",
                          whole_cube="--control (a control cube of the whole scene)",
                          help="also run the same protocol on a control cube without spectral information and "
                          "report its accuracy: {choices}")
    # model and training
    model: str = option("hybridsn", stage="training", registry="hsi.models.MODELS",
                        help="model name (see `hsi-classify models`)")
    epochs: int = option(100, stage="training", check=Range(1), help="training epochs")
    batch_size: int = option(256, stage="training", check=Range(1), help="patches per step")
    lr: float = option(1e-3, stage="training", check=Range(0, low_open=True), help="Adam learning rate")
    # training recipe (hsi.training.recipe.RECIPES); each part None = the recipe's value
    recipe: str = option("steady", stage="training", registry="hsi.training.recipe.RECIPES", help="{choices}",
                         before="paper")  # runs made before recipes existed trained the paper's way
    optimizer: str | None = option(stage="training", off="adam", registry="hsi.training.recipe.OPTIMIZERS",
                                   help="adam or adamw")
    lr_scale: float | None = option(stage="training", off=1.0, check=Range(1e-3, 1e3),
                                    help="peak learning rate = --lr times this")
    weight_decay: float | None = option(stage="training", off=0.0, check=Range(0, 10),
                                        help="weight decay (AdamW: decoupled)")
    schedule: str | None = option(stage="training", off="constant", registry="hsi.training.recipe.SCHEDULES",
                                  help="learning-rate schedule per step")
    warmup: float | None = option(stage="training", off=0.0, check=Range(0, 0.99),
                                  help="share of the steps spent warming up (cosine, onecycle)")
    label_smoothing: float | None = option(stage="training", off=0.0, check=Range(0, 0.99),
                                           help="label smoothing of the training loss")
    augment: bool | None = option(stage="training", off=False,
                                  help="a random flip/90-degree rotation of every training patch")
    jitter: float | None = option(stage="training", off=0.0, check=Range(0, 1),
                                  help="spectral jitter: per-patch brightness scale N(1, J) and noise of std J/2 "
                                  "(0 = off)")
    context_mix: float | None = option(stage="training", off=0.0, check=Range(0, 1),
                                       help="share of training patches whose surroundings (all but the centre 3x3) "
                                       "come from another patch of the batch (0 = off)")
    select: str | None = option(stage="selection", off="val_loss", registry="hsi.training.recipe.SELECTIONS",
                                help="the epoch kept where there are validation pixels: lowest val_loss, or "
                                "highest val_accuracy (ties to the lower loss)")
    patience: int | None = option(stage="selection", off=0, check=Range(0, 10_000, note="0 = off"),
                                  help="with validation pixels, a network stops once this many epochs pass "
                                  "without a better validation score (by --select); it keeps its best epoch "
                                  "(0 = train every epoch)")
    tta: bool | None = option(stage="post-processing", off=False,
                              help="test-time augmentation: mean softmax over the 8 flips/rotations (8x inference)")
    ensemble: int | None = option(stage="ensemble", off=1,
                                  check=Range(1, note="networks averaged", fix="Use 1 for none."),
                                  help="networks from different seeds, probabilities averaged (Nx cost)")
    screen: float | None = option(stage="ensemble", off=0.0, check=Range(0, 0.99),
                                  help="with validation pixels and --survivors below --ensemble, every network "
                                  "trains this share of the epochs, then only the survivors best on validation "
                                  "train on (0 = off)")
    survivors: int | None = option(stage="ensemble", off=0, check=Range(0),
                                   help="networks trained to the end (0 = all): after --screen the best on "
                                   "validation, otherwise the first (the others never start)")
    member_margin: float | None = option(stage="ensemble", off=1.0, check=Range(0, 1),
                                         help="with validation pixels, keep the ensemble's networks whose validation "
                                         "accuracy is at most this far below the best's (a fraction; 1 = keep all)")
    cpu_bf16: bool | None = option(stage="training", off=False,
                                   help="train in bfloat16 mixed precision on a CPU that has it natively (AMX or "
                                   "AVX512-BF16; elsewhere float32). CUDA trains in bfloat16 whatever this says; "
                                   "prediction on a CPU stays float32")
    self_training: int | None = option(stage="ensemble", off=0, estimator=True, check=Range(0, 10, note="0 = off"),
                                       whole_cube="--self-training (labels the scene's unlabelled pixels)",
                                       help="rounds of self-training on the scene's unlabelled pixels (--unlabelled): "
                                       "each round the model labels them, keeps per class a sample of its confident "
                                       "answers as pseudo-labels and trains on with them (--pseudo-epochs); a round "
                                       "whose model gets a class's training pixels mostly wrong is discarded")
    pseudo_threshold: float | None = option(stage="ensemble", off=0.9, estimator=True, check=Range(0.5, 1),
                                            help="with --self-training, the least probability a pseudo-label needs")
    pseudo_ratio: float | None = option(stage="ensemble", off=3.0, estimator=True, check=Range(0.1, 100),
                                        help="with --self-training, pseudo-labels per class added each round, in mean "
                                        "training pixels per class (round r holds up to r times as many)")
    pseudo_epochs: float | None = option(
        stage="ensemble", off=0.3, before=0.0, check=Range(0, 1, note="0 = new networks"),
        help="with --self-training, each round trains the model's networks on from their weights for this share of "
        "--epochs (0: new networks from new seeds, every epoch; a scikit-learn model is fitted anew either way)")
    unlabelled: Unlabelled = option(
        "transductive", stage="training",
        help="the pixels --self-training may read, never their labels: transductive (every pixel that is neither "
        "a training nor a validation pixel, test pixels included) or inductive (only pixels outside the labelled "
        "ground truth); either way none whose patch holds a validation pixel")
    min_steps: int | None = option(stage="training", off=0, check=Range(0, 10_000, note="0 = off"),
                                   help="at least this many optimiser steps per epoch: few training pixels shrink "
                                   "the batch (same patches per epoch; 0 = off)")
    smooth: int | None = option(stage="post-processing", off=0, estimator=True,
                                check=Rule(is_smoothing_window, "0 (off) or an odd window side from 3 to 31"),
                                help="after classification, each pixel takes the majority class of this odd window "
                                "(0 = off; the disjoint guard band and the leakage audit widen by it)")
    seed: int = option(0, stage="training", check=Range(0),
                       help="seed of split, initialisation and batch order")
    split_seed: int | None = option(stage="split", check=Range(0), default_text="--seed",  # None = use ``seed``
                                    help="seed of the train/test split (and PCA) alone")
    device: str = option("auto", stage="training", help="auto (CUDA if present), cpu, cuda or cuda:<index>")
    deterministic: bool = option(False, stage="training",
                                 help="deterministic algorithms: same seed, same metrics on the same machine "
                                 "(slower)")
    inference: Inference = option("auto", stage="inference",
                                  help="full-scene map: dense (one fully convolutional pass; HybridSN at patch >= 9, "
                                  "equal to patch by patch), patches, or auto (dense where the model has it)")
    train_input: TrainInput = option(
        "auto", stage="training", before="patches",  # runs made before crops existed trained on patches
        help="what a training step runs on: patches, crops of the scene (one dense pass per crop, the same gradients "
        "per pixel; HybridSN, flips drawn per crop, no jitter or context mix), or auto (crops where they are exact "
        "and compute at most half the positions)")
    lazy: Lazy = option(  # written back resolved ("on"/"off") into config.json
        "auto", stage="data",
        help="read the cube window by window instead of loading it (ENVI, .npy, HDF5, GeoTIFF): PCA on a pixel "
        "sample, only the training windows read, the map classified tile by tile; auto = when its float32 copy "
        "exceeds a quarter of the free memory")
    # output
    out: str = option("runs", stage="output", help="folder for run folders")

    @property
    def resolved_split_seed(self) -> int:
        """The seed of the train/test split (and of the PCA fitted on it): ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def resolved_val_ratio(self) -> float:
        """Validation pixels per training pixel: ``val_ratio``, else 0.2 for a disjoint split and 0 otherwise."""
        if self.val_ratio is not None:
            return self.val_ratio
        return DISJOINT_VAL_RATIO if self.split == "disjoint" else 0.0

    def check(self) -> None:
        """Checks every setting against its declaration: type, ``Literal`` choices and constraint.

        Raises:
            ConfigError: one line naming the flag, what it must be and the value found.
        """
        for name, declared in run_options().items():
            declared.validate(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """Returns the settings as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Builds a config from option names, checked (:func:`config_from_options`)."""
        return config_from_options(values)

    @classmethod
    def from_json_file(cls, path: str | Path) -> RunConfig:
        """Reads a ``config.json`` written by a run (any :data:`SCHEMA_VERSION`, through :func:`migrate`) or a
        JSON object of settings; a bad value is told as ``PATH: --flag must be ...``."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"could not read config {path}: {err}") from None
        try:
            return config_from_options(migrate(data)["run"])
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None


@functools.cache
def run_options() -> dict[str, Option]:
    """Every option of a run (the fields of :class:`RunConfig`), by name, in declaration order."""
    return declarations(RunConfig)  # resolving the string annotations is slow (~10 ms): once per process


def choices(setting: str) -> tuple[str, ...]:
    """The values a ``Literal``-typed :class:`RunConfig` setting may take (empty for other settings)."""
    declared = run_options().get(setting)
    return declared.choices if declared is not None else ()


def config_from_options(options: Mapping[str, Any], *, base: RunConfig | None = None) -> RunConfig:
    """A :class:`RunConfig` from option names (the fields' names), each checked against its declaration.

    The one way in for the CLI's flags, ``--config`` files, run folders and Python callers.

    Args:
        options: ``{name: value}``; a name left out keeps ``base``'s value.
        base: the settings the options change; default :class:`RunConfig`'s defaults.

    Raises:
        ConfigError: an unknown name (with the close match), a wrong type or a value out of range; one line
            naming the option's flag, e.g. ``--min-steps must be an integer; got '6' (str).``
    """
    declared = run_options()
    values = (base if base is not None else RunConfig()).to_dict()
    for name, value in options.items():
        if name not in declared:
            raise unknown_option(name, declared)
        values[name] = declared[name].validate(value)
    return RunConfig(**values)


#: The version of config.json's layout: 1 = no ``schema_version`` (before options were declared once).
SCHEMA_VERSION = 2


def config_record(run: Mapping[str, Any], **sections: Any) -> dict[str, Any]:
    """config.json's content: the schema version, the run's settings (``run``) and other ``sections``."""
    return {"schema_version": SCHEMA_VERSION, "run": dict(run), **sections}


def migrate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A config.json's content upgraded to :data:`SCHEMA_VERSION`, with every option in its ``run`` section.

    A run's record (a ``run`` section: config.json, and the same settings kept in ``repeat.json`` and
    ``resume.pt``) holds every option that existed when it was written, so an option missing from it was
    added since and did not exist in that run: it takes what such runs did (:attr:`Option.absent`: a
    recipe part its ``off`` value, ``recipe`` ``paper``, ``train_input`` ``patches``, any other its
    default). A JSON object of settings written by hand (no ``run`` section, as ``--config`` takes) names
    only what it sets: the rest takes the defaults (a recipe part: the recipe's).
    Version 1 -> 2 renamed nothing: the version is recorded from 2 on.

    Raises:
        ConfigError: not a JSON object, or a schema version this version of the package does not know.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a config must be a JSON object of settings; got {type(raw).__name__}.")
    declared = run_options()
    if not isinstance(raw.get("run"), Mapping):  # settings written by hand
        settings = {k: v for k, v in raw.items() if k != "schema_version"}
        return config_record({**_fresh({n: o.default for n, o in declared.items()}), **settings})
    version = raw.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ConfigError(f"config.json has schema_version {version!r}; this version of hsi-classify reads 1 to "
                          f"{SCHEMA_VERSION}. Use the version of hsi-classify that wrote it, or a newer one.")
    run = dict(raw["run"])
    added = {name: o.absent for name, o in declared.items() if name not in run}
    return {**raw, "schema_version": SCHEMA_VERSION, "run": {**_fresh(added), **run}}


def _fresh(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with each list copied (a declaration's default list is shared)."""
    return {k: list(v) if isinstance(v, list) else v for k, v in values.items()}
