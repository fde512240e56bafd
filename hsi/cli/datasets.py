"""`hsi-classify datasets`: the built-in scenes, whether each is on disk, and where."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "datasets", help="list the built-in scenes and where their files are",
        description="List the built-in scenes (name, size, classes) and whether their files are on disk, "
        "in --data-dir, $HSI_DATA_DIR or the download cache.",
    )
    parser.add_argument("--data-dir", help="folder with <dataset>/<files>; default $HSI_DATA_DIR, then the cache")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hsi.experiments.datasets import datasets_table

    print(datasets_table(args.data_dir))
    return 0
