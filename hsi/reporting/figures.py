"""Figures for runs and experiments; every function returns a :class:`matplotlib.figure.Figure`.

Figures are built with :class:`~matplotlib.figure.Figure` directly, never through pyplot's
global state, so they are safe to build in threads and never open a window. Save them with
:func:`hsi.reporting.files.atomic_save_figure`. Metrics arrive as fractions (``0..1``); the
figures of OA, AA and class accuracies draw them as percentages like the tables, and kappa as a
coefficient on an axis of its own.

Scene maps (class, error, split, agreement maps) keep the scene's aspect ratio: the figure
size follows ``H / W`` so tall scenes (Salinas, 512x217; a 1476x256 strip) and wide ones
both fill the figure, and the legend goes beside a tall map or below a wide one. Legend text is
:data:`LEGEND_FONT_PT`; report.html shows each figure at its natural size, where that is 13.3 px
(:func:`hsi.reporting.html_report._figure`). A map with a :class:`~hsi.data.lazy.Georef` is drawn
in its map coordinates, with a scale bar.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap, to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.image import AxesImage
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from hsi._core.errors import ConfigError, DataFormatError
from hsi._core.palette import default_palette
from hsi._core.validation import check_cube
from hsi.evaluation.stability import HEADLINE_METRICS, run_metric_values
from hsi.reporting.tables import KAPPA_KEYS, count_noun

if TYPE_CHECKING:
    from hsi.data.lazy import Georef

__all__ = [
    "LEGEND_FONT_PT",
    "METRIC_LABELS",
    "UNLABELLED",
    "agreement_figure",
    "band_names",
    "bar_chart",
    "classification_map",
    "confusion_figure",
    "default_palette",
    "error_map",
    "false_colour",
    "split_map",
    "stability_figure",
    "training_curve",
]

#: Short display labels of metric keys.
METRIC_LABELS: dict[str, str] = {
    "overall_accuracy": "OA",
    "average_accuracy": "AA",
    "kappa": "Kappa",
    "cohen_kappa": "Kappa",
}

_BACKGROUND = "#000000"  # pixels with no class in a classification map
_DARK_GREY = "#3a3a3a"  # pixels outside the masks of error and split maps
_LIGHT_GREY = "#b0b0b0"  # labelled pixels in no drawn set (error maps)
_TRAIN_BLUE = "#0072B2"  # training pixels (split maps)
# Error maps in Okabe-Ito colours, told apart with any colour vision (no red against green):
_CORRECT_BLUE = "#0072B2"
_WRONG_ORANGE = "#D55E00"  # Okabe-Ito's vermillion
_TRAIN_YELLOW = "#F0E442"
_NO_MAJORITY = "#ffffff"  # consensus pixels where no class has the most votes
#: The one name of pixels without a label, in every figure's legend.
UNLABELLED = "unlabelled"
# A scene map's image fits a box of these inches (a wide one: its width), so a map with its legend
# stays narrower than report.html's figure column (1144 px = 11.9 in at 96 px per inch), and where it
# can, narrower than half of it (_HALF_W: two maps a row); _MIN_MAP_W: the narrowest image beside a legend.
_MAP_MAX_W, _MAP_MAX_H, _WIDE_MAP_W, _HALF_W, _MIN_MAP_W = 5.0, 6.0, 10.0, 5.8, 3.0
_WIDE_RATIO = 1.6  # W / H above which the legend goes below the map
_FONT = 9
#: Font size of the maps' legends, in points: 13.3 px in report.html (96 CSS px per figure inch).
LEGEND_FONT_PT = 10.0


# --------------------------------------------------------------------------- helpers
def _check_map(values: ArrayLike, *, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.size == 0:
        raise DataFormatError(f"{name} must be a non-empty 2-D map of shape (H, W); got shape {arr.shape}.")
    return arr


def _check_mask(values: ArrayLike, *, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = _check_map(values, name=name)
    if arr.dtype != np.bool_:
        raise DataFormatError(f"{name} must be a boolean mask; got dtype {arr.dtype}. Pass e.g. labels >= 0.")
    if shape is not None and arr.shape != shape:
        raise DataFormatError(
            f"{name} must have the scene's shape {shape}; got {arr.shape}. Pass masks of the same scene."
        )
    return arr


def _check_colours(colours: Sequence[str], *, n: int, name: str) -> list[str]:
    if len(colours) < n:
        raise ConfigError(f"{name} must hold one colour per class ({n}); got {len(colours)}.")
    out = []
    for c in list(colours)[:n]:
        try:
            out.append(to_hex(to_rgb(c)))
        except ValueError as exc:
            raise ConfigError(f"{name} must hold matplotlib colours such as '#1f77b4'; got {c!r}.") from exc
    return out


def _scene_layout(
    height: int, width: int, *, n_legend: int, label_chars: int, legend: bool = True, axes: bool = False
) -> tuple[tuple[float, float], dict[str, Any]]:
    """Figure size in inches and ``fig.legend`` keywords for a map of ``height x width`` pixels.

    A map with its legend beside fits half of report.html's column where it can (shrinking the
    image to :data:`_MIN_MAP_W` at most); else the legend goes below when it takes at most half the
    image's height; else beside, the figure on a row of its own. A wide map spans the column, legend
    below. ``axes``: room for tick labels in map coordinates (a georeferenced map).
    """
    room_w, room_h = (0.9, 0.5) if axes else (0.0, 0.0)
    entry_w, row_h = 0.5 + 0.083 * label_chars, 0.29  # one legend entry (handle + text) at LEGEND_FONT_PT
    n = n_legend if legend else 0

    def fit(box_w: float) -> tuple[float, float]:
        scale = min(box_w / width, _MAP_MAX_H / height)
        return max(width * scale, 1.0), max(height * scale, 1.0)

    def below(img: tuple[float, float]) -> tuple[tuple[float, float], dict[str, Any]]:
        ncol = max(1, min(n, int(img[0] // entry_w)))
        size = (img[0] + room_w + 0.4, img[1] + room_h + 0.6 + math.ceil(n / ncol) * row_h)
        return size, ({"loc": "outside lower center", "ncol": ncol} if n else {})

    if width / height > _WIDE_RATIO or n == 0:
        return below(fit((_WIDE_MAP_W if width / height > _WIDE_RATIO else _HALF_W - 0.4) - room_w))
    legend_w = 0.5 + max(1, math.ceil(n * row_h / _MAP_MAX_H)) * entry_w
    img = fit(_MAP_MAX_W - room_w)
    if img[0] + room_w + legend_w > _HALF_W:
        if _HALF_W - legend_w - room_w >= _MIN_MAP_W:
            img = fit(_HALF_W - legend_w - room_w)
        else:
            under = fit(_HALF_W - 0.4 - room_w)
            if math.ceil(n / max(1, min(n, int(under[0] // entry_w)))) * row_h <= 0.5 * under[1]:
                return below(under)
    ncol = max(1, math.ceil(n * row_h / img[1]))
    size = (img[0] + room_w + 0.5 + ncol * entry_w, max(img[1] + room_h + 0.6, 2.5))
    return size, {"loc": "outside right upper", "ncol": ncol}


def _scene_figure(
    height: int, width: int, *, labels: Sequence[str], title: str | None, legend: bool = True, axes: bool = False
) -> tuple[Figure, Axes, dict[str, Any]]:
    size, legend_kw = _scene_layout(
        height, width, n_legend=len(labels), label_chars=max((len(s) for s in labels), default=4), legend=legend,
        axes=axes,
    )
    fig, ax = _image_axes(size, title)
    return fig, ax, legend_kw


def _image_axes(size: tuple[float, float], title: str | None) -> tuple[Figure, Axes]:
    """A figure of ``size`` inches with one tick-less axes for a scene image."""
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=_FONT + 2)
    return fig, ax


def _show_categories(ax: Axes, codes: np.ndarray, colours: Sequence[str]) -> AxesImage:
    """Draws integer ``codes`` (0..n-1, shape (H, W)) with one flat colour per code."""
    n = len(colours)
    return ax.imshow(
        codes,
        cmap=ListedColormap(list(colours)),
        norm=BoundaryNorm(np.arange(-0.5, n), n),
        interpolation="nearest",
        aspect="equal",
    )


def _legend(fig: Figure, entries: Sequence[tuple[str, str]], legend_kw: Mapping[str, Any]) -> None:
    handles = [Patch(facecolor=c, edgecolor="0.5", linewidth=0.5, label=label) for label, c in entries]
    fig.legend(handles=handles, frameon=False, fontsize=LEGEND_FONT_PT, **legend_kw)


_GEOGRAPHIC = {"EPSG:4326", "EPSG:4269", "EPSG:4258", "OGC:CRS84", "CRS:84"}


def _crs_units(crs: str) -> tuple[str, float | None]:
    """A CRS's short name and its metres per map unit; None for the degrees of a geographic CRS.

    rasterio reads the CRS where it is installed; otherwise WKT ``GEOGCS``/``GEOGCRS`` and a few
    EPSG codes count as geographic and any other CRS as projected in metres.
    """
    text = crs.strip()
    quoted = re.search(r'"([^"]+)"', text)
    name = quoted.group(1) if quoted else text
    try:
        from rasterio.crs import CRS

        parsed = CRS.from_user_input(text)
        return name, None if parsed.is_geographic else float(parsed.linear_units_factor[1])
    except (ImportError, ValueError):
        upper = text.upper()
        geographic = upper.startswith(("GEOGCS", "GEOGCRS", "GEODCRS")) or upper in _GEOGRAPHIC
        return name, None if geographic else 1.0


def _scale_bar(ax: Axes, span: float, metres_per_unit: float) -> None:
    """A scale bar of a round length (1, 2 or 5 x 10^k m), at most a fifth of the map's ``span`` (map units)."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # type: ignore[import-untyped]

    target = abs(span) * metres_per_unit / 5
    power = 10.0 ** math.floor(math.log10(target))
    length = round(max(m * power for m in (1, 2, 5) if m * power <= target * (1 + 1e-9)), 10)
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    y0, y1 = ax.get_ylim()
    bar = AnchoredSizeBar(ax.transData, length / metres_per_unit, label, "lower right", pad=0.4, sep=3,
                          frameon=True, size_vertical=abs(y1 - y0) / 100, fontproperties=FontProperties(size=_FONT))
    bar.patch.set_alpha(0.85)
    ax.add_artist(bar)


