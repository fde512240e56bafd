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
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hsi
from hsi._core.errors import CheckpointError
from hsi._core.files import atomic_save_json, atomic_write, atomic_write_bytes, to_jsonable
from hsi._core.memory import check_fits_in_memory
from hsi.data.scene import MAX_LABEL_ID
from hsi.training.recipe import is_smoothing_window

__all__ = [
    "FORMAT", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "MODEL_JSON", "MODEL_TENSORS", "content_digest",
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
_MAX_JSON_BYTES = 64 << 20  # a model.json is a few kB; a larger one is not ours
_USE = "pass a run folder written by hsi-classify train (or its model.json)"

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


def save_run_model(folder: str | Path, payload: dict[str, Any]) -> tuple[Path, Path]:
    """Writes a run's model as ``model.safetensors`` (tensors) and ``model.json`` (plain data).

    Args:
        folder: the run folder.
        payload: tensors, numpy arrays, numbers, strings, lists and dicts (what
            :func:`hsi.experiments.steps.run_checkpoint` returns).

    Returns:
        The paths of model.json and model.safetensors. The JSON is written last, so a
        model.json only ever names a complete safetensors file.
    """
    from safetensors.torch import save as serialize  # returns bytes; the writing is atomic_write_bytes's

    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    content = _split_tensors(payload, "", tensors)
    blob = serialize(tensors)
    tensors_path = atomic_write_bytes(folder / MODEL_TENSORS, blob)
    data = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "package_version": hsi.__version__,
            "tensors": {"file": MODEL_TENSORS, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()},
            **content}
    data[_DIGEST_KEY] = _json_digest(data)
    json_path = atomic_save_json(folder / MODEL_JSON, data)
    return json_path, tensors_path


def load_run_model(path: str | Path) -> dict[str, Any]:
    """Reads a run's model from a run folder, model.json, model.safetensors or a legacy model.pt.

    Returns:
        The payload given to :func:`save_run_model` (arrays as CPU tensors, tuples as lists),
        with ``format``, ``format_version`` and ``package_version``: the dict
        :func:`load_checkpoint` returns for a model.pt.

    Raises:
        CheckpointError: missing, empty, plain text, executable code, truncated, damaged,
            written by another tool or by a newer version; the message says which.
    """
    path = Path(path)
    data = _load_run_model(path)
    check_run_model(data, path)
    return data


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


def _entry(data: Any, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    name = f"{where}.{key}" if where else key
    if not isinstance(data, dict) or key not in data:
        raise _Invalid(f"no '{name}' entry")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):  # JSON true is no size
        raise _Invalid(f"'{name}' is a {type(value).__name__}")
    return value


def _size(data: Any, key: str, where: str, limit: int = 1 << 20) -> int:
    value = _entry(data, key, int, where)
    if not 1 <= value <= limit:
        raise _Invalid(f"'{where}.{key}' is {value}")
    return int(value)


def _tensor(data: Any, key: str, where: str, shape: tuple[int, ...]) -> torch.Tensor:
    value = _entry(data, key, torch.Tensor, where)
    if tuple(value.shape) != shape or not value.dtype.is_floating_point:
        raise _Invalid(f"'{where}.{key}' has shape {tuple(value.shape)} {value.dtype}, not {shape} floats")
    return value


#: The largest label id a model may carry (the ground truth's bound).
MAX_CLASS_ID = MAX_LABEL_ID
#: The longest class name a model may carry (names are drawn in legends and written in reports).
MAX_CLASS_NAME = 200


