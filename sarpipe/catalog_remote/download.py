"""The downloader every provider shares: resume, verify, rename.

A product is written to ``FILE.part`` beside its final name. A dropped connection, a 429 or a 5xx answer is
retried with backoff (:mod:`~sarpipe.catalog_remote.retrying`), and every new try, as well as a later rerun,
resumes from the partial file with an HTTP ``Range: bytes=N-`` request (a server that ignores it sends the whole
file again, which is then written from the start). When all bytes are there, the size and the strongest checksum
``hashlib`` (or the ``blake3`` package) can compute are verified; a match renames ``FILE.part`` to ``FILE``
(atomic, same folder), a mismatch moves it aside to ``FILE.rejected`` and is bad input (exit 2). A failed download
keeps ``FILE.part`` for the next run.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..errors import InputError
from .records import Checksum, ProductRecord
from .retrying import RETRY_STATUS, retry_after_seconds, status_reason

#: strongest first; BLAKE3 needs the optional ``blake3`` package (hashlib has none)
_PREFERENCE = ("SHA512", "SHA256", "BLAKE3", "SHA1", "MD5")
_CHUNK = 1 << 16  # small enough that a dropped connection loses little of what arrived


def hasher_factory(algorithm: str) -> Callable[[], Any] | None:
    """A constructor of a hash object for ``algorithm`` (``MD5``, ``SHA-256``, ``BLAKE3``, ...), or None."""
    name = algorithm.upper().replace("-", "").replace("_", "")
    if name == "BLAKE3":
        try:
            import blake3  # type: ignore[import-not-found]
        except ImportError:
            return None
        return blake3.blake3
    lib = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512", "SHA3256": "sha3_256"}.get(name)
    return (lambda: hashlib.new(lib)) if lib else None


def choose_checksum(checksums: list[Checksum]) -> tuple[Checksum | None, Callable[[], Any] | None, list[str]]:
    """The checksum to verify (the strongest one computable here), its hasher, and the algorithms skipped."""
    usable = [(c, hasher_factory(c.algorithm)) for c in checksums]
    skipped = [c.algorithm for c, h in usable if h is None]
    usable = [(c, h) for c, h in usable if h is not None]
    rank = {a: i for i, a in enumerate(_PREFERENCE)}
    usable.sort(key=lambda ch: rank.get(ch[0].algorithm.upper().replace("-", ""), len(rank)))
    return (usable[0][0], usable[0][1], skipped) if usable else (None, None, skipped)


def _hash_file(path: Path, make: Callable[[], Any] | None) -> Any:
    h = make() if make else None
    if h is not None and path.exists():
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_CHUNK), b""):
                h.update(block)
    return h


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total length) of a ``Content-Range: bytes A-B/N`` (or ``bytes */N``) header."""
    m = re.match(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", value or "")
    if not m:
        return None, None
    first = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return first, total


def _same_site(a: str, b: str) -> bool:
    """Whether credentials for host ``a`` may go to host ``b`` after a redirect (same host, or a host under
    ``a``'s parent domain: download.dataspace.copernicus.eu -> zipper.dataspace.copernicus.eu)."""
    ha, hb = urlsplit(a).hostname or "", urlsplit(b).hostname or ""
    if ha == hb:
        return True
    parent = ha.split(".", 1)[1] if ha.count(".") >= 2 else ha
    return hb.endswith("." + parent) and not re.match(r"^[\d.]+$", ha)


def _get(session: Any, url: str, headers: dict[str, str], basic: tuple[str, str] | None, timeout: float) -> Any:
    """GET following redirects here, so that credentials reach only the original site."""
    origin = url
    for _ in range(10):
        same = _same_site(origin, url)
        r = session.get(
            url,
            headers=headers if same else {k: v for k, v in headers.items() if k.lower() != "authorization"},
            auth=basic if same else None,
            stream=True,
            timeout=timeout,
            allow_redirects=False,
        )
        if r.status_code in (301, 302, 303, 307, 308) and r.headers.get("Location"):
            url = urljoin(url, r.headers["Location"])
            r.close()
            continue
        return r
    raise InputError(f"too many redirects fetching {origin}")


@dataclass
class Downloaded:
    """A verified download: the file, what verified it (``MD5``, ``SHA256``, ..., ``size`` or ``none``) and the
    catalog's checksums that could not be computed here (e.g. ``BLAKE3`` without the ``blake3`` package)."""

    path: Path
    record: ProductRecord
    verified: str
    skipped: list[str] = field(default_factory=list)


class Progress:
    """Receives download progress; the default shows nothing."""

    def start(self, name: str, total: int | None, completed: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def stop(self) -> None: ...


class RichProgress(Progress):
    """A rich progress bar on stderr (bytes, rate, time left)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as _P

        self._bar = _P(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = None

    def start(self, name: str, total: int | None, completed: int) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(name, total=total, completed=completed)
        else:
            self._bar.update(self._task, total=total, completed=completed)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def stop(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None


def download_product(
    provider: Any, record: ProductRecord, directory: Path, *, progress: Progress | None = None
) -> Downloaded:
    """Download ``record`` into ``directory`` (see the module docstring); returns the verified file."""
    import requests

    progress = progress or Progress()
    directory.mkdir(parents=True, exist_ok=True)
    record = provider.prepare_download(record)
    filename = Path(record.filename).name
    if not filename or filename in (".", ".."):
        raise InputError(f"product {record.id!r}: no usable file name", where=provider.entry_name)
    final = directory / filename
    part = final.with_name(final.name + ".part")
    rejected = final.with_name(final.name + ".rejected")
    checksum, make_hasher, skipped = choose_checksum(record.checksums)
    auth = provider.download_auth(record)
    what = f"download {record.id}"
    retrier = provider.retrier(f"{provider.entry_name}: {what}")
    refreshed = False
    hasher = None
    try:
        while True:
            offset = part.stat().st_size if part.exists() else 0
            if record.size is not None and offset > record.size:
                part.unlink()
                offset = 0
            if record.size is not None and offset == record.size and offset > 0:
                hasher = _hash_file(part, make_hasher)  # complete already (a run stopped before the rename)
                break
            headers = dict(auth.headers)
            if offset:
                headers["Range"] = f"bytes={offset}-"
            try:
                r = _get(provider.session, record.href, headers, auth.basic, provider.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                retrier.wait(f"{type(exc).__name__}: {exc}")
                continue
            with r:
                if r.status_code == 416:
                    _, total = _content_range(r.headers.get("Content-Range"))
                    if total is not None and total == offset:
                        record.size = total
                        hasher = _hash_file(part, make_hasher)
                        break
                    part.unlink(missing_ok=True)  # the partial file is not a prefix of this product
                    retrier.wait(f"{status_reason(r)} for a partial file of {offset} bytes")
                    continue
                if r.status_code in (401, 403) and not refreshed and auth.refresh():
                    refreshed = True
                    continue
                if r.status_code in RETRY_STATUS:
                    retrier.wait(status_reason(r), retry_after_seconds(r.headers.get("Retry-After")))
                    continue
                if r.status_code not in (200, 206):
                    raise provider.http_error(r, what)
                if r.status_code == 206:
                    first, total = _content_range(r.headers.get("Content-Range"))
                    if first != offset:
                        part.unlink(missing_ok=True)
                        retrier.wait(f"the server resumed at byte {first}, not {offset}")
                        continue
                    hasher = _hash_file(part, make_hasher)
                else:  # the whole file: a fresh start (also when the server ignored Range)
                    offset, hasher = 0, (make_hasher() if make_hasher else None)
                    length = r.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                if record.size is None and total is not None:
                    record.size = total
                progress.start(filename, record.size, offset)
                try:
                    with open(part, "ab" if offset else "wb") as f:
                        for chunk in r.iter_content(_CHUNK):
                            f.write(chunk)
                            if hasher is not None:
                                hasher.update(chunk)
                            progress.advance(len(chunk))
                        f.flush()
                        os.fsync(f.fileno())
                except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                    got = part.stat().st_size if part.exists() else 0
                    retrier.wait(f"connection lost after {got} bytes ({type(exc).__name__})")
                    continue
            got = part.stat().st_size
            if record.size is not None and got < record.size:
                retrier.wait(f"the server sent {got} of {record.size} bytes")
                continue
            break
    finally:
        progress.stop()

    got = part.stat().st_size
    problem = None
    if record.size is not None and got != record.size:
        problem = f"size {got} bytes, the catalog says {record.size}"
    elif checksum is not None and hasher is not None and hasher.hexdigest().lower() != checksum.value.lower():
        problem = f"{checksum.algorithm} {hasher.hexdigest()}, the catalog says {checksum.value}"
    if problem is not None:
        os.replace(part, rejected)
        raise InputError(
            f"{record.id}: the download does not match its catalog record ({problem}); refused and kept aside as "
            f"{rejected} (the next fetch starts again)",
            where=provider.entry_name,
        )
    os.replace(part, final)
    verified = checksum.algorithm if checksum else ("size" if record.size is not None else "none")
    return Downloaded(final, record, verified, skipped)
