"""Data layer: the built-in scene table, file readers, downloads and the :class:`Scene`.

Imports only :mod:`hsi._core`, :mod:`hsi.config` and third-party libraries.
"""

from hsi.data.download import download_file, file_sha256, resolve_urls
from hsi.data.io import SUPPORTED_EXTENSIONS, load_array
from hsi.data.scene import (
    NAN_POLICIES,
    Scene,
    cache_dir,
    data_dir_candidates,
    dataset_status,
    labels_from_ground_truth,
    load_custom_scene,
    load_scene,
)
from hsi.data.specs import DATASETS, PALETTE, DatasetSpec, default_palette, get_spec

__all__ = [
    "DATASETS",
    "NAN_POLICIES",
    "PALETTE",
    "SUPPORTED_EXTENSIONS",
    "DatasetSpec",
    "Scene",
    "cache_dir",
    "data_dir_candidates",
    "dataset_status",
    "default_palette",
    "download_file",
    "file_sha256",
    "get_spec",
    "labels_from_ground_truth",
    "load_array",
    "load_custom_scene",
    "load_scene",
    "resolve_urls",
]
