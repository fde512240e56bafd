"""`hsi-classify train`: train a model on a scene and write a run folder."""

from __future__ import annotations

import argparse
from typing import Any

from hsi.cli.output import add_json_argument, finish
from hsi.config import RunConfig, choices
from hsi.data.corrupt import CORRUPTIONS
from hsi.data.padding import PAD_MODES
from hsi.data.scene import NAN_POLICIES
from hsi.data.splits import SPLITS
from hsi.features.controls import CONTROLS, NO_CONTROL


def described(registry: Any) -> str:
    """``name = description, ...`` of a registry's entries, for ``--help``."""
    return "; ".join(f"{entry.name} = {entry.description}" for entry in registry)


#: Cube formats read window by window only (hsi.data.lazy.LAZY_EXTENSIONS, which imports torch; a test compares).
WINDOWED_FORMATS = ".h5/.hdf5 (HDF5), .tif/.tiff (GeoTIFF)"


def file_formats(role: str) -> str:
    """The extensions the reader takes for a ``cube`` or a ``gt`` (:data:`hsi.data.io.SUPPORTED_EXTENSIONS`)."""
    from hsi.data.io import SUPPORTED_EXTENSIONS

    return ", ".join(ext for ext, what in SUPPORTED_EXTENSIONS.items()
                     if role == "gt" or "ground truth only" not in what)


def add_nan_policy_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, **kwargs: Any) -> None:
    """--nan-policy, with the choices of :data:`hsi.data.scene.NAN_POLICIES`."""
    parser.add_argument("--nan-policy", choices=tuple(NAN_POLICIES),
                        help="what to do with NaN/infinite cube values (default: error)", **kwargs)


#: The scene part of the usage line of `train`, `repeat` and `compare` (their options are listed below it).
SCENE_USAGE = "(--dataset NAME | --cube FILE --gt FILE)"


def add_data_arguments(parser: argparse.ArgumentParser, *, windowed: bool = False) -> None:
    """--dataset / --cube / --gt / keys / --data-dir / --no-download / --nan-policy; ``windowed``: the command
    also reads a cube window by window (`train --lazy`), in more formats."""
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", help="built-in scene name (see `hsi-classify datasets`)")
    group.add_argument("--cube", help=f"custom scene: the cube file (H x W x bands): {file_formats('cube')} (.mat "
                       "v7.3 included; ENVI: the .hdr or its data file)"
                       + (f"; with --lazy on also {WINDOWED_FORMATS}" if windowed else ""))
    group.add_argument("--gt",
                       help=f"custom scene: the ground-truth file (H x W, 0 = unlabelled): {file_formats('gt')}")
    group.add_argument("--cube-key", help="variable name of the cube inside a .mat file")
    group.add_argument("--gt-key", help="variable name of the ground truth inside a .mat file")
    group.add_argument("--data-dir", help="folder with <dataset>/<files>; default $HSI_DATA_DIR, then the cache")
    group.add_argument("--no-download", dest="download", action="store_false",
                       help="never download; fail if the files are not on disk")
    add_nan_policy_argument(group)


