"""Fetching dataset files: the only module of the package that touches the network.

A download streams into the temporary file of :func:`hsi._core.files.atomic_write` (in the
destination folder), is verified (sha256 and/or a caller's check) and only then renamed into
place.
Whatever goes wrong (HTTP error, refused connection, cut-off transfer, wrong checksum),
the temporary file is removed and nothing is left behind.

Environment:
    HSI_DATASET_MIRROR: a base URL (or a local folder); when set, a scene's file is
    fetched from ``<mirror>/<spec.folder>/<file>`` instead of the default addresses.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from hsi._core.errors import DownloadError, HSIError
from hsi._core.files import atomic_write
from hsi.data.specs import DatasetSpec

__all__ = ["MIRROR_ENV", "download_file", "file_sha256", "resolve_urls"]

MIRROR_ENV = "HSI_DATASET_MIRROR"
_CHUNK = 1 << 20
_USER_AGENT = "hsi-classify (+https://pypi.org/project/hsi-classify)"
logger = logging.getLogger(__name__)


class _AttemptFailed(Exception):
    """One address failed; the message says why (internal, never escapes this module)."""


def resolve_urls(spec: DatasetSpec, file: str) -> tuple[str, ...]:
    """Addresses to try for one file of a scene, in order.

    Args:
        spec: the scene.
        file: one of ``spec.files``.

    Returns:
        ``(<$HSI_DATASET_MIRROR>/<spec.folder>/<file>,)`` when the mirror is set (a URL, or a
        local folder, read as ``file://``), else the spec's own addresses for ``file``
        (possibly empty).
    """
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        if "://" not in mirror:  # a plain folder path
            mirror = Path(mirror).expanduser().absolute().as_uri()
        return (f"{mirror.rstrip('/')}/{spec.folder}/{file}",)
    return tuple(spec.urls.get(file, ()))


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    urls: Sequence[str],
    dest: str | Path,
    *,
    sha256: str | None = None,
    check: Callable[[Path], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Downloads one file, trying each address in turn, and moves it into place once verified.

    Args:
        urls: addresses to try, in order; the first that yields a verified file wins.
        dest: where the file must end up; its folder is created if needed.
        sha256: expected hex sha256; ``None`` skips the checksum.
        check: optional extra verification called on the complete temporary file (which
            keeps ``dest``'s extension); it raises an :class:`HSIError` to reject the file,
            e.g. when the stored array does not have the expected shape.
        timeout: seconds to wait for a connection or for data, per address.

    Returns:
        ``dest`` as a :class:`Path`.

    Raises:
        DownloadError: every address failed. The message names the file, each address with
            its failure (HTTP status, refused connection, cut-off transfer, checksum expected
            vs got) and the folder where the file can be put by hand.
    """
    dest = Path(dest)
    created = _make_folder(dest.parent)
    failures: dict[str, str] = {}
    for url in urls:
        try:
            _fetch_verified(url, dest, sha256=sha256, check=check, timeout=timeout)
        except _AttemptFailed as exc:
            logger.info("download of %s from %s failed: %s", dest.name, url, exc)
            failures[url] = str(exc)
            continue
        return dest
    _remove_empty(created)  # no empty <cache>/<dataset>/ left behind by a failed download
    raise DownloadError(
        f"could not download {dest.name}: {_tried(failures)}. Download it by hand into {dest.parent}, "
        f"or set {MIRROR_ENV} to a mirror serving <mirror>/<dataset>/<file>."
    )


def _tried(failures: dict[str, str]) -> str:
    """Each address with why it failed; a reason shared by every address (no network) said once."""
    if not failures:
        return "no address is known for it"
    reasons = set(failures.values())
    if len(failures) > 1 and len(reasons) == 1:
        return f"each of its {len(failures)} addresses failed with {reasons.pop()!r} ({', '.join(failures)})"
    return "tried " + "; ".join(f"{url} ({reason})" for url, reason in failures.items())


def _remove_empty(folders: list[Path]) -> None:
    """Removes the folders a failed download created, deepest first, where they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another file arrived) or already gone: leave it
            return


def _make_folder(folder: Path) -> list[Path]:
    """Creates ``folder`` and its missing parents; returns the ones it created, deepest first."""
    created = []
    missing = folder
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the download folder {folder} ({exc}); pass a writable --data-dir or set HSI_DATA_DIR."
        ) from exc
    return created


def _fetch_verified(
    url: str, dest: Path, *, sha256: str | None, check: Callable[[Path], None] | None, timeout: float
) -> None:
    """Streams ``url`` into the atomic writer's temporary file; raising before the end rejects it."""
    with atomic_write(dest) as out:
        digest = _stream(url, out, name=dest.name, timeout=timeout)
        if sha256 is not None and digest != sha256.lower():
            raise _AttemptFailed(f"checksum mismatch: expected sha256 {sha256.lower()}, got {digest}")
        if check is not None:
            out.flush()  # the check reads the file by name
            try:
                check(Path(out.name))
            except HSIError as exc:
                raise _AttemptFailed(f"file rejected: {exc}") from exc


def _stream(url: str, out: BinaryIO, *, name: str, timeout: float) -> str:
    """Copies the body of ``url`` into ``out`` and returns its sha256; raises :class:`_AttemptFailed`."""
    # Imported here: only a download needs it, not every command that imports the data layer.
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s)/file only
            length = _content_length(response)
            with tqdm(
                total=length, unit="B", unit_scale=True, desc=name, leave=False, disable=not sys.stderr.isatty()
            ) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise _AttemptFailed(f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise _AttemptFailed(f"cannot connect: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _AttemptFailed(f"transfer failed after {received} bytes: {type(exc).__name__}: {exc}") from exc
    if length is not None and received != length:
        raise _AttemptFailed(f"transfer interrupted: received {received} of {length} bytes")
    return digest.hexdigest()


def _content_length(response: object) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
