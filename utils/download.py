"""Downloads cached in data/, verified by checksum, and archive extraction that stays inside
its folder. Offline, a download fails within seconds (short connect timeout, no retries).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from utils.results import atomic_path

CONNECT_TIMEOUT = float(os.environ.get("DL_DOWNLOAD_TIMEOUT", "6"))


class DataUnavailable(RuntimeError):
    """A dataset could not be found or fetched; the message says what to do."""


class ChecksumError(DataUnavailable):
    pass


class UnsafeArchive(DataUnavailable):
    pass


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def offline() -> bool:
    """DL_OFFLINE=1 skips network access entirely (tests, air-gapped machines)."""
    return os.environ.get("DL_OFFLINE", "").lower() in {"1", "true", "yes"}


def download(url: str, dest: Path, md5: str | None = None, timeout: float | None = None) -> Path:
    """Fetch ``url`` to ``dest`` unless a copy with the right checksum is already there.

    The file appears at ``dest`` only once complete and verified. Raises DataUnavailable
    (network) or ChecksumError (corrupt or wrong file) with a one-line reason.
    """
    dest = Path(dest)
    if dest.exists():
        if md5 is None or md5sum(dest) == md5:
            return dest
        dest.unlink()  # a corrupt cached copy: fetch it again
    if offline():
        raise DataUnavailable(f"offline (DL_OFFLINE is set), not downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout or CONNECT_TIMEOUT) as response, \
                atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                while block := response.read(1 << 20):
                    out.write(block)
            if md5 is not None and (got := md5sum(tmp)) != md5:
                raise ChecksumError(f"checksum mismatch for {url}: expected md5 {md5}, got {got}")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if isinstance(exc, ChecksumError):
            raise
        reason = getattr(exc, "reason", None) or exc
        raise DataUnavailable(f"could not download {url}: {reason}") from None
    return dest


def _is_within(base: Path, target: Path) -> bool:
    base, target = base.resolve(), target.resolve()
    return target == base or base in target.parents


def safe_extract_tar(archive: Path, dest: Path) -> list[str]:
    """Extract a tar archive into ``dest``, refusing members that would land outside it.

    Rejected: absolute paths, ``..`` components, links pointing outside ``dest``, device
    files. Python's own ``data`` filter is applied as a second line of defence.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                target = dest / m.name
                if m.name.startswith(("/", "\\")) or ".." in Path(m.name).parts or not _is_within(dest, target):
                    raise UnsafeArchive(f"unsafe path in archive {archive.name}: {m.name!r}")
                if m.issym() or m.islnk():
                    link_target = (target.parent / m.linkname) if m.issym() else dest / m.linkname
                    if Path(m.linkname).is_absolute() or not _is_within(dest, link_target):
                        raise UnsafeArchive(f"link leaving the folder in archive {archive.name}: {m.name!r} -> {m.linkname!r}")
                if m.isdev():
                    raise UnsafeArchive(f"device file in archive {archive.name}: {m.name!r}")
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataUnavailable(f"corrupt archive {archive}: {exc}") from None
    return [m.name for m in members]
