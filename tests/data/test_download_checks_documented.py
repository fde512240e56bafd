"""docs/data.md says exactly what a download is checked against, and every digest can be cited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hsi.data.specs import DATASETS

DATA_DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def _documented() -> dict[str, tuple[str, str]]:
    """docs/data.md's table: scene -> (cube check, ground-truth check)."""
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", DATA_DOC.read_text(), flags=re.MULTILINE)
    return {name: (cube.strip(), gt.strip()) for name, cube, gt in rows if name in DATASETS.names()}


def _expected(file: str, shape: tuple[int, ...], sha256: dict[str, str]) -> str:
    return "sha256" if file in sha256 else "shape only: " + " x ".join(map(str, shape))


def test_readme_states_each_files_check() -> None:
    documented = _documented()
    assert set(documented) == set(DATASETS.names())
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        expected = (
            _expected(spec.cube_file, spec.cube_shape, spec.sha256),
            _expected(spec.gt_file, spec.cube_shape[:2], spec.sha256),
        )
        assert documented[name] == expected, name


@pytest.mark.e2e
def test_every_digest_is_the_published_one(shared_data_dir: Path) -> None:
    """Digests come from the data folder's SHA256SUMS or README, never from elsewhere."""
    published = set(re.findall(r"\b[0-9a-f]{64}\b", (shared_data_dir / "SHA256SUMS").read_text()))
    published |= set(re.findall(r"\b[0-9a-f]{64}\b", (shared_data_dir / "README.md").read_text()))
    for name in DATASETS.names():
        for file, digest in DATASETS.get(name).sha256.items():
            assert digest in published, f"{name}/{file}: sha256 {digest} is not in {shared_data_dir}"

