"""The streaming clean step (sarpipe.rfi.streaming_clean, behind `rfi clean` and the clean_rfi stage): the same store
as the in-memory chain's `clean()` bit for bit, whatever the chunking and the batch size; nothing half-written on
failure; the input untouched; peak memory that does not grow with the scene."""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sarpipe.model import load_dataset, open_raw, save_dataset
from sarpipe.rfi import streaming_clean
from sarpipe.rfi.chain_io import CleanParams, clean_store, detect_store
from sarpipe.rfi.clean import _batches, clean
from sarpipe.rfi.detection import open_detection
from sarpipe.rfi.methods import create_method
from sarpipe.testing import make_scene

ROOT = Path(__file__).resolve().parents[1]
BATCH = 20  # 60 flagged pulses -> several batches; 48-line chunks: batch and chunk boundaries do not align
CHUNK_ROWS = 48


def _bench():
    spec = importlib.util.spec_from_file_location("rfi_clean_memory", ROOT / "benchmarks" / "rfi_clean_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    ds = make_scene(
        "minisar",
        11,
        n_azimuth=768,
        n_range=512,
        near_range=1500.0,
        sir_db=-12.0,
        rfi_overrides={"pulses": [[360, 420]]},
    )
    d = tmp_path_factory.mktemp("stream")
    raw, det = d / "raw.zarr", d / "det.zarr"
    save_dataset(ds, raw, chunks={"azimuth": CHUNK_ROWS})
    detect_store(raw, det)
    return raw, det


def _digest(store: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in store.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(store)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _assert_same_store(streamed: Path, reference, raw_in) -> None:
    """``streamed`` (a store) holds exactly ``reference`` (the in-memory chain's dataset)."""
    got = open_raw(streamed)
    assert sorted(map(str, got.variables)) == sorted(map(str, reference.variables))
    for name in reference.variables:
        a, b = np.asarray(got[name].values), np.asarray(reference[name].values)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), f"{name} differs"
    flags = got["rfi_pulses"].values
    before = np.asarray(raw_in["echo"].values)
    assert flags.any() and not np.array_equal(got["echo"].values[flags], before[flags])  # cleaned
    assert got["echo"].values[~flags].tobytes() == before[~flags].tobytes()  # passed through
    assert got["echo"].attrs["units"] and got["rfi_image_mask"].dims == ("azimuth", "range")
    mine, theirs = got.attrs["processing_history"][-1], dict(reference.attrs["processing_history"][-1])
    mine.pop("time"), theirs.pop("time")
    assert mine == theirs and mine["step"] == "rfi_clean"
    assert {k: v for k, v in got.attrs.items() if k != "processing_history"} == {
        k: v for k, v in reference.attrs.items() if k not in ("processing_history",)
    } | {"sarpipe_product": "raw"}


