"""`hsi-classify env`: versions and devices, for bug reports."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "env", help="print package, Python, torch and CUDA versions and the GPU",
        description="Print the versions of hsi-classify, Python, torch, numpy and scikit-learn, the CUDA "
        "build and the GPU: the lines to paste into a bug report.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hsi.experiments.inspect import environment_text

    print(environment_text())
    return 0
