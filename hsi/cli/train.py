"""`hsi-classify train`: train a model on a scene and write a run folder."""

from __future__ import annotations

import argparse
from typing import Any

from hsi import api
from hsi.cli.options import GROUPS, add_option, group_of
from hsi.cli.output import add_json_argument, finish
from hsi.config import RunConfig, config_from_options, run_options

#: The scene part of the usage line of `train`, `repeat` and `compare` (their options are listed below it).
SCENE_USAGE = "(--dataset NAME | --cube FILE --gt FILE)"
#: The options that name a scene and how it is read (also `inspect`'s).
SCENE_OPTIONS = ("dataset", "cube", "gt", "cube_key", "gt_key", "data_dir", "download", "nan_policy")


def add_nan_policy_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, **kwargs: Any) -> None:
    """--nan-policy, as declared (choices: :data:`hsi.data.scene.NAN_POLICIES`)."""
    add_option(parser, "nan_policy", **kwargs)


def add_data_arguments(parser: argparse.ArgumentParser, *, windowed: bool = False) -> None:
    """The options that name the scene (:data:`SCENE_OPTIONS`), in the ``data`` group; ``windowed``: the command
    also reads a cube window by window (`train --lazy`), in more formats."""
    group = parser.add_argument_group(GROUPS[0])
    for name in SCENE_OPTIONS:
        add_option(group, name, windowed=windowed)


def add_inference_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, default: str | None) -> None:
    """--inference, as declared (choices: :data:`hsi.config.Inference`)."""
    add_option(parser, "inference", default=default)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Every other option of a run, each from its declaration (:mod:`hsi.cli.options`), in its ``--help`` group;
    then --config, --quiet and --json."""
    existing = {group.title: group for group in parser._action_groups}
    groups = {title: existing.get(title) or parser.add_argument_group(title) for title in GROUPS}
    for name, declared in sorted(run_options().items(), key=lambda item: item[0] != "recipe"):  # recipe, then parts
        if name not in SCENE_OPTIONS:
            add_option(groups[group_of(declared)], name)
    output = groups[GROUPS[-1]]
    output.add_argument("--config", help="a config.json of an earlier run (or a JSON object of settings, keys as in "
                        "docs/options.md); flags override it")
    output.add_argument("--quiet", action="store_true", help="no progress bar or progress lines on stderr")
    add_json_argument(output)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """RunConfig defaults <- --config file <- explicit flags, each checked (:func:`hsi.config.config_from_options`)."""
    base = RunConfig.from_json_file(args.config) if getattr(args, "config", None) else None
    given = {name: getattr(args, name) for name in run_options() if getattr(args, name, None) is not None}
    return config_from_options(given, base=base)


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
    if getattr(args, "resume", None) is None:
        api._check_run_inputs(config_from_args(args))


def run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        given = {name: getattr(args, name) for name in run_options() if getattr(args, name, None) is not None}
        if args.config:
            given["config"] = args.config  # refused by the resume: a resumed run keeps its settings
        result = api._resume(args.resume, given, progress=not args.quiet)
    else:
        result = api._train_config(config_from_args(args), progress=not args.quiet)
    from hsi.reporting.terminal import run_summary

    m = result.metrics
    record = {"run_dir": str(result.run_dir), "overall_accuracy": round(m["overall_accuracy"], 4),
              "average_accuracy": round(m["average_accuracy"], 4), "kappa": round(m["kappa"], 4),
              **({"control_overall_accuracy": round(m["control"]["overall_accuracy"], 4)} if "control" in m else {})}
    split_method = str((m.get("split_info") or {}).get("method", args.split or "random"))
    lines, warnings = run_summary(result.run_dir, m, split_method=split_method)
    return finish(args, record, lines, warnings)
