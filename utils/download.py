"""Downloads cached in data/, verified by checksum, and archive extraction that stays inside
its folder. Offline, a download fails within seconds (short connect timeout, no retries).

A user's file is never deleted or overwritten: a download goes to a temporary file, is
verified, and only then takes its place; a local file whose checksum differs is renamed aside
(``<name>.mismatch-<md5>``), never removed. Archives extract into a temporary folder that is
renamed into place with a marker recording the archive's md5, so a half-extracted dataset is
never taken for a complete one.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from utils.results import atomic_path

DEFAULT_TIMEOUT = 6.0
MARKER = ".extracted.json"  # written beside an extracted dataset: which archive (md5) it came from


class DataUnavailable(RuntimeError):
    """A dataset could not be found or fetched; the message says what to do."""


class ChecksumError(DataUnavailable):
    pass


class UnsafeArchive(DataUnavailable):
    pass


def connect_timeout() -> float:
    """Seconds to wait for a server: $DL_DOWNLOAD_TIMEOUT if it is a positive number, else 6."""
    raw = os.environ.get("DL_DOWNLOAD_TIMEOUT", "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if 0 < value < 3600 else DEFAULT_TIMEOUT


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def offline() -> bool:
    """DL_OFFLINE=1 skips network access entirely (tests, air-gapped machines)."""
    return os.environ.get("DL_OFFLINE", "").lower() in {"1", "true", "yes"}


def set_aside(path: Path, digest: str) -> Path:
    """Rename a mismatched local file to ``<name>.mismatch-<md5 prefix>`` (never deleted)."""
    aside = path.with_name(f"{path.name}.mismatch-{digest[:8]}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.mismatch-{digest[:8]}-{n}")
        n += 1
    os.replace(path, aside)
    return aside


def download(url: str, dest: Path, md5: str | None = None, timeout: float | None = None) -> Path:
    """Fetch ``url`` to ``dest`` unless a copy with the right checksum is already there.

    The file appears at ``dest`` only once complete and verified. A different file already at
    ``dest`` is kept: renamed aside once the verified download is ready, and left untouched when
    the download cannot happen. Raises DataUnavailable (network) or ChecksumError (a download
    with the wrong checksum) with a one-line reason.
    """
    dest = Path(dest)
    local_md5 = None
    if dest.exists():
        if md5 is None:
            return dest
        local_md5 = md5sum(dest)
        if local_md5 == md5:
            return dest
    kept = (f"; the local file {dest} (md5 {local_md5}, expected {md5}) was left as it is"
            if local_md5 else "")
    if offline():
        raise DataUnavailable(f"offline (DL_OFFLINE is set), not downloading {url}{kept}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout or connect_timeout()) as response:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out:
                    while block := response.read(1 << 20):
                        out.write(block)
                if md5 is not None and (got := md5sum(tmp)) != md5:
                    raise ChecksumError(f"checksum mismatch for {url}: expected md5 {md5}, got {got}{kept}")
                if local_md5:
                    set_aside(dest, local_md5)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
    except ChecksumError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataUnavailable(f"could not download {url}: {reason}{kept}") from None
    return dest


def _is_within(base: Path, target: Path) -> bool:
    base, target = base.resolve(), target.resolve()
    return target == base or base in target.parents


def _check_members(archive: Path, dest: Path, members) -> None:
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


def safe_extract_tar(archive: Path, dest: Path) -> list[str]:
    """Extract a tar archive into ``dest``, refusing members that would land outside it.

    Rejected: absolute paths, ``..`` components, links pointing outside ``dest``, device
    files. Python's own ``data`` filter is applied as a second line of defence. Nothing is
    extracted from a refused archive.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            _check_members(archive, dest, members)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        if isinstance(exc, DataUnavailable):
            raise
        raise DataUnavailable(f"corrupt archive {archive}: {exc}") from None
    return [m.name for m in members]


def extract_once(archive: Path, folder: Path, top: str, md5: str) -> Path:
    """``folder/top`` extracted from ``archive`` (md5 ``md5``), complete and marked.

    The archive is unpacked into a temporary folder beside the target, then renamed into place
    with a marker naming the archive's md5. A previous folder without a valid marker (half
    extracted, or from another archive) is renamed aside, not deleted. Returns ``folder/top``.
    """
    folder = Path(folder)
    target = folder / top
    if marker_ok(target, md5):
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".extract-{top}.", dir=folder))
    try:
        safe_extract_tar(archive, staging)
        if not (staging / top).is_dir():
            raise DataUnavailable(f"archive {archive} has no folder {top}/")
        write_marker(staging / top, md5, archive.name)
        if target.exists():
            aside = folder / f"{top}.incomplete"
            n = 1
            while aside.exists():
                aside, n = folder / f"{top}.incomplete-{n}", n + 1
            os.replace(target, aside)
        os.replace(staging / top, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_marker(folder: Path, md5: str, source: str) -> None:
    with atomic_path(Path(folder) / MARKER) as tmp:
        tmp.write_text(json.dumps({"archive_md5": md5, "source": source}) + "\n", encoding="utf-8")


def marker_ok(folder: Path, md5: str) -> bool:
    """True when ``folder`` was completely extracted from the archive with this md5."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("archive_md5") == md5
