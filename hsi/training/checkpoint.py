"""Checkpoints that hold no code: a run's model as safetensors + JSON; weights-only torch files.

A run writes its model as two files (:func:`save_run_model`): ``model.safetensors`` holds every
tensor (network weights, a scikit-learn estimator's skops bytes, PCA arrays) and
``model.json`` everything else as plain JSON (model name and sizes, classes, scene facts,
settings), the SHA-256 of the safetensors file and of its own content. Neither format can
carry code, so reading them runs none. :func:`load_run_model` reads a run folder, either of
the two files, or a ``model.pt`` written by earlier versions (and ``resume.pt``, the run's own
scratch file), through :func:`load_checkpoint`: a weights-only torch file whose pickle is first
inspected opcode by opcode, without executing it, and refused when it would call anything but
torch's tensor rebuilders.

Every refusal is a :class:`~hsi._core.errors.CheckpointError` in the tool's own words (what
the file is, what to do); no library message or warning reaches the user. The checksums guard
against accidents (a damaged copy, a hand edit), not forgery: anyone can recompute them.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hsi
from hsi._core.errors import CheckpointError
from hsi._core.files import atomic_save_json, atomic_write, atomic_write_bytes, to_jsonable
from hsi._core.memory import check_fits_in_memory
from hsi.data.scene import MAX_LABEL_ID
from hsi.training.recipe import PostProcessing, is_smoothing_window

__all__ = [
    "FORMAT", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "MODEL_JSON", "MODEL_TENSORS", "RunModel", "content_digest",
    "check_run_model", "load_checkpoint", "load_run_model", "pickle_callables", "save_checkpoint", "save_run_model",
]

FORMAT = "hsi-classify-checkpoint"
FORMAT_VERSION = 2  # 2 adds content_sha256; version 1 files (no checksum) still load
_READABLE_VERSIONS = (1, 2)
_DIGEST_KEY = "content_sha256"

MODEL_FORMAT = "hsi-classify-model"
MODEL_FORMAT_VERSION = 1
MODEL_JSON = "model.json"
MODEL_TENSORS = "model.safetensors"
LEGACY_MODEL = "model.pt"
_TENSOR_REF = "$tensor"
_USE = "pass a run folder written by hsi-classify train (or its model.json)"

# Bounds of what a run model may hold (docs/security.md). A model.json is a few kB: 65,535 classes with
# names of 100 characters still fit in 8 MiB.
_MAX_JSON_BYTES = 8 << 20
#: JSON objects and lists (each tensor is named by one object): checked on the bytes, before parsing.
_MAX_JSON_CONTAINERS = 100_000
#: Memory parsing may take per byte of JSON (a list of short numbers: about 15x), checked before parsing.
_JSON_EXPANSION = 16
#: Containers inside one another: model.json nests 4 deep (an ensemble member's tensor reference).
MAX_NESTING = 8
_MAX_TORCH_NESTING = 64
MAX_BANDS = 65_535
MAX_CLASSES = 65_535
MAX_PATCH_SIZE = 255
#: An ensemble's other networks (``members``), and the tensors of one network's weights.
MAX_MEMBERS = 255
MAX_WEIGHTS = 16_384
MAX_DENOISER_DEPTH = 1_000
MAX_DENOISER_WIDTH = 4_096
MAX_DENOISER_NEIGHBOURS = 64
_MAX_TEXT = 4_096

#: The only callables a weights-only hsi-classify ``.pt`` pickle names: torch's tensor rebuilders.
_TORCH_GLOBALS = frozenset({
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "collections.OrderedDict",
})
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # what torch's pre-zip format pickles first
#: How a pickle spells a module -> how a user knows it (os.system pickles as posix.system).
_MODULE_ALIASES = {"posix": "os", "nt": "os", "__builtin__": "builtins"}


# ---------------------------------------------------------------- model.safetensors + model.json


def _split_tensors(value: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` with every array replaced by ``{"$tensor": name}``; the tensors go to ``tensors``."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        tensor = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
        if name in tensors:
            raise ValueError(f"two tensors of the checkpoint would share the name {name!r}")
        tensors[name] = tensor.contiguous().clone()  # safetensors refuses views sharing memory
        return {_TENSOR_REF: name}
    if isinstance(value, dict):
        return {str(k): _split_tensors(v, f"{name}/{k}" if name else str(k), tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_tensors(v, f"{name}/{i}", tensors) for i, v in enumerate(value)]
    return to_jsonable(value)


def _json_digest(content: dict[str, Any]) -> str:
    """SHA-256 of a model.json's content in canonical form (sorted keys), its own digest left out."""
    canonical = {k: v for k, v in content.items() if k != _DIGEST_KEY}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


#: A run model's own entries; every other entry of its payload is the classifier's state.
_RUN_ENTRIES = ("pca", "denoiser", "classes", "scene", "pad_mode", "config")
#: What a file adds around the payload: format facts, its tensors file and checksum.
_FILE_ENTRIES = ("format", "format_version", "package_version", "tensors", _DIGEST_KEY)