def _georeference(ax: Axes, image: AxesImage, georef: Georef, shape: tuple[int, ...], step: int) -> None:
    """Puts a map in its map coordinates (ticks, axis labels) with a scale bar.

    A rotated or sheared transform (``b`` or ``d`` not 0) leaves the map in pixels, as a plain scene.
    """
    a, b, c, d, e, f = (float(v) for v in georef.transform)
    if b or d or not a or not e:
        return
    left, right, top, bottom = c, c + a * step * shape[1], f, f + e * step * shape[0]
    image.set_extent((left, right, bottom, top))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    name, metres = _crs_units(georef.crs)
    if metres is None:  # degrees: a metre scale at the map's centre latitude
        ax.set_xlabel(f"longitude (°), {name}", fontsize=_FONT)
        ax.set_ylabel("latitude (°)", fontsize=_FONT)
        metres = 111_320.0 * math.cos(math.radians((top + bottom) / 2))
    else:
        unit = "m" if metres == 1.0 else "ft" if abs(metres - 0.3048) < 1e-4 else f"x {metres:g} m"
        ax.set_xlabel(f"easting ({unit}), {name}", fontsize=_FONT)
        ax.set_ylabel(f"northing ({unit})", fontsize=_FONT)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=4))
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=_FONT)
    if metres > 0:
        _scale_bar(ax, right - left, metres)