def check_run_model(data: dict[str, Any], path: str | Path) -> None:
    """Checks that a run model's entries have the types and sizes hsi-classify writes.

    What ``predict`` reads from a checkpoint is checked here, so that an edited file is refused
    in one line instead of failing somewhere inside.

    Raises:
        CheckpointError: an entry is missing, of another type, or inconsistent with the others.
    """
    try:
        model = _entry(data, "model", dict)
        _entry(model, "name", str, "model")
        in_chans = _size(model, "in_chans", "model")
        num_classes = _size(model, "num_classes", "model")
        _size(model, "patch_size", "model", limit=4096)
        if "state_dict" in data:
            weights = _entry(data, "state_dict", dict)
            if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
                raise _Invalid("'state_dict' holds entries that are not tensors")
        elif _entry(data, "estimator_skops", torch.Tensor).dtype != torch.uint8:
            raise _Invalid("'estimator_skops' is not bytes")
        # The recipe's inference parts: test-time augmentation, an ensemble's other networks.
        if "tta" in data and not isinstance(data["tta"], bool):
            raise _Invalid(f"'tta' is a {type(data['tta']).__name__}")
        if "members" in data and not all(isinstance(m, dict) and all(isinstance(v, torch.Tensor) for v in m.values())
                                         for m in _entry(data, "members", list)):
            raise _Invalid("'members' holds entries that are not weights")
        scene = _entry(data, "scene", dict)
        _entry(scene, "name", str, "scene")
        n_bands = _size(scene, "n_bands", "scene")
        pca = _entry(data, "pca", dict)
        n_components = _size(pca, "n_components", "pca")
        if n_components != in_chans:
            raise _Invalid(f"'pca.n_components' is {n_components} but the model reads {in_chans} bands")
        _tensor(pca, "mean", "pca", (n_bands,))
        _tensor(pca, "components", "pca", (n_components, n_bands))
        _tensor(pca, "explained_variance_ratio", "pca", (n_components,))
        scale = _entry(pca, "scale", (int, float), "pca")
        if not (isinstance(scale, (int, float)) and 0 < float(scale) < float("inf")):
            raise _Invalid(f"'pca.scale' is {scale!r}")
        classes = _entry(data, "classes", dict)
        for key, kind in (("ids", int), ("names", str), ("palette", str)):
            values = _entry(classes, key, list, "classes")
            if len(values) != num_classes or not all(isinstance(v, kind) and not isinstance(v, bool)
                                                     for v in values):
                raise _Invalid(f"'classes.{key}' is not {num_classes} {kind.__name__} values")
        ids, names = classes["ids"], classes["names"]
        if len(set(ids)) != len(ids) or not all(1 <= i <= MAX_CLASS_ID for i in ids):
            raise _Invalid(f"'classes.ids' are not {num_classes} distinct label ids from 1 to {MAX_CLASS_ID}")
        if any(len(name) > MAX_CLASS_NAME for name in names):
            raise _Invalid(f"'classes.names' holds a name longer than {MAX_CLASS_NAME} characters")
        _entry(data, "pad_mode", str)
        smooth = _entry(data, "config", dict).get("smooth") or 0  # runs before map smoothing existed: none
        if not is_smoothing_window(smooth):
            raise _Invalid(f"'config.smooth' is {smooth!r}, not 0 or an odd window side from 3 to 31")
    except _Invalid as err:
        raise CheckpointError(
            f"checkpoint {path} is not a model hsi-classify wrote ({err}): it was damaged or edited after saving, "
            "or written by another tool; train again."
        ) from None


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
            f"{path} is not an hsi-classify model.json ({size} bytes; ours are a few kB); {_USE}."
        )
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
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
            f"{path} was written by a newer version (hsi-classify {str(data.get('package_version'))[:20]}, model "
            f"format {version}; this is {hsi.__version__}, which reads format {MODEL_FORMAT_VERSION}). "
            "Upgrade hsi-classify to use it."
        )
    try:
        intact = data.get(_DIGEST_KEY) == _json_digest(data)
    except (TypeError, ValueError):  # NaN or other non-JSON values put in by hand
        intact = False
    if not intact:
        raise CheckpointError(
            f"{path} fails its integrity check: its content does not match the checksum saved with it, so it was "
            "damaged or edited after saving. Use an intact copy (or train again)."
        )
    tensors = _load_tensors(path, data.get("tensors"))
    content = {k: v for k, v in data.items() if k not in ("tensors", _DIGEST_KEY)}
    try:
        return _join_tensors(content, tensors)
    except KeyError as err:
        raise CheckpointError(
            f"{path} names a tensor {err.args[0]!r} that its safetensors file does not hold; the two files come "
            "from different runs. Copy both files of one run."
        ) from None


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


def _join_tensors(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TENSOR_REF} and isinstance(value[_TENSOR_REF], str):
            return tensors[value[_TENSOR_REF]]
        return {k: _join_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_tensors(v, tensors) for v in value]
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
            + (f"was written by a newer version (hsi-classify {str(data.get('package_version'))[:20]}, "
               if newer else "has an unknown format (")
            + f"format {version!r}); this version ({hsi.__version__}) reads formats "
            f"{', '.join(map(str, _READABLE_VERSIONS))}. Use a matching hsi-classify version."
        )
    if version >= 2 and data.get(_DIGEST_KEY) != content_digest(data):
        raise CheckpointError(
            f"checkpoint {path} fails its integrity check: its content does not match the checksum saved with it, "
            "so it was damaged or edited after saving. Use an intact copy (or train again)."
        )
    return data