# eq=False: fields hold tensors, whose == is elementwise (a model is compared by identity).
@dataclass(frozen=True, eq=False)
class RunModel:
    """A run's saved model: what ``train`` writes (:func:`save_run_model`) and ``predict`` reads.

    Attributes:
        classifier_state: the classifier's ``state()`` entries (``model`` {name, in_chans, num_classes,
            patch_size}; ``state_dict``, ``members``, ``tta`` for networks; ``estimator_skops`` for an
            estimator): what :func:`hsi.training.factory.classifier_from_state` rebuilds it from.
        pca: the band reduction (PCA or MNF): ``SpectralPCA.state_dict()``, mean (B,), components (C, B).
        denoiser: the denoising front end's state (``Denoiser.state()``), or None without one.
        class_ids: the training scene's label ids, one per class (K,).
        class_names: one name per class (K,).
        palette: one hex colour per class (K,).
        scene_name: the training scene's name.
        n_bands: B, the band count of the cubes the model reads.
        rgb_bands: 0-based (red, green, blue) bands for false-colour display.
        wavelengths: each band's centre in nm (B,), where the training cube gave them, else None.
        pad_mode: how the scene's edges are padded for patches.
        config: the run's settings (``RunConfig.to_dict()``; older runs lack later keys).
        format, format_version, package_version: the file's facts, when loaded (None when built).
    """

    classifier_state: dict[str, Any]
    pca: dict[str, Any]
    denoiser: dict[str, Any] | None
    class_ids: tuple[int, ...]
    class_names: tuple[str, ...]
    palette: tuple[str, ...]
    scene_name: str
    n_bands: int
    rgb_bands: tuple[int, ...]
    wavelengths: tuple[float, ...] | None
    pad_mode: str
    config: dict[str, Any]
    format: str | None = None
    format_version: int | None = None
    package_version: str | None = None

    @property
    def n_classes(self) -> int:
        """K, the classes the model predicts."""
        return len(self.class_ids)

    @property
    def model_name(self) -> str:
        """The model's registered name: the run's ``config.model``, else the classifier state's."""
        return str(self.config.get("model") or self.classifier_state["model"]["name"])

    @property
    def post_processing(self) -> PostProcessing:
        """The run's post-processing stage, the one place a model's is read: its recipe's ``smooth`` (0 = none,
        as for runs made before it existed) and ``tta`` (None for a model it does not act on)."""
        return PostProcessing(tta=self.config.get("tta") is True, smooth=int(self.config.get("smooth") or 0))

    def to_payload(self) -> dict[str, Any]:
        """The dict :func:`save_run_model` writes, in the entries' saved order (model.json keeps it)."""
        scene: dict[str, Any] = {"name": self.scene_name, "n_bands": self.n_bands, "rgb_bands": list(self.rgb_bands)}
        if self.wavelengths is not None:
            scene["wavelengths"] = list(self.wavelengths)
        return {
            **self.classifier_state,
            "pca": self.pca,
            **({"denoiser": self.denoiser} if self.denoiser is not None else {}),
            "classes": {"ids": list(self.class_ids), "names": list(self.class_names), "palette": list(self.palette)},
            "scene": scene,
            "pad_mode": self.pad_mode,
            "config": self.config,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RunModel:
        """The model a payload describes (one :func:`check_run_model` accepts, or :meth:`to_payload`'s).

        Entries older runs lack are None or empty: ``denoiser``, ``scene.wavelengths``, ``scene.rgb_bands``.
        """
        classes, scene = payload["classes"], payload["scene"]
        wavelengths = scene.get("wavelengths")
        return cls(
            classifier_state={k: v for k, v in payload.items() if k not in _RUN_ENTRIES + _FILE_ENTRIES},
            pca=payload["pca"],
            denoiser=payload.get("denoiser"),
            class_ids=tuple(int(i) for i in classes["ids"]),
            class_names=tuple(str(name) for name in classes["names"]),
            palette=tuple(str(colour) for colour in classes["palette"]),
            scene_name=str(scene["name"]),
            n_bands=int(scene["n_bands"]),
            rgb_bands=tuple(int(band) for band in scene.get("rgb_bands", ())),
            wavelengths=None if wavelengths is None else tuple(float(w) for w in wavelengths),
            pad_mode=str(payload["pad_mode"]),
            config=dict(payload["config"]),
            format=payload.get("format"),
            format_version=payload.get("format_version"),
            package_version=payload.get("package_version"),
        )


def save_run_model(folder: str | Path, model: RunModel) -> tuple[Path, Path]:
    """Writes a run's model as ``model.safetensors`` (tensors) and ``model.json`` (plain data).

    Args:
        folder: the run folder.
        model: what :func:`hsi.experiments.steps.run_checkpoint` returns.

    Returns:
        The paths of model.json and model.safetensors. The JSON is written last, so a
        model.json only ever names a complete safetensors file.
    """
    from safetensors.torch import save as serialize  # returns bytes; the writing is atomic_write_bytes's

    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    content = _split_tensors(model.to_payload(), "", tensors)
    blob = serialize(tensors)
    tensors_path = atomic_write_bytes(folder / MODEL_TENSORS, blob)
    data = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "package_version": hsi.__version__,
            "tensors": {"file": MODEL_TENSORS, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()},
            **content}
    data[_DIGEST_KEY] = _json_digest(data)
    json_path = atomic_save_json(folder / MODEL_JSON, data)
    return json_path, tensors_path


