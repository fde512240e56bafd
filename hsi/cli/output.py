"""How a command ends: a short human summary on stdout, or one JSON line with ``--json``; warnings and errors
on stderr."""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

#: Longest line of an error on a terminal: a long message is broken after a sentence, not at the screen's edge.
ERROR_WIDTH = 100
_SENTENCE_END = re.compile(r"(?<=[.!?]) +(?=[A-Z])")  # not "e.g. --out": the next sentence starts upper case


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


def sentence_lines(text: str, width: int = ERROR_WIDTH) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken after a sentence where one fits, else after
    a "; ", else between words; a word longer than ``width`` (an address, a path) keeps a line of its own."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        clauses = sentence.split("; ") if len(sentence) > width else [sentence]
        for clause in [c + ";" for c in clauses[:-1]] + clauses[-1:]:
            pieces += textwrap.wrap(clause, width, break_long_words=False, break_on_hyphens=False) or [clause]
    lines: list[str] = []
    for piece in pieces:  # short sentences share a line
        if lines and len(lines[-1]) + 1 + len(piece) <= width:
            lines[-1] += " " + piece
        else:
            lines.append(piece)
    return lines


def error_text(message: str, *, wrap: bool) -> str:
    """``hsi-classify: error: <message>``: one line, or with ``wrap`` (a terminal) the message broken by
    :func:`sentence_lines`, the lines after the first indented; the first line says what went wrong."""
    prefix = "hsi-classify: error: "
    if not wrap:
        return prefix + message
    first, *rest = sentence_lines(prefix + message, ERROR_WIDTH - 2)  # room for the indent of the rest
    return "\n".join([first, *("  " + line for line in rest)])


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal: errors are wrapped for a person there, one line for a script or a log."""
    return sys.stderr.isatty()
