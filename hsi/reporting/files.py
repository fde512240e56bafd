"""Atomic saving of figures; the other writers are re-exported from :mod:`hsi._core.files`.

Every file goes through :func:`hsi._core.files.atomic_write` (temporary file in the same
folder, fsync, rename), so a crash or Ctrl-C never leaves a half-written file under its
final name and a failed write leaves the previous file intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hsi._core.errors import ConfigError
from hsi._core.files import (
    PathLike,
    atomic_save_json,
    atomic_save_npy,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    to_jsonable,
)

if TYPE_CHECKING:  # matplotlib is imported by whoever builds the figure, not by importing this module
    from matplotlib.figure import Figure

__all__ = [
    "atomic_save_figure",
    "atomic_save_json",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_text",
    "to_jsonable",
]


def atomic_save_figure(fig: Figure, path: PathLike, *, dpi: int = 150) -> Path:
    """Saves ``fig`` atomically, then closes it (do not reuse the figure afterwards).

    Args:
        fig: the figure, e.g. from :mod:`hsi.reporting.figures`.
        path: destination; its suffix picks the format (``.png``, ``.pdf``, ``.svg``, ...).
        dpi: resolution for raster formats; default=150.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: the suffix names no format matplotlib can write.
    """
    final = Path(path)
    fmt = final.suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    try:
        if fmt not in supported:
            raise ConfigError(
                f"figure path must end with an image suffix; got {final.name!r}. "
                f"Use one of {', '.join('.' + s for s in sorted(supported))}, e.g. 'map.png'."
            )
        with atomic_write(final) as fh:
            fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight")
    finally:
        _close_figure(fig)
    return final


def _close_figure(fig: Figure) -> None:
    """Releases ``fig``: through pyplot when pyplot manages it, else by clearing it."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt  # only reached for figures pyplot created

        plt.close(fig)
    else:
        fig.clear()