def load_run_model(path: str | Path) -> RunModel:
    """Reads a run's model from a run folder, model.json, model.safetensors or a legacy model.pt.

    Returns:
        The model :func:`save_run_model` wrote (arrays as CPU tensors), with the file's format
        facts; a model.pt's the same way.

    Raises:
        CheckpointError: missing, empty, plain text, executable code, truncated, damaged,
            written by another tool or by a newer version; the message says which.
    """
    path = Path(path)
    data = _load_run_model(path)
    check_run_model(data, path)
    return RunModel.from_payload(data)


def _load_run_model(path: Path) -> dict[str, Any]:
    if path.is_dir():
        if (path / MODEL_JSON).is_file():
            return _load_model_json(path / MODEL_JSON)
        if (path / LEGACY_MODEL).is_file():
            return load_checkpoint(path / LEGACY_MODEL)
        raise CheckpointError(
            f"folder {path} holds no {MODEL_JSON} (nor a {LEGACY_MODEL} of earlier versions); "
            "pass the folder of a finished train run."
        )
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; {_USE}.")
    if path.suffix.lower() == ".safetensors":
        json_path = path.with_suffix(".json")
        if not json_path.is_file():
            raise CheckpointError(
                f"{path} holds weights only; its {json_path.name} (model, classes, settings) is not next to it. "
                "Copy both files of the run, or pass the run folder."
            )
        return _load_model_json(json_path)
    head = _read_head(path)
    if head[:1] == b"{" or path.suffix.lower() == ".json":
        return _load_model_json(path)
    return load_checkpoint(path)


class _Invalid(Exception):
    """One entry of a run model that is not what hsi-classify writes (the message names it)."""


# ---------------------------------------------------------------- the declared schema of a run model


def _kind(value: Any) -> str:
    """A value's JSON type in a user's words."""
    if isinstance(value, torch.Tensor):
        return "a tensor"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a text", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), f"a {type(value).__name__}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Spec:
    """One entry of :data:`MODEL_SCHEMA`: :meth:`check` raises :class:`_Invalid` naming the entry."""

    def check(self, value: Any, where: str) -> None:
        raise NotImplementedError


class _Int(_Spec):
    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Invalid(f"'{where}' is {_kind(value)}, not an integer")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise _Invalid(f"'{where}' is {_shown(value)}, not an integer from {self.low} to {self.high}")


class _Real(_Spec):
    """A finite number (an integer too) in ``[low, high]``; ``low`` itself excluded with ``above``."""

    def __init__(self, low: float = -1e308, high: float = 1e308, *, above: bool = False) -> None:
        self.low, self.high, self.above = low, high, above

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Invalid(f"'{where}' is {_kind(value)}, not a number")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float
            number = float("inf")
        if not (self.low < number if self.above else self.low <= number) or not number <= self.high:
            raise _Invalid(f"'{where}' is {_shown(value)}, not a number from {self.low:g} to {self.high:g}")


class _Bool(_Spec):
    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, bool):
            raise _Invalid(f"'{where}' is {_kind(value)}, not true or false")


class _Null(_Spec):
    def check(self, value: Any, where: str) -> None:
        if value is not None:
            raise _Invalid(f"'{where}' is {_kind(value)}, not null")


class _Str(_Spec):
    """Text of at most ``max_len`` characters; ``printable`` (shown in messages: no line break); one of
    ``choices`` (a callable, so a registry is read when checked); matching ``pattern``."""

    def __init__(self, max_len: int | None = _MAX_TEXT, *, printable: bool = False,
                 choices: Any = None, pattern: tuple[str, str] | None = None) -> None:
        self.max_len, self.printable, self.choices = max_len, printable, choices
        self.pattern = (re.compile(pattern[0]), pattern[1]) if pattern else None

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise _Invalid(f"'{where}' is {_kind(value)}, not a text")
        if self.max_len is not None and len(value) > self.max_len:
            raise _Invalid(f"'{where}' is a text of {len(value)} characters (at most {self.max_len})")
        if self.printable and not value.isprintable():
            raise _Invalid(f"'{where}' holds a line break or another control character")
        if self.pattern is not None and not self.pattern[0].fullmatch(value):
            raise _Invalid(f"'{where}' is {_shown(value)}, not {self.pattern[1]}")
        if self.choices is not None and value not in (names := tuple(self.choices())):
            raise _Invalid(f"'{where}' is {_shown(value)}, not one of {', '.join(names)}")


class _Tensor(_Spec):
    """A tensor: in model.json a reference ``{"$tensor": name}``, once read the tensor itself."""

    def check(self, value: Any, where: str) -> None:
        if isinstance(value, torch.Tensor):
            return
        if not (isinstance(value, dict) and set(value) == {_TENSOR_REF} and isinstance(value[_TENSOR_REF], str)
                and len(value[_TENSOR_REF]) <= _MAX_TEXT):
            raise _Invalid(f"'{where}' is {_kind(value)}, not a tensor")


class _List(_Spec):
    def __init__(self, item: _Spec, max_len: int, min_len: int = 0) -> None:
        self.item, self.max_len, self.min_len = item, max_len, min_len

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise _Invalid(f"'{where}' is {_kind(value)}, not a list")
        if not self.min_len <= len(value) <= self.max_len:
            raise _Invalid(f"'{where}' holds {len(value)} items, not {self.min_len} to {self.max_len}")
        for index, item in enumerate(value):
            self.item.check(item, f"{where}[{index}]")


