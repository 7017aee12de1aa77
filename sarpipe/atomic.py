"""Atomic outputs: write under a temporary sibling name, rename into place only when complete.

A failed or killed run therefore never leaves an output that looks finished; at worst a hidden
``.NAME.tmp-XXXX`` sibling remains, which no reader mistakes for the product.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit move it to ``path`` (file or directory).

    On an exception the temporary output is removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{final}: the writer produced nothing")
        if final.exists() or final.is_symlink():
            if not overwrite:
                raise FileExistsError(f"{final}: exists (pass overwrite=True to replace it)")
            trash = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, trash)
            os.replace(tmp, final)
            _remove(trash)
        else:
            os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise
