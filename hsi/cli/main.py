"""`hsi-classify`: the root parser; registers each command and maps known errors to exit code 2."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from hsi import __version__
from hsi._core.errors import HSIError
from hsi.cli import datasets, env, inspect, models, predict, train

COMMANDS = (train, predict, inspect, datasets, models, env)


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="hsi-classify",
        description="Hyperspectral image classification: HybridSN and friends, with honest evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"hsi-classify {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns its exit code (2 for bad input, 130 when interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except HSIError as err:
        print(f"hsi-classify: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hsi-classify: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