class _Map(_Spec):
    """An object of any keys (texts of at most ``key_len``), each value ``value``'s."""

    def __init__(self, value: _Spec, max_keys: int, key_len: int = 256) -> None:
        self.value, self.max_keys, self.key_len = value, max_keys, key_len

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _Invalid(f"'{where}' is {_kind(value)}, not an object")
        if len(value) > self.max_keys:
            raise _Invalid(f"'{where}' holds {len(value)} entries (at most {self.max_keys})")
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > self.key_len:
                raise _Invalid(f"'{where}' has a key that is not a text of at most {self.key_len} characters")
            self.value.check(item, f"{where}.{key}")


class _Obj(_Spec):
    """An object of declared ``fields``; those in ``required`` must be there; other keys are refused,
    or checked by ``other``."""

    def __init__(self, fields: dict[str, _Spec], required: tuple[str, ...] = (), other: _Spec | None = None) -> None:
        self.fields, self.required, self.other = fields, required, other

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _Invalid(f"'{where or 'model.json'}' is {_kind(value)}, not an object")
        for key in self.required:
            if key not in value:
                raise _Invalid(f"no '{where + '.' if where else ''}{key}' entry")
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            spec = self.fields.get(key, self.other) if isinstance(key, str) else None
            if spec is None:
                raise _Invalid(f"'{name[:60]}' is not an entry hsi-classify writes")
            spec.check(item, name)


class _AnyOf(_Spec):
    def __init__(self, *specs: _Spec, what: str) -> None:
        self.specs, self.what = specs, what

    def check(self, value: Any, where: str) -> None:
        for spec in self.specs:
            try:
                spec.check(value, where)
                return
            except _Invalid:
                continue
        raise _Invalid(f"'{where}' is {_kind(value)}, not {self.what}")


class _AnyValue(_Spec):
    """Entries hsi-classify does not read (kept from other versions): any value, its nesting bounded before."""

    def check(self, value: Any, where: str) -> None:
        return


def _pad_modes() -> list[str]:
    from hsi.data.padding import PAD_MODES

    return PAD_MODES.names()


_TENSOR = _Tensor()
_COLOUR = r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})"  # what matplotlib reads as a hex colour
_WEIGHTS = _Map(_TENSOR, max_keys=MAX_WEIGHTS)
_SCALAR = _AnyOf(_Null(), _Bool(), _Int(), _Real(), _Str(), what="null, true/false, a number or a text")
_CONFIG_VALUE = _AnyOf(_SCALAR, _List(_SCALAR, 1_024), _Map(_SCALAR, 1_024),
                       what="a number, a text, or a list or object of them")
#: What a run model holds: each entry's type, range, and text and list lengths. Read from model.json
#: (tensors as references) before the tensors are, and again once they are (and for a legacy model.pt);
#: :func:`check_run_model` then checks what the entries say about one another and about the tensors.
MODEL_SCHEMA = _Obj({
    "format": _Str(64), "format_version": _Int(1, 1 << 20), "package_version": _Str(64), "content_sha256": _Str(64),
    "tensors": _Obj({"file": _Str(255), "bytes": _Int(0, 1 << 50), "sha256": _Str(64)}, ("file", "bytes", "sha256")),
    "model": _Obj({"name": _Str(64, printable=True), "in_chans": _Int(1, MAX_BANDS),
                   "num_classes": _Int(1, MAX_CLASSES), "patch_size": _Int(1, MAX_PATCH_SIZE)},
                  ("name", "in_chans", "num_classes", "patch_size")),
    "state_dict": _WEIGHTS,
    "members": _List(_WEIGHTS, MAX_MEMBERS),
    "tta": _Bool(),
    "estimator_skops": _TENSOR,
    "pca": _Obj({"n_components": _Int(1, MAX_BANDS), "mean": _TENSOR, "components": _TENSOR,
                 "scale": _Real(0.0, 3.4e38, above=True), "explained_variance_ratio": _TENSOR},
                ("n_components", "mean", "components", "scale", "explained_variance_ratio")),
    "denoiser": _Obj({"kind": _Str(16, choices=lambda: ("dncnn",)), "neighbours": _Int(0, MAX_DENOISER_NEIGHBOURS),
                      "depth": _Int(2, MAX_DENOISER_DEPTH), "width": _Int(1, MAX_DENOISER_WIDTH),
                      "band_mean": _TENSOR, "band_std": _TENSOR, "train_seconds": _Real(0.0, 1e12),
                      "weights": _WEIGHTS},
                     ("kind", "neighbours", "depth", "width", "band_mean", "band_std", "weights")),
    # Ids and names are bounded by check_run_model (its messages name the bound).
    "classes": _Obj({"ids": _List(_Int(), MAX_CLASSES, 1), "names": _List(_Str(None), MAX_CLASSES, 1),
                     "palette": _List(_Str(9, pattern=(_COLOUR, "a colour such as #e6194b")), MAX_CLASSES, 1)},
                    ("ids", "names", "palette")),
    "scene": _Obj({"name": _Str(256, printable=True), "n_bands": _Int(1, MAX_BANDS),
                   "rgb_bands": _List(_Int(0, MAX_BANDS - 1), 3), "wavelengths": _List(_Real(), MAX_BANDS)},
                  ("name", "n_bands"), other=_AnyValue()),
    "pad_mode": _Str(32, choices=_pad_modes),
    "config": _Map(_CONFIG_VALUE, max_keys=1_024),
}, ("model", "pca", "classes", "scene", "pad_mode", "config"), other=_AnyValue())


