"""Text for the `inspect`, `models` and `env` commands (`datasets`: :mod:`hsi.experiments.datasets`)."""

from __future__ import annotations

import numpy as np
import torch

from hsi._core.errors import ConfigError
from hsi._core.validation import check_patch_size
from hsi.data.scene import Scene
from hsi.experiments.steps import environment
from hsi.models import list_models
from hsi.reporting.tables import markdown_table
from hsi.training.factory import build_classifier


def describe_scene(scene: Scene) -> str:
    """Shape, dtype, value range, bands and each class's id, name and pixel count."""
    cube = scene.cube
    counts = np.bincount(scene.labels[scene.labels >= 0], minlength=scene.n_classes)
    lines = [
        f"scene: {scene.name}",
        (f"cube: {cube.shape[0]} x {cube.shape[1]} pixels, {scene.n_bands} bands, dtype {cube.dtype} "
         f"(loaded as float32), values {float(cube.min()):g} .. {float(cube.max()):g}"),
        f"labelled pixels: {int(counts.sum())} of {cube.shape[0] * cube.shape[1]} in {scene.n_classes} classes",
        "",
        markdown_table(
            ["id", "class", "pixels"],
            [[i, name, int(n)] for i, name, n in zip(scene.class_ids, scene.class_names, counts, strict=True)],
        ),
    ]
    return "\n".join(lines)


def _count(value: int | None, scale: float = 1.0, spec: str = ",.0f") -> str:
    """A profile figure divided by ``scale``, or ``-`` for models without one (scikit-learn)."""
    return "-" if value is None else format(value / scale, spec)


def models_table(*, profile: bool = False, patch_size: int = 25, bands: int = 30, classes: int = 16) -> str:
    """Every registered model with its description; with ``profile`` its cost for one patch.

    A model that cannot take the given input (e.g. HybridSN with fewer than 13 bands) gets
    ``n/a`` in its row and the reason under the table, so one such model does not hide
    the others' figures.

    Raises:
        ConfigError: ``patch_size`` is not an odd integer >= 1, or ``bands`` / ``classes`` < 1.
    """
    if not profile:
        rows = [[m.name, m.kind, m.description] for m in list_models()]
        return markdown_table(["model", "kind", "description"], rows)
    check_patch_size(patch_size)
    for flag, value in (("--bands", bands), ("--classes", classes)):
        if value < 1:
            raise ConfigError(f"{flag} must be an integer >= 1; got {value}.")
    rows, notes = [], []
    for m in list_models():
        try:
            p = build_classifier(m.name, in_chans=bands, num_classes=classes, patch_size=patch_size, seed=0).profile()
        except ConfigError as err:
            rows.append([m.name, "n/a", "n/a", "n/a"])
            notes.append(f"- {m.name}: {err}")
            continue
        rows.append([m.name, _count(p["parameters"]), _count(p["macs_per_patch"], 1e6, ",.1f"),
                     _count(p["activation_bytes_per_patch"], 2**20, ",.2f")])
    title = f"input {patch_size}x{patch_size}x{bands}, {classes} classes\n\n"
    table = markdown_table(["model", "parameters", "MMACs / patch", "activations MiB / patch"], rows,
                           align=["l", "r", "r", "r"])
    footer = "\nscikit-learn models (-) have no trainable weights.\n"
    if notes:
        footer += "\nn/a: the model does not take this input:\n\n" + "\n".join(notes) + "\n"
    return title + table + footer


def environment_text() -> str:
    """Versions and devices, one per line."""
    lines = [f"{k}: {v}" for k, v in environment().items()]
    lines.append(f"cuda available: {torch.cuda.is_available()}")
    for i in range(torch.cuda.device_count()):
        lines.append(f"gpu {i}: {torch.cuda.get_device_name(i)}")
    return "\n".join(lines)
