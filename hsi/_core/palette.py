"""The one class palette: scene maps, legends and multi-series charts all colour from here."""

from __future__ import annotations

import colorsys

__all__ = ["PALETTE", "default_palette"]

#: 20 distinct colours (Sasha Trubetskoy's "20 simple, distinct colours"); class k gets PALETTE[k].
PALETTE: tuple[str, ...] = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
    "#808000", "#ffd8b1", "#000075", "#a9a9a9",
)  # fmt: skip


def default_palette(n_classes: int) -> tuple[str, ...]:
    """Returns ``n_classes`` distinct hex colours: :data:`PALETTE` first, then evenly spaced hues.

    Args:
        n_classes: how many colours, >= 0.

    Returns:
        Tuple of ``n_classes`` distinct ``"#rrggbb"`` strings.
    """
    colours = list(PALETTE[:n_classes])
    extra = n_classes - len(colours)
    for i in range(extra):
        r, g, b = colorsys.hsv_to_rgb(i / extra, 0.65, 0.85 if i % 2 else 0.6)
        colours.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return tuple(colours)