@pytest.mark.parametrize("method", ["notch", "esf"])
def test_streamed_clean_equals_the_in_memory_chain(scene, tmp_path, method):
    raw_path, det_path = scene
    raw = load_dataset(raw_path, "raw")
    det = open_detection(det_path)
    m = create_method(method)
    batches = _batches(det.rfi_pulses, m, BATCH)
    assert len(batches) >= 3 and any(b[0] % CHUNK_ROWS and b[-1] // CHUNK_ROWS != b[0] // CHUNK_ROWS for b in batches)
    reference = clean(raw, method, detection=det, batch_pulses=BATCH).raw
    before = _digest(raw_path)
    out = tmp_path / "clean.zarr"
    summary = clean_store(raw_path, out, CleanParams(method=method, batch_pulses=BATCH), detection_path=det_path)
    assert _digest(raw_path) == before  # chunks were copied, then written in place: never the input's
    _assert_same_store(out, reference, raw)
    assert summary["n_rfi_pulses"] == int(det.rfi_pulses.sum())
    assert summary["image_mask_fraction"] == pytest.approx(float(np.mean(det.rfi_image_mask)))


def test_detection_run_here_and_recompressed_input(scene, tmp_path):
    """Without a detection product (detected in memory, then streamed) and on an input whose echo chunks cannot be
    file-copied (zstd-compressed, range split in two), the store is still the in-memory chain's."""
    import xarray as xr

    raw_path, _ = scene
    odd = tmp_path / "odd.zarr"
    src = xr.open_zarr(raw_path, consolidated=False).load()
    encoding = {"echo": {"chunks": (40, 300)}}  # zarr's default compressor (zstd)
    src.to_zarr(odd, zarr_format=3, consolidated=False, encoding=encoding, write_empty_chunks=True)
    assert not streaming_clean.ChunkedArray(odd / "echo").fast
    raw = load_dataset(odd, "raw")
    reference = clean(raw, "notch", batch_pulses=BATCH).raw
    out = tmp_path / "clean.zarr"
    clean_store(odd, out, CleanParams(method="notch", batch_pulses=BATCH))
    _assert_same_store(out, reference, raw)


def test_a_failure_mid_scene_leaves_no_output(scene, tmp_path, monkeypatch):
    raw_path, det_path = scene
    calls = []
    real = streaming_clean.clean_pulses

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("method failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(streaming_clean, "clean_pulses", failing)
    before = _digest(raw_path)
    out = tmp_path / "clean.zarr"
    with pytest.raises(RuntimeError, match="method failed"):
        clean_store(raw_path, out, CleanParams(batch_pulses=BATCH), detection_path=det_path)
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary sibling
    assert _digest(raw_path) == before


_CHILD = """
import sys
from sarpipe.rfi.chain_io import CleanParams, clean_store
clean_store(sys.argv[1], sys.argv[2], CleanParams(method="notch", batch_pulses=32), detection_path=sys.argv[3])
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _peak_rss(raw: Path, det: Path, out: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(raw), str(out), str(det)], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stderr
    return int(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_scene(tmp_path):
    """A 128 MiB scene and a 16 MiB one (same range width, same 512-line chunks, RFI on 6.5 % of the pulses of
    each, batches of 32 pulses: full batches in both): the clean step's peak RSS (fresh process) differs by under
    a quarter of the large scene (measured: 20 MiB), where the in-memory chain holds the echo twice (load + copy),
    over twice the scene. The peak is bounded by the batch and the chunk, not the scene."""
    bench = _bench()
    peaks = {}
    for n_az in (512, 4096):
        raw, det = tmp_path / f"raw{n_az}.zarr", tmp_path / f"det{n_az}.zarr"
        flags = bench.write_scene(raw, n_az, 4096, rows=512)
        bench.write_detection(det, raw, flags)
        peaks[n_az] = _peak_rss(raw, det, tmp_path / f"clean{n_az}.zarr")
        out = open_raw(tmp_path / f"clean{n_az}.zarr", check_values=False)
        assert int(out["rfi_pulses"].values.sum()) == int(flags.sum()) > 0
    scene = 4096 * 4096 * 8
    grown = peaks[4096] - peaks[512]
    print(json.dumps({"peak_rss": peaks, "grown_bytes": grown, "scene_bytes": scene}))
    assert grown < 0.25 * scene, f"peak grew by {grown / 2**20:.0f} MiB for a {scene / 2**20:.0f} MiB scene"


def test_nan_in_the_echo_is_refused_naming_it(scene, tmp_path):
    """The contract's NaN/Inf scan of ``echo`` happens while its chunks are copied: InputError naming the variable,
    and no output."""
    import shutil

    from sarpipe.errors import InputError
    from sarpipe.focus.chunkio import ChunkedArray

    raw_path, det_path = scene
    bad = tmp_path / "bad.zarr"
    shutil.copytree(raw_path, bad)
    echo = ChunkedArray(bad / "echo")
    block = echo.read(5 * CHUNK_ROWS, 6 * CHUNK_ROWS, 0, echo.shape[1])
    block[7, 11] = np.nan
    echo.write(5 * CHUNK_ROWS, 0, block)
    out = tmp_path / "clean.zarr"
    with pytest.raises(InputError, match="NaN or Inf") as err:
        clean_store(bad, out, CleanParams(), detection_path=det_path)
    assert "variable 'echo'" in str(err.value) and not out.exists()


def test_a_detection_of_another_scene_is_refused(scene, tmp_path, capsys):
    from sarpipe.cli import main

    raw_path, det_path = scene
    short = tmp_path / "short.zarr"
    save_dataset(load_dataset(raw_path, "raw").isel(azimuth=slice(0, 700)), short)
    out = tmp_path / "clean.zarr"
    assert main(["rfi", "clean", str(short), "-o", str(out), "--detection", str(det_path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {det_path}: the detection is for a (768, 512) scene, the echo is (700, 512)" in err
    assert not out.exists()


def test_an_empty_image_mask_is_still_written_chunk_by_chunk(scene, tmp_path):
    """Flagged pulses whose focused RFI stays under the clutter leave an all-false image mask: zarr would skip its
    chunks (they equal the fill value) and the store would then read as damaged. Every chunk file is written."""
    import dataclasses

    import dask.array as da
    import xarray as xr

    raw_path, det_path = scene
    det = open_detection(det_path)
    lazy = xr.DataArray(da.zeros(det.rfi_image_mask.shape, dtype=bool, chunks=-1), dims=("azimuth", "range"))
    empty = dataclasses.replace(det, image=dataclasses.replace(det.image, mask=lazy))  # as a streamed detection's
    one_chunk = tmp_path / "raw.zarr"  # 768 lines in one chunk: the mask is written as one all-false block
    save_dataset(load_dataset(raw_path, "raw"), one_chunk)
    out = tmp_path / "clean.zarr"
    streaming_clean.clean_zarr(one_chunk, out, empty, method="notch", batch_pulses=BATCH)
    assert [p.name for p in (out / "rfi_image_mask" / "c").rglob("*") if p.is_file()] == ["0"]  # its one chunk
    got = open_raw(out)  # refuses a store with a missing chunk file
    assert not got["rfi_image_mask"].values.any() and got["rfi_pulses"].values.sum() == det.rfi_pulses.sum()
