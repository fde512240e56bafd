"""`hsi-classify`: the root parser; registers each command and maps known errors to exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import re
import signal
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import hsi
from hsi import __version__
from hsi._core.errors import HSIError
from hsi._core.host_memory import keep_freed_memory
from hsi.cli import compare, datasets, env, inspect, models, predict, repeat, train
from hsi.cli.output import error_text, stderr_is_terminal

COMMANDS = (train, predict, compare, repeat, inspect, datasets, models, env)
#: Commands that train or classify: the process-wide numeric settings are made for them.
COMPUTING_COMMANDS = frozenset({"train", "predict", "compare", "repeat"})


class CompactHelpFormatter(argparse.HelpFormatter):
    """``--help`` in fewer lines: a number's placeholder is N (int) or X (float), not the flag in capitals, and
    the help text starts in column 26, so that most flags keep it on their own line."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 26,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width)

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return {int: "N", float: "X"}.get(action.type, action.dest.upper())  # type: ignore[call-overload]

    def _split_lines(self, text: str, width: int) -> list[str]:  # never "--no-" at a line's end: "download" below
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(" ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent,
                             break_on_hyphens=False)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what was wrong, the close match where there is one,
    and where the options are listed (the usage block only with ``--help``); help in the compact format."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", CompactHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"hsi-classify: error: {_suggest(self, message)}; see '{self.prog} --help'.", file=sys.stderr)
        raise SystemExit(2)


def _suggest(parser: argparse.ArgumentParser, message: str) -> str:
    """``message`` with "did you mean ...?" for a misspelt flag or choice."""
    unknown = re.match(r"unrecognized arguments: (.+)", message)
    if unknown:
        flags = [f for action in parser._actions for f in action.option_strings]

        def hint(arg: str) -> str:
            close = difflib.get_close_matches(arg.split("=")[0], flags, 1) if arg.startswith("-") else []
            return f"{arg} (did you mean {close[0]}?)" if close else arg

        return "unrecognized arguments: " + " ".join(hint(arg) for arg in unknown.group(1).split())
    choice = re.match(r"(argument .+?): invalid choice: '(.+?)' \(choose from (.+)\)", message)
    if choice:
        options = [c.strip(" '") for c in choice.group(3).split(",")]
        close = difflib.get_close_matches(choice.group(2), options, 1)
        suggestion = f"; did you mean {close[0]!r}?" if close else ""
        return f"{choice.group(1)}: {choice.group(2)!r} is not one of {', '.join(options)}{suggestion}"
    return message


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every command registered."""
    parser = OneLineParser(
        prog="hsi-classify",
        description="Hyperspectral image classification: HybridSN and friends, with honest evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"hsi-classify {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    parser.set_defaults(commands=subparsers.choices)
    for sub in subparsers.choices.values():  # -v also after the command; SUPPRESS keeps the root's value
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log progress messages")
    return parser


def _one_line_warnings(previous: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints the package's own warnings as one line.

    ``hsi-classify: warning: ...`` on stderr, without the file, line and source text the
    default adds; warnings from other packages go to ``previous`` unchanged.
    """
    package = Path(hsi.__file__).resolve().parent

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if Path(filename).resolve().is_relative_to(package):
            print(f"hsi-classify: warning: {message}", file=sys.stderr if file is None else file)
        else:
            previous(message, category, filename, lineno, file, line)

    return show


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``), raised like Ctrl-C so a run in progress is marked interrupted before exiting."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turns SIGTERM into :class:`Terminated` while a command runs (signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _numeric_settings(command: str) -> None:
    """The process-wide numeric settings (docs/performance.md); those of torch for the computing commands."""
    keep_freed_memory()  # reuse freed tensor memory instead of refaulting it
    if command in COMPUTING_COMMANDS:
        from hsi.training.device import flush_denormals

        flush_denormals()  # process-wide and without a way back, so made here, once


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns its exit code (2 for bad input, 130 when interrupted, 143 when killed)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # told by the command's own parser: it knows the flags to suggest
        (args.commands.get(args.command) or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 1
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    show_progress = args.command in COMPUTING_COMMANDS and not getattr(args, "quiet", False)
    # One stderr line per long step (loading, PCA, full-scene pass, figures) unless --quiet.
    logging.getLogger("hsi.progress").setLevel(logging.INFO if show_progress else logging.NOTSET)
    try:
        with warnings.catch_warnings(), _sigterm_as_interrupt():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            if getattr(args, "check_inputs", None) is not None:
                args.check_inputs(args)  # before torch is imported: a mistyped name or path is told at once
            _numeric_settings(args.command)
            return int(args.func(args) or 0)
    except HSIError as err:
        print(error_text(str(err), wrap=stderr_is_terminal()), file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print(f"hsi-classify: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130  # the shell's codes for death by SIGTERM / SIGINT


if __name__ == "__main__":
    raise SystemExit(main())
