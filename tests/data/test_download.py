"""Downloads against a real HTTP server on 127.0.0.1: verified, atomic, and clear when they fail.

The mirror serves the synthetic cube under Salinas-A's file name (verified against its own sha256);
one e2e test downloads the real files against the published sha256.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

from hsi._core.errors import DataFormatError, DatasetNotFoundError, DownloadError
from hsi.data.download import download_file, file_sha256, resolve_urls
from hsi.data.scene import load_scene
from hsi.data.specs import get_spec

CUBE = "SalinasA_corrected.mat"
SHA = get_spec("salinas_a").sha256[CUBE]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_resolve_urls_uses_the_spec_then_the_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = get_spec("salinas_a")
    assert resolve_urls(spec, CUBE) == spec.urls[CUBE]
    monkeypatch.setenv("HSI_DATASET_MIRROR", "http://mirror.example/hsi/")
    assert resolve_urls(spec, CUBE) == ("http://mirror.example/hsi/salinas_a/SalinasA_corrected.mat",)


@pytest.fixture(scope="module")
def synthetic_sha(synthetic_scene: Any) -> str:
    """sha256 of the synthetic cube file, which the synthetic mirror serves as SalinasA_corrected.mat."""
    return file_sha256(synthetic_scene.cube)


def test_a_local_folder_works_as_mirror(
    synthetic_scene: Any, synthetic_sha: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "salinas_a").mkdir(parents=True)
    shutil.copyfile(synthetic_scene.cube, mirror / "salinas_a" / CUBE)
    monkeypatch.setenv("HSI_DATASET_MIRROR", str(mirror))
    (url,) = resolve_urls(get_spec("salinas_a"), CUBE)
    assert url.startswith("file://")
    assert file_sha256(download_file([url], tmp_path / CUBE, sha256=synthetic_sha)) == synthetic_sha


def test_download_via_mirror_is_verified_and_atomic(
    synthetic_mirror: object, synthetic_sha: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HSI_DATASET_MIRROR", synthetic_mirror.url)  # type: ignore[attr-defined]
    dest = tmp_path / "data" / "salinas_a" / CUBE
    assert download_file(resolve_urls(get_spec("salinas_a"), CUBE), dest, sha256=synthetic_sha) == dest
    assert file_sha256(dest) == synthetic_sha
    assert _leftovers(dest.parent) == [CUBE]  # no temporary file left


@pytest.mark.e2e
def test_load_scene_downloads_the_published_files_from_a_mirror(
    salinas_a_mirror: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real files through a local mirror, checked against the published sha256 of the spec."""
    monkeypatch.setenv("HSI_DATASET_MIRROR", salinas_a_mirror.url)  # type: ignore[attr-defined]
    scene = load_scene("salinas_a", data_dir=tmp_path, download=True)
    assert scene.shape == (83, 86, 204)
    assert _leftovers(tmp_path / "salinas_a") == [CUBE, "SalinasA_gt.mat"]
    assert scene.sources["cube"] == str(tmp_path / "salinas_a" / CUBE)
    assert file_sha256(tmp_path / "salinas_a" / CUBE) == SHA


def test_checksum_mismatch_leaves_nothing_behind(http_server: object, tmp_path: Path) -> None:
    corrupted = http_server.root / "salinas_a"  # type: ignore[attr-defined]
    corrupted.mkdir()
    (corrupted / CUBE).write_bytes(b"not the published file" * 100)
    dest = tmp_path / "data" / CUBE
    url = f"{http_server.url}/salinas_a/{CUBE}"  # type: ignore[attr-defined]
    with pytest.raises(DownloadError, match=rf"expected sha256 {SHA}, got [0-9a-f]{{64}}"):
        download_file([url], dest, sha256=SHA)
    assert _leftovers(dest.parent) == []


def test_a_bad_address_falls_through_to_the_next(synthetic_mirror: object, synthetic_sha: str, tmp_path: Path) -> None:
    base = synthetic_mirror.url  # type: ignore[attr-defined]
    dest = tmp_path / CUBE
    download_file([f"{base}/missing/{CUBE}", f"{base}/salinas_a/{CUBE}"], dest, sha256=synthetic_sha)
    assert file_sha256(dest) == synthetic_sha


def test_server_gone_lists_every_address_and_the_folder(closed_port_url: str, tmp_path: Path) -> None:
    urls = [f"{closed_port_url}/a/{CUBE}", f"{closed_port_url}/b/{CUBE}"]
    dest = tmp_path / "data" / CUBE
    with pytest.raises(DownloadError) as info:
        download_file(urls, dest, sha256=SHA)
    message = str(info.value)
    assert f"could not download {CUBE}" in message
    assert "cannot connect: " in message and "each of its 2 addresses failed with" in message  # the one reason, said once
    assert all(url in message for url in urls)
    assert f"by hand into {dest.parent}" in message
    assert _leftovers(dest.parent) == []


