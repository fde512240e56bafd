"""Border padding of a cube, so every pixel, border pixels included, has a full patch.

Each pad mode is declared once here, in :data:`PAD_MODES`; ``--pad-mode``'s choices, the
config's validation and the messages all come from this registry. A new mode is one
:func:`register_pad_mode` line (and its test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hsi._core.registry import Registry

__all__ = ["PAD_MODES", "PadMode", "pad_cube", "register_pad_mode"]


@dataclass(frozen=True)
class PadMode:
    """One way to fill the border: ``numpy_mode`` is the :func:`numpy.pad` mode that does it."""

    numpy_mode: str
    description: str


PAD_MODES: Registry[PadMode] = Registry[PadMode]("pad mode (--pad-mode)")


def register_pad_mode(name: str, *, numpy_mode: str, description: str) -> None:
    """Declares a pad mode ``name`` that pads as ``numpy.pad(..., mode=numpy_mode)`` does."""
    PAD_MODES.register(name, PadMode(numpy_mode, description), description)


register_pad_mode("constant", numpy_mode="constant", description="zeros, as the HybridSN paper (default)")
register_pad_mode("reflect", numpy_mode="reflect", description="mirrored at the border, edge pixel not repeated")


def pad_cube(cube: np.ndarray, radius: int, mode: str) -> np.ndarray:
    """Pads the two spatial axes of a cube by ``radius`` pixels on each side.

    Args:
        cube: shape (H, W, C).
        radius: pixels added on each side (``patch_size // 2``).
        mode: a name registered in :data:`PAD_MODES`.

    Returns:
        shape (H + 2 radius, W + 2 radius, C), same dtype.

    Raises:
        UnknownNameError: ``mode`` is not registered (the message lists the modes).
    """
    numpy_mode = PAD_MODES.get(mode).numpy_mode
    return np.pad(cube, ((radius, radius), (radius, radius), (0, 0)), mode=numpy_mode)  # type: ignore[call-overload]
