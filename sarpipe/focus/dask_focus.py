"""Streaming focusing, Zarr store to Zarr store, with memory bounded by the block size (not the scene size).

1. Range pass: Dask tasks over azimuth blocks read raw pulses, range-compress them and write them to a
   temporary corner-turn Zarr store (chunks: one azimuth block x ``CORNER_TURN_COLUMNS`` range bins), returning
   the lag-one correlation sums of the Doppler centroid estimator (the NaN/Inf scan rides on them: a non-finite
   sample makes its pulse's sums non-finite).
2. Azimuth pass: tasks over range blocks read all pulses of their block plus a small periodic range halo (the
   RCMC reach), do azimuth FFT, RCMC + azimuth compression and azimuth IFFT, and write their columns of the
   output store.
The output path is checked before anything runs (:func:`sarpipe.outputs.check_output`: never the input, never
something sarpipe did not write unless ``overwrite``), built under a temporary name and renamed when complete
(:func:`sarpipe.atomic.atomic_path`); the corner-turn store is a hidden sibling named after this process, removed
on success and on failure, and by the next run when a kill left it behind. Tasks run where
:func:`sarpipe.chunk_tasks.run_chunk_tasks` puts them: local threads by default, every worker of the cluster when
this runs inside a ``dask.distributed`` worker (the stores must then be on a shared file system). Each writes only
its own chunks, so a task rerun after a worker died writes the same bytes. Each task is single-threaded (numba serial kernels, one FFT thread); Dask runs them in parallel.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from ..atomic import atomic_path, remove_stale_siblings, sibling_path
from ..chunk_tasks import run_chunk_tasks
from ..errors import InputError, with_output_name
from ..model import DIMS, consolidate_store, open_raw, open_slc, with_acquisition_items, with_cf_attrs, with_history
from ..outputs import PRODUCT_ATTR, check_output
from ..sensor import SensorParams
from .chunkio import ChunkedArray
from .dataset import focus_plan, product_attrs
from .doppler import doppler_from_lag_one, lag_one_sum
from .doppler_ambiguity import ESTIMATE_PULSES, resolve_centroid, scene_centroid_sums
from .range_compression import apply_range_filter, default_workers, range_fft_length, range_filter, range_inverse_filter
from .rda import (
    AzimuthPlan,
    azimuth_block,
    azimuth_plan,
    complete_settings,
    settings_from_history,
    with_secondary_range_compression,
)

#: Target bytes of one task's input block (complex64) in the range pass (azimuth blocks) and in the azimuth
#: pass (range blocks, all pulses); a task holds two to three such buffers.
RANGE_BLOCK_BYTES = 32 << 20
AZIMUTH_BLOCK_BYTES = 64 << 20
#: Range bins per corner-turn chunk: the azimuth pass reads whole chunks, so its halo costs one extra chunk on
#: each side of a block (range blocks are whole multiples of this); narrower chunks mean more files (~0.1 ms each).
CORNER_TURN_COLUMNS = 128
#: Azimuth lines per output chunk.
OUTPUT_AZIMUTH_CHUNK = 1024


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + size)) for a in range(0, n, size)]


# ------------------------------------------------------------------------------------------------ range pass


def _range_task(raw_store: str, name: str, a0: int, a1: int, spectrum: np.ndarray, ct_store: str) -> tuple:
    raw = ChunkedArray(Path(raw_store) / name)
    block = raw.read(a0, a1, 0, raw.shape[1])
    out, lag_one = apply_range_filter(block, spectrum, out=block, workers=1)
    first = out[0].copy()
    last = out[-1].copy()
    finite = math.isfinite(lag_one.real) and math.isfinite(lag_one.imag)
    if out.shape[0] < 2:
        finite = finite and bool(np.isfinite(first).all())
    if finite:
        ChunkedArray(ct_store).write(a0, 0, out)
    return lag_one, first, last, finite


def _range_pass(
    raw_store: Path, name: str, n_az: int, n_rg: int, spectrum: np.ndarray, ct_store: Path, rows: int
) -> tuple[complex, bool]:
    zarr.create_array(
        store=str(ct_store),
        shape=(n_az, n_rg),
        chunks=(rows, min(n_rg, CORNER_TURN_COLUMNS)),
        dtype=np.complex64,
        compressors=None,
        fill_value=0j,
        zarr_format=3,
    )
    results = run_chunk_tasks(
        _range_task,
        [(str(raw_store), name, a0, a1, spectrum, str(ct_store)) for a0, a1 in _blocks(n_az, rows)],
        name="sarpipe-focus-range",
    )
    total = 0j
    finite = True
    for i, (lag_one, first, _last, ok) in enumerate(results):
        finite = finite and ok
        total += lag_one
        if i > 0:
            total += complex(np.vdot(results[i - 1][2], first))
    return total, finite


def _estimate_task(raw_store: str, name: str, a0: int, a1: int, geom: SensorParams):
    raw = ChunkedArray(Path(raw_store) / name)
    return scene_centroid_sums(raw.read(a0, a1, 0, raw.shape[1]), geom)


def _estimate_pass(raw_store: Path, name: str, n_az: int, geom: SensorParams, rows: int):
    """The Doppler estimation sums (:func:`~.doppler_ambiguity.scene_centroid_sums`) over tasks of whole
    ESTIMATE_PULSES blocks, so that they equal the in-memory ones up to the order of summation."""
    rows = max(ESTIMATE_PULSES, rows - rows % ESTIMATE_PULSES)
    results = run_chunk_tasks(
        _estimate_task,
        [(str(raw_store), name, a0, a1, geom) for a0, a1 in _blocks(n_az, rows)],
        name="sarpipe-focus-estimate",
    )
    total = results[0]
    for r in results[1:]:
        total = total + r
    return total


# ---------------------------------------------------------------------------------------------- azimuth pass


def _azimuth_task(
    src_store: str,
    g0: int,
    g1: int,
    plan: AzimuthPlan,
    geom: SensorParams,
    n_rg: int,
    inverse: bool,
    out_store: str,
    first: int = 0,
) -> None:
    data = ChunkedArray(src_store).read_periodic_columns(g0 - plan.halo, g1 + plan.halo)
    out = azimuth_block(
        data,
        plan,
        geom,
        n_total=n_rg,
        out_start=g0,
        n_out=g1 - g0,
        in_start=0,
        inverse=inverse,
        workers=1,
        parallel=False,
    )
    ChunkedArray(out_store).write(0, g0 - first, out)


def _range_block_width(n_az: int, n_rg: int, halo: int) -> int:
    """Range bins per azimuth-pass task: about AZIMUTH_BLOCK_BYTES of input (halo included), a whole number of
    corner-turn chunks, and at least two tasks per worker thread so that no thread idles at the end."""
    width = max(1, AZIMUTH_BLOCK_BYTES // (8 * n_az) - 2 * halo)
    width = min(width, -(-n_rg // (2 * default_workers())))
    if width >= CORNER_TURN_COLUMNS:
        width -= width % CORNER_TURN_COLUMNS
    return max(1, min(width, n_rg))


# ------------------------------------------------------------------------------------------------- focus


def focus_zarr(
    raw_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    range_window: str = "rect",
    azimuth_window: str = "rect",
    doppler_centroid: float | None = None,
    azimuth_bandwidth: float | None = None,
    variable: str = "echo",
    range_correlation: str = "linear",
    range_edges: str = "mark",
    doppler_ambiguity: str = "auto",
    secondary_range_compression: bool = True,
    overwrite: bool = False,
) -> Path:
    """Focus the raw store ``raw_path`` into the SLC store ``out_path`` (see :func:`sarpipe.focus.focus` for the
    product and the arguments). ``variable`` picks the raw variable to focus (``echo``, or a simulator
    ground-truth part ``echo_clean``/``rfi``). Validates the input and the output path before writing anything
    (``out_path`` must not be the input; an existing one is replaced only if sarpipe wrote it or ``overwrite``);
    on any error no output and no temporary store remain. Returns ``out_path``."""
    raw_path, out_path = Path(raw_path), Path(out_path)
    check_output(out_path, inputs=(raw_path,), overwrite=overwrite)
    ds = open_raw(raw_path, check_values=False)
    if variable not in ds.data_vars:
        raise InputError(
            f"no such variable (found {sorted(map(str, ds.data_vars))})", where=f"{raw_path}: variable '{variable}'"
        )
    geom, settings = focus_plan(
        ds,
        source=str(raw_path),
        range_window=range_window,
        azimuth_window=azimuth_window,
        doppler_centroid=doppler_centroid,
        azimuth_bandwidth=azimuth_bandwidth,
        range_correlation=range_correlation,
        range_edges=range_edges,
        doppler_ambiguity=doppler_ambiguity,
        secondary_range_compression=secondary_range_compression,
    )
    n_az, n_rg = ds.sizes["azimuth"], ds.sizes["range"]
    rows = _range_rows(ds, variable, n_rg)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(out_path)
    ct_store = sibling_path(out_path, "cornerturn")
    try:
        if settings.doppler_centroid is None:
            sums = _estimate_pass(raw_path, variable, n_az, geom, rows)
            if not (np.isfinite(sums.full).all() and np.isfinite(sums.power).all()):
                raise InputError("contains NaN or Inf samples", where=f"{raw_path}: variable '{variable}'")
            estimate = resolve_centroid(sums, geom, n_rg, method=settings.doppler_ambiguity, dataset=ds)
            settings = complete_settings(settings, geom, estimate)
        settings = with_secondary_range_compression(settings, geom, n_rg)
        n_fft = range_fft_length(geom, n_rg, settings.range_correlation, replica_only=settings.replica_only)
        spectrum = range_filter(geom, n_fft, settings.range_window, settings.src_rate)
        _lag_one, finite = _range_pass(raw_path, variable, n_az, n_rg, spectrum, ct_store, rows)
        if not finite:
            raise InputError("contains NaN or Inf samples", where=f"{raw_path}: variable '{variable}'")
        plan = azimuth_plan(geom, n_az, n_rg, settings, inverse=False)
        record = settings.record(geom, n_az, n_rg)
        attrs = product_attrs(dict(ds.attrs), record, settings, focused=True)
        if variable != "echo":
            attrs["focused_variable"] = variable
        first, stop = record["valid_range_samples"] if settings.range_edges == "trim" else (0, n_rg)
        template = with_history(_template(ds, "slc", attrs, first, stop), "focus", record, source=ds)
        _write_blocks(
            template,
            "slc",
            out_path,
            ct_store,
            plan,
            geom,
            n_az,
            n_rg,
            inverse=False,
            inputs=(raw_path,),
            overwrite=overwrite,
            first=first,
            stop=stop,
        )
    except OSError as exc:
        named = with_output_name(exc, out_path)  # a full disk while writing the corner turn: name the output
        if named is not None:
            raise named from exc
        raise
    finally:
        shutil.rmtree(ct_store, ignore_errors=True)
    return out_path


def _range_rows(ds: xr.Dataset, variable: str, n_rg: int) -> int:
    rows = max(1, min(RANGE_BLOCK_BYTES // (8 * max(n_rg, 1)), -(-ds.sizes["azimuth"] // (2 * default_workers()))))
    chunks = ds[variable].encoding.get("chunks") or ds[variable].encoding.get("preferred_chunks")
    if isinstance(chunks, (tuple, list)) and chunks and chunks[0]:
        stored = int(chunks[0])
        rows = stored if stored <= 2 * rows else max(d for d in range(1, rows + 1) if stored % d == 0)
    return min(rows, ds.sizes["azimuth"])


def _template(ds: xr.Dataset, name: str, attrs: dict[str, Any], first: int = 0, stop: int | None = None) -> xr.Dataset:
    """The output's metadata: range samples ``[first, stop)`` of the input grid."""
    import dask.array as da

    stop = ds.sizes["range"] if stop is None else stop
    shape = (ds.sizes["azimuth"], stop - first)
    data = da.zeros(shape, dtype=np.complex64, chunks=shape)
    coords = {"azimuth_time": (ds["azimuth_time"].dims, ds["azimuth_time"].values)}
    coords["slant_range"] = (ds["slant_range"].dims, ds["slant_range"].values[first:stop])
    out = xr.Dataset(
        {name: (DIMS, data)}, coords=coords, attrs={**attrs, PRODUCT_ATTR: "slc" if name == "slc" else "raw"}
    )
    return with_cf_attrs(with_acquisition_items(out, ds))