def test_addresses_failing_differently_are_each_named_with_their_reason(
    http_server: object, closed_port_url: str, tmp_path: Path
) -> None:
    urls = [f"{http_server.url}/nothing.mat", f"{closed_port_url}/{CUBE}"]  # type: ignore[attr-defined]
    with pytest.raises(DownloadError) as info:
        download_file(urls, tmp_path / "dl" / CUBE, sha256=SHA)
    message = str(info.value)
    assert f"tried {urls[0]} (HTTP 404" in message and f"; {urls[1]} (cannot connect: " in message


def test_http_error_is_reported_with_its_status(http_server: object, tmp_path: Path) -> None:
    url = f"{http_server.url}/nothing.mat"  # type: ignore[attr-defined]
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file([url], tmp_path / "dl" / "nothing.mat", sha256=None)
    assert _leftovers(tmp_path / "dl") == []


def test_interrupted_transfer_leaves_nothing_behind(http_server: object, tmp_path: Path) -> None:
    url = f"{http_server.url}/file.cut.mat"  # type: ignore[attr-defined]
    with pytest.raises(DownloadError, match=r"received 10 of 1048576 bytes"):
        download_file([url], tmp_path / "dl" / "file.mat", sha256=None)
    assert _leftovers(tmp_path / "dl") == []


def test_rejected_content_leaves_nothing_behind(synthetic_mirror: object, synthetic_sha: str, tmp_path: Path) -> None:
    def reject(path: Path) -> None:
        assert path.suffix == ".mat" and path.exists()  # the check sees the complete temporary file
        raise DataFormatError("synthetic rejection")

    url = f"{synthetic_mirror.url}/salinas_a/{CUBE}"  # type: ignore[attr-defined]
    with pytest.raises(DownloadError, match="file rejected: synthetic rejection"):
        download_file([url], tmp_path / "dl" / CUBE, sha256=synthetic_sha, check=reject)
    assert _leftovers(tmp_path / "dl") == []


def test_wrong_shape_download_without_sha256_is_refused(
    http_server: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Salinas has no published sha256 for its cube: a download is checked by its shape instead.
    served = http_server.root / "salinas"  # type: ignore[attr-defined]
    served.mkdir()
    synthetic_cube = np.zeros((83, 86, 204), np.int16)  # right key, wrong (Salinas-A) shape
    scipy.io.savemat(served / "Salinas_corrected.mat", {"salinas_corrected": synthetic_cube})
    synthetic_gt = np.zeros((512, 217), np.uint8)  # right shape; never reached: the cube is refused first
    synthetic_gt[:16, 0] = np.arange(1, 17)
    scipy.io.savemat(served / "Salinas_gt.mat", {"salinas_gt": synthetic_gt})
    monkeypatch.setenv("HSI_DATASET_MIRROR", http_server.url)  # type: ignore[attr-defined]
    match = r"Salinas_corrected\.mat.*rejected.*\(83, 86, 204\); expected \(512, 217, 204\)"
    with pytest.raises(DatasetNotFoundError, match=match):
        load_scene("salinas", data_dir=tmp_path)
    assert _leftovers(tmp_path / "salinas") == []


def test_no_network_names_the_file_the_addresses_and_the_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def offline(host: object, *args: object, **kwargs: object) -> object:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise socket.gaierror(-2, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    with pytest.raises(DatasetNotFoundError) as info:
        load_scene("indian_pines", data_dir=tmp_path, download=True)
    message = str(info.value)
    assert "file(s) Indian_pines_corrected.mat, Indian_pines_gt.mat not found" in message
    assert "cannot connect: " in message and "each of its 3 addresses failed with" in message
    assert "http://www.ehu.eus/ccwintco/uploads/6/67/Indian_pines_corrected.mat" in message
    assert "huggingface.co" in message
    assert str(tmp_path / "indian_pines") in message and "--data-dir" in message and "HSI_DATA_DIR" in message
    assert "\n" not in message
    assert _leftovers(tmp_path / "indian_pines") == []


def test_download_off_names_the_files_and_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="downloading is off") as info:
        load_scene("indian_pines", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "Indian_pines_corrected.mat, Indian_pines_gt.mat" in message
    assert str(tmp_path / "indian_pines") in message and "--data-dir" in message and "HSI_DATA_DIR" in message
    assert not (tmp_path / "indian_pines").exists()


def test_files_on_disk_are_used_without_any_download(
    fake_salinas_a_dir: Path, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HSI_DATASET_MIRROR", closed_port_url)  # any download would fail
    monkeypatch.setattr("hsi.data.scene.download_file", lambda *a, **k: pytest.fail("downloaded"))
    # fake files (not the published ones): files on disk are trusted, not re-hashed
    assert load_scene("salinas_a", data_dir=fake_salinas_a_dir, download=True).n_classes == 6


def test_a_failed_download_leaves_no_folder_behind(closed_port_url: str, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "salinas_a" / "cube.mat"
    with pytest.raises(DownloadError):
        download_file([f"{closed_port_url}/cube.mat"], dest, sha256=SHA)
    assert not (tmp_path / "cache").exists()
