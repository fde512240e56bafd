"""Downloads against a real HTTP server on 127.0.0.1: verified, atomic, and clear when they fail."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hsi._core.errors import DatasetNotFoundError, DataFormatError, DownloadError
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


def test_a_local_folder_works_as_mirror(
    shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HSI_DATASET_MIRROR", str(shared_data_dir))
    (url,) = resolve_urls(get_spec("salinas_a"), CUBE)
    assert url.startswith("file://")
    assert file_sha256(download_file([url], tmp_path / CUBE, sha256=SHA)) == SHA


def test_download_via_mirror_is_verified_and_atomic(
    salinas_a_mirror: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HSI_DATASET_MIRROR", salinas_a_mirror.url)  # type: ignore[attr-defined]
    dest = tmp_path / "data" / "salinas_a" / CUBE
    assert download_file(resolve_urls(get_spec("salinas_a"), CUBE), dest, sha256=SHA) == dest
    assert file_sha256(dest) == SHA
    assert _leftovers(dest.parent) == [CUBE]  # no temporary file left


def test_load_scene_downloads_missing_files_from_the_mirror(
    salinas_a_mirror: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HSI_DATASET_MIRROR", salinas_a_mirror.url)  # type: ignore[attr-defined]
    scene = load_scene("salinas_a", data_dir=tmp_path, download=True)
    assert scene.shape == (83, 86, 204)
    assert _leftovers(tmp_path / "salinas_a") == [CUBE, "SalinasA_gt.mat"]
    assert scene.sources["cube"] == str(tmp_path / "salinas_a" / CUBE)


def test_checksum_mismatch_leaves_nothing_behind(http_server: object, tmp_path: Path) -> None:
    corrupted = http_server.root / "salinas_a"  # type: ignore[attr-defined]
    corrupted.mkdir()
    (corrupted / CUBE).write_bytes(b"not the published file" * 100)
    dest = tmp_path / "data" / CUBE
    url = f"{http_server.url}/salinas_a/{CUBE}"  # type: ignore[attr-defined]
    with pytest.raises(DownloadError, match=rf"expected sha256 {SHA}, got [0-9a-f]{{64}}"):
        download_file([url], dest, sha256=SHA)
    assert _leftovers(dest.parent) == []


def test_a_bad_address_falls_through_to_the_next(salinas_a_mirror: object, tmp_path: Path) -> None:
    base = salinas_a_mirror.url  # type: ignore[attr-defined]
    dest = tmp_path / CUBE
    download_file([f"{base}/missing/{CUBE}", f"{base}/salinas_a/{CUBE}"], dest, sha256=SHA)
    assert file_sha256(dest) == SHA


def test_server_gone_lists_every_address_and_the_folder(closed_port_url: str, tmp_path: Path) -> None:
    urls = [f"{closed_port_url}/a/{CUBE}", f"{closed_port_url}/b/{CUBE}"]
    dest = tmp_path / "data" / CUBE
    with pytest.raises(DownloadError) as info:
        download_file(urls, dest, sha256=SHA)
    message = str(info.value)
    assert f"could not download {CUBE}" in message
    assert all(f"{url} (cannot connect: " in message for url in urls)
    assert f"by hand into {dest.parent}" in message
    assert _leftovers(dest.parent) == []


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


def test_rejected_content_leaves_nothing_behind(salinas_a_mirror: object, tmp_path: Path) -> None:
    def reject(path: Path) -> None:
        assert path.suffix == ".mat" and path.exists()  # the check sees the complete temporary file
        raise DataFormatError("synthetic rejection")

    url = f"{salinas_a_mirror.url}/salinas_a/{CUBE}"  # type: ignore[attr-defined]
    with pytest.raises(DownloadError, match="file rejected: synthetic rejection"):
        download_file([url], tmp_path / "dl" / CUBE, sha256=SHA, check=reject)
    assert _leftovers(tmp_path / "dl") == []


def test_wrong_shape_download_without_sha256_is_refused(
    http_server: object, shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Salinas has no published sha256 for its cube: a download is checked by its shape instead.
    served = http_server.root / "salinas"  # type: ignore[attr-defined]
    served.mkdir()
    synthetic_cube = np.zeros((83, 86, 204), np.int16)  # right key, wrong (Salinas-A) shape
    scipy.io.savemat(served / "Salinas_corrected.mat", {"salinas_corrected": synthetic_cube})
    (served / "Salinas_gt.mat").write_bytes((shared_data_dir / "salinas" / "Salinas_gt.mat").read_bytes())
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
    assert "http://www.ehu.eus/ccwintco/uploads/6/67/Indian_pines_corrected.mat (cannot connect" in message
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
    shared_data_dir: Path, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HSI_DATASET_MIRROR", closed_port_url)  # any download would fail
    monkeypatch.setattr("hsi.data.scene.download_file", lambda *a, **k: pytest.fail("downloaded"))
    assert load_scene("salinas_a", data_dir=shared_data_dir, download=True).n_classes == 6
