"""The built-in scene table: complete, self-consistent, and true to the real files (one e2e test)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hsi._core.errors import ConfigError, UnknownNameError
from hsi.data.download import file_sha256
from hsi.data.specs import DATASETS, PALETTE, DatasetSpec, default_palette, get_spec

HEX = re.compile(r"^#[0-9a-f]{6}$")
ALL = ["botswana", "indian_pines", "ksc", "pavia_u", "salinas", "salinas_a"]


def test_registry_holds_every_builtin_scene() -> None:
    assert DATASETS.names() == ALL


@pytest.mark.parametrize("name", ALL)
def test_spec_is_self_consistent(name: str) -> None:
    spec = get_spec(name)
    assert spec.name == spec.folder == name
    assert len(spec.class_ids) == len(spec.class_names) == len(spec.palette) == spec.n_classes
    assert len(set(spec.palette)) == spec.n_classes and all(HEX.match(c) for c in spec.palette)
    assert all(0 <= b < spec.cube_shape[2] for b in spec.rgb_bands)
    assert set(spec.urls) == set(spec.files) and all(spec.urls[f] for f in spec.files)
    assert all(u.startswith(("http://", "https://")) for urls in spec.urls.values() for u in urls)
    assert set(spec.sha256) <= set(spec.files) and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in spec.sha256.values())
    assert spec.citation


@pytest.mark.e2e
def test_class_ids_and_shape_match_the_real_ground_truths(shared_data_dir: Path) -> None:
    for name in ALL:
        spec = get_spec(name)
        path = shared_data_dir / spec.folder / spec.gt_file
        gt = scipy.io.loadmat(path)[spec.gt_key]
        assert gt.shape == spec.cube_shape[:2], name
        assert tuple(int(i) for i in np.unique(gt) if i != 0) == spec.class_ids, name
        if spec.gt_file in spec.sha256:
            assert file_sha256(path) == spec.sha256[spec.gt_file], name


def test_indian_pines_addresses_include_both_hosts_and_the_hugging_face_mirror() -> None:
    urls = get_spec("indian_pines").urls["Indian_pines_corrected.mat"]
    assert urls[0] == "http://www.ehu.eus/ccwintco/uploads/6/67/Indian_pines_corrected.mat"
    assert "http://www.ehu.es/ccwintco/uploads/6/67/Indian_pines_corrected.mat" in urls
    assert urls[-1] == "https://huggingface.co/datasets/danaroth/indian_pines/resolve/main/Indian_pines_corrected.mat"


def test_salinas_a_reuses_the_salinas_names_and_colours_of_its_ids() -> None:
    salinas, salinas_a = get_spec("salinas"), get_spec("salinas_a")
    assert salinas_a.class_ids == (1, 10, 11, 12, 13, 14)
    for i, name, colour in zip(salinas_a.class_ids, salinas_a.class_names, salinas_a.palette, strict=True):
        assert (name, colour) == (salinas.class_names[i - 1], salinas.palette[i - 1])


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="did you mean indian_pines"):
        get_spec("indian_pine")


def test_inconsistent_spec_is_refused() -> None:
    spec = get_spec("pavia_u")
    with pytest.raises(ConfigError, match="one class name and one colour per class id"):
        replace(spec, class_names=spec.class_names[:-1])
    with pytest.raises(ConfigError, match="ascending"):
        replace(spec, class_ids=tuple(reversed(spec.class_ids)))
    with pytest.raises(ConfigError, match="rgb bands"):
        replace(spec, rgb_bands=(0, 1, 103))


def test_spec_is_hashable_and_frozen() -> None:
    spec: DatasetSpec = get_spec("ksc")
    assert hash(spec) == hash(get_spec("ksc"))
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("n", [0, 6, 20, 45])
def test_default_palette_is_distinct_hex(n: int) -> None:
    colours = default_palette(n)
    assert len(colours) == len(set(colours)) == n
    assert all(HEX.match(c) for c in colours)
    assert colours[: min(n, len(PALETTE))] == PALETTE[:n]
