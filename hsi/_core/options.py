"""Options declared once: a dataclass field carries its name, type and default, and :func:`option` adds the rest.

``@dataclass class Settings: epochs: int = option(100, stage="training", help="...", check=Range(1))``
declares ``--epochs``; :func:`declarations` reads every such field back as an :class:`Option`
(name, type, nullability and ``Literal`` choices from the annotation), from which the command
line, the validation of every way in (:meth:`Option.validate`) and the docs are made.
Standard library only: the config layer and the CLI's ``--help`` read it without numpy or torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from hsi._core.errors import ConfigError

__all__ = ["STAGES", "Option", "Range", "Rule", "declarations", "flag_of", "option", "unknown_option"]

#: The stages of a run an option belongs to, in the order they act.
STAGES = ("data", "features", "split", "training", "selection", "ensemble", "post-processing", "inference",
          "output")


@dataclass(frozen=True)
class Range:
    """A number from ``low`` to ``high`` (either None: unbounded), each end closed unless ``*_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""  # e.g. "0 = off", shown in brackets after the range
    fix: str = ""  # how to fix a value outside it, appended to the message

    def __call__(self, value: Any) -> bool:
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return bool(low_ok and high_ok)

    @property
    def text(self) -> str:
        """``between 0 and 1``, ``>= 1``, ``> 0``, ``in (0, 1)``, with the note."""
        if self.low is not None and self.high is not None:
            if self.low_open or self.high_open:
                text = f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
            else:
                text = f"between {self.low:g} and {self.high:g}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Rule:
    """A constraint no range says: ``test(value)`` true, described by ``text`` ("an odd integer >= 1")."""

    test: Callable[[Any], bool]
    text: str
    fix: str | Callable[[Any], str] = ""  # or made from the value found ("Use e.g. 5.")

    def __call__(self, value: Any) -> bool:
        return bool(self.test(value))


@dataclass(frozen=True)
class _Declared:
    """What :func:`option` adds to a field (its metadata); the field gives the rest."""

    stage: str
    help: str
    check: Range | Rule | None
    off: Any
    default_text: str
    flag: str
    metavar: str | None
    whole_cube: str
    registry: str
    before: Any
    estimator: bool


def option(default: Any = None, *, stage: str, help: str, check: Range | Rule | None = None,
           factory: Callable[[], Any] | None = None, off: Any = None, default_text: str = "", flag: str = "",
           metavar: str | None = None, whole_cube: str = "", registry: str = "", before: Any = None,
           estimator: bool = False) -> Any:
    """A dataclass field declaring an option (the field's name, annotation and default are its own).

    Args:
        default: the value when the option is not given (None: the recipe's, or ``default_text``).
        stage: the stage of a run that reads it (:data:`STAGES`).
        help: one sentence for ``--help`` and the docs; ``{choices}`` is replaced by the registered choices.
        check: the range or rule a value must meet (None and the type aside).
        factory: a default made per instance (a list), instead of ``default``.
        off: a recipe part's value that does nothing (the ``paper`` recipe's); marks the option a recipe part.
        default_text: what a None default means, for ``--help`` (e.g. "--seed").
        flag: the command-line flag when not ``--name`` (``--no-download``).
        metavar: the placeholder of its value in ``--help``.
        whole_cube: why it needs the whole cube in memory (refused for a cube read window by window).
        registry: where its choices are registered, when a layer above the config holds them.
        before: what a run did before the option existed, where that is not ``off`` (a recipe part) or the
            default (e.g. ``recipe``: such runs trained the ``paper`` way); :func:`hsi.config.migrate` fills it in.
        estimator: a recipe part that also acts on a scikit-learn estimator (no epochs, batches or networks).
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
    meta = {"option": _Declared(stage, help, check, off, default_text, flag, metavar, whole_cube, registry, before,
                                estimator)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_of(name: str) -> str:
    """``min_steps`` -> ``--min-steps``."""
    return "--" + name.replace("_", "-")


_KIND_TEXT = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
              list: "a list of strings"}


@dataclass(frozen=True)
class Option:
    """One option: name, type (``kind``; ``nullable``: None allowed), default, constraint, help and stage."""

    name: str
    kind: type
    nullable: bool
    default: Any
    stage: str
    help: str
    check: Range | Rule | None = None
    choices: tuple[str, ...] = ()  # a Literal's values
    off: Any = None
    default_text: str = ""
    metavar: str | None = None
    whole_cube: str = ""
    registry: str = ""
    flag: str = ""
    before: Any = None
    estimator: bool = False  # a recipe part that also acts on a scikit-learn estimator

    @property
    def recipe_part(self) -> bool:
        """Whether a training recipe sets it (the option overrides the recipe's value)."""
        return self.off is not None

    @property
    def absent(self) -> Any:
        """What a run recorded before this option existed did: ``before``, else ``off``, else the default."""
        if self.before is not None:
            return self.before
        return self.off if self.recipe_part else self.default

    def validate(self, value: Any) -> Any:
        """``value`` checked against the type, choices and constraint; an int given for a float becomes a float.

        Raises:
            ConfigError: one line naming the flag, the expected type or range, and the value found.
        """
        if value is None and self.nullable:
            return None
        value = self._typed(value)
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.flag} must be one of {', '.join(self.choices)}; got {value!r}.")
        if self.check is not None and not self.check(value):
            fix = self.check.fix(value) if callable(self.check.fix) else self.check.fix
            fix = f" {fix}" if fix else ""
            raise ConfigError(f"{self.flag} must be {self.check.text}; got {value!r}.{fix}")
        return value

    def _typed(self, value: Any) -> Any:
        kind = self.kind
        fits = (not isinstance(value, bool) and isinstance(value, numbers.Integral) if kind is int
                else not isinstance(value, bool) and isinstance(value, numbers.Real) if kind is float
                else isinstance(value, list | tuple) and all(isinstance(v, str) for v in value) if kind is list
                else isinstance(value, kind))
        if not fits:
            raise ConfigError(f"{self.flag} must be {_KIND_TEXT[kind]}; got {value!r} ({type(value).__name__}).")
        return list(value) if kind is list else kind(value)


def _kind(hint: Any) -> tuple[type, bool, tuple[str, ...]]:
    """``int | None`` -> ``(int, True, ())``; ``Literal["a", "b"]`` -> ``(str, False, ("a", "b"))``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        kind, _, choices = _kind(kinds[0])
        return kind, True, choices
    if typing.get_origin(hint) is Literal:
        return str, False, tuple(args)
    if typing.get_origin(hint) is list:
        return list, False, ()
    return hint, False, ()


def declarations(cls: type) -> dict[str, Option]:
    """Every field of dataclass ``cls`` declared with :func:`option`, by name, in field order."""
    hints = typing.get_type_hints(cls)
    found = {}
    for field in dataclasses.fields(cls):
        declared = field.metadata.get("option")
        if declared is None:
            continue
        kind, nullable, choices = _kind(hints[field.name])
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        found[field.name] = Option(
            field.name, kind, nullable, default, declared.stage, declared.help, declared.check, choices,
            declared.off, declared.default_text, declared.metavar, declared.whole_cube, declared.registry,
            declared.flag or flag_of(field.name), declared.before, declared.estimator)
    return found


def unknown_option(name: str, known: Iterable[str]) -> ConfigError:
    """The error for an option ``name`` that is not one of ``known``, with the close match."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]} ({flag_of(close[0])})?" if close else ""
    return ConfigError(f"unknown option {name} ({flag_of(str(name))}){hint} The options are listed in "
                       "docs/options.md.")
