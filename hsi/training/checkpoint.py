"""One-file checkpoints: weights, PCA, classes and config; loading never runs code from the file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hsi
from hsi._core.errors import CheckpointError

FORMAT = "hsi-classify-checkpoint"
FORMAT_VERSION = 1


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


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Writes ``payload`` (plus format and package version) atomically to ``path``.

    Args:
        path: the checkpoint file (conventionally ``model.pt``).
        payload: tensors, numpy arrays, numbers, strings, lists and dicts only.
    """
    path = Path(path)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": hsi.__version__}
    data.update(_to_safe(payload))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(data, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r} (written by hsi-classify {data.get('package_version')}); "
            f"this version ({hsi.__version__}) reads format {FORMAT_VERSION}. Use a matching hsi-classify version."
        )
    return data
