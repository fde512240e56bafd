"""Every command's --help describes it and lists -v/--verbose, which works after the command too."""

from __future__ import annotations

import pytest

from hsi.cli.main import build_parser


def _commands() -> dict[str, object]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return dict(sub.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_a_description_and_verbose(name: str) -> None:
    sub = _commands()[name]
    assert sub.description  # type: ignore[attr-defined]
    assert "--verbose" in sub.format_help()  # type: ignore[attr-defined]


def test_verbose_is_accepted_before_and_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["datasets", "-v"]).verbose is True
    assert parser.parse_args(["-v", "datasets"]).verbose is True
    assert parser.parse_args(["datasets"]).verbose is False
