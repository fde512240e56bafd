"""How a command ends: a short human summary on stdout, or one JSON line with ``--json``; warnings on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def add_json_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--json: one machine-readable JSON line on stdout instead of the summary (for scripts)."""
    parser.add_argument("--json", action="store_true",
                        help="print one machine-readable JSON line (fractions) instead of the summary")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--json and --quiet, for commands without the run options' output group."""
    group = parser.add_argument_group("output")
    add_json_argument(group)
    group.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def finish(args: argparse.Namespace, record: dict[str, Any], lines: Sequence[str], warnings: Sequence[str]) -> int:
    """Prints the end of a command: ``record`` as JSON with ``--json``, else ``lines``; each warning on stderr."""
    if getattr(args, "json", False):
        print(json.dumps(record))
    else:
        print("\n".join(lines))
    for warning in warnings:
        print(f"hsi-classify: warning: {warning}", file=sys.stderr)
    return 0
