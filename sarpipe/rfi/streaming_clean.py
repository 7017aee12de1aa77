"""The RFI clean step Zarr store to Zarr store, with memory bounded by the pulse batch, not the scene.

:func:`clean_zarr` writes the same store as :func:`sarpipe.rfi.clean.clean` followed by
:func:`sarpipe.model.save_dataset`, bit for bit (``echo``, ``rfi_pulses``, ``rfi_image_mask``, the other variables,
the ``rfi_clean`` processing record), without holding the scene:

1. the output's metadata is written from a lazy template (:func:`~sarpipe.model.save_dataset` with
   ``compute=False``: CF attributes, ``sarpipe_product``, consolidated metadata) inside the output's own
   :func:`~sarpipe.atomic.atomic_path`, so nothing half-written is ever visible under the output name;
2. every variable is copied through chunk by chunk: as a file copy of each chunk when the input and output arrays
   have the same chunk encoding (the raw scenes sarpipe writes), else by decoding and re-encoding one block of
   chunks at a time; ``echo``, when its chunk files can be copied, row by row around the contaminated pulses, one
   task per chunk row, checking every sample for NaN/Inf on the way;
3. the contaminated pulses are cleaned in the batches :func:`~sarpipe.rfi.clean.clean` uses (same batch
   boundaries, same :class:`~sarpipe.rfi.methods.MethodContext`, hence the same numbers): each batch is read from
   the input's ``echo`` (memory maps of its uncompressed chunks: only the batch's rows are read) and its cleaned
   rows are written into the output's chunk files, each row at its own byte offset.

The copies and the batches are independent tasks (:func:`sarpipe.chunk_tasks.run_chunk_tasks`): one after the
other in this thread, or spread over every worker when the step runs inside a ``dask.distributed`` worker. A task
reads only the input and writes only its own rows (a copy task the clean rows of its chunk row, a batch task its
contaminated rows: never the same bytes), so a task rerun at any time, after its worker died, writes the same
bytes. Batches of a learned method (one with a ``device`` parameter not set to ``cpu``) ask for the worker
resource ``GPU`` when a worker offers it, one batch of ``batch_pulses`` pulses per task; the method is built (its
weights loaded onto the worker's device) once per worker process.

Peak memory: one batch (``batch_pulses`` x range samples x 8 bytes, with its STFT) plus one block of chunks of a
variable that cannot be file-copied. The detection product is read lazily as well (its image mask is copied, never
loaded).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..atomic import atomic_path
from ..chunk_tasks import run_chunk_tasks
from ..errors import InputError
from ..focus.chunkio import ChunkedArray, open_zarr_array
from ..model import DIMS, open_raw, save_dataset, validate_acquisition, with_history
from .clean import RFIDetection, _batches, clean_pulses
from .detection import open_detection_lazily
from .methods import CleanupMethod, MethodContext, create_method
from .stft import STFTParams

__all__ = ["clean_zarr"]

#: Target bytes of one block when a variable is copied by decoding (its chunk encoding differs from the output's).
COPY_BLOCK_BYTES = 32 << 20
#: Azimuth lines per output ``echo`` chunk when the input's chunks cannot be kept (a compressed input, say).
ECHO_CHUNK_BYTES = 64 << 20
_SAME_ENCODING_KEYS = ("shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value", "codecs")


def _array_meta(array_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((array_dir / "zarr.json").read_text())
    except (OSError, ValueError):
        return None


def _same_encoding(src: Path, dst: Path) -> bool:
    a, b = _array_meta(src), _array_meta(dst)
    return a is not None and b is not None and all(a.get(k) == b.get(k) for k in _SAME_ENCODING_KEYS)


def _copy_chunk_files(src: Path, dst: Path) -> None:
    """Copy the chunk files of one array (``src`` and ``dst`` have the same chunk encoding)."""
    for root, _dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        if rel == Path("."):
            continue  # the array's own zarr.json (the output's metadata is already written)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(root) / name, dst / rel / name)


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of the True entries of the bool vector ``rows``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], rows.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _copy_echo_rows(src_path: str, dst_path: str, i: int, flagged: np.ndarray, where: str) -> None:
    """One copy task: the rows of chunk row ``i`` of the uncompressed ``echo`` at ``src_path`` that are not
    ``flagged`` (local row numbers in the chunk), written at their own offsets into the chunk files of ``dst_path``
    (same encoding; the chunk folders exist), COPY_BLOCK_BYTES at a time. Every sample of a slab is checked for
    NaN/Inf on the way (the contract's scan; the padding of edge chunks is not checked). The flagged rows are left
    to the batch tasks: the two never write the same bytes, so they may run in any order, and again."""
    src, dst = ChunkedArray(src_path), Path(dst_path)
    cr, cc = src.chunks
    keep = np.ones(cr, bool)
    keep[np.asarray(flagged, int)] = False
    rows_per_slab = max(1, COPY_BLOCK_BYTES // (8 * cc))
    valid_rows = min(cr, src.shape[0] - i * cr)
    for j in range(-(-src.shape[1] // cc)):
        valid_cols = min(cc, src.shape[1] - j * cc)
        source = src.path / "c" / str(i) / str(j)
        fd = os.open(dst / "c" / str(i) / str(j), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            with open(source, "rb") if source.exists() else contextlib.nullcontext() as fin:
                for r0 in range(0, cr, rows_per_slab):
                    n = min(rows_per_slab, cr - r0)
                    if fin is None:  # a missing chunk reads as the fill value
                        slab = np.full(n * cc, src.fill, dtype="<c8")
                    else:
                        slab = np.fromfile(fin, dtype="<c8", count=n * cc)
                        if slab.size != n * cc:
                            raise InputError(
                                f"holds fewer bytes than a complex64 chunk of {cr} x {cc}: the store is truncated",
                                where=os.fspath(source),
                            )
                        part = slab.reshape(n, cc)[: max(0, valid_rows - r0), :valid_cols]
                        if not np.isfinite(part).all():
                            raise InputError("contains NaN or Inf samples", where=where)
                    for a, b in _runs(keep[r0 : r0 + n]):
                        os.pwrite(fd, slab[a * cc : b * cc].tobytes(), (r0 + a) * cc * 8)
        finally:
            os.close(fd)


def _copy_by_blocks(source: xr.DataArray, dst: Path, finite_where: str | None = None) -> None:
    """Decode ``source`` one block of the output's chunks at a time and write it into the array at ``dst``
    (with ``finite_where``, refuse NaN/Inf samples naming it)."""
    target = open_zarr_array(dst, "r+")
    if target.ndim == 0:
        target[...] = np.asarray(source.values)
        return
    rows = target.chunks[0]
    line_bytes = max(1, int(np.prod(target.shape[1:])) * target.dtype.itemsize)
    rows *= max(1, COPY_BLOCK_BYTES // (rows * line_bytes))
    for a in range(0, target.shape[0], rows):
        b = min(target.shape[0], a + rows)
        block = np.asarray(source[a:b].values)
        if finite_where is not None and not np.isfinite(block).all():
            raise InputError("contains NaN or Inf samples", where=finite_where)
        target[a:b] = block


def _fill_missing_chunks(echo: ChunkedArray) -> None:
    """Write the fill value into every chunk file of ``echo`` that is missing (a missing chunk reads as the fill
    value; the pulses are then written into the chunk files in place, so each must exist)."""
    cr, cc = echo.chunks
    for i in range(-(-echo.shape[0] // cr)):
        for j in range(-(-echo.shape[1] // cc)):
            f = echo.path / "c" / str(i) / str(j)
            if not f.exists():
                f.parent.mkdir(parents=True, exist_ok=True)
                np.full((cr, cc), echo.fill, dtype="<c8").tofile(f)


def _pulse_chunks(echo: ChunkedArray, rows: np.ndarray):
    """``(chunk_row, chunk_col, local_rows, batch_rows, col0, col1)`` for every chunk the pulses ``rows``
    (increasing) fall in."""
    cr, cc = echo.chunks
    which = rows // cr
    for i in np.unique(which):
        sel = np.flatnonzero(which == i)
        for j in range(-(-echo.shape[1] // cc)):
            c0, c1 = j * cc, min(echo.shape[1], (j + 1) * cc)
            yield int(i), j, rows[sel] - i * cr, sel, c0, c1


def _read_pulses(echo_path: str | os.PathLike, rows: np.ndarray) -> np.ndarray:
    """The pulses ``rows`` (increasing) of the echo array at ``echo_path``: from its chunk files through memory maps
    when it is uncompressed (only those rows are read; a missing chunk reads as the fill value), else through
    zarr-python (the chunks they fall in are decoded)."""
    echo = ChunkedArray(echo_path)
    if not echo.fast:
        data = open_zarr_array(echo_path).get_orthogonal_selection((rows, slice(None)))
        return np.ascontiguousarray(data, dtype=np.complex64)
    out = np.empty((rows.size, echo.shape[1]), dtype=np.complex64)
    cr, cc = echo.chunks
    for i, j, local, sel, c0, c1 in _pulse_chunks(echo, rows):
        f = echo.path / "c" / str(i) / str(j)
        if not f.exists():
            out[sel, c0:c1] = echo.fill
            continue
        chunk = np.memmap(f, dtype="<c8", mode="r", shape=(cr, cc))
        out[sel, c0:c1] = chunk[local, : c1 - c0]
        del chunk
    return out


def _write_pulses(echo: ChunkedArray, rows: np.ndarray, pulses: np.ndarray) -> None:
    """Write the pulses ``rows`` into the chunk files of ``echo`` (their folders exist): each row's bytes at its own
    offset (``os.pwrite``), so batches and copies sharing a chunk file on different workers never write each other's
    bytes, in whatever order they run."""
    cr, cc = echo.chunks
    for i, j, local, sel, c0, c1 in _pulse_chunks(echo, rows):
        block = np.ascontiguousarray(pulses[sel, c0:c1], dtype="<c8")
        fd = os.open(echo.path / "c" / str(i) / str(j), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for r, line in zip(local, block):
                os.pwrite(fd, line.tobytes(), int(r) * cc * 8)
        finally:
            os.close(fd)


#: Cleanup methods built in this process, by (name, parameters, SR factor, state of the files they name): a worker
#: builds a method (loads its weights onto its device) once, not once per batch. Bounded: a few methods at a time.
_METHODS_BUILT: dict[tuple, CleanupMethod] = {}


def _files_state(params: Mapping[str, Any]) -> list:
    """Size and modification time of the files a parameter names (a weights folder, say), so that weights rewritten
    under the same path are loaded again."""
    out = []
    for key, value in sorted(params.items()):
        path = Path(value) if isinstance(value, str) and value else None
        if path is None or not path.exists():
            continue
        files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else [path]
        out.append((key, [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]))
    return out


def _method_key(name: str, params: Mapping[str, Any], sr: float | None) -> tuple:
    return name, json.dumps(dict(params), sort_keys=True, default=str), sr, repr(_files_state(params))


def _built_method(spec: CleanupMethod | tuple, *, fresh: bool = False) -> CleanupMethod:
    """The method a batch task runs: ``spec`` itself, or the one ``(name, params, sr)`` builds (once per process;
    ``fresh``: build it again, e.g. its weights file may have changed since)."""
    if isinstance(spec, CleanupMethod):
        return spec
    name, params, sr = spec
    key = _method_key(name, params, sr)
    method = None if fresh else _METHODS_BUILT.get(key)
    if method is None:
        method = create_method(name, **dict(params))
        if sr is not None:
            from .methods import wrap_sr

            method = wrap_sr(method, sr)
        _METHODS_BUILT.pop(key, None)
        while len(_METHODS_BUILT) >= 4:
            _METHODS_BUILT.pop(next(iter(_METHODS_BUILT)))
        _METHODS_BUILT[key] = method
    return method


def _runs_on_gpu_workers(method: CleanupMethod) -> bool:
    """True for a method that takes a ``device`` (the learned ones: difnet, dap, scorecam) not pinned to the CPU;
    an SR wrapper answers for the method it wraps."""
    device = method.params().get("device")
    if device is None:
        inner = next((getattr(method, a) for a in ("method", "inner", "base") if hasattr(method, a)), None)
        return isinstance(inner, CleanupMethod) and _runs_on_gpu_workers(inner)
    return str(device).strip().lower() != "cpu"


def _clean_batch(
    raw_echo: str,
    out_echo: str,
    idx: np.ndarray,
    spec: CleanupMethod | tuple,
    attrs: dict[str, Any],
    stft_params: STFTParams,
) -> None:
    """One batch task: read the pulses ``idx`` from the input, clean them, write their rows of the output (it reads
    only the input, so a rerun after a worker died writes the same bytes)."""
    method = _built_method(spec)
    n_rg = ChunkedArray(out_echo).shape[1]
    ctx = MethodContext(attrs=attrs, stft=stft_params, pulse_indices=idx, n_samples=n_rg)
    _write_pulses(ChunkedArray(out_echo), idx, clean_pulses(_read_pulses(raw_echo, idx), method, ctx))


def _template(
    raw: xr.Dataset, flags: np.ndarray, mask: xr.DataArray | np.ndarray, record: Mapping[str, Any], echo_rows: int
) -> xr.Dataset:
    """The output dataset, lazily: ``raw``'s variables (Dask, not read) without the ground truth ``rfi`` and any
    earlier RFI products, plus this step's ``rfi_pulses``, ``rfi_image_mask`` and ``rfi_clean`` record."""
    out = raw.drop_vars([v for v in ("rfi", "rfi_pulses", "rfi_image_mask") if v in raw.data_vars])
    for var in out.variables.values():
        if "azimuth" not in var.dims or "range" not in var.dims:
            var.load()  # small items (pulse_* coordinates, orbit ...): written eagerly with the metadata
    echo = out["echo"].data
    if echo.chunksize[0] != echo_rows or echo.chunksize[1] != echo.shape[1]:
        out["echo"] = out["echo"].chunk({"azimuth": echo_rows, "range": -1})
    out["rfi_pulses"] = (("azimuth",), np.asarray(flags, bool))
    out["rfi_image_mask"] = (DIMS, mask.data if isinstance(mask, xr.DataArray) else np.asarray(mask, bool))
    return with_history(out, "rfi_clean", record)


def _echo_rows(raw_path: Path, raw: xr.Dataset) -> int:
    """Azimuth lines per output ``echo`` chunk: the input's when its chunks can be file-copied and cover the whole
    range line, else about ECHO_CHUNK_BYTES."""
    src = ChunkedArray(raw_path / "echo")
    if src.fast:
        return src.chunks[0]
    n_az, n_rg = raw["echo"].shape
    return max(1, min(n_az, ECHO_CHUNK_BYTES // (8 * max(n_rg, 1))))


def clean_zarr(
    raw_path: str | os.PathLike,
    out_path: str | os.PathLike,
    detection: RFIDetection | str | os.PathLike,
    *,
    method: str | CleanupMethod = "notch",
    params: Mapping[str, Any] | None = None,
    sr: float | None = None,
    detection_record: Mapping[str, Any] | None = None,
    stft_params: STFTParams = STFTParams(),
    batch_pulses: int = 256,
    overwrite: bool = False,
    inputs: tuple = (),
) -> dict[str, Any]:
    """Clean the pulses ``detection.rfi_pulses`` of the raw store ``raw_path`` into the raw store ``out_path``
    (see the module docstring): the values, attributes and record of
    ``save_dataset(clean(raw, method, detection=detection, ...).raw)``, with ``echo`` chunked as the input's.

    ``detection``: a detection product's path (read lazily, :func:`.detection.open_detection_lazily`: its image mask is
    copied chunk by chunk) or an in-memory :class:`~sarpipe.rfi.clean.RFIDetection`. ``detection_record``: the
    ``detection`` entry of the ``rfi_clean`` record (default the detection's mapping parameters, as
    :func:`~sarpipe.rfi.clean.clean` records a given detection; pass the detector settings when the detection was
    run for this step). ``batch_pulses``: pulses per batch, the step's memory. ``inputs``: other paths the output
    must not be (``raw_path`` and a detection path always count). Returns the ``rfi_clean`` record."""
    raw_path, out_path = Path(raw_path), Path(out_path)
    mask_store, where = None, "detection"
    if isinstance(detection, RFIDetection):
        mask = detection.rfi_image_mask
    else:
        mask_store, where = Path(detection) / "rfi_image_mask", os.fspath(detection)
        detection, mask = open_detection_lazily(detection)
    raw = open_raw(raw_path, check_values=False)  # lazy; echo's NaN/Inf scan is done while it is copied
    validate_acquisition(raw, raw_path)  # the orbit, attitude ... values (small)
    echo_where = f"{raw_path}: variable 'echo'"
    if isinstance(method, str):  # batch tasks on other workers build it from (name, params, sr)
        spec: CleanupMethod | tuple = (method, dict(params or {}), sr)
        method = _built_method(spec, fresh=True)
    else:
        if sr is not None:
            from .methods import wrap_sr

            method = wrap_sr(method, sr)
        spec = method
    flags = np.asarray(detection.rfi_pulses, bool)
    n_az, n_rg = raw["echo"].shape
    if flags.shape != (n_az,) or tuple(mask.shape) != (n_az, n_rg):
        raise InputError(f"the detection is for a {tuple(mask.shape)} scene, the echo is {(n_az, n_rg)}", where=where)
    record = {
        "method": getattr(method, "name", type(method).__name__),
        "params": method.params(),
        "sr": sr,
        "stft": stft_params.as_dict(),
        "detection": dict(detection.mapping.params if detection_record is None else detection_record),
        "n_pulses_cleaned": int(np.count_nonzero(flags)),
        "aperture_pulses": detection.mapping.geometry.length_pulses,
        "beam_centre_shift_pulses": detection.mapping.geometry.shift_pulses,
    }
    template = _template(raw, flags, mask, record, _echo_rows(raw_path, raw))
    attrs = dict(raw.attrs)
    inputs = (raw_path, *inputs) + ((mask_store.parent,) if mask_store is not None else ())
    rows_copied = False
    with atomic_path(out_path, overwrite=overwrite, inputs=inputs) as tmp:
        save_dataset(template, tmp, compute=False)  # metadata + small items, under a name of its own
        for name, var in template.variables.items():
            if var.chunks is None:
                continue  # written with the metadata
            dst = tmp / str(name)
            src = mask_store if name == "rfi_image_mask" else raw_path / str(name)
            same = src is not None and _same_encoding(src, dst)
            if same and name == "echo":
                rows_copied = True  # below, by chunk tasks, around the flagged rows
            elif same:
                _copy_chunk_files(src, dst)
            else:
                finite_where = echo_where if name == "echo" else None
                _copy_by_blocks(xr.DataArray(var.data, dims=var.dims), dst, finite_where)
        echo = ChunkedArray(tmp / "echo")
        if not echo.fast:
            raise RuntimeError(f"{tmp / 'echo'}: the output echo is not an uncompressed complex64 array")
        if rows_copied:
            cr = echo.chunks[0]
            n_chunk_rows = -(-n_az // cr)
            for i in range(n_chunk_rows):
                (echo.path / "c" / str(i)).mkdir(parents=True, exist_ok=True)
            run_chunk_tasks(
                _copy_echo_rows,
                [
                    (
                        os.fspath(raw_path / "echo"),
                        os.fspath(echo.path),
                        i,
                        np.flatnonzero(flags[i * cr : (i + 1) * cr]),
                        echo_where,
                    )
                    for i in range(n_chunk_rows)
                ],
                name="sarpipe-clean-copy",
                local="serial",
            )
        else:
            _fill_missing_chunks(echo)
        run_chunk_tasks(
            _clean_batch,
            [
                (os.fspath(raw_path / "echo"), os.fspath(tmp / "echo"), idx, spec, attrs, stft_params)
                for idx in _batches(flags, method, batch_pulses)
            ],
            name="sarpipe-clean-batch",
            resources={"GPU": 1} if _runs_on_gpu_workers(method) else None,
            local="serial",
        )
    return record