def _write_template(template: xr.Dataset, tmp: Path, encoding: dict[str, Any]) -> None:
    """The output store's metadata and coordinates (consolidated); the tasks then write the chunks."""
    # write_empty_chunks: a carried variable equal to the fill value still gets its chunk (a missing one is damage)
    template.to_zarr(
        tmp, mode="w-", zarr_format=3, consolidated=False, encoding=encoding, compute=False, write_empty_chunks=True
    )
    consolidate_store(tmp)


def _write_blocks(
    template: xr.Dataset,
    name: str,
    out_path: Path,
    src_store: Path,
    plan: AzimuthPlan,
    geom: SensorParams,
    n_az: int,
    n_rg: int,
    *,
    inverse: bool,
    inputs: tuple,
    overwrite: bool,
    first: int = 0,
    stop: int | None = None,
) -> None:
    """Azimuth-pass tasks writing output range bins ``[first, stop)`` (the whole swath by default) to columns
    from 0."""
    stop = n_rg if stop is None else stop
    width = _range_block_width(n_az, stop - first, plan.halo)
    encoding = {name: {"chunks": (min(n_az, OUTPUT_AZIMUTH_CHUNK), width), "compressors": None}}
    with atomic_path(out_path, inputs=inputs, overwrite=overwrite) as tmp:
        _write_template(template, tmp, encoding)
        run_chunk_tasks(
            _azimuth_task,
            [
                (str(src_store), first + g0, first + g1, plan, geom, n_rg, inverse, str(tmp / name), first)
                for g0, g1 in _blocks(stop - first, width)
            ],
            name="sarpipe-focus-azimuth",
        )


