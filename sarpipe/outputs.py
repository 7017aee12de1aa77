"""Output safety: an output never replaces an input, nor anything sarpipe did not write, unless told to.

:func:`check_output` is asked before anything is written. An output that is, is inside, or contains one of the
command's inputs is always refused (symlinks, ``..`` and relative paths resolved first), and so are the working
and home folders and the folders above them. An existing path is replaced only when sarpipe wrote it (see
:func:`written_by_sarpipe`), when it is an empty folder (nothing is lost), or with ``overwrite``.

How sarpipe recognises what it wrote:

- a Zarr store whose root attributes hold ``sarpipe_product`` (written by :func:`sarpipe.model.save_dataset`
  and the streaming focus);
- a pipeline step output, by its completion marker ``OUTPUT.sarpipe.json`` beside it;
- a JSON file with a top-level ``sarpipe_product`` or ``sarpipe_marker`` key, a PNG with a ``sarpipe_product``
  text chunk, a TIFF with ``SARPIPE_*`` tags.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import InputError

#: Root attribute of every Zarr store sarpipe writes; its value names the product (``raw``, ``slc``, ...).
PRODUCT_ATTR = "sarpipe_product"
#: File inside a folder of files (export, report) that sarpipe wrote through :func:`sarpipe.atomic.atomic_path`.
FOLDER_MARKER = ".sarpipe_product"
#: Suffix of a pipeline step's completion marker, ``OUTPUT.sarpipe.json``, written beside the output.
MARKER_SUFFIX = ".sarpipe.json"

_JSON_KEYS = (PRODUCT_ATTR, "sarpipe_marker")
_SNIFF_BYTES = 1 << 20  # how much of a TIFF's head and tail is searched for sarpipe's tags
_JSON_LIMIT = 64 << 20  # larger JSON files are not sarpipe's


def marker_path(output: str | os.PathLike) -> Path:
    """The completion marker of the pipeline step output ``output``."""
    out = Path(output)
    return out.with_name(out.name + MARKER_SUFFIX)


def has_marker(path: str | os.PathLike) -> bool:
    """True when ``path`` has a readable pipeline completion marker beside it (a pipeline wrote it)."""
    try:
        data = json.loads(marker_path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("sarpipe_marker") == 1


def _store_product(path: Path) -> Any:
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    attrs = meta.get("attributes") if isinstance(meta, dict) else None
    return attrs.get(PRODUCT_ATTR) if isinstance(attrs, dict) else None


def _png_has_product(head: bytes) -> bool:
    """Walk the PNG chunks up to the image data, looking for a tEXt/iTXt/zTXt chunk keyed ``sarpipe_product``."""
    pos = 8
    while pos + 8 <= len(head):
        length = int.from_bytes(head[pos : pos + 4], "big")
        kind = head[pos + 4 : pos + 8]
        if kind in (b"IDAT", b"IEND"):
            return False
        if (
            kind in (b"tEXt", b"iTXt", b"zTXt")
            and head[pos + 8 : pos + 8 + length].split(b"\0", 1)[0] == PRODUCT_ATTR.encode()
        ):
            return True
        pos += 12 + length
    return False


def _file_is_sarpipes(path: Path) -> bool:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            if head.startswith((b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")):  # TIFF / BigTIFF
                if b"SARPIPE_" in head:
                    return True
                fh.seek(max(0, size - _SNIFF_BYTES))
                return b"SARPIPE_" in fh.read()
    except OSError:
        return False
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png_has_product(head)
    if head.lstrip()[:1] == b"{" and size <= _JSON_LIMIT:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and any(k in data for k in _JSON_KEYS)
    return False


def written_by_sarpipe(path: str | os.PathLike) -> bool:
    """True when the existing ``path`` is recognisably sarpipe's (see the module docstring)."""
    p = Path(path)
    if p.is_symlink():
        return False  # a link is the user's, whatever it points to
    if has_marker(p):
        return True
    if p.is_dir():
        return _store_product(p) is not None or (p / FOLDER_MARKER).is_file()
    if p.is_file():
        return _file_is_sarpipes(p)
    return False


def _is_empty_folder(p: Path) -> bool:
    try:
        return p.is_dir() and not p.is_symlink() and not any(p.iterdir())
    except OSError:
        return False


def _absolute(path: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(os.fspath(path))).absolute()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def _nearest_existing(p: Path) -> Path:
    while not (p.exists() or p.is_symlink()) and p != p.parent:
        p = p.parent
    return p


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    option: str = "--output",
    owned: Callable[[Path], bool] | None = None,
    owner: str = "sarpipe",
) -> Path:
    """Check that writing ``path`` destroys nothing the user gave; return it as an absolute path.

    Raises :class:`InputError` (``where`` = ``OPTION PATH``) when ``path`` is, is inside or contains one of
    ``inputs`` (always, whatever ``overwrite`` says); when it is the working or home folder or above them; when its folder
    cannot be created or written; or when it exists, is not an empty folder, was not written by sarpipe
    (``owned``, default :func:`written_by_sarpipe`; ``owner`` names the writer in the message) and ``overwrite`` is
    False. Writes nothing.
    """
    given_out = _absolute(path)
    where = f"{option} {os.fspath(path)}"
    real = given_out.resolve()
    # the folder resolved (its `..` and links as the OS will follow them once it exists), the last name kept: a
    # link there is replaced, not followed
    out = real if given_out.name in ("", ".", "..") else given_out.parent.resolve() / given_out.name
    for given in inputs:
        if given is None:
            continue
        inp = _absolute(given)
        real_in = inp.resolve()
        if real == real_in or _same_file(given_out, inp):
            raise InputError(
                f"is the input {os.fspath(given)}; an output never replaces an input, choose another path", where=where
            )
        if real_in in real.parents:
            raise InputError(
                f"is inside the input {os.fspath(given)}; an output never writes into an input, choose another path",
                where=where,
            )
        if real in real_in.parents:
            raise InputError(
                f"contains the input {os.fspath(given)}; writing it would replace the input, choose another path",
                where=where,
            )
    for folder, name in ((Path.cwd(), "the working folder"), (Path.home(), "the home folder")):
        folder = folder.resolve()
        if real == folder or real in folder.parents:
            raise InputError(f"is {name} or a folder above it; give a new path for the output", where=where)

    base = _nearest_existing(out.parent)
    if not base.is_dir():
        raise InputError(f"{base} is a file, not a folder, so nothing can be written under it", where=where)
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"the folder {base} is not writable", where=where)

    if out.exists() or out.is_symlink():
        mine = (owned or written_by_sarpipe)(out)
        if not (overwrite or mine or _is_empty_folder(out)):
            what = "a link" if out.is_symlink() else "a folder" if out.is_dir() else "a file"
            raise InputError(
                f"exists and is {what} {owner} did not write; nothing was changed (choose another path, "
                "or pass --overwrite to replace it)",
                where=where,
            )
    return out
