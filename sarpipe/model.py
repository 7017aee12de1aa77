"""The raw-echo and SLC dataset contract: construction, validation, Zarr v3 open/save, history records.

Conventions (docs/design.md section 2): ``echo``/``slc`` are complex64 with dims ``("azimuth", "range")``;
``azimuth_time`` is in seconds (one per pulse), ``slant_range`` in metres (one per fast-time sample,
``near_range + j * c / (2 * range_sampling_rate)``); every attribute is in SI units.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from . import __version__
from .atomic import atomic_path
from .errors import InputError
from .outputs import PRODUCT_ATTR

SPEED_OF_LIGHT = 299_792_458.0  # m/s

DIMS = ("azimuth", "range")

#: Required attributes of raw and SLC datasets, with their units.
REQUIRED_ATTRS: dict[str, str] = {
    "carrier_frequency": "Hz",
    "range_sampling_rate": "Hz",
    "chirp_rate": "Hz/s (signed)",
    "pulse_duration": "s",
    "prf": "Hz",
    "velocity": "m/s (effective)",
    "near_range": "m",
}
_MUST_BE_POSITIVE = ("carrier_frequency", "range_sampling_rate", "pulse_duration", "prf", "velocity", "near_range")

#: Optional attributes, with their units (or allowed values).
OPTIONAL_ATTRS: dict[str, str] = {
    "doppler_centroid": "Hz",
    "antenna_length": "m",
    "look_side": "'right' | 'left'",
    "sensor": "free text",
    "history": "list of processing records",
}


def range_pixel_spacing(attrs: Mapping[str, Any]) -> float:
    """Slant-range sample spacing [m] of a contract mapping (:class:`sarpipe.sensor.SensorParams` wraps it)."""
    return SPEED_OF_LIGHT / (2.0 * float(attrs["range_sampling_rate"]))


def azimuth_pixel_spacing(attrs: Mapping[str, Any]) -> float:
    """Azimuth line spacing along the track [m]: ``velocity / prf`` (effective velocity)."""
    return float(attrs["velocity"]) / float(attrs["prf"])


def sar_dataset(
    data: Any,
    attrs: Mapping[str, Any],
    *,
    name: str = "echo",
    azimuth_time0: float = 0.0,
    extra_vars: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build a contract dataset around a 2-D complex array (numpy or dask).

    ``azimuth_time`` starts at ``azimuth_time0`` [s] and steps by ``1/prf``; ``slant_range`` starts at
    ``near_range`` and steps by ``c / (2 fs)``. ``extra_vars`` (e.g. ``echo_clean``, ``rfi``) share the dims.
    """
    clean_attrs = _plain_attrs(attrs)
    n_az, n_rg = data.shape
    prf = float(clean_attrs["prf"])
    azimuth_time = azimuth_time0 + np.arange(n_az, dtype=np.float64) / prf
    slant_range = float(clean_attrs["near_range"]) + np.arange(n_rg, dtype=np.float64) * range_pixel_spacing(
        clean_attrs
    )
    data_vars = {name: (DIMS, data)}
    for key, value in (extra_vars or {}).items():
        data_vars[key] = (DIMS, value) if getattr(value, "ndim", 0) == 2 else (("azimuth",), value)
    return xr.Dataset(
        data_vars,
        coords={"azimuth_time": ("azimuth", azimuth_time), "slant_range": ("range", slant_range)},
        attrs=clean_attrs,
    )


def _plain(value: Any) -> Any:
    """Turn numpy scalars/arrays and tuples into JSON-friendly Python values (Zarr attrs are JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _plain_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in attrs.items()}


def with_history(
    ds: xr.Dataset, step: str, params: Mapping[str, Any] | None = None, *, source: xr.Dataset | None = None
) -> xr.Dataset:
    """Return ``ds`` with a processing record appended to ``attrs['history']``.

    A record holds the step name, its parameters, the sarpipe version and the UTC time; with ``source`` (the
    dataset the step read) also ``input_fingerprint``, its :func:`scene_fingerprint`.
    """
    record = {
        "step": step,
        "params": _plain(dict(params or {})),
        "sarpipe_version": __version__,
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if source is not None:
        record["input_fingerprint"] = scene_fingerprint(source)
    out = ds.copy(deep=False)
    out.attrs = dict(ds.attrs)
    out.attrs["history"] = list(ds.attrs.get("history", [])) + [record]
    return out


def last_record(attrs: Mapping[str, Any], step: str) -> dict[str, Any] | None:
    """The last processing record of ``attrs['history']`` whose step is exactly ``step`` (so ``focus`` does not
    match ``defocus``), as a new dict; None when there is none."""
    for record in reversed(list(attrs.get("history") or [])):
        if isinstance(record, Mapping) and record.get("step") == step:
            return dict(record)
    return None


# --------------------------------------------------------------------------------------------- provenance


def scene_fingerprint(ds: xr.Dataset) -> str:
    """A short hash naming a scene: its grid (shape, first and last ``azimuth_time`` and ``slant_range``), the
    required sensor attributes and the processing history. Attributes a writer adds on saving (e.g.
    ``sarpipe_product``) are left out, so a dataset and the store written from it have the same fingerprint."""

    def ends(name: str) -> list[float]:
        values = np.asarray(ds[name].values, dtype=np.float64) if name in ds.coords else np.zeros(0)
        return [float(values[0]), float(values[-1])] if values.size else []

    doc = {
        "shape": [int(ds.sizes.get("azimuth", 0)), int(ds.sizes.get("range", 0))],
        "azimuth_time": ends("azimuth_time"),
        "slant_range": ends("slant_range"),
        "attrs": {k: _plain(ds.attrs.get(k)) for k in REQUIRED_ATTRS},
        "history": _plain(list(ds.attrs.get("history", []) or [])),
    }
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source(ds: xr.Dataset, default: str) -> str:
    return os.fspath(ds.encoding.get("source") or default)


def check_image_of(raw: xr.Dataset, slc: xr.Dataset) -> None:
    """Refuse ``slc`` unless it is the image of ``raw``: its last ``focus`` record names the fingerprint of the
    scene it was focused from, which must be ``raw``'s. Images without a fingerprint (older ones) are accepted.
    An image of another raw variable (``focused_variable``: the simulator's ``echo_clean`` or ``rfi``) is refused:
    the RFI chain looks for interference in the image of ``echo``."""
    focused = slc.attrs.get("focused_variable")
    if focused not in (None, "echo"):
        raise InputError(
            f"is the image of the raw variable '{focused}', not of 'echo'; give the image of the echo",
            where=_source(slc, "the image"),
        )
    record = last_record(slc.attrs, "focus")
    recorded = record.get("input_fingerprint") if record is not None else None
    if not recorded:
        return
    actual = scene_fingerprint(raw)
    if recorded != actual:
        raise InputError(
            f"is not the image of {_source(raw, 'the raw data')}: it was focused from another scene "
            f"(input fingerprint {recorded}, the raw data's is {actual}); focus the raw store again "
            "or give the image made from it",
            where=_source(slc, "the image"),
        )


# --------------------------------------------------------------------------------------------- validation


def _where(source: str | os.PathLike | None, what: str) -> str:
    return f"{os.fspath(source)}: {what}" if source is not None else what


def validate_attrs(attrs: Mapping[str, Any], source: str | os.PathLike | None = None) -> None:
    """Check the required and optional attributes; raise :class:`InputError` naming the first bad one."""
    for key, unit in REQUIRED_ATTRS.items():
        if key not in attrs:
            raise InputError(
                f"required attribute is missing (expected a number in {unit})",
                where=_where(source, f"attribute '{key}'"),
            )
        value = attrs[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputError(f"must be a number in {unit}, got {value!r}", where=_where(source, f"attribute '{key}'"))
        if not math.isfinite(float(value)):
            raise InputError(f"must be finite, got {value!r}", where=_where(source, f"attribute '{key}'"))
        if key in _MUST_BE_POSITIVE and float(value) <= 0:
            raise InputError(f"must be positive ({unit}), got {value!r}", where=_where(source, f"attribute '{key}'"))
        if key == "chirp_rate" and float(value) == 0:
            raise InputError("must be non-zero (Hz/s, signed)", where=_where(source, f"attribute '{key}'"))
    for key in ("doppler_centroid", "antenna_length"):
        if key in attrs and attrs[key] is not None:
            value = attrs[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.integer, np.floating))
                or not math.isfinite(float(value))
            ):
                raise InputError(
                    f"must be a finite number in {OPTIONAL_ATTRS[key]}, got {value!r}",
                    where=_where(source, f"attribute '{key}'"),
                )
    if "antenna_length" in attrs and attrs["antenna_length"] is not None and float(attrs["antenna_length"]) <= 0:
        raise InputError("must be positive (m)", where=_where(source, "attribute 'antenna_length'"))
    if "look_side" in attrs and attrs["look_side"] not in ("right", "left"):
        raise InputError(
            f"must be 'right' or 'left', got {attrs['look_side']!r}", where=_where(source, "attribute 'look_side'")
        )
    if "history" in attrs and not isinstance(attrs["history"], (list, tuple)):
        raise InputError("must be a list of processing records", where=_where(source, "attribute 'history'"))


def validate(
    ds: xr.Dataset,
    kind: str = "raw",
    source: str | os.PathLike | None = None,
    *,
    check_values: bool = True,
) -> xr.Dataset:
    """Check ``ds`` against the contract for ``kind`` (``"raw"``: variable ``echo``; ``"slc"``: ``slc``).

    ``check_values`` also scans the samples for NaN/Inf (one pass over the data, lazily with Dask).
    Returns ``ds`` unchanged; raises :class:`InputError` naming the variable or attribute at fault.
    """
    name = {"raw": "echo", "slc": "slc"}.get(kind)
    if name is None:
        raise ValueError(f"kind must be 'raw' or 'slc', got {kind!r}")
    if name not in ds.data_vars:
        raise InputError(
            f"no variable '{name}' (a {kind} dataset needs it; found {sorted(map(str, ds.data_vars))})",
            where=_where(source, f"variable '{name}'"),
        )
    var = ds[name]
    if tuple(var.dims) != DIMS:
        raise InputError(f"dims must be {DIMS}, got {tuple(var.dims)}", where=_where(source, f"variable '{name}'"))
    if var.dtype != np.complex64:
        raise InputError(f"dtype must be complex64, got {var.dtype}", where=_where(source, f"variable '{name}'"))
    for dim in DIMS:
        if ds.sizes[dim] == 0:
            raise InputError(f"the '{dim}' axis is empty", where=_where(source, f"variable '{name}'"))
    validate_attrs(ds.attrs, source)
    for coord, dim in (("azimuth_time", "azimuth"), ("slant_range", "range")):
        if coord not in ds.coords:
            raise InputError(
                f"coordinate is missing (one float64 per {dim} sample)", where=_where(source, f"coordinate '{coord}'")
            )
        c = ds[coord]
        if tuple(c.dims) != (dim,):
            raise InputError(
                f"must have dims ('{dim}',), got {tuple(c.dims)}", where=_where(source, f"coordinate '{coord}'")
            )
        values = np.asarray(c.values, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise InputError("contains NaN or Inf", where=_where(source, f"coordinate '{coord}'"))
        if values.size > 1 and not np.all(np.diff(values) > 0):
            raise InputError("must increase strictly", where=_where(source, f"coordinate '{coord}'"))
    expected = float(ds.attrs["near_range"]) + np.arange(ds.sizes["range"]) * range_pixel_spacing(ds.attrs)
    if not np.allclose(ds["slant_range"].values, expected, rtol=1e-9, atol=1e-3):
        raise InputError(
            "does not match near_range + j * c / (2 * range_sampling_rate)",
            where=_where(source, "coordinate 'slant_range'"),
        )
    for extra in ("echo_clean", "rfi"):
        if extra in ds.data_vars:
            v = ds[extra]
            if tuple(v.dims) != DIMS or v.dtype != np.complex64:
                raise InputError(f"must be complex64 with dims {DIMS}", where=_where(source, f"variable '{extra}'"))
    if check_values:
        finite = np.isfinite(var.data).all()
        if not bool(finite.compute() if hasattr(finite, "compute") else finite):
            raise InputError("contains NaN or Inf samples", where=_where(source, f"variable '{name}'"))
    return ds


def dataset_kind(ds: xr.Dataset) -> str:
    """``"raw"`` if the dataset holds ``echo``, ``"slc"`` if it holds ``slc``."""
    if "echo" in ds.data_vars:
        return "raw"
    if "slc" in ds.data_vars:
        return "slc"
    raise InputError(f"neither 'echo' (raw) nor 'slc' found; variables are {sorted(map(str, ds.data_vars))}")


# --------------------------------------------------------------------------------------------- zarr i/o


def _zarr_v3_root(p: Path) -> None:
    """Refuse what is not a Zarr v3 store before xarray reads it (a v2 store, a file, a plain folder)."""
    if not p.exists():
        raise InputError("no such Zarr store", where=os.fspath(p))
    if not p.is_dir():
        raise InputError("is a file, expected a Zarr v3 store (a folder holding zarr.json)", where=os.fspath(p))
    if (p / "zarr.json").is_file():
        return
    if any((p / name).exists() for name in (".zgroup", ".zarray", ".zmetadata", ".zattrs")):
        raise InputError(
            "is a Zarr v2 store; sarpipe reads Zarr v3 (rewrite it, e.g. with xarray: "
            "xr.open_zarr(old).to_zarr(new, zarr_format=3))",
            where=os.fspath(p),
        )
    raise InputError("is not a Zarr store (no zarr.json in it)", where=os.fspath(p))


def _array_meta(p: Path, name: str) -> dict[str, Any] | None:
    try:
        meta = json.loads((p / name / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("node_type") == "array" else None


def _chunk_key(meta: Mapping[str, Any], index: tuple[int, ...]) -> str:
    enc = meta.get("chunk_key_encoding") or {}
    sep = (enc.get("configuration") or {}).get("separator")
    if enc.get("name") == "v2":
        return (sep or ".").join(map(str, index)) if index else "0"
    return (sep or "/").join(("c",) + tuple(map(str, index)))


def _chunk_grid(meta: Mapping[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    grid = meta.get("chunk_grid") or {}
    if grid.get("name") != "regular":
        return None
    shape = tuple(int(n) for n in meta.get("shape", ()))
    chunks = tuple(int(n) for n in (grid.get("configuration") or {}).get("chunk_shape", ()))
    if len(shape) != len(chunks) or any(c <= 0 for c in chunks):
        return None
    return shape, chunks


def _stored_chunks(folder: Path) -> set[str]:
    out = set()
    for dirpath, _dirs, files in os.walk(folder):
        rel = os.path.relpath(dirpath, folder)
        for f in files:
            if f != "zarr.json":
                out.add(f if rel == "." else f"{rel}/{f}".replace(os.sep, "/"))
    return out


def check_chunks_present(p: Path, ds: xr.Dataset) -> None:
    """Refuse a store one of whose arrays lacks a chunk file: zarr reads a missing chunk as the fill value, so a
    deleted chunk would pass for zeros. Only for stores sarpipe wrote (root attribute ``sarpipe_product``), which
    hold every chunk; other stores may omit chunks equal to the fill value on purpose."""
    if "sarpipe_product" not in ds.attrs:
        return
    for name, var in ds.variables.items():
        meta = _array_meta(p, str(name)) if var.ndim >= 1 else None
        grid = _chunk_grid(meta) if meta else None
        if grid is None:
            continue
        shape, chunks = grid
        stored = _stored_chunks(p / str(name))
        for index in itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks))):
            key = _chunk_key(meta, index)  # type: ignore[arg-type]
            if key not in stored:
                span = ", ".join(
                    f"{dim} {i * c}..{min(n, (i + 1) * c) - 1}" for dim, i, c, n in zip(var.dims, index, chunks, shape)
                )
                raise InputError(
                    f"chunk file missing ({span} of variable '{name}'; zarr would read it as "
                    "zeros): the store is damaged or incomplete",
                    where=os.fspath(p / str(name) / key),
                )


def _damaged_chunk(p: Path, ds: xr.Dataset) -> str | None:
    """Where a read failed: the first chunk file of an uncompressed variable whose size is not its chunk's."""
    for name in ds.variables:
        meta = _array_meta(p, str(name))
        grid = _chunk_grid(meta) if meta else None
        codecs = [c.get("name") for c in (meta or {}).get("codecs", []) if isinstance(c, Mapping)]
        if grid is None or codecs != ["bytes"]:
            continue
        need = int(np.prod(grid[1])) * np.dtype(ds[name].dtype).itemsize
        for key in sorted(_stored_chunks(p / str(name))):
            size = (p / str(name) / key).stat().st_size
            if size != need:
                return (
                    f"{os.fspath(p / str(name) / key)}: holds {size} bytes, a chunk of variable '{name}' "
                    f"needs {need}: the store is truncated or damaged"
                )
    return None


def _read_failure(p: Path, ds: xr.Dataset, exc: Exception) -> InputError:
    """The InputError for a failed read: the chunk of the wrong size, else the variable that fails to decode."""
    found = _damaged_chunk(p, ds)
    if found is not None:
        return InputError(found)
    where = os.fspath(p)
    for name, var in ds.variables.items():  # on the error path only: find which variable fails (a second read)
        try:
            var.load()
        except Exception:  # noqa: BLE001
            where = f"{os.fspath(p)}: variable '{name}'"
            break
    return InputError(f"cannot be read ({type(exc).__name__}: {exc}); the store is damaged", where=where)


def open_dataset(path: str | os.PathLike, kind: str | None = None, *, check_values: bool = True) -> xr.Dataset:
    """Open a Zarr v3 store lazily (Dask-backed) and validate it; ``kind`` None means detect raw/SLC.

    Refuses a Zarr v2 store, a store sarpipe wrote with a chunk file missing (see :func:`check_chunks_present`)
    and, naming the chunk, an uncompressed chunk of the wrong size found while scanning the samples."""
    p = Path(path)
    _zarr_v3_root(p)
    try:
        ds = xr.open_zarr(p, consolidated=False)
    except Exception as exc:  # noqa: BLE001 - any failure to read is bad input here
        raise InputError(f"cannot be read as a Zarr store ({type(exc).__name__}: {exc})", where=os.fspath(p)) from exc
    ds.encoding["source"] = os.fspath(p)
    check_chunks_present(p, ds)
    kind = kind or dataset_kind(ds)
    try:
        return validate(ds, kind, source=p, check_values=check_values)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the NaN/Inf scan reads every chunk: a damaged one fails there
        raise _read_failure(p, ds, exc) from exc


def available_memory() -> int:
    """Bytes of memory available to this process now (psutil), or a huge number when it cannot be told."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - without an estimate only the absurd is refused
        return 1 << 50


def gib(n: float) -> str:
    """A byte count for messages: ``12.3 GiB``."""
    return f"{n / 2**30:,.1f} GiB"


def load_dataset(path: str | os.PathLike, kind: str | None = None) -> xr.Dataset:
    """Read a store into memory and validate it there: one read of the samples (opening lazily with the NaN/Inf
    scan and then loading would read them twice). A chunk that cannot be decoded becomes :class:`InputError`, and
    so does a store larger than the memory available (refused before reading it)."""
    lazy = open_dataset(path, kind, check_values=False)
    need = sum(int(v.nbytes) for v in lazy.variables.values())
    free = available_memory()
    if need > free:
        sizes = " x ".join(f"{lazy.sizes[d]:,}" for d in DIMS if d in lazy.sizes)
        raise InputError(
            f"holds {gib(need)} ({sizes} samples), more than the {gib(free)} of memory available; "
            "this command reads the whole scene into memory",
            where=os.fspath(path),
        )
    try:
        ds = lazy.load()
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt chunk is damaged input, not a bug
        raise _read_failure(Path(path), lazy, exc) from exc
    return validate(ds, kind or dataset_kind(ds), source=path)


def open_raw(path: str | os.PathLike, *, check_values: bool = True) -> xr.Dataset:
    """Open and validate a raw-echo store."""
    return open_dataset(path, "raw", check_values=check_values)


def open_slc(path: str | os.PathLike, *, check_values: bool = True) -> xr.Dataset:
    """Open and validate an SLC store."""
    return open_dataset(path, "slc", check_values=check_values)


def save_dataset(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
    chunks: Mapping[str, int] | None = None,
    compute: bool = True,
    option: str = "--output",
) -> Path:
    """Write ``ds`` to a Zarr v3 store atomically (temporary sibling, renamed when complete).

    The path is checked first (:func:`sarpipe.outputs.check_output`): it must not be, contain or lie inside one of
    ``inputs``, and an existing path is replaced only if sarpipe wrote it or ``overwrite``. The store carries the
    root attribute ``sarpipe_product`` (how sarpipe recognises its own stores) and consolidated metadata.
    Complex variables are stored uncompressed (SAR phase does not compress and zstd would only cost time).
    ``chunks`` sets the on-disk chunking (default: the dataset's Dask chunks, else one chunk per 1024 lines).
    ``compute=False`` writes the metadata only (the variables' chunks are left to the caller).
    """
    out = ds.copy(deep=False)
    out.attrs = _plain_attrs(ds.attrs)
    out.attrs[PRODUCT_ATTR] = product_name(ds)
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in out.variables.items():
        var.encoding = {}
        enc: dict[str, Any] = {}
        if var.ndim == 2:
            if chunks is not None:
                enc["chunks"] = tuple(min(int(chunks.get(d, var.sizes[d])), var.sizes[d]) for d in var.dims)
            elif var.chunks is not None:
                enc["chunks"] = tuple(c[0] for c in var.chunks)
            else:
                enc["chunks"] = (min(1024, var.shape[0]), var.shape[1])
        if np.issubdtype(var.dtype, np.complexfloating):
            enc["compressors"] = None
        if enc:
            encoding[str(name)] = enc
    if chunks is not None and any(v.chunks is not None for v in out.variables.values()):
        out = out.chunk({d: chunks.get(d, -1) for d in out.dims if d in chunks})
    with atomic_path(path, overwrite=overwrite, inputs=inputs, option=option) as tmp:
        # every chunk is written, even one equal to the fill value, so a missing chunk file means damage
        out.to_zarr(
            tmp,
            mode="w-",
            zarr_format=3,
            consolidated=False,
            encoding=encoding,
            compute=compute,
            write_empty_chunks=True,
        )
        consolidate_store(tmp)
    return Path(path)


def product_name(ds: xr.Dataset) -> str:
    """The ``sarpipe_product`` value for ``ds``: ``raw`` (holds ``echo``), ``slc`` (holds ``slc``), else ``dataset``."""
    return "raw" if "echo" in ds.data_vars else "slc" if "slc" in ds.data_vars else "dataset"


def consolidate_store(path: str | os.PathLike) -> None:
    """Write the store's consolidated metadata (one read opens it, and xarray does not warn on opening).

    Called once the metadata is final (the chunks may still be written later: they are not part of it).
    """
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(os.fspath(path), zarr_format=3)