# --------------------------------------------------------------------------- scene maps
def classification_map(
    class_map: ArrayLike,
    *,
    class_names: Sequence[str],
    palette: Sequence[str] | None = None,
    title: str | None = None,
    no_majority: ArrayLike | None = None,
    missing_label: str = UNLABELLED,
    georef: Georef | None = None,
    pixel_step: int = 1,
) -> Figure:
    """A class map in the scene's palette, with a legend of class names.

    Args:
        class_map: class indices, int of shape (H, W), values ``-1..K-1``; ``-1`` (no class,
            e.g. unlabelled pixels when only labelled pixels are predicted) is drawn black.
        class_names: the K class names, in class order.
        palette: K colours (hex strings), in class order; default=None uses
            :func:`default_palette`.
        title: figure title; default=None for none.
        no_majority: bool of shape (H, W), pixels where several classes tie for the most votes
            (a majority-vote map); drawn white and counted in the legend as "no majority".
        missing_label: the legend's name for ``-1`` pixels (e.g. "no data" where they lie
            outside the data of a streamed scene).
        georef: where the scene lies; default=None. Given, the axes carry map coordinates
            (easting / northing, or longitude / latitude) and the map a scale bar.
        pixel_step: scene pixels per drawn pixel along each side (a downsampled quick look),
            for ``georef``; default=1.

    Returns:
        The figure; the image keeps the scene's aspect ratio, pixels are not smoothed
        and the axes carry no ticks (without ``georef``).

    Raises:
        DataFormatError: ``class_map`` is not a 2-D integer map in ``-1..K-1``.
        ConfigError: ``palette`` is too short or holds an invalid colour.
    """
    cmap_arr = _check_map(class_map, name="class_map")
    if not np.issubdtype(cmap_arr.dtype, np.integer):
        raise DataFormatError(f"class_map must hold integer class indices; got dtype {cmap_arr.dtype}.")
    k = len(class_names)
    if k == 0:
        raise ConfigError("class_names must hold at least one name; got none.")
    lo, hi = int(cmap_arr.min()), int(cmap_arr.max())
    if lo < -1 or hi >= k:
        raise DataFormatError(
            f"class_map values must lie in -1..{k - 1} (K={k} class names); found {lo}..{hi}. "
            "Pass the model's class indices (0..K-1), with -1 for pixels left unclassified."
        )
    colours = _check_colours(default_palette(k) if palette is None else palette, n=k, name="palette")
    entries = [(str(n), c) for n, c in zip(class_names, colours, strict=True)]
    if lo == -1:
        entries.append((missing_label, _BACKGROUND))
    codes = cmap_arr.astype(np.int64) + 1
    shown = [_BACKGROUND, *colours]
    if no_majority is not None:
        ties = _check_mask(no_majority, name="no_majority", shape=cmap_arr.shape)
        codes[ties] = len(shown)
        shown.append(_NO_MAJORITY)
        entries.append((f"no majority (tie): {int(ties.sum()):,}", _NO_MAJORITY))
    h, w = cmap_arr.shape
    fig, ax, legend_kw = _scene_figure(h, w, labels=[e[0] for e in entries], title=title, axes=georef is not None)
    image = _show_categories(ax, codes, shown)
    if georef is not None:
        _georeference(ax, image, georef, cmap_arr.shape, pixel_step)
    _legend(fig, entries, legend_kw)
    return fig


