"""Edits of a run's model files as someone who knows the format would make them (checksums recomputed).

Shared by tests/security/test_hostile_models.py (the named cases of issue 32) and the
structure-aware mutators of tests/security/test_fuzz_readers.py. Not a test module.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsi.training.checkpoint import MODEL_JSON, MODEL_TENSORS, _json_digest


def read_run(run: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A run folder's model.json (as JSON, tensor references kept) and its tensors."""
    from safetensors.torch import load

    return json.loads((run / MODEL_JSON).read_text()), dict(load((run / MODEL_TENSORS).read_bytes()))


def write_run(folder: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor] | bytes,
              json_text: str | None = None) -> Path:
    """Writes model.json + model.safetensors into ``folder``, the checksums recomputed to match.

    ``tensors``: tensors (serialised here) or the raw bytes of a safetensors file. ``json_text``:
    the JSON text to write instead of ``meta``'s (its checksums are not recomputed then).
    """
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    blob = tensors if isinstance(tensors, bytes) else save({k: v.contiguous() for k, v in tensors.items()})
    if json_text is None:
        meta = dict(meta)
        meta["tensors"] = {"file": MODEL_TENSORS, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
        meta["content_sha256"] = _json_digest(meta)
        json_text = json.dumps(meta)
    (folder / MODEL_TENSORS).write_bytes(blob)
    (folder / MODEL_JSON).write_text(json_text)
    return folder


def resigned_json(meta: dict[str, Any], blob: bytes) -> str:
    """model.json text for ``meta`` and the safetensors bytes ``blob``, checksums recomputed."""
    meta = dict(meta)
    meta["tensors"] = {"file": MODEL_TENSORS, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    meta["content_sha256"] = _json_digest(meta)
    return json.dumps(meta)


def resigned_json_raw(meta: dict[str, Any], blob: bytes, raw: dict[str, str]) -> str:
    """As :func:`resigned_json`, with each string value ``key`` of ``raw`` found in ``meta`` replaced by the JSON
    text ``raw[key]`` (e.g. lists nested 985 deep, which ``json.dumps`` cannot write from inside a test)."""
    meta = dict(meta)
    meta.pop("content_sha256", None)
    meta["tensors"] = {"file": MODEL_TENSORS, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    for placeholder, value in raw.items():
        text = text.replace(json.dumps(placeholder), value)
    digest = hashlib.sha256(text.encode()).hexdigest()  # the canonical form _json_digest hashes
    return text[:-1] + f',"content_sha256":"{digest}"}}'


def load_estimator(tensors: dict[str, torch.Tensor]) -> Any:
    """The scikit-learn estimator of a run's tensors (skops, the tree type trusted)."""
    import skops.io

    return skops.io.loads(tensors["estimator_skops"].numpy().tobytes(), trusted=["sklearn.tree._tree.Tree"])


def skops_tensor(value: Any, compression: int = zipfile.ZIP_STORED) -> torch.Tensor:
    """``value`` as skops bytes in a uint8 tensor (what a run stores under ``estimator_skops``)."""
    import skops.io

    blob = skops.io.dumps(value, compression=compression)
    return torch.from_numpy(np.frombuffer(blob, dtype=np.uint8).copy())


def deflate_bomb(n_bytes: int) -> torch.Tensor:
    """A skops-like zip whose one array entry inflates to ``n_bytes`` of zeros (about 1,000 : 1)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("schema.json", json.dumps({"__class__": "ndarray", "__module__": "numpy",
                                                    "__loader__": "NdArrayNode", "type": "numpy",
                                                    "file": "0.npy", "protocol": 2}))
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (n_bytes,)})
        with archive.open("0.npy", "w", force_zip64=True) as entry:
            entry.write(header.getvalue())
            chunk = bytes(1 << 20)
            for _ in range(n_bytes >> 20):
                entry.write(chunk)
    return torch.from_numpy(np.frombuffer(buffer.getvalue(), dtype=np.uint8).copy())


def edit_tree(tree: Any, node: int, **fields: Any) -> None:
    """Sets fields of node ``node`` of a fitted scikit-learn ``Tree`` (``left_child``, ``feature``, ...)."""
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    for name, value in fields.items():
        nodes[name][node] = value
    state["nodes"] = nodes
    tree.__setstate__(state)  # the same node count: an existing tree may be updated in place


def first_split(tree: Any) -> int:
    """The index of the first node of ``tree`` that is not a leaf."""
    return int(np.flatnonzero(tree.children_left != -1)[0])
