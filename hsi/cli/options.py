"""The command line and the docs table of a run's options, made from their one declaration.

Each :class:`~hsi.config.RunConfig` field declares an option (:func:`hsi._core.options.option`);
this module turns the declarations into the arguments of ``train``, ``repeat`` and ``compare``
(:func:`add_option`, with the effective default in ``--help``: a recipe part's value per recipe)
and into docs/options.md (:func:`options_markdown`; ``python -m hsi.cli.options > docs/options.md``,
and a test fails when the file drifts). Nothing here imports torch: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from hsi._core.options import Option
from hsi.config import run_options
from hsi.data.corrupt import CORRUPTIONS
from hsi.data.padding import PAD_MODES
from hsi.data.scene import NAN_POLICIES
from hsi.data.splits import SPLITS
from hsi.features.controls import CONTROLS, NO_CONTROL
from hsi.training.recipe import OPTIMIZERS, RECIPES, SCHEDULES, SELECTIONS

__all__ = ["GROUPS", "WINDOWED_FORMATS", "add_option", "described", "effective_default", "file_formats", "help_text",
           "options_markdown", "registered"]

#: The ``--help`` groups of a run's options, in order; :func:`group_of` puts each option in one.
GROUPS = ("data", "features and split", "model and training", "training recipe (each part overrides the recipe's own)",
          "output")


#: Cube formats read window by window only (hsi.data.lazy.LAZY_EXTENSIONS, which imports torch; a test compares).
WINDOWED_FORMATS = ".h5/.hdf5 (HDF5), .tif/.tiff (GeoTIFF)"


def file_formats(role: str) -> str:
    """The extensions the reader takes for a ``cube`` or a ``gt`` (:data:`hsi.data.io.SUPPORTED_EXTENSIONS`)."""
    from hsi.data.io import SUPPORTED_EXTENSIONS

    return ", ".join(ext for ext, what in SUPPORTED_EXTENSIONS.items()
                     if role == "gt" or "ground truth only" not in what)


def described(registry: Any) -> str:
    """``name = description; ...`` of a registry's entries, for ``--help``."""
    return "; ".join(f"{entry.name} = {entry.description}" for entry in registry)


def registered() -> dict[str, tuple[Sequence[str] | None, str]]:
    """The options whose choices a registry above the config holds: ``{name: (choices or None, description)}``."""
    return {
        "nan_policy": (list(NAN_POLICIES), ", ".join(NAN_POLICIES)),
        "corrupt": (None, described(CORRUPTIONS)),
        "pad_mode": (PAD_MODES.names(), described(PAD_MODES)),
        "split": (SPLITS.names(), described(SPLITS)),
        "control": ((NO_CONTROL, *CONTROLS.names()), f"{described(CONTROLS)}"),
        "recipe": (RECIPES.names(), described(RECIPES)),
        "optimizer": (OPTIMIZERS, ", ".join(OPTIMIZERS)),
        "schedule": (tuple(SCHEDULES), ", ".join(SCHEDULES)),
        "select": (SELECTIONS, ", ".join(SELECTIONS)),
    }


def group_of(declared: Option) -> str:
    """The ``--help`` group of an option (one of :data:`GROUPS`), from its stage."""
    if declared.recipe_part or declared.name == "recipe":
        return GROUPS[3]
    return {"data": GROUPS[0], "features": GROUPS[1], "split": GROUPS[1], "output": GROUPS[4]}.get(
        declared.stage, GROUPS[2])


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and value >= 10_000:
        return f"{value:,}"
    return str(value)


def effective_default(declared: Option) -> str:
    """The value an option takes when not given, as ``--help`` shows it ('' where nothing is worth saying).

    A recipe part: its value in each recipe, the default recipe first (``the recipe's; steady: 6, paper: 0,
    robust: 8``).
    """
    if declared.recipe_part:
        default = run_options()["recipe"].default
        order = [default, *(name for name in RECIPES.names() if name != default)]
        values = ", ".join(f"{name}: {_show(getattr(RECIPES.get(name), declared.name))}" for name in order)
        return f"the recipe's; {values}" + (f"; {declared.default_text}" if declared.default_text else "")
    if declared.default is None or declared.default == [] or declared.kind is bool:
        return declared.default_text
    return _show(declared.default)


def _filled(declared: Option, *, windowed: bool) -> str:
    """The declared help with ``{choices}`` and ``{formats}`` filled in."""
    text = declared.help
    if "{choices}" in text:
        text = text.replace("{choices}", registered()[declared.name][1])
    if "{formats}" in text:
        text = text.replace("{formats}", file_formats(declared.name))
        if windowed and declared.name == "cube":
            text += f"; with --lazy on also {WINDOWED_FORMATS}"
    return text


def help_text(declared: Option, *, windowed: bool = False) -> str:
    """An option's ``--help`` line: its declared help and its effective default."""
    text, default = _filled(declared, windowed=windowed), effective_default(declared)
    return text + (f" (default: {default})" if default and "(default)" not in text else "")


def add_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, *, windowed: bool = False,
               **overrides: Any) -> None:
    """Adds the flag of option ``name`` to ``parser``: its type, choices and help from the declaration.

    Its argparse default is None (not given), so that a ``--config`` file's value stands unless the
    flag is given; ``overrides`` replace any keyword (``default=`` for a command with its own default).
    """
    declared = run_options()[name]
    kwargs: dict[str, Any] = {"default": None, "help": help_text(declared, windowed=windowed)}
    if declared.kind is bool:
        kwargs["action"] = (argparse.BooleanOptionalAction if declared.nullable
                            else "store_false" if declared.default else "store_true")
        kwargs["dest"] = name
    elif declared.kind is list:
        kwargs["action"] = "append"
    else:
        if declared.kind in (int, float):
            kwargs["type"] = declared.kind
        allowed = declared.choices or (registered().get(name) or (None, ""))[0]
        if allowed:
            kwargs["choices"] = tuple(allowed)
    if declared.metavar:
        kwargs["metavar"] = declared.metavar
    parser.add_argument(declared.flag, **{**kwargs, **overrides})


def _cell(text: str) -> str:
    """``text`` safe in a Markdown table cell: no column break, no HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def options_markdown() -> str:
    """docs/options.md: every option of a run, by ``--help`` group, from the declarations."""
    lines = ["# Options of a run", "",
             "Generated from the declarations in `hsi/config.py` (`RunConfig`) by "
             "`python -m hsi.cli.options > docs/options.md`; a test fails when this file drifts from them. "
             "`train`, `repeat` and `compare` take every option as a flag, a `--config` file as a key "
             "(`min_steps`), and Python callers as a keyword argument; each is checked the same way "
             "(`hsi.config.config_from_options`). A recipe part left out takes the recipe's value.", ""]
    declared = run_options()
    for group in GROUPS:
        lines += [f"## {group}", "", "| flag | key | type | default | allowed | stage | what |",
                  "|---|---|---|---|---|---|---|"]
        for o in (o for o in declared.values() if group_of(o) == group):
            allowed = (", ".join(o.choices or (registered().get(o.name) or (None, ""))[0] or ())
                       or (o.check.text if o.check is not None else ""))
            kind = ("list of str" if o.kind is list else o.kind.__name__) + (" or null" if o.nullable else "")
            default = str(o.default).lower() if o.kind is bool and not o.recipe_part else effective_default(o)
            cells = [f"`{o.flag}`", f"`{o.name}`", kind, default, allowed, o.stage, _filled(o, windowed=True)]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(options_markdown(), end="")
