"""Text for the `inspect`, `datasets`, `models` and `env` commands."""

from __future__ import annotations

import numpy as np
import torch

from hsi.data.scene import Scene, dataset_status
from hsi.experiments.train import environment
from hsi.models import list_models, profile_model
from hsi.reporting.tables import markdown_table


def describe_scene(scene: Scene) -> str:
    """Shape, dtype, value range, bands and each class's id, name and pixel count."""
    cube = scene.cube
    counts = np.bincount(scene.labels[scene.labels >= 0], minlength=scene.n_classes)
    lines = [
        f"scene: {scene.name}",
        f"cube: {cube.shape[0]} x {cube.shape[1]} pixels, {scene.n_bands} bands, dtype {cube.dtype} "
        f"(loaded as float32), values {float(cube.min()):g} .. {float(cube.max()):g}",
        f"labelled pixels: {int(counts.sum())} of {cube.shape[0] * cube.shape[1]} in {scene.n_classes} classes",
        "",
        markdown_table(
            ["id", "class", "pixels"],
            [[i, name, int(n)] for i, name, n in zip(scene.class_ids, scene.class_names, counts)],
        ),
    ]
    return "\n".join(lines)


def datasets_table(data_dir: str | None = None) -> str:
    """One row per built-in scene: name, description, present or not, where."""
    rows = [[s["name"], s["display_name"], "yes" if s["present"] else "no", s["path"]] for s in dataset_status(data_dir)]
    return markdown_table(["dataset", "scene", "present", "folder"], rows)


def models_table(*, profile: bool = False, patch_size: int = 25, bands: int = 30, classes: int = 16) -> str:
    """Every registered model with its description; with ``profile`` its cost for one patch."""
    if not profile:
        return markdown_table(["model", "kind", "description"], [[m.name, m.kind, m.description] for m in list_models()])
    rows = []
    for m in list_models():
        p = profile_model(m.name, patch_size=patch_size, in_chans=bands, num_classes=classes)
        fmt = lambda v, scale=1.0, spec=",.0f": "-" if v is None else format(v / scale, spec)  # noqa: E731
        rows.append([m.name, fmt(p["parameters"]), fmt(p["macs_per_patch"], 1e6, ",.1f"),
                     fmt(p["activation_bytes_per_patch"], 2**20, ",.2f")])
    title = f"input {patch_size}x{patch_size}x{bands}, {classes} classes\n\n"
    return title + markdown_table(["model", "parameters", "MMACs / patch", "activations MiB / patch"], rows)


def environment_text() -> str:
    """Versions and devices, one per line."""
    lines = [f"{k}: {v}" for k, v in environment().items()]
    lines.append(f"cuda available: {torch.cuda.is_available()}")
    for i in range(torch.cuda.device_count()):
        lines.append(f"gpu {i}: {torch.cuda.get_device_name(i)}")
    return "\n".join(lines)
