"""One-file checkpoints: weights, PCA, classes and config; loading never runs code from the file.

Each file carries a SHA-256 of its content (``content_sha256``), checked on loading, so a
checkpoint damaged in transfer or edited by hand is refused instead of predicting silently with
altered weights. (It guards against accidents, not forgery: anyone can recompute it.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hsi
from hsi._core.errors import CheckpointError
from hsi._core.files import atomic_write

FORMAT = "hsi-classify-checkpoint"
FORMAT_VERSION = 2  # 2 adds content_sha256; version 1 files (no checksum) still load
_READABLE_VERSIONS = (1, 2)
_DIGEST_KEY = "content_sha256"


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
    """SHA-256 (hex) of a checkpoint's content, the checksum entry itself left out."""
    digest = hashlib.sha256()
    _update_digest(digest, {k: v for k, v in data.items() if k != _DIGEST_KEY})
    return digest.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Writes ``payload`` (plus format and package version) atomically to ``path``.

    Args:
        path: the checkpoint file (conventionally ``model.pt``).
        payload: tensors, numpy arrays, numbers, strings, lists and dicts only.
    """
    path = Path(path)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": hsi.__version__}
    data.update(_to_safe(payload))
    data[_DIGEST_KEY] = content_digest(data)
    with atomic_write(path) as fh:
        torch.save(data, fh)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save_checkpoint`, without unpickling code.

    Raises:
        CheckpointError: missing, unreadable, foreign, tampered with, or of an unknown format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass the model.pt of a finished run.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for foreign or corrupt files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} is not a loadable hsi-classify checkpoint ({reason[:200]}); "
            "it may be truncated, tampered with or from another tool. Use a model.pt written by hsi-classify."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an hsi-classify checkpoint (no '{FORMAT}' marker); use a model.pt written by hsi-classify."
        )
    version = data.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r} (written by hsi-classify {data.get('package_version')}); "
            f"this version ({hsi.__version__}) reads formats {', '.join(map(str, _READABLE_VERSIONS))}. "
            "Use a matching hsi-classify version."
        )
    if version >= 2 and data.get(_DIGEST_KEY) != content_digest(data):
        raise CheckpointError(
            f"{path} fails its integrity check: its content does not match the checksum saved with it, so it was "
            "damaged or edited after saving. Use an intact copy (or train again)."
        )
    return data
