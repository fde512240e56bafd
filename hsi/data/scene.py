"""A labelled hyperspectral scene in memory, and the loaders that find, fetch and check one.

Labels are remapped here, once: the file's ``0`` (unlabelled) becomes ``-1`` and its class
ids become contiguous ``0..K-1`` in ascending id order. The cube is converted to float32
exactly once.

Where files are looked for, in order (:func:`data_dir_candidates`):

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. ``$HSI_DATA_DIR``;
3. the per-user cache, ``$HSI_CACHE_DIR`` or ``~/.cache/hsi-classify``.

A scene's files live in ``<dir>/<spec.folder>/<file>``. Missing files are downloaded into
the first of these folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hsi._core.errors import ConfigError, DataFormatError, DatasetNotFoundError, DownloadError
from hsi._core.validation import check_cube, check_same_spatial_shape
from hsi.data.download import download_file, resolve_urls
from hsi.data.io import Role, load_array
from hsi.data.specs import DATASETS, DatasetSpec, default_palette, get_spec

if TYPE_CHECKING:  # hsi.data.lazy imports torch: the light commands (datasets) must not
    from hsi.data.lazy import Georef, LazyCube

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "LAZY_MEMORY_SHARE",
    "MAX_LABEL_ID",
    "NAN_POLICIES",
    "LazyScene",
    "Scene",
    "cache_dir",
    "clean_window",
    "data_dir_candidates",
    "dataset_status",
    "ensure_scene_files",
    "labels_from_ground_truth",
    "lazy_decision",
    "load_custom_scene",
    "load_lazy_scene",
    "load_scene",
]

DATA_DIR_ENV = "HSI_DATA_DIR"
CACHE_DIR_ENV = "HSI_CACHE_DIR"
#: How non-finite cube values are handled: refuse them, set them to 0, or interpolate
#: linearly along each pixel's spectrum (see :func:`load_scene`).


class _SceneSizes:
    """K, B and (H, W, B) of a scene whose ``cube`` is in memory or on disk."""

    cube: Any
    class_ids: tuple[int, ...]

    @property
    def n_classes(self) -> int:
        """K, the number of classes (unlabelled excluded)."""
        return len(self.class_ids)

    @property
    def n_bands(self) -> int:
        """B, the number of spectral bands."""
        return int(self.cube.shape[2])

    @property
    def shape(self) -> tuple[int, int, int]:
        """The cube's shape (H, W, B)."""
        height, width, bands = self.cube.shape
        return (int(height), int(width), int(bands))


@dataclass(eq=False)
class Scene(_SceneSizes):
    """One labelled scene.

    Args:
        name: the scene's name (registry key, or the cube file's stem for a custom scene).
        cube: float32 array of shape (H, W, B), finite.
        labels: int64 array of shape (H, W); -1 = unlabelled, classes 0..K-1.
        class_ids: the file's own label id of each class, length K.
        class_names: one name per class, length K.
        palette: one hex colour per class, length K.
        rgb_bands: 0-based band indices (red, green, blue) for false-colour display.
        sources: what was read, e.g. ``{"cube": path, "gt": path}``.
        georef: where the scene lies (an ENVI cube with ``map info``), or None; maps then carry
            coordinates and a scale bar.
        load_options: the run options that load this scene again (``dataset`` and ``data_dir``, or
            ``cube``, ``gt`` and their keys; ``nan_policy``), as ``hsi.load_scene`` records them.

    Raises:
        DataFormatError: the fields disagree (shapes, dtypes, lengths, label range).
    """

    name: str
    cube: np.ndarray
    labels: np.ndarray
    class_ids: tuple[int, ...]
    class_names: tuple[str, ...]
    palette: tuple[str, ...]
    rgb_bands: tuple[int, int, int]
    sources: dict[str, str] = field(default_factory=dict)
    georef: Georef | None = None
    load_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_scene_fields(self)



