"""The one exception type for bad input.

Anything a user can fix (a missing attribute, a bad YAML key, a wrong dtype) raises :class:`InputError`; the
command line turns it into exit status 2. Anything else is an internal error (exit status 1).
"""

from __future__ import annotations

import errno
import os


class InputError(ValueError):
    """Bad input or usage. The message names the file, variable, attribute, key or YAML line at fault."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


#: errno values that mean the environment refused a file operation (full disk, permissions, a file in the way, a
#: missing file): the user's to fix, so the CLI exits 2 with one line naming the file.
_ENVIRONMENT_ERRNOS = {
    getattr(errno, n)
    for n in (
        "ENOSPC",
        "EACCES",
        "EPERM",
        "EROFS",
        "EDQUOT",
        "ENOTDIR",
        "EISDIR",
        "EEXIST",
        "ENOTEMPTY",
        "ENOENT",
        "EFBIG",
        "EMFILE",
        "ENFILE",
    )
    if hasattr(errno, n)
}


def environment_message(exc: BaseException) -> str | None:
    """The one-line message for an OSError the environment caused (see ``_ENVIRONMENT_ERRNOS``; also a short write,
    which is how a full disk shows through some libraries), else None (an internal error)."""
    if not isinstance(exc, OSError):
        return None
    short_write = exc.errno is None and "written" in str(exc)
    if exc.errno not in _ENVIRONMENT_ERRNOS and not short_write:
        return None
    if short_write:
        return f"{exc} (a short write: is the disk full?)"
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return str(exc)
    extra = f" (-> {os.fspath(exc.filename2)})" if getattr(exc, "filename2", None) else ""
    return f"{os.fspath(exc.filename)}{extra}: {reason}"


def with_output_name(exc: OSError, path: str | os.PathLike) -> OSError | None:
    """``exc`` re-made to name ``path`` when it names no file (a full disk seen deep inside a writer, or a short
    write, which some writers report without an errno); None when it already names one or is of another kind."""
    if exc.filename is not None:
        return None
    if exc.errno is not None:
        return OSError(exc.errno, exc.strerror or str(exc), os.fspath(path))
    if "written" in str(exc):
        return OSError(errno.ENOSPC, f"{exc} (a short write: is the disk full?)", os.fspath(path))
    return None