def check_nesting(value: Any, what: str, limit: int = MAX_NESTING) -> None:
    """Refuses lists and objects nested deeper than ``limit`` (read iteratively: no recursion to exhaust).

    Every later step that walks a model (its checksum, joining its tensors, the schema) recurses
    once per level, so this runs first.

    Raises:
        CheckpointError: nested deeper than ``limit``.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            ours = " (hsi-classify writes 4)" if limit == MAX_NESTING else ""
            raise CheckpointError(
                f"{what} nests lists and objects more than {limit} deep{ours}: it was damaged or edited, or written "
                f"by another tool; {_USE}."
            )
        stack.extend((child, depth + 1) for child in children)


def _tensor(data: dict[str, Any], key: str, where: str, shape: tuple[int, ...],
            dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
    """The tensor ``data[key]`` after its shape, dtype and finiteness are checked; None for a reference."""
    value = data[key]
    if not isinstance(value, torch.Tensor):
        return None
    if tuple(value.shape) != shape or value.dtype != dtype:
        raise _Invalid(f"'{where}.{key}' has shape {tuple(value.shape)} {value.dtype}, not {shape} {dtype}")
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise _Invalid(f"'{where}.{key}' holds NaN or infinity")
    return value


#: The largest label id a model may carry (the ground truth's bound).
MAX_CLASS_ID = MAX_LABEL_ID
#: The longest class name a model may carry (names are drawn in legends and written in reports).
MAX_CLASS_NAME = 200


def check_run_model(data: dict[str, Any], path: str | Path) -> None:
    """Checks a run model against :data:`MODEL_SCHEMA`, then what its entries say about one another.

    What ``predict`` reads from a checkpoint is checked here, so that an edited file is refused
    in one line instead of failing somewhere inside. Tensors may still be model.json's references
    (then only the plain entries are checked); once read, their dtypes, shapes and values are too,
    and a denoiser's network is compared with its sizes on PyTorch's meta device (no memory) and
    with the memory available, before anything is built.

    Raises:
        CheckpointError: an entry is missing, of another type or range, or inconsistent with the others.
        InputTooLargeError: building the denoiser needs more memory than is available.
    """
    try:
        MODEL_SCHEMA.check(data, "")
        model = data["model"]
        in_chans, num_classes = model["in_chans"], model["num_classes"]
        from hsi.models import MODELS  # an unknown name: refused in the registry's words

        estimator = MODELS.get(model["name"]).kind == "sklearn"
        if ("estimator_skops" if estimator else "state_dict") not in data:
            raise _Invalid(f"no '{'estimator_skops' if estimator else 'state_dict'}' entry, which model "
                           f"{model['name']!r} needs")
        n_bands = data["scene"]["n_bands"]
        if any(band >= n_bands for band in data["scene"].get("rgb_bands", [])):
            raise _Invalid(f"'scene.rgb_bands' names a band beyond the {n_bands} bands")
        pca = data["pca"]
        n_components = pca["n_components"]
        if n_components != in_chans:
            raise _Invalid(f"'pca.n_components' is {n_components} but the model reads {in_chans} bands")
        if n_components > n_bands:
            raise _Invalid(f"'pca.n_components' is {n_components}, more than the {n_bands} bands")
        _tensor(pca, "mean", "pca", (n_bands,))
        _tensor(pca, "components", "pca", (n_components, n_bands))
        _tensor(pca, "explained_variance_ratio", "pca", (n_components,))
        classes = data["classes"]
        for key in ("ids", "names", "palette"):
            if len(classes[key]) != num_classes:
                raise _Invalid(f"'classes.{key}' is not {num_classes} values")
        ids, names = classes["ids"], classes["names"]
        if len(set(ids)) != len(ids) or not all(1 <= i <= MAX_CLASS_ID for i in ids):
            raise _Invalid(f"'classes.ids' are not {num_classes} distinct label ids from 1 to {MAX_CLASS_ID}")
        if any(len(name) > MAX_CLASS_NAME for name in names):
            raise _Invalid(f"'classes.names' holds a name longer than {MAX_CLASS_NAME} characters")
        smooth = data["config"].get("smooth") or 0  # runs before map smoothing existed: none
        if not is_smoothing_window(smooth):
            raise _Invalid(f"'config.smooth' is {smooth!r}, not 0 or an odd window side from 3 to 31")
        if "denoiser" in data:
            _check_denoiser(data["denoiser"], n_bands, path)
        skops = data.get("estimator_skops")
        if estimator and isinstance(skops, torch.Tensor):
            if skops.dtype != torch.uint8 or skops.ndim != 1:
                raise _Invalid("'estimator_skops' is not bytes")
            from hsi.training.estimator_checks import load_estimator

            # Read and checked here, before predict says anything, as a network's weights are checked against
            # its sizes; predict reads it again (SklearnClassifier.from_state), with the same checks.
            load_estimator(skops.numpy().tobytes(), model["name"], n_features=in_chans, n_classes=num_classes)
    except _Invalid as err:
        raise CheckpointError(
            f"checkpoint {path} is not a model hsi-classify wrote ({err}): it was damaged or edited after saving, "
            "or written by another tool; train again."
        ) from None


def _check_denoiser(state: dict[str, Any], n_bands: int, path: str | Path) -> None:
    """A denoiser's sizes against its tensors (on the meta device) and the memory budget, before it is built."""
    if state["neighbours"] > n_bands:
        raise _Invalid(f"'denoiser.neighbours' is {state['neighbours']}, more than the {n_bands} bands")
    if _tensor(state, "band_mean", "denoiser", (n_bands,)) is not None:
        std = _tensor(state, "band_std", "denoiser", (n_bands,))
        if std is not None and not bool((std > 0).all()):
            raise _Invalid("'denoiser.band_std' holds a value that is not positive")
    weights = state["weights"]
    if not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return  # model.json's references: checked once the tensors are read
    if state["depth"] > len(weights):  # every layer holds at least one tensor: no build of a deeper network
        raise _Invalid(f"'denoiser.depth' is {state['depth']}, but its weights hold {len(weights)} tensors")
    from hsi.models.dncnn import dncnn

    with torch.device("meta"):
        probe = dncnn(neighbours=state["neighbours"], depth=state["depth"], width=state["width"])
    expected = {k: (tuple(v.shape), v.dtype) for k, v in probe.state_dict().items()}
    if expected != {k: (tuple(v.shape), v.dtype) for k, v in weights.items()}:
        raise _Invalid("'denoiser.weights' do not fit its depth, width and neighbours")
    if any(v.is_floating_point() and not bool(torch.isfinite(v).all()) for v in weights.values()):
        raise _Invalid("'denoiser.weights' hold NaN or infinity")
    check_fits_in_memory(sum(v.numel() * v.element_size() for v in weights.values()),
                         what=f"checkpoint {path}'s denoiser", fix="use a machine with more memory")