def _check_scene_fields(scene: Scene) -> None:
    cube, labels, k = scene.cube, scene.labels, len(scene.class_ids)
    if cube.ndim != 3 or cube.dtype != np.float32:
        raise DataFormatError(
            f"Scene.cube must be float32 of shape (H, W, B); got {cube.dtype} {cube.shape}. Load it with load_scene."
        )
    if labels.dtype != np.int64:
        raise DataFormatError(f"Scene.labels must be int64; got {labels.dtype}. Use labels_from_ground_truth.")
    check_same_spatial_shape(cube, labels)
    if not (len(scene.class_names) == len(scene.palette) == k):
        raise DataFormatError(
            f"Scene needs one class name and one colour per class id; got {k} ids, "
            f"{len(scene.class_names)} names, {len(scene.palette)} colours."
        )
    if labels.size and (labels.min() < -1 or labels.max() >= k):
        raise DataFormatError(
            f"Scene.labels must lie in -1..{k - 1} (-1 = unlabelled); got {labels.min()}..{labels.max()}. "
            "Use labels_from_ground_truth to remap the file's ids."
        )
    if any(not 0 <= b < cube.shape[2] for b in scene.rgb_bands):
        raise DataFormatError(f"Scene.rgb_bands must lie in 0..{cube.shape[2] - 1}; got {scene.rgb_bands}.")


# ---------------------------------------------------------------- labels