def error_map(
    test_mask: ArrayLike, correct: ArrayLike, *, train_mask: ArrayLike | None = None,
    labelled_mask: ArrayLike | None = None, title: str | None = "Test-set errors",
) -> Figure:
    """Where the test pixels were classified right (blue) or wrong (orange), colour-blind safe.

    Args:
        test_mask: bool of shape (H, W), the test pixels.
        correct: bool of shape (H, W), True where the prediction equals the label
            (only read inside ``test_mask``).
        train_mask: bool of shape (H, W), the training pixels, drawn yellow; default=None.
        labelled_mask: bool of shape (H, W), the labelled pixels: those in no drawn set
            (validation, excluded) are light grey, the unlabelled ones dark grey; default=None
            draws every other pixel dark grey as "not tested".
        title: figure title; default="Test-set errors".

    Returns:
        The figure; the legend gives counts.

    Raises:
        DataFormatError: a mask is not 2-D boolean, or the shapes differ.
    """
    test = _check_mask(test_mask, name="test_mask")
    ok = _check_mask(correct, name="correct", shape=test.shape)
    codes = np.zeros(test.shape, dtype=np.int64)
    codes[test & ok] = 1
    codes[test & ~ok] = 2
    n_right, n_wrong = int((codes == 1).sum()), int((codes == 2).sum())
    colours = [_DARK_GREY, _CORRECT_BLUE, _WRONG_ORANGE, _TRAIN_YELLOW, _LIGHT_GREY]
    entries = [(f"correct: {n_right:,}", colours[1]), (f"wrong: {n_wrong:,}", colours[2])]
    if train_mask is not None:
        train = _check_mask(train_mask, name="train_mask", shape=test.shape)
        codes[train & ~test] = 3
        entries.append((f"training: {int((codes == 3).sum()):,}", colours[3]))
    if labelled_mask is not None:
        labelled = _check_mask(labelled_mask, name="labelled_mask", shape=test.shape)
        codes[labelled & (codes == 0)] = 4
        if (codes == 4).any():
            entries.append((f"labelled, not tested: {int((codes == 4).sum()):,}", colours[4]))
        entries.append((f"{UNLABELLED}: {int((codes == 0).sum()):,}", colours[0]))
    else:
        entries.append((f"not tested: {int((codes == 0).sum()):,}", colours[0]))
    fig, ax, legend_kw = _scene_figure(*test.shape, labels=[e[0] for e in entries], title=title)
    _show_categories(ax, codes, colours)
    _legend(fig, entries, legend_kw)
    return fig


def split_map(
    train_mask: ArrayLike,
    val_mask: ArrayLike | None,
    test_mask: ArrayLike,
    *,
    excluded_mask: ArrayLike | None = None,
    excluded_label: str = "excluded",
    title: str | None = "Train / validation / test split",
) -> Figure:
    """Which pixels went to training, validation and test (and which were left out).

    Args:
        train_mask: bool of shape (H, W).
        val_mask: bool of shape (H, W), or None when the run has no validation set.
        test_mask: bool of shape (H, W).
        excluded_mask: bool of shape (H, W), labelled pixels in no set (e.g. dropped by
            a disjoint split's guard band); default=None.
        excluded_label: their legend name, e.g. ``"excluded (guard band)"``.
        title: figure title; default="Train / validation / test split".

    Returns:
        The figure, one colour per set (colour-blind safe), unlabelled pixels dark grey, and a
        legend with pixel counts.

    Raises:
        DataFormatError: a mask is not 2-D boolean, shapes differ, or two sets overlap
            (a pixel in two sets would leak between training and test).
    """
    train = _check_mask(train_mask, name="train_mask")
    sets: list[tuple[str, np.ndarray, str]] = [("train", train, _TRAIN_BLUE)]
    if val_mask is not None:
        sets.append(("validation", _check_mask(val_mask, name="val_mask", shape=train.shape), "#E69F00"))
    sets.append(("test", _check_mask(test_mask, name="test_mask", shape=train.shape), "#009E73"))
    if excluded_mask is not None:
        sets.append((excluded_label, _check_mask(excluded_mask, name="excluded_mask", shape=train.shape), "#CC79A7"))
    codes = np.zeros(train.shape, dtype=np.int64)
    for i, (name, mask, _) in enumerate(sets, start=1):
        overlap = mask & (codes > 0)
        if overlap.any():
            other = sets[int(codes[overlap][0]) - 1][0]
            raise DataFormatError(
                f"split masks must be disjoint; {int(overlap.sum())} pixels are in both {other} and {name}. "
                "Check the split function: a pixel may belong to one set only."
            )
        codes[mask] = i
    entries = [(f"{name}: {int(mask.sum()):,}", colour) for name, mask, colour in sets]
    # Every labelled pixel is in one of the sets (excluded ones included): the rest are unlabelled.
    entries.append((f"{UNLABELLED}: {int((codes == 0).sum()):,}", _DARK_GREY))
    fig, ax, legend_kw = _scene_figure(*train.shape, labels=[e[0] for e in entries], title=title)
    _show_categories(ax, codes, [_DARK_GREY, *(c for _, _, c in sets)])
    _legend(fig, entries, legend_kw)
    return fig