def _read_head(path: Path, n_bytes: int = 64) -> bytes:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file; {_USE}.")
    with path.open("rb") as fh:
        head = fh.read(n_bytes)
    if not head:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); copy it again, or {_USE}.")
    return head


def _load_model_json(path: Path) -> dict[str, Any]:
    """Reads model.json and its sibling safetensors file, checking both digests."""
    _read_head(path)
    size = path.stat().st_size
    if size > _MAX_JSON_BYTES:
        raise CheckpointError(
            f"{path} is not an hsi-classify model.json ({size} bytes; ours are a few kB, at most "
            f"{_MAX_JSON_BYTES >> 20} MiB); {_USE}."
        )
    check_fits_in_memory(_JSON_EXPANSION * size, what=f"model file {path} ({size} bytes)",
                         fix="use a machine with more memory")
    raw = path.read_bytes()
    # Counted on the bytes, before parsing: a file of millions of empty objects is refused for the cost of a scan.
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > _MAX_JSON_CONTAINERS:
        raise CheckpointError(
            f"{path} is not an hsi-classify model.json (it holds {containers} JSON objects and lists; ours hold a "
            f"few hundred, at most {_MAX_JSON_CONTAINERS}); {_USE}."
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise CheckpointError(
            f"{path} nests lists and objects hundreds deep (hsi-classify writes 4): it was damaged or edited, or "
            f"written by another tool; {_USE}."
        ) from None
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(
            f"{path} is not valid JSON: it is truncated or damaged; copy it again, or {_USE}."
        ) from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path} was written by another tool (no '{MODEL_FORMAT}' marker); {_USE}.")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path} has no valid format version: it was damaged or edited; {_USE}.")
    if version > MODEL_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer version (hsi-classify {_version_text(data)}, model "
            f"format {version}; this is {hsi.__version__}, which reads format {MODEL_FORMAT_VERSION}). "
            "Upgrade hsi-classify to use it."
        )
    check_nesting(data, str(path))  # before the checksum and the joining of tensors walk it recursively
    try:
        intact = data.get(_DIGEST_KEY) == _json_digest(data)
    except (TypeError, ValueError):  # NaN or other non-JSON values put in by hand
        intact = False
    if not intact:
        raise CheckpointError(
            f"{path} fails its integrity check: its content does not match the checksum saved with it, so it was "
            "damaged or edited after saving. Use an intact copy (or train again)."
        )
    check_run_model(data, path)  # the plain entries, before the tensors are read
    tensors = _load_tensors(path, data.get("tensors"))
    content = {k: v for k, v in data.items() if k not in ("tensors", _DIGEST_KEY)}
    try:
        return _join_tensors(content, tensors, set())
    except KeyError as err:
        raise CheckpointError(
            f"{path} names a tensor {_shown(err.args[0])} that its safetensors file does not hold; the two files "
            "come from different runs. Copy both files of one run."
        ) from None
    except _Invalid as err:
        raise CheckpointError(
            f"checkpoint {path} is not a model hsi-classify wrote ({err}): it was damaged or edited after saving, "
            "or written by another tool; train again."
        ) from None


def _version_text(data: dict[str, Any]) -> str:
    """The package version a file claims, as a one-line message can show it."""
    text = str(data.get("package_version"))[:20]
    return text if text.isprintable() else repr(text)


