"""`hsi-classify inspect`: describe a scene's cube and classes."""

from __future__ import annotations

import argparse

from hsi.cli.train import add_data_arguments
from hsi.config import RunConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect", help="show a scene's shape, value range and classes",
        description="Load a built-in (--dataset) or custom (--cube/--gt) scene and describe it: cube shape "
        "and dtype, value range, bands and each class with its pixel count. Nothing is trained or written.",
    )
    add_data_arguments(parser)
    parser.set_defaults(func=run, check_inputs=check_inputs)


def _scene_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(dataset=args.dataset, cube=args.cube, gt=args.gt, cube_key=args.cube_key,
                     gt_key=args.gt_key, data_dir=args.data_dir,
                     download=args.download is not False, nan_policy=args.nan_policy or "error")


def check_inputs(args: argparse.Namespace) -> None:
    """The scene's name and files, checked before torch is imported."""
    from hsi.experiments.validate import check_input_files

    check_input_files(_scene_config(args))


def run(args: argparse.Namespace) -> int:
    from hsi.experiments.inspect import describe_scene
    from hsi.experiments.steps import load_config_scene

    print(describe_scene(load_config_scene(_scene_config(args))))
    return 0
