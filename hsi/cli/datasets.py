"""`hsi-classify datasets`: the built-in scenes, whether each of their files is on disk, and where."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "datasets", help="list the built-in scenes and where their files are",
        description="List the built-in scenes, one row each: dataset (the name train --dataset takes), scene, "
        "size (H x W x bands), classes, cube and ground truth (each present or missing: found or not in --data-dir, "
        "$HSI_DATA_DIR or the download cache), and folder (where the files are, or where a missing one would be "
        "downloaded).",
    )
    parser.add_argument("--data-dir", help="folder with <dataset>/<files>; default $HSI_DATA_DIR, then the cache")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hsi.experiments.datasets import datasets_table

    print(datasets_table(args.data_dir))
    return 0
