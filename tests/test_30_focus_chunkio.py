"""Raw chunk I/O of focusing's own Zarr stores agrees with zarr-python (both directions, edge chunks, fallback)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from sarpipe.focus.chunkio import ChunkedArray


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_fast_writes_are_read_back_by_zarr(tmp_path):
    z = zarr.create_array(
        store=str(tmp_path / "a"),
        shape=(10, 7),
        chunks=(4, 3),
        dtype=np.complex64,
        compressors=None,
        fill_value=0j,
        zarr_format=3,
    )
    arr = ChunkedArray(tmp_path / "a")
    assert arr.fast
    x = _data((10, 7))
    arr.write(0, 0, x[:8, :6])  # aligned interior block
    arr.write(8, 0, x[8:, :])  # last chunk row, partial
    arr.write(0, 6, x[:8, 6:])  # last chunk column, partial
    assert np.array_equal(z[:], x)
    assert np.array_equal(zarr.open_array(store=str(tmp_path / "a"), mode="r")[:], x)


def test_fast_reads_match_zarr_and_wrap_periodically(tmp_path):
    z = zarr.create_array(
        store=str(tmp_path / "b"),
        shape=(9, 11),
        chunks=(4, 3),
        dtype=np.complex64,
        compressors=None,
        fill_value=1 + 2j,
        zarr_format=3,
    )
    x = _data((9, 11), 1)
    z[:, :8] = x[:, :8]  # chunk column 3 (cols 9, 10) never written: fill value
    arr = ChunkedArray(tmp_path / "b")
    expected = z[:]
    assert np.array_equal(arr.read(1, 8, 2, 10), expected[1:8, 2:10])
    cols = np.arange(-4, 13) % 11
    assert np.array_equal(arr.read_periodic_columns(-4, 13), expected[:, cols])
    assert np.array_equal(arr.read_periodic_columns(-25, -1), expected[:, np.arange(-25, -1) % 11])


@pytest.mark.parametrize("aligned", [True, False])
def test_compressed_or_unaligned_falls_back_to_zarr(tmp_path, aligned):
    z = zarr.create_array(
        store=str(tmp_path / "c"), shape=(8, 8), chunks=(4, 4), dtype=np.complex64, fill_value=0j, zarr_format=3
    )  # default compressor: zstd
    arr = ChunkedArray(tmp_path / "c")
    assert not arr.fast
    x = _data((8, 8), 2)
    arr.write(0, 0, x) if aligned else arr.write(1, 1, x[1:, 1:])
    want = x if aligned else np.pad(x[1:, 1:], ((1, 0), (1, 0)))
    assert np.array_equal(z[:], want)
    assert np.array_equal(arr.read(0, 8, 0, 8), want)
    plain = zarr.create_array(
        store=str(tmp_path / "d"),
        shape=(8, 8),
        chunks=(4, 4),
        dtype=np.complex64,
        compressors=None,
        fill_value=0j,
        zarr_format=3,
    )
    ChunkedArray(tmp_path / "d").write(1, 1, x[1:, 1:])  # unaligned on a fast array: zarr-python path
    assert np.array_equal(plain[1:, 1:], x[1:, 1:])