def _load_tensors(json_path: Path, entry: Any) -> dict[str, torch.Tensor]:
    """The sibling safetensors file, after its size and SHA-256 match ``entry``."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    if not (isinstance(entry, dict) and isinstance(entry.get("bytes"), int) and isinstance(entry.get("sha256"), str)):
        raise CheckpointError(f"{json_path} does not describe its tensors file: it was damaged or edited; {_USE}.")
    path = json_path.with_suffix(".safetensors")
    if not path.is_file():
        raise CheckpointError(
            f"{json_path} needs {path.name} next to it (the weights), and it is missing; copy both files of the run."
        )
    size = path.stat().st_size
    if size != entry["bytes"]:
        state = "is truncated" if size < entry["bytes"] else "is longer than saved"
        raise CheckpointError(
            f"{path} {state} ({size} bytes; {json_path.name} says {entry['bytes']}); copy it again (or train again)."
        )
    check_fits_in_memory(2 * size, what=f"checkpoint {path}", fix="copy an intact checkpoint of the run")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise CheckpointError(
            f"{path} fails its integrity check: its content does not match the checksum in {json_path.name}, so "
            "it was damaged or edited after saving, or the two files come from different runs. Use an intact copy."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(load(blob))
    except (SafetensorError, ValueError, RuntimeError, OverflowError):
        raise CheckpointError(f"{path} is damaged (not a readable safetensors file); copy it again.") from None


def _join_tensors(value: Any, tensors: dict[str, torch.Tensor], used: set[str]) -> Any:
    """``value`` with each ``{"$tensor": name}`` replaced by the tensor; each name may be used once (hsi-classify
    writes every tensor once), so a file cannot make many networks out of the same bytes."""
    if isinstance(value, dict):
        if set(value) == {_TENSOR_REF} and isinstance(value[_TENSOR_REF], str):
            name = value[_TENSOR_REF]
            if name in used:
                raise _Invalid(f"it names tensor {_shown(name)} more than once")
            used.add(name)
            return tensors[name]
        return {k: _join_tensors(v, tensors, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_tensors(v, tensors, used) for v in value]
    return value


# ---------------------------------------------------------------- weights-only torch files (model.pt, resume.pt)


def _to_safe(value: Any) -> Any:
    """numpy arrays -> tensors, recursively, so ``torch.load(weights_only=True)`` accepts the file."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {k: _to_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _update_digest(digest: hashlib._Hash, value: Any) -> None:
    """Feeds a canonical encoding of ``value`` (tensors by dtype, shape and bytes) to ``digest``."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key, item in value.items():  # insertion order survives torch.save / torch.load
            digest.update(f"K{key!r}".encode())
            _update_digest(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _update_digest(digest, item)
    else:  # str, int, float, bool, None: repr round-trips exactly
        digest.update(f"V{type(value).__name__}:{value!r}".encode())


def content_digest(data: dict[str, Any]) -> str:
    """SHA-256 (hex) of a torch checkpoint's content, the checksum entry itself left out."""
    digest = hashlib.sha256()
    _update_digest(digest, {k: v for k, v in data.items() if k != _DIGEST_KEY})
    return digest.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Writes ``payload`` (plus format and package version) atomically as a weights-only torch file.

    Used for ``resume.pt``, the run's own scratch file; a run's model is written by
    :func:`save_run_model`.

    Args:
        path: the file.
        payload: tensors, numpy arrays, numbers, strings, lists and dicts only.
    """
    path = Path(path)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": hsi.__version__}
    data.update(_to_safe(payload))
    data[_DIGEST_KEY] = content_digest(data)
    with atomic_write(path) as fh:
        torch.save(data, fh)


def pickle_callables(data: bytes) -> list[str]:
    """The ``module.name`` of every callable a pickle imports, read from its opcodes without executing it.

    ``GLOBAL`` carries the name; ``STACK_GLOBAL`` takes it from the two strings pushed before it
    (possibly through the memo), which are followed here. Pickles written one after another
    (torch's old format) are all read; raw bytes after at least one pickle end the scan.

    Raises:
        ValueError: the bytes do not start with a complete pickle (truncated or damaged).
    """
    stream = io.BytesIO(data)
    names = _callables_of_one(stream)
    while stream.tell() < len(data):
        start = stream.tell()
        try:
            names += _callables_of_one(stream)
        except Exception:  # noqa: BLE001 - not a pickle: the raw tensor bytes of the old format
            break
        if stream.tell() == start:
            break
    return names


def _callables_of_one(stream: io.BytesIO) -> list[str]:
    names: list[str] = []
    strings: list[str | None] = []  # the values pushed, as far as a name lookup needs them
    memo: dict[int, str | None] = {}
    for opcode, arg, _ in pickletools.genops(stream):
        op = opcode.name
        if op == "GLOBAL" or op == "INST":
            global_module, _, global_name = str(arg).partition(" ")
            names.append(f"{global_module}.{global_name}")
            strings.append(None)
        elif op == "STACK_GLOBAL":
            pushed = strings[-2:] if len(strings) >= 2 else [None, None]
            names.append(f"{pushed[0] or '?'}.{pushed[1] or '?'}")
            strings.append(None)
        elif op in ("EXT1", "EXT2", "EXT4"):  # a callable from copyreg's extension registry
            names.append(f"copyreg.extension_{arg}")
            strings.append(None)
        elif isinstance(arg, str) and op.endswith(("UNICODE", "STRING")):
            strings.append(arg)
        elif op == "MEMOIZE":
            memo[len(memo)] = strings[-1] if strings else None
        elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = strings[-1] if strings else None  # type: ignore[arg-type]
        elif op in ("GET", "BINGET", "LONG_BINGET"):
            strings.append(memo.get(int(arg)))  # type: ignore[arg-type]
        elif op not in ("FRAME", "PROTO"):
            strings.append(None)
    return names


def _display(callable_name: str) -> str:
    module, _, name = callable_name.rpartition(".")
    module = _MODULE_ALIASES.get(module, module)
    return name if module == "builtins" else f"{module}.{name}"


def _is_torch_global(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    return name in _TORCH_GLOBALS or (module == "torch" and attr.endswith("Storage"))


def _refuse_code(path: Path, pickled: bytes) -> None:
    """Refuses a pickle naming any callable but torch's tensor rebuilders, without executing it."""
    try:
        callables = pickle_callables(pickled)
    except Exception:  # noqa: BLE001 - genops raises several types on damaged bytes
        raise CheckpointError(
            f"checkpoint {path} is truncated or damaged (its pickle does not parse); copy it again, or {_USE}."
        ) from None
    foreign = [name for name in callables if not _is_torch_global(name)]
    if foreign:
        shown = ", ".join(dict.fromkeys(_display(n) for n in foreign[:3]))
        raise CheckpointError(
            f"checkpoint {path} contains executable code (a pickle that calls {shown}); hsi-classify will not "
            f"load it. Do not run it elsewhere either; {_USE}."
        )


def _sniff(path: Path, head: bytes) -> str:
    """What a file that is not a torch zip or pickle is, in a user's words."""
    if head.startswith((b"\x89HDF", b"MATLAB")) or head[:4] == b"\x93NUM":
        return ("is a data file (a cube or ground truth), not a checkpoint; pass it as --cube, "
                "and a run folder as --checkpoint")
    try:
        text = path.read_bytes()[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "was written by another tool (an unknown binary format); " + _USE
    if all(c.isprintable() or c.isspace() for c in text):
        return "is not a checkpoint (plain text); " + _USE
    return "was written by another tool (an unknown format); " + _USE


def _pickle_of(path: Path, head: bytes) -> bytes:
    """The pickle inside a torch file: ``data.pkl`` of its zip, or the whole file in the old format."""
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                pickles = [i for i in infos if i.filename.endswith("data.pkl")]
                if not pickles:
                    raise CheckpointError(
                        f"checkpoint {path} was written by another tool (a zip archive without a torch pickle); {_USE}."
                    )
                check_fits_in_memory(sum(i.file_size for i in infos), what=f"checkpoint {path}",
                                     fix="copy an intact checkpoint of the run")
                return archive.read(pickles[0])
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError):
            raise CheckpointError(
                f"checkpoint {path} is truncated or damaged (its zip archive does not read); copy it again, or {_USE}."
            ) from None
    if head[:1] == b"\x80" and 2 <= head[1:2][0] <= 5:
        check_fits_in_memory(path.stat().st_size, what=f"checkpoint {path}", fix=_USE)
        return path.read_bytes()
    raise CheckpointError(f"checkpoint {path} {_sniff(path, head)}.")


def _is_old_torch_format(pickled: bytes) -> bool:
    """Whether a file is torch's pre-zip format: a pickle of torch's magic number comes first."""
    try:
        return any(arg == _TORCH_MAGIC for _, arg, _ in pickletools.genops(io.BytesIO(pickled)))
    except Exception:  # noqa: BLE001 - damaged: not ours to name
        return False


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Reads a weights-only torch checkpoint (a legacy model.pt, or resume.pt), without running code from it.

    The pickle is inspected first (:func:`pickle_callables`): one that would call anything but
    torch's tensor rebuilders is refused, naming what it calls. Then ``torch.load`` reads it
    with ``weights_only=True``, its warnings silenced.

    Raises:
        CheckpointError: missing, empty, plain text, executable code, truncated, foreign,
            tampered with, or written by a newer version.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; {_USE}.")
    head = _read_head(path)
    pickled = _pickle_of(path, head)
    _refuse_code(path, pickled)
    if head[:4] != b"PK\x03\x04" and not _is_old_torch_format(pickled):
        raise CheckpointError(
            f"checkpoint {path} was written by another tool (a Python pickle, not a torch checkpoint); {_USE}."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many types for damaged files; its words must not reach users
        raise CheckpointError(
            f"checkpoint {path} is truncated or damaged (its tensors do not read); copy it again, or {_USE}."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} was written by another tool (no '{FORMAT}' marker); {_USE}.")
    version = data.get("format_version")
    if not isinstance(version, int) or version not in _READABLE_VERSIONS:
        newer = isinstance(version, int) and version > max(_READABLE_VERSIONS)
        raise CheckpointError(
            f"checkpoint {path} "
            + (f"was written by a newer version (hsi-classify {_version_text(data)}, "
               if newer else "has an unknown format (")
            + f"format {version!r}); this version ({hsi.__version__}) reads formats "
            f"{', '.join(map(str, _READABLE_VERSIONS))}. Use a matching hsi-classify version."
        )
    # Before the checksum walks it recursively; a resume point (optimiser states, histories) nests deeper than a
    # model, and a limit far below Python's recursion limit is all this needs.
    check_nesting(data, f"checkpoint {path}", limit=_MAX_TORCH_NESTING)
    if version >= 2 and data.get(_DIGEST_KEY) != content_digest(data):
        raise CheckpointError(
            f"checkpoint {path} fails its integrity check: its content does not match the checksum saved with it, "
            "so it was damaged or edited after saving. Use an intact copy (or train again)."
        )
    return data