def labels_from_ground_truth(
    gt: np.ndarray, class_ids: tuple[int, ...] | None = None, *, name: str = "ground truth"
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Validates a ground-truth map and remaps it to contiguous classes.

    Args:
        gt: array of shape (H, W) of non-negative integer ids (any numeric dtype; floats must
            hold whole numbers); 0 = unlabelled.
        class_ids: the ids to expect, ascending (e.g. ``spec.class_ids``); class k is
            ``class_ids[k]``, even when absent from ``gt``. ``None`` takes the ids found.
        name: how ``gt`` is named in error messages.

    Returns:
        ``(labels, class_ids)``: labels int64 of shape (H, W), -1 where ``gt`` is 0 and
        ``k`` where ``gt == class_ids[k]``; ``class_ids`` as a tuple of int, length K.

    Raises:
        DataFormatError: ``gt`` is not 2-D, not numeric, holds fractions, NaN, negative
            values or ids outside ``class_ids``, or has no labelled pixel.
        ConfigError: ``class_ids`` is not ascending, unique and >= 1.
    """
    gt = np.asarray(gt)
    _check_gt_values(gt, name)
    found = np.unique(gt[gt != 0]).astype(np.int64)
    if class_ids is None:
        ids = tuple(int(i) for i in found)
    else:
        ids = tuple(int(i) for i in class_ids)
        if list(ids) != sorted(set(ids)) or min(ids, default=1) < 1:
            raise ConfigError(f"class_ids must be unique, ascending and >= 1; got {ids}.")
        unknown = np.setdiff1d(found, ids)
        if unknown.size:
            raise DataFormatError(
                f"{name} holds ids {unknown[:10].tolist()} that this scene does not define (known ids "
                f"{list(ids)}); check that the ground-truth file belongs to this dataset."
            )
    labels = np.searchsorted(np.asarray(ids, dtype=np.int64), gt).astype(np.int64)
    labels[gt == 0] = -1
    return labels, ids


#: The largest label id a ground truth or a model may carry: maps are written as uint16, 0 = no label / no data.
MAX_LABEL_ID = 65_535


def _check_gt_values(gt: np.ndarray, name: str) -> None:
    """Raises :class:`DataFormatError` unless ``gt`` is 2-D, whole, non-negative and labels a pixel."""
    if gt.ndim != 2:
        raise DataFormatError(
            f"{name} must be 2-D (H, W); got shape {gt.shape}. Pass the label map, not the cube."
        )
    if not (np.issubdtype(gt.dtype, np.number) or gt.dtype == np.bool_) or np.iscomplexobj(gt):
        raise DataFormatError(f"{name} must hold integer class ids; got dtype {gt.dtype}.")
    if np.issubdtype(gt.dtype, np.floating):
        with np.errstate(invalid="ignore"):  # inf % 1 is NaN: counted below, without numpy's warning
            bad = ~np.isfinite(gt) | (np.mod(gt, 1) != 0)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            n_bad = int(bad.sum())
            raise DataFormatError(
                f"{name} must hold integer class ids; found {n_bad} non-integer value{'' if n_bad == 1 else 's'} "
                f"(first {gt[row, col]} at row {row}, col {col}). Pass a label map with one whole id "
                "per pixel, not probabilities or abundances."
            )
    if gt.size and gt.max() > MAX_LABEL_ID:
        raise DataFormatError(
            f"{name} must hold class ids from 1 to {MAX_LABEL_ID} (0 = unlabelled); found {gt.max():.6g}. "
            "Renumber the classes (maps are written as uint16)."
        )
    negative = gt < 0
    if negative.any():
        raise DataFormatError(
            f"{name} must hold ids >= 0 (0 = unlabelled); found {int(negative.sum())} negative values "
            f"(min {gt.min()}). If they mark unlabelled pixels, set them to 0."
        )
    if not gt.any():
        raise DataFormatError(
            f"{name} has no labelled pixel: every value is 0 (= unlabelled), shape {gt.shape}. "
            "Pass a ground truth with at least one class id > 0."
        )


# ---------------------------------------------------------------- cube


def _fill_zero(cube: np.ndarray, bad: np.ndarray) -> None:
    cube[bad] = 0.0


def _fill_interpolated(cube: np.ndarray, bad: np.ndarray) -> None:
    """Linear interpolation between the nearest finite bands of the same pixel (0 if it has none)."""
    bands = np.arange(cube.shape[2])
    for row, col in np.argwhere(bad.any(axis=2)):
        spectrum = cube[row, col]  # a view: edits land in the cube
        ok = np.isfinite(spectrum)
        spectrum[~ok] = np.interp(bands[~ok], bands[ok], spectrum[ok]) if ok.any() else 0.0


#: What ``--nan-policy`` may do with NaN/inf cube values: each name maps to a function that fills
#: them in place (``error``: none, the cube is refused). The CLI's choices come from here.
NAN_POLICIES: dict[str, Callable[[np.ndarray, np.ndarray], None] | None] = {
    "error": None,
    "zero": _fill_zero,
    "interpolate": _fill_interpolated,
}


def _check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise ConfigError(f"nan_policy must be one of {', '.join(NAN_POLICIES)}; got {nan_policy!r}.")


def _cube_to_float32(raw: np.ndarray, *, nan_policy: str, name: str) -> np.ndarray:
    """Converts a stored cube to C-contiguous float32 (the one copy), applying ``nan_policy``."""
    numeric = np.issubdtype(raw.dtype, np.number) or raw.dtype == np.bool_
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: the finite check names them
        cube = np.ascontiguousarray(raw, dtype=np.float32) if numeric else raw
    fill = NAN_POLICIES[nan_policy]
    if fill is not None and cube.ndim == 3 and cube.dtype == np.float32:
        bad = ~np.isfinite(cube)
        if bad.any():
            fill(cube, bad)
    return check_cube(cube, name=name)  # shape/dtype/finite checks; no copy left to make


def _read_cube(
    path: Path, key: str | None, *, nan_policy: str, name: str, check_raw: Callable[[np.ndarray], None] | None = None
) -> np.ndarray:
    """Loads a cube file as float32 (H, W, B); ``check_raw`` sees the stored array first."""
    raw = load_array(path, key, role="cube")
    if check_raw is not None:
        check_raw(raw)
    return _cube_to_float32(raw, nan_policy=nan_policy, name=name)


def check_band_first(cube_shape: tuple[int, ...], gt_shape: tuple[int, ...]) -> None:
    """Raises :class:`DataFormatError` naming the cube when it looks band-first: the ground truth's
    shape is the cube's last two axes, not its first two."""
    if len(cube_shape) == 3 and tuple(gt_shape) == tuple(cube_shape[1:]) and tuple(gt_shape) != tuple(cube_shape[:2]):
        b, h, w = cube_shape
        raise DataFormatError(
            f"the cube looks band-first (B, H, W) = {tuple(cube_shape)}: the ground truth is {h} x {w}, the "
            f"cube's last two axes; transpose it to (H, W, B) = ({h}, {w}, {b}), e.g. "
            "np.transpose(cube, (1, 2, 0)), and save it again."
        )


def _read_labels(
    path: Path, key: str | None, cube: np.ndarray, class_ids: tuple[int, ...] | None, *, name: str
) -> tuple[np.ndarray, tuple[int, ...]]:
    labels, ids = labels_from_ground_truth(load_array(path, key, role="gt"), class_ids, name=name)
    check_band_first(cube.shape, labels.shape)
    check_same_spatial_shape(cube, labels)
    return labels, ids


# ---------------------------------------------------------------- where files live


def cache_dir() -> Path:
    """The per-user download cache: ``$HSI_CACHE_DIR``, else ``~/.cache/hsi-classify``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "hsi-classify").expanduser()


def data_dir_candidates(data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for scene files, in order: ``data_dir``, ``$HSI_DATA_DIR``, the cache.

    Args:
        data_dir: an explicit folder (``--data-dir``), or None.

    Returns:
        Distinct folders; the first is where missing files are downloaded.
    """
    folders: list[Path] = []
    for folder in (data_dir, os.environ.get(DATA_DIR_ENV) or None, cache_dir()):
        path = Path(os.path.abspath(Path(folder).expanduser())) if folder is not None else None  # keeps symlinks
        if path is not None and path not in folders:
            folders.append(path)
    return folders


def _locate(spec: DatasetSpec, candidates: list[Path]) -> dict[str, Path | None]:
    """Each file of ``spec`` -> its path in the first candidate holding it, or None."""
    found: dict[str, Path | None] = {}
    for file in spec.files:
        paths = (folder / spec.folder / file for folder in candidates)
        found[file] = next((p for p in paths if p.is_file()), None)
    return found


def _ensure_files(spec: DatasetSpec, candidates: list[Path], *, download: bool) -> dict[str, Path]:
    """Paths of the scene's files, downloading missing ones into ``candidates[0]``."""
    found = _locate(spec, candidates)
    missing = [file for file, path in found.items() if path is None]
    target = candidates[0] / spec.folder
    looked = ", ".join(str(folder / spec.folder) for folder in candidates)
    hint = (
        f"Put the file(s) in {target}, or point --data-dir or {DATA_DIR_ENV} at a folder holding "
        f"{spec.folder}/<file>."
    )
    if missing and not download:
        raise DatasetNotFoundError(
            f"{spec.display_name} file(s) {', '.join(missing)} not found (looked in {looked}) and "
            f"downloading is off. {hint} Or allow downloading."
        )
    for file in missing:
        try:
            found[file] = _download(spec, file, target / file)
        except DownloadError as exc:  # the scene is unusable: don't wait on the other files' addresses
            still = [f for f in missing if found[f] is None]
            raise DatasetNotFoundError(
                f"{spec.display_name} file(s) {', '.join(still)} not found (looked in {looked}) and the "
                f"download failed: {exc} Or point --data-dir or {DATA_DIR_ENV} at a folder holding "
                f"{spec.folder}/<file>."
            ) from exc
    return {file: path for file, path in found.items() if path is not None}


def ensure_scene_files(name: str, *, data_dir: str | Path | None = None, download: bool = True) -> dict[str, Path]:
    """The built-in scene's file name -> path, downloading missing files as :func:`load_scene` does (it reads
    nothing: a check before the heavy imports).

    Raises:
        UnknownNameError, DatasetNotFoundError: as :func:`load_scene`.
    """
    return _ensure_files(get_spec(name), data_dir_candidates(data_dir), download=download)


def _download(spec: DatasetSpec, file: str, dest: Path) -> Path:
    """Downloads one file of ``spec``: sha256-verified where published, else shape-verified."""
    sha256 = spec.sha256.get(file)
    role: Role = "cube" if file == spec.cube_file else "gt"

    def check_shape(path: Path) -> None:
        try:
            shape = load_array(path, spec.cube_key if role == "cube" else spec.gt_key, role=role).shape
        except DataFormatError as exc:
            raise DataFormatError(f"it is not the published {file} ({exc})") from exc
        _check_spec_shape(spec, role, shape, file)

    return download_file(resolve_urls(spec, file), dest, sha256=sha256, check=None if sha256 else check_shape)


def _check_spec_shape(spec: DatasetSpec, role: Role, shape: tuple[int, ...], where: object) -> None:
    expected = spec.cube_shape if role == "cube" else spec.cube_shape[:2]
    h, w, b = spec.cube_shape
    if role == "cube" and tuple(shape) == (b, h, w):
        check_band_first(tuple(shape), (h, w))
    if tuple(shape) != expected:
        file = spec.cube_file if role == "cube" else spec.gt_file
        raise DataFormatError(
            f"{spec.display_name} {role} {where} has shape {tuple(shape)}; expected {expected}. It is "
            f"probably another version of the scene: replace it with the published {file}."
        )


# ---------------------------------------------------------------- loaders


def load_scene(
    name: str, *, data_dir: str | Path | None = None, download: bool = True, nan_policy: str = "error"
) -> Scene:
    """Loads a built-in scene, downloading missing files.

    Files already on disk are trusted (not re-hashed); a fresh download is always verified
    (sha256 where published, else the array's shape).

    Args:
        name: registry key, e.g. ``"salinas_a"`` (see :data:`hsi.data.specs.DATASETS`).
        data_dir: folder holding ``<spec.folder>/<file>``; searched first and, when given,
            the download target. Default: ``$HSI_DATA_DIR``, then the cache.
        download: fetch missing files; ``False`` raises instead.
        nan_policy: ``"error"`` refuses NaN/inf in the cube; ``"zero"`` sets them to 0;
            ``"interpolate"`` fills them linearly along each pixel's spectrum.

    Returns:
        The :class:`Scene`; cube (H, W, B) float32, labels (H, W) int64 with K = the
        spec's number of classes.

    Raises:
        UnknownNameError: no such built-in scene.
        DatasetNotFoundError: files missing and downloading off or failed; the message
            names the files, the addresses tried and the folder to put them in.
        DataFormatError: a file is unreadable, of the wrong shape, or holds bad values.
        ConfigError: ``nan_policy`` is not one of :data:`NAN_POLICIES`.
    """
    spec = get_spec(name)
    _check_nan_policy(nan_policy)
    paths = _ensure_files(spec, data_dir_candidates(data_dir), download=download)
    cube_path, gt_path = paths[spec.cube_file], paths[spec.gt_file]
    cube = _read_cube(
        cube_path,
        spec.cube_key,
        nan_policy=nan_policy,
        name=f"{spec.display_name} cube ({cube_path})",
        check_raw=lambda raw: _check_spec_shape(spec, "cube", raw.shape, cube_path),
    )
    labels, ids = _read_labels(gt_path, spec.gt_key, cube, spec.class_ids, name=f"{spec.display_name} ground truth")
    return Scene(
        name=spec.name,
        cube=cube,
        labels=labels,
        class_ids=ids,
        class_names=spec.class_names,
        palette=spec.palette,
        rgb_bands=spec.rgb_bands,
        sources={"cube": str(cube_path), "gt": str(gt_path)},
    )


def load_custom_scene(
    cube_path: str | Path,
    gt_path: str | Path | None,
    *,
    cube_key: str | None = None,
    gt_key: str | None = None,
    nan_policy: str = "error",
    name: str | None = None,
) -> Scene:
    """Loads a scene from the user's own cube and ground-truth files.

    Args:
        cube_path: cube file, shape (H, W, B) (``.mat``, ENVI, ``.npy``).
        gt_path: ground-truth file, shape (H, W), 0 = unlabelled (also ``.png``/``.tif``);
            None for a cube to classify without labels (every pixel -1, K = 0).
        cube_key: variable of the cube in a ``.mat`` file; None picks the only 3-D array.
        gt_key: variable of the ground truth; None picks the only 2-D integer array.
        nan_policy: see :func:`load_scene`.
        name: the scene's name; default the cube file's stem.

    Returns:
        The :class:`Scene`: classes are the ids found in the ground truth, ascending, named
        ``"class <id>"``, coloured by :func:`hsi.data.specs.default_palette`.

    Raises:
        DatasetNotFoundError: a file does not exist.
        DataFormatError: a file is unreadable, the shapes disagree, or values are bad.
        ConfigError: ``nan_policy`` is not one of :data:`NAN_POLICIES`.
    """
    cube_path = Path(cube_path)
    _check_nan_policy(nan_policy)
    cube = _read_cube(cube_path, cube_key, nan_policy=nan_policy, name=f"cube ({cube_path})")
    sources = {"cube": str(cube_path)}
    ids: tuple[int, ...]
    if gt_path is None:
        labels, ids = np.full(cube.shape[:2], -1, dtype=np.int64), ()
    else:
        labels, ids = _read_labels(Path(gt_path), gt_key, cube, None, name=f"ground truth ({gt_path})")
        sources["gt"] = str(gt_path)
    return Scene(
        name=name or cube_path.stem,
        cube=cube,
        labels=labels,
        class_ids=ids,
        class_names=tuple(f"class {i}" for i in ids),
        palette=default_palette(len(ids)),
        rgb_bands=_spread_bands(cube.shape[2]),
        sources=sources,
        georef=_header_georef(cube_path),
    )


def _header_georef(cube_path: Path) -> Georef | None:
    """Where an ENVI cube lies, from its header's ``map info`` (the data was read already); None otherwise."""
    if cube_path.suffix.lower() in (".mat", ".npy"):  # no header to read (and hsi.data.lazy imports torch)
        return None
    from hsi.data.lazy import envi_georef

    return envi_georef(cube_path)


def _spread_bands(n_bands: int) -> tuple[int, int, int]:
    """Three bands spread over the spectrum (3/4, 1/2, 1/4), red first, for an unknown sensor."""
    red, green, blue = (min(n_bands - 1, int(n_bands * f)) for f in (0.75, 0.5, 0.25))
    return (red, green, blue)


def dataset_status(data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Reports, for each built-in scene, whether its files are on disk and where.

    Args:
        data_dir: as in :func:`load_scene`.

    Returns:
        One dict per scene, sorted by name, with keys ``name``, ``display_name``,
        ``present`` (bool: all files found), ``path`` (folder holding them, or where they
        would be downloaded), ``missing`` (file names not found) and ``files`` (file name
        -> path found, or None).
    """
    candidates = data_dir_candidates(data_dir)
    rows: list[dict[str, Any]] = []
    for entry in DATASETS:
        spec = entry.obj
        found = _locate(spec, candidates)
        missing = [file for file, path in found.items() if path is None]
        cube_path = found[spec.cube_file]
        folder = cube_path.parent if not missing and cube_path is not None else candidates[0] / spec.folder
        rows.append(
            {
                "name": spec.name,
                "display_name": spec.display_name,
                "present": not missing,
                "path": str(folder),
                "missing": missing,
                "files": {file: str(path) if path else None for file, path in found.items()},
            }
        )
    return rows


# ---------------------------------------------------------------- scenes larger than memory

#: ``--lazy auto`` reads a cube window by window when its float32 copy would exceed this share of
#: the memory available: the in-memory run holds that copy, the reduced cube and its padded tensor.
LAZY_MEMORY_SHARE = 0.25


@dataclass(eq=False)
class LazyScene(_SceneSizes):
    """A labelled scene whose cube stays on disk (:class:`~hsi.data.lazy.LazyCube`); labels as :class:`Scene`'s.

    Only windows and chosen pixels of ``cube`` are ever read (``train --lazy``).
    """

    name: str
    cube: LazyCube
    labels: np.ndarray
    class_ids: tuple[int, ...]
    class_names: tuple[str, ...]
    palette: tuple[str, ...]
    rgb_bands: tuple[int, int, int]
    sources: dict[str, str] = field(default_factory=dict)
    nan_policy: str = "error"
    load_options: dict[str, Any] = field(default_factory=dict)  # as Scene's


    @property
    def wavelengths(self) -> tuple[float, ...] | None:
        """Band centres in nanometres from the file's header, or None."""
        return self.cube.wavelengths


#: Cube formats only the window-by-window readers take (the in-memory reader, ``hsi.data.io``, has none for them).
_WINDOWED_ONLY = (".h5", ".hdf5", ".tif", ".tiff")


def lazy_decision(cube_path: str | Path, cube_key: str | None, mode: str) -> tuple[bool, str]:
    """Whether ``train`` reads the cube window by window, and why (recorded in config.json).

    Args:
        mode: ``auto`` (an HDF5 or GeoTIFF cube, which only the window readers take, or a lazily
            readable file whose float32 size exceeds :data:`LAZY_MEMORY_SHARE` of
            :func:`hsi._core.memory.available_memory`), ``on`` or ``off``.

    Raises:
        ConfigError: ``on`` for a file the lazy readers do not handle (e.g. ``.mat``).
    """
    from hsi._core.memory import available_memory, format_bytes
    from hsi.data.lazy import is_lazy_readable, open_lazy_cube

    if mode == "off":
        return False, "--lazy off"
    if not is_lazy_readable(cube_path):
        if mode == "on":
            raise ConfigError(
                f"--lazy on reads the cube window by window, which {cube_path} (a {Path(cube_path).suffix or 'no'} "
                "file) does not allow; convert it to ENVI, .npy, HDF5 or GeoTIFF, or use --lazy auto."
            )
        return False, "cube format not read window by window"
    if mode == "on":
        return True, "--lazy on"
    if Path(cube_path).suffix.lower() in _WINDOWED_ONLY:
        return True, f"cube format {Path(cube_path).suffix} read window by window only"
    height, width, bands = open_lazy_cube(cube_path, cube_key).shape  # the header only
    needed, limit = height * width * bands * 4, int(available_memory() * LAZY_MEMORY_SHARE)
    if needed > limit:
        return True, (f"float32 cube {format_bytes(needed)} > {LAZY_MEMORY_SHARE:.0%} of available memory "
                      f"({format_bytes(limit)})")
    return False, f"float32 cube {format_bytes(needed)} <= {LAZY_MEMORY_SHARE:.0%} of available memory"


def clean_window(raw: np.ndarray, *, nan_policy: str, ignore_value: float | None = None, where: str = "cube",
                 origin: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """A window read from disk as the models' input cube: float32, pixels outside the data
    (:func:`~hsi.data.lazy.outside_data`) set to 0, other non-finite values handled by ``nan_policy``.

    The one cleaning rule for windows: ``predict`` applies it tile by tile
    (``hsi.experiments.predict.tile_features``), so a run trained on windows sees what its map
    is made from.

    Args:
        raw: (h, w, B) in the stored dtype.
        where, origin: the cube's name and the window's top-left scene pixel, for messages.

    Returns:
        ``(cube (h, w, B) float32, outside (h, w) bool)``.

    Raises:
        DataFormatError: non-finite values inside the data with ``nan_policy="error"``.
    """
    from hsi.data.lazy import outside_data

    outside = outside_data(raw, ignore_value)
    cube = raw.astype(np.float32)
    cube[outside] = 0.0
    bad = ~np.isfinite(cube)
    if bad.any():
        fill = NAN_POLICIES[nan_policy]
        if fill is None:
            pixels = np.argwhere(bad.any(axis=2))
            first = ", ".join(f"(row {r + origin[0]}, col {c + origin[1]})" for r, c in pixels[:3])
            raise DataFormatError(
                f"{where} must hold finite values; found {int(bad.sum())} NaN/infinite values in {len(pixels)} pixels, "
                f"first at {first} (in the window of rows {origin[0]}.., cols {origin[1]}..; pixels whose whole "
                "spectrum is NaN are nodata). Clean the file or pass --nan-policy zero|interpolate."
            )
        fill(cube, bad)
    return cube, outside


def load_lazy_scene(
    cube_path: str | Path, gt_path: str | Path, *, cube_key: str | None = None, gt_key: str | None = None,
    nan_policy: str = "error", name: str | None = None,
) -> LazyScene:
    """Opens a cube for window reads (its header only) and loads its ground truth, as :func:`load_custom_scene`.

    Raises:
        DatasetNotFoundError / DataFormatError: as :func:`load_custom_scene`; the ground truth's
            shape is checked against the header's.
    """
    from hsi.data.lazy import open_lazy_cube

    cube_path = Path(cube_path)
    _check_nan_policy(nan_policy)
    cube = open_lazy_cube(cube_path, cube_key)
    labels, ids = labels_from_ground_truth(load_array(gt_path, gt_key, role="gt"), None,
                                           name=f"ground truth ({gt_path})")
    check_band_first(cube.shape, labels.shape)
    if labels.shape != cube.shape[:2]:
        raise DataFormatError(
            f"ground truth ({gt_path}) must have the cube's spatial shape {cube.shape[:2]}; got {labels.shape}. "
            "Check that the ground-truth file belongs to this cube (and is not transposed)."
        )
    return LazyScene(
        name=name or cube_path.stem, cube=cube, labels=labels, class_ids=ids,
        class_names=tuple(f"class {i}" for i in ids), palette=default_palette(len(ids)),
        rgb_bands=_spread_bands(cube.shape[2]), sources={"cube": str(cube_path), "gt": str(gt_path)},
        nan_policy=nan_policy,
    )