def add_inference_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, default: str | None) -> None:
    """--inference, with the choices of :data:`hsi.config.Inference`."""
    parser.add_argument("--inference", choices=choices("inference"), default=default,
                        help="full-scene map: dense (one fully convolutional pass; HybridSN at patch >= 9, equal "
                        "to patch by patch), patches, or auto (dense where the model has it; default)")


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """--recipe and one flag per recipe part (None = the recipe's value); names from :mod:`hsi.training.recipe`."""
    from hsi.training.recipe import OPTIMIZERS, RECIPES, SCHEDULES, SELECTIONS

    group = parser.add_argument_group("training recipe (each part overrides the recipe's own)")
    group.add_argument("--recipe", choices=RECIPES.names(), help=f"{described(RECIPES)} (default {RunConfig().recipe})")
    group.add_argument("--optimizer", choices=OPTIMIZERS, help="adam or adamw")
    group.add_argument("--lr-scale", type=float, help="peak learning rate = --lr times this")
    group.add_argument("--weight-decay", type=float, help="weight decay (AdamW: decoupled)")
    group.add_argument("--schedule", choices=tuple(SCHEDULES), help="learning-rate schedule per step")
    group.add_argument("--warmup", type=float, help="share of the steps spent warming up (cosine, onecycle)")
    group.add_argument("--label-smoothing", type=float, help="label smoothing of the training loss")
    group.add_argument("--augment", action=argparse.BooleanOptionalAction,
                       help="a random flip/90-degree rotation of every training patch")
    group.add_argument("--jitter", type=float,
                       help="spectral jitter: per-patch brightness scale N(1, J) and noise of std J/2 (0 = off)")
    group.add_argument("--context-mix", type=float,
                       help="share of training patches whose surroundings (all but the centre 3x3) come from "
                       "another patch of the batch (0 = off)")
    group.add_argument("--select", choices=SELECTIONS,
                       help="the epoch kept where there are validation pixels: lowest val_loss, or highest "
                       "val_accuracy (ties to the lower loss)")
    group.add_argument("--tta", action=argparse.BooleanOptionalAction,
                       help="test-time augmentation: mean softmax over the 8 flips/rotations (8x inference)")
    group.add_argument("--ensemble", type=int, help="networks from different seeds, probabilities averaged (Nx cost)")
    group.add_argument("--screen", type=float,
                       help="with validation pixels and --survivors below --ensemble, every network trains this "
                       "share of the epochs, then only the survivors best on validation train on (0 = off)")
    group.add_argument("--survivors", type=int,
                       help="networks trained to the end (0 = all): after --screen the best on validation, "
                       "otherwise the first (the others never start)")
    group.add_argument("--member-margin", type=float,
                       help="with validation pixels, keep the ensemble's networks whose validation accuracy is at "
                       "most this far below the best's (a fraction; 1 = keep all)")
    group.add_argument("--min-steps", type=int,
                       help="at least this many optimiser steps per epoch: few training pixels shrink the batch "
                       "(same patches per epoch; 0 = off)")
    group.add_argument("--smooth", type=int,
                       help="after classification, each pixel takes the majority class of this odd window "
                       "(0 = off; the disjoint guard band and the leakage audit widen by it)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Every `train` setting except the data ones; defaults come from RunConfig (None = keep default)."""
    d = RunConfig()
    features = parser.add_argument_group("features and split")
    features.add_argument("--pca-components", type=int, help=f"PCA bands kept (default {d.pca_components})")
    features.add_argument("--pca-fit", choices=choices("pca_fit"),
                          help="fit PCA on training pixels only, or on all pixels as the paper does (default train)")
    features.add_argument("--pca-sample-pixels", type=int,
                          help="fit PCA/MNF on a seeded random sample of at most this many of its pixels "
                          f"(default {d.pca_sample_pixels:,}; recorded in config.json and metrics.json)")
    features.add_argument("--lazy", choices=choices("lazy"),
                          help="read the cube window by window instead of loading it (ENVI, .npy, HDF5, GeoTIFF): "
                          "PCA on a pixel sample, only the training windows read, the map classified tile by tile; "
                          "auto = when its float32 copy exceeds a quarter of the free memory (default auto)")
    features.add_argument("--patch-size", type=int, help=f"odd patch side in pixels (default {d.patch_size})")
    features.add_argument("--corrupt", action="append", metavar="KIND:LEVEL",
                          help="add seeded noise to the cube before anything else (repeatable or a comma list; "
                          f"seed: the split's): {described(CORRUPTIONS)}")
    features.add_argument("--reduce", choices=choices("reduce"),
                          help="band reduction: pca, or mnf (minimum noise fraction: components ordered by "
                          "signal-to-noise, noise from neighbouring-pixel differences) (default pca)")
    features.add_argument("--denoise", choices=choices("denoise"),
                          help="denoiser fitted on the scene itself (no label; Noise2Void blind spots) and applied "
                          "before the reduction, saved in the checkpoint: none or dncnn (default none)")
    features.add_argument("--denoise-depth", type=int, help=f"DnCNN layers (default {d.denoise_depth}, the paper's)")
    features.add_argument("--denoise-width", type=int, help=f"DnCNN channels (default {d.denoise_width})")
    features.add_argument("--denoise-neighbours", type=int,
                          help="adjacent bands each side as DnCNN input channels (default 0: band by band)")
    features.add_argument("--denoise-steps", type=int,
                          help=f"DnCNN training steps of 16 crops (default {d.denoise_steps})")
    features.add_argument("--pad-mode", choices=PAD_MODES.names(),
                          help=f"border padding: {described(PAD_MODES)}")
    features.add_argument("--split", choices=SPLITS.names(),
                          help=f"how labelled pixels are split: {described(SPLITS)}")
    features.add_argument("--train-ratio", type=float,
                          help=f"share of each class used for training (default {d.train_ratio}, the paper's)")
    features.add_argument("--train-per-class", type=int, help="with --split per-class: training pixels per class")
    features.add_argument("--val-ratio", type=float,
                          help="share of the training pixels held out to keep the epoch of lowest validation loss "
                          "(default: the recipe's, paper 0 = last epoch, robust 0.2); with --split disjoint, "
                          "validation pixels per training pixel, "
                          "as whole test-side blocks (default 0.2)")
    features.add_argument("--block-size", type=int,
                          help="with --split disjoint: block side in pixels (default 1.5 x the patch size)")
    features.add_argument("--train-gt", help="with --split masks: ground truth of the training pixels (0 = not in it)")
    features.add_argument("--test-gt", help="with --split masks: ground truth of the test pixels (0 = not in it)")
    features.add_argument("--control", choices=(NO_CONTROL, *CONTROLS.names()),
                          help="also run the same protocol on a control cube without spectral information and "
                          f"report its accuracy: {described(CONTROLS)} (default {NO_CONTROL})")
    training = parser.add_argument_group("model and training")
    training.add_argument("--model", help=f"model name (default {d.model}; see `hsi-classify models`)")
    training.add_argument("--epochs", type=int, help=f"training epochs (default {d.epochs})")
    training.add_argument("--batch-size", type=int, help=f"patches per step (default {d.batch_size})")
    training.add_argument("--lr", type=float, help=f"Adam learning rate (default {d.lr})")
    add_recipe_arguments(parser)
    training.add_argument("--seed", type=int, help=f"seed of split, initialisation and batch order (default {d.seed})")
    training.add_argument("--split-seed", type=int,
                          help="seed of the train/test split (and PCA) alone; default: --seed")
    training.add_argument("--device", help="auto (CUDA if present), cpu, cuda or cuda:<index> (default auto)")
    training.add_argument("--deterministic", action="store_true", default=None,
                          help="deterministic algorithms: same seed, same metrics on the same machine (slower)")
    add_inference_argument(training, default=None)
    training.add_argument("--train-input", choices=choices("train_input"),
                          help="what a training step runs on: patches, crops of the scene (one dense pass per "
                               "crop, the same gradients per pixel; HybridSN, flips drawn per crop, no jitter or "
                               "context mix), or auto (crops where they are exact and compute at most half the "
                               "positions; default)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", help=f"folder for run folders (default {d.out}/)")
    output.add_argument("--config", help="a config.json of an earlier run (or a JSON of settings); flags override it")
    output.add_argument("--quiet", action="store_true", help="no progress bar or progress lines on stderr")
    add_json_argument(output)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """RunConfig defaults <- --config file <- explicit flags."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(RunConfig.from_json_file(args.config).to_dict())
    fields = RunConfig().to_dict()
    for name in fields:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return RunConfig.from_dict({**fields, **values})


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model on a scene, classify every pixel, write maps and metrics",
        usage=f"%(prog)s {SCENE_USAGE} [options]\n"
        "       %(prog)s --resume RUN_DIR [--device DEVICE] [--data-dir DATA_DIR]",
        description="Train a model (HybridSN by default) on a scene and write a run folder with "
        "config.json, metrics.json, report.md, model.json + model.safetensors, prediction.npy and maps.",
    )
    add_data_arguments(parser, windowed=True)
    add_run_arguments(parser)
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue an interrupted run in its own folder from its last finished epoch, with "
                        "its saved settings (only --device, --data-dir, --no-download, --cube, --gt may be given)")
    parser.set_defaults(func=run, check_inputs=check_run_inputs, download=None)


def check_run_inputs(args: argparse.Namespace) -> None:
    """The settings, dataset name and input files, checked before torch is imported (also for `repeat` and
    `compare`); a resumed run checks its saved settings itself."""
    from hsi.experiments.validate import check_run_inputs as check

    if getattr(args, "resume", None) is None:
        check(config_from_args(args))


def run(args: argparse.Namespace) -> int:
    from hsi.experiments.train import resume_run, train_run

    if args.resume is not None:
        given = {name: getattr(args, name) for name in RunConfig().to_dict() if getattr(args, name, None) is not None}
        if args.config:
            given["config"] = args.config  # refused by resume_run: a resumed run keeps its settings
        result = resume_run(args.resume, progress=not args.quiet, overrides=given)
    else:
        result = train_run(config_from_args(args), progress=not args.quiet)
    from hsi.reporting.terminal import run_summary

    m = result.metrics
    record = {"run_dir": str(result.run_dir), "overall_accuracy": round(m["overall_accuracy"], 4),
              "average_accuracy": round(m["average_accuracy"], 4), "kappa": round(m["kappa"], 4),
              **({"control_overall_accuracy": round(m["control"]["overall_accuracy"], 4)} if "control" in m else {})}
    split_method = str((m.get("split_info") or {}).get("method", args.split or "random"))
    lines, warnings = run_summary(result.run_dir, m, split_method=split_method)
    return finish(args, record, lines, warnings)
