"""Fast block I/O for the uncompressed Zarr v3 arrays that focusing writes (corner turn and output).

zarr-python's write path costs ~2 ms per MB here (per-chunk codec pipeline, temporary file and rename), more than
the focusing arithmetic. The arrays sarpipe creates for itself are uncompressed, little-endian, C-order, regular
chunk grid, default chunk keys (``c/i/j``): per the Zarr v3 specification each chunk is then the raw bytes of the
full chunk shape (edge chunks padded with the fill value). :class:`ChunkedArray` writes and reads such chunks as
plain files; it checks the array metadata first and falls back to zarr-python for anything else. Blocks must be
chunk-aligned (start on a chunk boundary, end on one or on the array edge); different writers must not share a
chunk. The stores are temporary (renamed into place by :func:`sarpipe.atomic.atomic_path`), so chunk files need
no atomic replacement of their own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import zarr

from ..errors import InputError

_BYTES_LE = [{"name": "bytes", "configuration": {"endian": "little"}}]


def open_zarr_array(path: str | os.PathLike, mode: str = "r") -> zarr.Array:
    """The Zarr array at ``path``, writing every chunk, even one equal to the fill value (zarr's default skips
    those, and sarpipe's stores must hold every chunk file: a missing one means damage,
    :func:`sarpipe.model.check_chunks_present`)."""
    with zarr.config.set({"array.write_empty_chunks": True}):
        return zarr.open_array(store=os.fspath(path), mode=mode)


class ChunkedArray:
    """A 2-D complex64 Zarr v3 array at ``path`` (the array's folder, holding its ``zarr.json``)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta = json.loads((self.path / "zarr.json").read_text())
        self.shape = tuple(meta["shape"])
        self.chunks = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
        key = meta.get("chunk_key_encoding", {})
        self.fast = (
            meta.get("data_type") == "complex64"
            and meta.get("codecs") == _BYTES_LE
            and not meta.get("storage_transformers")
            and meta.get("chunk_grid", {}).get("name") == "regular"
            and key.get("name") == "default"
            and key.get("configuration", {}).get("separator", "/") == "/"
            and len(self.shape) == 2
        )
        fill = meta.get("fill_value", [0.0, 0.0])
        self.fill = complex(*fill) if isinstance(fill, list) else 0j

    def _zarr(self, mode: str) -> zarr.Array:
        return open_zarr_array(self.path, mode)

    def _chunk_file(self, i: int, j: int) -> Path:
        return self.path / "c" / str(i) / str(j)

    def write(self, row0: int, col0: int, block: np.ndarray) -> None:
        """Write ``block`` at (row0, col0); the block must be chunk-aligned."""
        rows, cols = block.shape
        cr, cc = self.chunks
        aligned = (
            row0 % cr == 0
            and col0 % cc == 0
            and ((row0 + rows) % cr == 0 or row0 + rows == self.shape[0])
            and ((col0 + cols) % cc == 0 or col0 + cols == self.shape[1])
        )
        if not (self.fast and aligned):
            self._zarr("r+")[row0 : row0 + rows, col0 : col0 + cols] = block
            return
        buf = np.empty((cr, cc), dtype="<c8")
        for r in range(0, rows, cr):
            for c in range(0, cols, cc):
                part = block[r : r + cr, c : c + cc]
                if part.shape != (cr, cc):
                    buf[...] = self.fill
                buf[: part.shape[0], : part.shape[1]] = part
                target = self._chunk_file((row0 + r) // cr, (col0 + c) // cc)
                target.parent.mkdir(parents=True, exist_ok=True)
                buf.tofile(target)

    def read(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        """The block [row0:row1, col0:col1] (complex64, C order); missing chunks read as the fill value."""
        if not self.fast:
            try:
                return np.ascontiguousarray(self._zarr("r")[row0:row1, col0:col1], dtype=np.complex64)
            except (ValueError, OSError, KeyError) as exc:  # a damaged store, not a bug of ours
                raise InputError(
                    f"rows {row0}:{row1}, columns {col0}:{col1} cannot be read "
                    f"({type(exc).__name__}: {exc}); the store is damaged",
                    where=os.fspath(self.path),
                ) from exc
        out = np.empty((row1 - row0, col1 - col0), dtype=np.complex64)
        cr, cc = self.chunks
        for i in range(row0 // cr, -(-row1 // cr)):
            for j in range(col0 // cc, -(-col1 // cc)):
                r0, r1 = max(row0, i * cr), min(row1, (i + 1) * cr)
                c0, c1 = max(col0, j * cc), min(col1, (j + 1) * cc)
                source = self._chunk_file(i, j)
                if source.exists():
                    chunk = np.fromfile(source, dtype="<c8")
                    if chunk.size != cr * cc:
                        raise InputError(
                            f"holds {chunk.size * 8} bytes, a complex64 chunk of {cr} x {cc} needs "
                            f"{cr * cc * 8}: the store is truncated or damaged",
                            where=os.fspath(source),
                        )
                    chunk = chunk.reshape(cr, cc)
                    out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = chunk[
                        r0 - i * cr : r1 - i * cr, c0 - j * cc : c1 - j * cc
                    ]
                else:
                    out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = self.fill
        return out

    def read_periodic_columns(self, start: int, stop: int) -> np.ndarray:
        """All rows of columns ``start..stop-1`` taken modulo the width (a periodic range axis)."""
        n = self.shape[1]
        pieces = []
        c = start
        while c < stop:
            lo = c % n
            hi = min(n, lo + (stop - c))
            pieces.append(self.read(0, self.shape[0], lo, hi))
            c += hi - lo
        return pieces[0] if len(pieces) == 1 else np.ascontiguousarray(np.concatenate(pieces, axis=1))
