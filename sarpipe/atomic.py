"""Atomic outputs: write under a temporary sibling name, rename into place only when complete.

A failed or killed run therefore never leaves an output that looks finished; at worst a hidden sibling remains,
``.NAME.TAG-PID-HOST-RANDOM`` (``TAG``: ``tmp`` for the output being written, ``old`` for the output being replaced,
``cornerturn`` for the focus's intermediate store). ``PID`` and ``HOST`` name the process that made it, so the next
writer of ``NAME`` removes the siblings of processes that are gone (:func:`remove_stale_siblings`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import with_output_name
from .outputs import check_output

#: Short hash of this machine's name: siblings made on another machine (a shared file system) are left alone.
HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
SIBLING_TAGS = ("tmp", "old", "cornerturn")
_IMPORTED = time.time()  # no sibling older than this can be this process's own


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def sibling_path(final: str | os.PathLike, tag: str) -> Path:
    """A new hidden sibling name of ``final`` owned by this process: ``.NAME.TAG-PID-HOST-RANDOM``."""
    final = Path(final)
    return final.parent / f".{final.name}.{tag}-{os.getpid()}-{HOST_TAG}-{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` of this machine exists (a signal-0 probe; one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_start(pid: int) -> float | None:
    """Start time (Unix seconds, about 1 s precision) of process ``pid`` from /proc; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the parenthesised command name
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _owner_gone(pid: int, made: float) -> bool:
    """True when no living process can own a sibling made at ``made`` by ``pid`` (gone, or its pid reused)."""
    if pid == os.getpid():
        return made < _IMPORTED - 2.0
    if not pid_alive(pid):
        return True
    start = _process_start(pid)
    return start is not None and start > made + 2.0


def remove_stale_siblings(final: str | os.PathLike, tags: Iterable[str] = SIBLING_TAGS) -> int:
    """Remove the hidden siblings of ``final`` left by killed processes on this machine; returns how many.

    A left-over ``old`` sibling while ``final`` is missing (killed between the two renames of a replacement) is
    moved back to ``final`` instead: the earlier output is restored rather than lost.
    """
    final = Path(final)
    pattern = re.compile(
        rf"^\.{re.escape(final.name)}\.({'|'.join(map(re.escape, tags))})-(\d+)-([0-9a-f]{{6}})-[0-9a-f]{{8}}$"
    )
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return 0
    n = 0
    for p in entries:
        m = pattern.match(p.name)
        if m is None or m.group(3) != HOST_TAG:
            continue
        try:
            made = p.lstat().st_mtime
        except OSError:
            continue
        if not _owner_gone(int(m.group(2)), made):
            continue
        if m.group(1) == "old" and not (final.exists() or final.is_symlink()):
            os.replace(p, final)
        else:
            _remove(p)
        n += 1
    return n


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
    option: str = "--output",
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit move it to ``path`` (file or directory).

    First :func:`sarpipe.outputs.check_output` (``inputs``, ``overwrite``, ``option`` as there): an existing
    ``path`` is replaced only if sarpipe wrote it or ``overwrite``. On an exception the temporary output is removed
    and ``path`` is left as it was.
    """
    inputs = tuple(inputs)
    final = check_output(path, inputs=inputs, overwrite=overwrite, option=option)
    existed = final.exists() or final.is_symlink()
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(final)
    tmp = sibling_path(final, "tmp")
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{final}: the writer produced nothing")
        if tmp.is_dir() and not (tmp / "zarr.json").exists():
            from .outputs import FOLDER_MARKER

            (tmp / FOLDER_MARKER).write_text("written by sarpipe\n")  # a folder of files (export, report): ours
        if final.exists() or final.is_symlink():
            if not existed:  # appeared while we wrote: ask again
                check_output(path, inputs=inputs, overwrite=overwrite, option=option)
            trash = sibling_path(final, "old")
            os.replace(final, trash)
            os.replace(tmp, final)
            _remove(trash)
        else:
            os.replace(tmp, final)
    except OSError as exc:
        _remove(tmp)
        named = with_output_name(exc, final)  # e.g. a full disk seen deep inside a writer: name the output
        if named is not None:
            raise named from exc
        raise
    except BaseException:
        _remove(tmp)
        raise
