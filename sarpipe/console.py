"""What the long commands (``focus``, ``simulate``, ``rfi clean``) tell the user on stderr: one line saying what they
do, a note when the numba kernels are about to be compiled (first run only: they are cached afterwards), and a
progress bar for Dask work when stderr is a terminal."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["announce", "dask_progress", "kernels_cached", "kernels_notice"]


def announce(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def kernels_cached(module: str) -> bool:
    """Whether numba's on-disk cache holds compiled kernels of ``module`` (a file name check, nothing imported
    beyond the module's package): next to the source in ``__pycache__``, or under ``NUMBA_CACHE_DIR``."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return True
    if spec is None or not spec.origin:
        return True
    source = Path(spec.origin)
    pattern = f"{source.stem}.*.nbi"
    if any((source.parent / "__pycache__").glob(pattern)):
        return True
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    if cache_dir and Path(cache_dir).is_dir():
        return any(Path(cache_dir).glob(f"{source.parent.name}_*/{pattern}"))
    return False


def kernels_notice(*modules: str) -> None:
    """Say ``compiling kernels (first run only)...`` when one of ``modules`` has no cached kernels yet."""
    if any(not kernels_cached(m) for m in modules):
        announce("compiling kernels (first run only)...")


@contextlib.contextmanager
def dask_progress() -> Iterator[None]:
    """A Dask progress bar on stderr while the block runs, only when stderr is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    if not (isatty and isatty()):
        yield
        return
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr, minimum=1.0):
        yield