# ------------------------------------------------------------------------------------------------ defocus


def defocus_zarr(
    slc_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    range_window: str | None = None,
    azimuth_window: str | None = None,
    doppler_centroid: float | None = None,
    azimuth_bandwidth: float | None = None,
    range_correlation: str | None = None,
    secondary_range_compression: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Streaming :func:`sarpipe.focus.defocus`: SLC store to raw store, in two passes through a temporary store
    (azimuth decompression on range blocks, then range decompression on azimuth blocks). ``out_path`` is checked
    as in :func:`focus_zarr` (never the input; ``overwrite`` to replace what sarpipe did not write). Returns
    ``out_path``."""
    slc_path, out_path = Path(slc_path), Path(out_path)
    check_output(out_path, inputs=(slc_path,), overwrite=overwrite)
    ds = open_slc(slc_path)
    from ..io.safe import check_defocus_supported  # a TOPS (IW/EW) SLC cannot be defocused (issue 12)

    check_defocus_supported(ds.attrs, str(slc_path))
    geom = SensorParams.from_dataset(ds, str(slc_path))
    settings = settings_from_history(
        ds.attrs,
        geom,
        range_window=range_window,
        azimuth_window=azimuth_window,
        doppler_centroid=doppler_centroid,
        azimuth_bandwidth=azimuth_bandwidth,
        range_correlation=range_correlation,
        secondary_range_compression=secondary_range_compression,
    )
    if settings.doppler_centroid is None:
        settings = complete_settings(settings, geom, doppler_from_lag_one(lag_one_sum(ds["slc"].data), geom.prf))
    n_az, n_rg = ds.sizes["azimuth"], ds.sizes["range"]
    settings = with_secondary_range_compression(settings, geom, n_rg)
    plan = azimuth_plan(geom, n_az, n_rg, settings, inverse=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(out_path)
    ct_store = sibling_path(out_path, "cornerturn")
    try:
        width = _range_block_width(n_az, n_rg, plan.halo)
        zarr.create_array(
            store=str(ct_store),
            shape=(n_az, n_rg),
            chunks=(min(n_az, OUTPUT_AZIMUTH_CHUNK), width),
            dtype=np.complex64,
            compressors=None,
            fill_value=0j,
            zarr_format=3,
        )
        run_chunk_tasks(
            _azimuth_task,
            [(str(slc_path / "slc"), g0, g1, plan, geom, n_rg, True, str(ct_store)) for g0, g1 in _blocks(n_rg, width)],
            name="sarpipe-defocus-azimuth",
        )
        record = settings.record(geom, n_az, n_rg)
        attrs = product_attrs(dict(ds.attrs), record, settings, focused=False)
        template = with_history(_template(ds, "echo", attrs), "defocus", record)
        spectrum = range_inverse_filter(
            geom,
            range_fft_length(geom, n_rg, settings.range_correlation),
            settings.range_window,
            src_rate=settings.src_rate,
        )
        rows = max(1, min(n_az, RANGE_BLOCK_BYTES // (8 * n_rg)))
        encoding = {"echo": {"chunks": (rows, n_rg), "compressors": None}}
        with atomic_path(out_path, inputs=(slc_path,), overwrite=overwrite) as tmp:
            _write_template(template, tmp, encoding)
            run_chunk_tasks(
                _range_decompress_task,
                [(str(ct_store), a0, a1, spectrum, str(tmp)) for a0, a1 in _blocks(n_az, rows)],
                name="sarpipe-defocus-range",
            )
    except OSError as exc:
        named = with_output_name(exc, out_path)  # a full disk while writing the corner turn: name the output
        if named is not None:
            raise named from exc
        raise
    finally:
        shutil.rmtree(ct_store, ignore_errors=True)
    return out_path


def _range_decompress_task(src_store: str, a0: int, a1: int, spectrum: np.ndarray, out_store: str) -> None:
    src = ChunkedArray(src_store)
    block = src.read(a0, a1, 0, src.shape[1])
    out, _ = apply_range_filter(block, spectrum, out=block, workers=1)
    ChunkedArray(Path(out_store) / "echo").write(a0, 0, out)
