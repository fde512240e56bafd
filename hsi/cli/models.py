"""`hsi-classify models`: every registered model, optionally with its cost for an input size."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models", help="list the models (with --profile: parameters, MACs, memory)",
        description="List the registered models (the names train --model takes) with their kind; with --profile, the "
        "parameters, multiply-adds and activation memory per patch of each network.",
    )
    parser.add_argument("--profile", action="store_true",
                        help="parameters, multiply-adds and activation memory per patch")
    parser.add_argument("--patch-size", type=int, default=25, help="patch side for --profile (default 25)")
    parser.add_argument("--bands", type=int, default=30, help="input bands for --profile (default 30)")
    parser.add_argument("--classes", type=int, default=16, help="classes for --profile (default 16)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hsi.experiments.inspect import models_table

    print(models_table(profile=args.profile, patch_size=args.patch_size, bands=args.bands, classes=args.classes))
    return 0
