"""hsi-classify: hyperspectral image classification with honest, reproducible evaluation.

The Python API (:mod:`hsi.api`, documented in docs/api.md) is what the ``hsi-classify`` commands
run: :func:`load_scene`, :func:`train` -> :class:`Run`, :func:`load_model` -> :class:`Model`,
:func:`repeat` -> :class:`Repeat`, :func:`compare` -> :class:`Compare`; every refusal
is an :class:`HSIError` whose text is the CLI's one line. Importing ``hsi`` is light:
the API (and torch, when a model is needed) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Compare", "HSIError", "Model", "Repeat", "Run", "__version__", "compare", "load_model", "load_scene",
           "repeat", "train"]

if TYPE_CHECKING:
    from hsi.api import Compare, HSIError, Model, Repeat, Run, compare, load_model, load_scene, repeat, train


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hsi import api

        return getattr(api, name)
    raise AttributeError(f"module 'hsi' has no attribute {name!r}")