def agreement_figure(
    agreement: ArrayLike, *, n_runs: int | None = None, title: str | None = "Agreement between runs"
) -> Figure:
    """The share of runs agreeing with the per-pixel consensus.

    With ``n_runs`` of at most :data:`_MAX_AGREEMENT_LEVELS` the share takes a handful of values
    (k / R), drawn as categories with a legend ("3 of 5 runs: 1,234 pixels"); otherwise a 0..1
    colour bar.

    Args:
        agreement: float of shape (H, W) in ``[0, 1]`` (from
            :func:`hsi.evaluation.stability.agreement_map`); NaN pixels are drawn grey.
        n_runs: the number of runs R behind the shares; default=None draws a colour bar.
        title: figure title; default="Agreement between runs".

    Returns:
        The figure.

    Raises:
        DataFormatError: not a 2-D map, or finite values outside ``[0, 1]``.
    """
    arr = _check_map(agreement, name="agreement").astype(np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise DataFormatError(
            f"agreement must lie in [0, 1]; found {finite.min():.3g}..{finite.max():.3g}. "
            "Pass the share of runs (agreement_map's second output), not vote counts."
        )
    h, w = arr.shape
    if n_runs is not None and 1 <= n_runs <= _MAX_AGREEMENT_LEVELS:
        return _agreement_categories(arr, n_runs, title)
    size, _ = _scene_layout(h, w, n_legend=0, label_chars=0, legend=False)
    wide = w / h > _WIDE_RATIO
    size = (size[0], size[1] + 0.8) if wide else (size[0] + 1.2, size[1])
    fig, ax = _image_axes(size, title)
    cmap = colormaps["viridis"].with_extremes(bad="0.6")
    image = ax.imshow(np.ma.masked_invalid(arr), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    fig.colorbar(
        image,
        ax=ax,
        label="share of runs voting for the consensus class",
        orientation="horizontal" if wide else "vertical",
        shrink=0.8,
    )
    return fig


_MAX_AGREEMENT_LEVELS = 12


def _agreement_categories(arr: np.ndarray, n_runs: int, title: str | None) -> Figure:
    """The agreement map as categories: k of R runs vote for the consensus, k = R (unanimous) first."""
    votes = np.where(np.isfinite(arr), np.rint(np.nan_to_num(arr) * n_runs), -1).astype(np.int64)
    levels = sorted({int(v) for v in np.unique(votes) if v >= 0}, reverse=True)
    cmap = colormaps["viridis"]
    entries, shown = [], [_LIGHT_GREY]
    codes = np.zeros(arr.shape, dtype=np.int64)
    for i, k in enumerate(levels, start=1):
        codes[votes == k] = i
        colour = to_hex(cmap(k / n_runs))
        shown.append(colour)
        words = f"all {n_runs} runs agree" if k == n_runs else f"{k} of {n_runs} runs agree{'s' if k == 1 else ''}"
        entries.append((f"{words}: {count_noun(int((votes == k).sum()), 'pixel')}", colour))
    if (votes < 0).any():
        entries.append((f"no value: {int((votes < 0).sum()):,}", _LIGHT_GREY))
    fig, ax, legend_kw = _scene_figure(*arr.shape, labels=[e[0] for e in entries], title=title)
    _show_categories(ax, codes, shown)
    _legend(fig, entries, legend_kw)
    return fig


def band_names(bands: Sequence[int], wavelengths: Sequence[float] | None = None) -> list[str]:
    """Display names of 0-based band indices: 1-based numbers, with the wavelength where known."""
    names = []
    for b in bands:
        name = f"band {int(b) + 1}"
        if wavelengths is not None and 0 <= int(b) < len(wavelengths):
            name += f" ({float(wavelengths[int(b)]):.0f} nm)"
        names.append(name)
    return names


def false_colour(
    cube: ArrayLike, rgb_bands: Sequence[int], *, title: str | None = None,
    wavelengths: Sequence[float] | None = None,
) -> Figure:
    """A false-colour composite of three bands, each stretched between its 2nd and 98th percentile.

    Args:
        cube: hyperspectral cube, shape (H, W, B).
        rgb_bands: three band indices (0-based) shown as red, green, blue.
        title: figure title; default=None names the bands.
        wavelengths: centre wavelength of each band in nm, where the scene knows them; the
            bands are named 1-based ("band 44 (1050 nm)"), as sensors number them.

    Returns:
        The figure.

    Raises:
        DataFormatError: the cube is not a finite 3-D array.
        ConfigError: ``rgb_bands`` is not three indices in ``0..B-1``.
    """
    data = check_cube(np.asarray(cube))
    n_bands = data.shape[2]
    bands = [int(b) for b in rgb_bands]
    if len(bands) != 3 or any(b < 0 or b >= n_bands for b in bands):
        raise ConfigError(
            f"rgb_bands must be three band indices in 0..{n_bands - 1}; got {list(rgb_bands)}. "
            "Use the scene's rgb_bands, or e.g. (B*3//4, B//2, B//4)."
        )
    rgb = data[..., bands].astype(np.float64)
    low, high = np.percentile(rgb.reshape(-1, 3), [2.0, 98.0], axis=0)
    span = np.where(high > low, high - low, 1.0)
    rgb = np.clip((rgb - low) / span, 0.0, 1.0)
    h, w = data.shape[:2]
    size, _ = _scene_layout(h, w, n_legend=0, label_chars=0, legend=False)
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(rgb, interpolation="nearest", aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([])
    red, green, blue = band_names(bands, wavelengths)
    named = f"red: {red}, green: {green}, blue: {blue}"
    ax.set_title(f"{title}\n{named}" if title else f"False colour ({named})", fontsize=_FONT + 1)
    return fig


# --------------------------------------------------------------------------- metric figures
def confusion_figure(
    matrix: ArrayLike,
    class_names: Sequence[str],
    *,
    normalize: bool = True,
    title: str | None = "Confusion matrix",
) -> Figure:
    """A confusion-matrix heat map, rows = true class, columns = predicted class.

    Args:
        matrix: counts, shape (K, K), e.g. from
            :func:`hsi.evaluation.metrics.confusion_matrix`.
        class_names: the K class names, in class order.
        normalize: default=True divides each row by its support (fractions of the true
            class; a class with no test pixels is drawn grey); False shows counts.
        title: figure title; default="Confusion matrix".

    Returns:
        The figure; cells are annotated when K <= 20.

    Raises:
        DataFormatError: ``matrix`` is not square, non-negative and K x K.
    """
    cm = np.asarray(matrix)
    k = len(class_names)
    if cm.ndim != 2 or cm.shape != (k, k):
        raise DataFormatError(
            f"matrix must be square of shape (K, K) = ({k}, {k}) for {k} class names; got shape {cm.shape}."
        )
    if k == 0 or not np.issubdtype(cm.dtype, np.number) or not np.all(np.isfinite(cm)) or cm.min() < 0:
        raise DataFormatError("matrix must hold non-negative finite counts, one row per true class.")
    counts = cm.astype(np.float64)
    if normalize:
        support = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, support, out=np.full_like(counts, np.nan), where=support > 0)
        vmax, cbar_label = 1.0, "fraction of the true class"
    else:
        values = counts
        vmax, cbar_label = max(float(counts.max()), 1.0), "test pixels"
    side = float(np.clip(2.8 + 0.42 * k, 4.5, 10.0))  # at most 11 in wide: report.html's column, unscaled
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["Blues"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, label=cbar_label, shrink=0.8)
    label_size = _FONT if k <= 20 else max(5, _FONT - (k - 20) // 5)
    ax.set_xticks(
        np.arange(k),
        [str(n) for n in class_names],
        rotation=45,
        ha="right",
        rotation_mode="anchor",
        fontsize=label_size,
    )
    ax.set_yticks(np.arange(k), [str(n) for n in class_names], fontsize=label_size)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    if title:
        ax.set_title(title, fontsize=_FONT + 2)
    if k <= 20:
        text_size = max(5.5, 11.0 - 0.3 * k)
        for i in range(k):
            for j in range(k):
                v = values[i, j]
                if not np.isfinite(v):
                    continue
                text = (f"{v:.2f}" if v > 0 else "0") if normalize else f"{int(round(v))}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=text_size,
                    color="white" if v > 0.55 * vmax else "black",
                )
    return fig


def _check_history(history: Sequence[Mapping[str, Any]]) -> None:
    """Raises :class:`DataFormatError` for an empty history or an epoch without its training loss and accuracy."""
    if len(history) == 0:
        raise DataFormatError("history must hold at least one epoch; got none.")
    required = ("epoch", "train_loss", "train_accuracy")
    for i, row in enumerate(history):
        missing = [key for key in required if key not in row]
        if missing:
            raise DataFormatError(
                f"history[{i}] must hold the keys {list(required)}; missing {missing}. "
                "Pass the trainer's per-epoch records."
            )


def training_curve(history: Sequence[Mapping[str, Any]], *, kept: Sequence[int] | None = None,
                   stopped: Sequence[int] | None = None, title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, training and (when present) validation, for each network.

    Args:
        history: one dict per epoch with ``epoch``, ``train_loss``, ``train_accuracy``
            and optionally ``val_loss`` / ``val_accuracy`` (None or absent on epochs
            without validation), and ``network`` (1-based) for an ensemble's rows. Accuracies are fractions.
        kept: an ensemble's kept networks (1-based); the others are drawn faint. None = all kept.
        stopped: of the others, those stopped at the ensemble's screening (1-based); the rest were dropped
            after training on. None: those that trained fewer epochs than the longest (a run without
            ``patience``, where every network that went on reached the last epoch).
        title: figure title; default=None for none.

    Returns:
        The figure: a loss panel and an accuracy panel; one network's epoch of lowest
        validation loss is marked with a dotted line; an ensemble's networks each get a colour,
        training solid and validation dashed, and the legend says which were kept.

    Raises:
        DataFormatError: ``history`` is empty or an epoch lacks a required key.
    """
    _check_history(history)
    by_network: dict[int, list[Mapping[str, Any]]] = {}
    for row in history:
        by_network.setdefault(int(row.get("network", 1)), []).append(row)
    last_epoch = max(float(r["epoch"]) for r in history)

    def series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
        pts = [(float(r["epoch"]), float(r[key])) for r in rows if r.get(key) is not None]
        pts = [(e, v) for e, v in pts if math.isfinite(v)]
        arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]

    fig = Figure(figsize=(10.0, 4.0), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    several = len(by_network) > 1
    for number, rows in sorted(by_network.items()):
        is_kept = kept is None or number in kept
        epochs = max(float(r["epoch"]) for r in rows)
        was_stopped = epochs < last_epoch if stopped is None else number in stopped
        status = "kept" if is_kept else (f"stopped after epoch {epochs:g}" if was_stopped else "dropped")
        colour = f"C{(number - 1) % 10}" if several else None
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            for split, style in (("train", "-"), ("val", "--")):
                x, y = series(rows, f"{split}_{key}")
                if not x.size:
                    continue
                if several:
                    label = f"network {number} ({status})" if ax is ax_acc and split == "train" else None
                else:
                    label = "training" if split == "train" else "validation"
                ax.plot(x, y, style, color=colour, alpha=1.0 if is_kept else 0.35,
                        marker="o" if x.size < 30 and not several else None, markersize=3, label=label)
    if not several:
        val_epochs, val_loss = series(history, "val_loss")
        if val_loss.size:
            for ax in (ax_loss, ax_acc):
                ax.axvline(val_epochs[int(np.argmin(val_loss))], color="0.5", linestyle=":", linewidth=1,
                           label="lowest validation loss")
    for ax, ylabel in ((ax_loss, "loss"), (ax_acc, "accuracy (fraction)")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if several:
        ax_acc.legend(fontsize=_FONT, frameon=False, title="solid: training, dashed: validation",
                      title_fontsize=_FONT)
    else:
        ax_loss.legend(fontsize=_FONT, frameon=False)
        ax_acc.legend(fontsize=_FONT, frameon=False)
    ax_loss.set_title("Loss", fontsize=_FONT + 1)
    ax_acc.set_title("Accuracy" + (f" of {len(by_network)} networks" if several else ""), fontsize=_FONT + 1)
    ax_acc.set_ylim(top=1.02)
    if title:
        fig.suptitle(title)
    return fig


def _box_and_strip(ax: Axes, groups: Sequence[Sequence[float]], labels: Sequence[str]) -> None:
    positions = np.arange(1, len(groups) + 1)
    ax.boxplot(
        [np.asarray(g, dtype=np.float64) for g in groups],
        positions=positions,
        widths=0.55,
        tick_labels=list(labels),
        showfliers=False,
        medianprops={"color": "#d62728"},
    )
    for pos, values in zip(positions, groups, strict=True):
        if len(values) == 0:
            continue
        # Deterministic jitter, so the same runs always give the same figure.
        offsets = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(pos + offsets, values, s=14, color="#1f77b4", alpha=0.8, zorder=3)
    ax.grid(axis="y", alpha=0.3)


def stability_figure(
    run_metrics: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    *,
    title: str | None = None,
) -> Figure:
    """Spread of OA / AA / kappa and of each class's accuracy over repeated runs.

    Args:
        run_metrics: one :func:`~hsi.evaluation.metrics.classification_summary` dict per run.
        class_names: the K class names, in class order.
        title: figure title; default=None shows the number of runs.

    Returns:
        The figure: box plots with each run as a dot; left OA and AA (%), then kappa (a
        coefficient, on its own axis), right the per-class accuracy (%; a class's undefined
        runs are left out).

    Raises:
        DataFormatError: ``run_metrics`` is empty or a run lacks a headline metric or
            ``per_class``.
    """
    headline, per_class = run_metric_values(run_metrics, class_names)
    k = len(per_class)
    fig = Figure(figsize=(max(8.0, 5.0 + 0.45 * k), 4.8), layout="constrained")
    ax_head, ax_kappa, ax_cls = fig.subplots(1, 3, width_ratios=[2, 1.3, max(3, k)])
    accuracies = [m for m in HEADLINE_METRICS if m not in KAPPA_KEYS]
    _box_and_strip(ax_head, [[100 * v for v in headline[m]] for m in accuracies],
                   [METRIC_LABELS[m] for m in accuracies])
    ax_head.set_ylabel("% of test pixels")
    ax_head.set_title("OA and AA", fontsize=_FONT + 1)
    _box_and_strip(ax_kappa, [headline["kappa"]], ["Kappa"])
    ax_kappa.set_ylabel("kappa (0 = chance, 1 = perfect)")
    ax_kappa.set_title("Kappa", fontsize=_FONT + 1)
    _box_and_strip(ax_cls, [[100 * v for v in values] for values in per_class.values()], list(per_class))
    ax_cls.tick_params(axis="x", labelrotation=60, labelsize=_FONT - 1)
    for label in ax_cls.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    ax_cls.set_ylabel("accuracy (%)")
    ax_cls.set_title("Per-class accuracy", fontsize=_FONT + 1)
    fig.suptitle(title if title is not None else f"Stability over {len(run_metrics)} runs")
    return fig


def _bar_value(row: Mapping[str, Any], metric: str) -> tuple[float, float]:
    value = row.get(metric)
    err = row.get(f"{metric}_std")
    if isinstance(value, Mapping):  # a summarize() dict
        err = value.get("std", err)
        value = value.get("mean")
    mean = float(value) if value is not None else math.nan
    std = float(err) if err is not None else math.nan
    return mean, std


def bar_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    metrics: Sequence[str] = HEADLINE_METRICS,
    label_key: str = "name",
    title: str | None = "Model comparison",
) -> Figure:
    """Grouped bars comparing models (or settings) on several metrics.

    Args:
        rows: one dict per model: ``row[label_key]`` names it and each metric is either a
            number (with an optional ``"<metric>_std"`` key) or a :func:`summarize` dict
            (``mean`` / ``std``, as in :func:`aggregate_runs` output). Fractions.
        metrics: the metric keys to draw; default=("overall_accuracy",
            "average_accuracy", "kappa").
        label_key: the key naming each row; default="name".
        title: figure title; default="Model comparison".

    Returns:
        The figure: one group of bars per row, one bar per metric, with ±std error bars
        where a standard deviation is given; a missing value leaves a gap. Accuracies are
        drawn as percentages, kappa as a coefficient read on the right-hand axis.

    Raises:
        DataFormatError: ``rows`` or ``metrics`` is empty, or a row lacks ``label_key``.
    """
    if len(rows) == 0 or len(metrics) == 0:
        raise DataFormatError(
            f"bar_chart needs at least one row and one metric; got {len(rows)} rows and {len(metrics)} metrics."
        )
    for i, row in enumerate(rows):
        if label_key not in row:
            raise DataFormatError(f"rows[{i}] must hold the label key {label_key!r}; got keys {sorted(row)}.")
    n_rows, n_metrics = len(rows), len(metrics)
    # Percent on the left axis; kappa's bars share that scale and are read on the right (kappa x 100 = %).
    means = 100 * np.array([[_bar_value(r, m)[0] for m in metrics] for r in rows])
    stds = 100 * np.array([[_bar_value(r, m)[1] for m in metrics] for r in rows])
    fig = Figure(figsize=(max(6.0, 1.0 + n_rows * (0.35 * n_metrics + 0.5)), 4.5), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(n_rows)
    width = 0.8 / n_metrics
    colours = default_palette(n_metrics)
    for j, metric in enumerate(metrics):
        # NaN heights and errors draw nothing: a missing value leaves a gap, not a zero bar.
        err = stds[:, j] if np.isfinite(stds[:, j]).any() else None
        ax.bar(
            x - 0.4 + width * (j + 0.5),
            means[:, j],
            width,
            yerr=err,
            capsize=3,
            color=colours[j],
            label=METRIC_LABELS.get(metric, metric),
        )
    ax.set_xticks(
        x, [str(r[label_key]) for r in rows], rotation=30 if n_rows > 4 else 0, ha="right" if n_rows > 4 else "center"
    )
    finite = means[np.isfinite(means)]
    low = min(0.0, float(finite.min()) - 5.0) if finite.size else 0.0
    ax.set_ylim(low, 105.0 if not finite.size or finite.max() <= 100.0 else None)
    accuracies = [METRIC_LABELS.get(m, m) for m in metrics if m not in KAPPA_KEYS]
    ax.set_ylabel(" / ".join(accuracies) + " (% of test pixels)" if accuracies else "value")
    if any(m in KAPPA_KEYS for m in metrics):
        # Kappa is no share of pixels (chance agreement = 0, perfect = 1): a coefficient on its own axis.
        kappa_axis = ax.twinx()
        kappa_axis.set_ylim(*(v / 100 for v in ax.get_ylim()))
        kappa_axis.set_ylabel("Kappa (agreement beyond chance; 0 = chance, 1 = perfect)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, fontsize=_FONT, ncol=n_metrics, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    if title:
        fig.suptitle(title)
    return fig
