"""The raw-echo and SLC dataset contract: construction, validation, Zarr v3 open/save, processing records.

Conventions (docs/design.md section 2): ``echo``/``slc`` are complex64 with dims ``("azimuth", "range")``;
``azimuth_time`` is float64 seconds (one per pulse) from the root attribute ``azimuth_time_epoch`` (UTC, ISO 8601;
absent for relative time, the simulator's case), ``slant_range`` in metres (one per fast-time sample,
``near_range + j * c / (2 * range_sampling_rate)``); every attribute is in SI units. Variables and coordinates
carry CF ``units`` / ``long_name`` (:data:`CF_ATTRS`, added on saving). Processing records live in the list
attribute ``processing_history``; a CF string ``history`` from a source file is kept as it is. Real acquisitions
may add per-pulse ``pulse_*`` coordinates, orbit and attitude, calibration pulses and noise lines on their own
dims, and a range-varying Doppler centroid; each is validated when present (:func:`validate`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

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
    "azimuth_time_epoch": "UTC ISO 8601, e.g. 2022-09-18T07:49:21.123456Z: the instant where azimuth_time is 0 s",
    "polarisation": "transmit then receive: 'HH' | 'HV' | 'VH' | 'VV' (R/L for a circular transmit)",
    "swath": "free text (e.g. 'S3', 'IW1')",
    "mission": "free text (e.g. 'Sentinel-1A')",
    "acquisition_mode": "free text (e.g. 'SM', 'IW')",
    "doppler_centroid_method": "free text: how doppler_centroid / doppler_centroid_range was obtained",
    "processing_history": "list of processing records (with_history)",
    "history": "CF history string, kept as it is (a list here is a store written before processing_history)",
}

#: Root attribute giving the UTC instant at which ``azimuth_time`` (and ``orbit_time``, ``attitude_time``) is 0.
EPOCH_ATTR = "azimuth_time_epoch"
#: Root attribute holding the processing records (a list of dicts); ``history`` is CF's free-text string.
RECORDS_ATTR = "processing_history"

#: CF ``units`` and ``long_name`` of the variables and coordinates sarpipe knows (added by :func:`with_cf_attrs`;
#: a known item stored with other ``units`` is refused by :func:`validate`). Times are ``s`` from
#: ``azimuth_time_epoch``, not CF's ``seconds since ...``: xarray would decode that into datetime64 on opening,
#: and the kernels want float64 seconds (:func:`azimuth_datetime` gives the absolute times).
CF_ATTRS: dict[str, tuple[str, str]] = {
    "echo": ("1", "received echo, complex baseband samples (I + jQ)"),
    "echo_clean": ("1", "simulated echo without noise or interference"),
    "rfi": ("1", "simulated radio-frequency interference in the echo"),
    "slc": ("1", "single-look complex image"),
    "azimuth_time": ("s", "pulse time (image: zero-Doppler time) from azimuth_time_epoch"),
    "slant_range": ("m", "slant range of the fast-time sample (image: closest-approach range)"),
    "rfi_pulses": ("1", "pulses cleaned of radio-frequency interference"),
    "rfi_image_mask": ("1", "image pixels where radio-frequency interference was detected"),
    "rfi_candidate_pulses": ("1", "pulses mapped from the flagged image lines"),
    "rfi_image_lines": ("1", "image lines flagged as holding radio-frequency interference"),
    "rfi_line_z": ("1", "image line score, robust standard deviations"),
    "rfi_line_z_floor": ("1", "image line floor score, robust standard deviations"),
    "rfi_line_z_spectrum": ("1", "image line spectral-peak score, robust standard deviations"),
    "rfi_range_samples": ("1", "range samples holding radio-frequency interference"),
    "pulse_pri": ("s", "pulse repetition interval"),
    "pulse_swst": ("s", "sampling window start time"),
    "pulse_rank": ("1", "rank: pulse repetition intervals between a pulse and its echo"),
    "pulse_sample_count": ("1", "complex samples recorded in the pulse's echo"),
    "pulse_decimation_code": ("1", "range decimation filter code"),
    "pulse_signal_type": ("1", "signal type code (echo, noise, calibration)"),
    "pulse_baq_mode": ("1", "block adaptive quantisation mode"),
    "pulse_count": ("1", "pulse (space packet) counter"),
    "pulse_tx_pulse_length": ("s", "transmitted pulse length"),
    "pulse_tx_ramp_rate": ("Hz/s", "transmitted chirp ramp rate"),
    "pulse_tx_start_frequency": ("Hz", "transmitted chirp start frequency"),
    "orbit_time": ("s", "orbit state vector time from azimuth_time_epoch"),
    "orbit_position": ("m", "platform position, Earth-centred Earth-fixed"),
    "orbit_velocity": ("m/s", "platform velocity, Earth-centred Earth-fixed"),
    "attitude_time": ("s", "attitude time from azimuth_time_epoch"),
    "attitude_quaternion": ("1", "platform attitude quaternion"),
    "cal_pulse": ("1", "instrument calibration pulses, complex samples"),
    "noise_line": ("1", "instrument noise measurement lines, complex samples"),
    "doppler_centroid_range": ("Hz", "absolute Doppler centroid over slant range"),
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


def processing_records(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The processing records of ``attrs``, oldest first, as new dicts: the list ``processing_history``, else a
    list ``history`` (stores written before ``processing_history``). A CF string ``history`` holds no records (it
    is never split into characters); entries that are not mappings are skipped."""
    return [dict(r) for r in _stored_records(attrs) if isinstance(r, Mapping)]


def _stored_records(attrs: Mapping[str, Any]) -> list[Any]:
    for key in (RECORDS_ATTR, "history"):
        value = attrs.get(key)
        if isinstance(value, (list, tuple)):
            return list(value)
        if key == RECORDS_ATTR and value is not None:
            return []  # not a list: validate_attrs refuses it; never iterate a string
    return []


def with_history(
    ds: xr.Dataset, step: str, params: Mapping[str, Any] | None = None, *, source: xr.Dataset | None = None
) -> xr.Dataset:
    """Return ``ds`` with a processing record appended to ``attrs['processing_history']``.

    A record holds the step name, its parameters, the sarpipe version and the UTC time; with ``source`` (the
    dataset the step read) also ``input_fingerprint``, its :func:`scene_fingerprint`. The records of a legacy list
    ``history`` move into ``processing_history``; a CF string ``history`` stays as it is.
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
    out.attrs[RECORDS_ATTR] = _stored_records(ds.attrs) + [record]
    if isinstance(out.attrs.get("history"), (list, tuple)):
        del out.attrs["history"]  # its records are now in processing_history
    return out


def last_record(attrs: Mapping[str, Any], step: str) -> dict[str, Any] | None:
    """The last processing record (:func:`processing_records`) whose step is exactly ``step`` (so ``focus`` does
    not match ``defocus``), as a new dict; None when there is none."""
    for record in reversed(processing_records(attrs)):
        if record.get("step") == step:
            return record
    return None


# --------------------------------------------------------------------------------------------- time and CF


_ISO_UTC = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?")


def parse_epoch(text: Any, where: str = f"attribute '{EPOCH_ATTR}'") -> np.datetime64:
    """An ISO 8601 UTC time (``2022-09-18T07:49:21.123456Z``; up to nanoseconds; ``Z``, ``+00:00`` or no suffix)
    as ``datetime64[ns]``; raises :class:`InputError` naming ``where`` otherwise."""
    match = _ISO_UTC.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InputError(
            f"must be a UTC time in ISO 8601 (e.g. 2022-09-18T07:49:21.123456Z), got {text!r}", where=where
        )
    zone = match.group(3)
    if zone not in (None, "Z") and zone.replace(":", "")[1:] != "0000":
        raise InputError(f"must be in UTC (suffix Z), got the offset {zone} in {text!r}", where=where)
    try:
        return np.datetime64(match.group(1) + (match.group(2) or ""), "ns")
    except ValueError as exc:
        raise InputError(f"is not a valid date and time ({exc}): {text!r}", where=where) from exc


def azimuth_datetime(ds: xr.Dataset, coord: str = "azimuth_time") -> np.ndarray:
    """Absolute UTC times (``datetime64[ns]``) of the seconds coordinate ``coord`` (``azimuth_time``,
    ``orbit_time``, ``attitude_time``): ``azimuth_time_epoch`` plus the seconds, rounded to the nanosecond.
    Raises :class:`InputError` when the dataset has no epoch (relative time, e.g. a simulated scene)."""
    source = ds.encoding.get("source")
    if EPOCH_ATTR not in ds.attrs:
        raise InputError(
            "is missing: the times are relative (a simulated scene has none); absolute times need the epoch",
            where=_where(source, f"attribute '{EPOCH_ATTR}'"),
        )
    epoch = parse_epoch(ds.attrs[EPOCH_ATTR], _where(source, f"attribute '{EPOCH_ATTR}'"))
    seconds = np.asarray(ds[coord].values, dtype=np.float64)
    return epoch + np.rint(seconds * 1e9).astype(np.int64).astype("timedelta64[ns]")


def with_cf_attrs(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` (a shallow copy) with CF ``units`` and ``long_name`` on every variable and coordinate named in
    :data:`CF_ATTRS` that lacks them; values untouched, attributes already there kept."""
    out = ds.copy(deep=False)
    for name, var in out.variables.items():
        known = CF_ATTRS.get(str(name))
        if known is not None:
            var.attrs = {"units": known[0], "long_name": known[1], **var.attrs}
    return out


def with_acquisition_items(out: xr.Dataset, src: xr.Dataset) -> xr.Dataset:
    """``out`` (a product on ``src``'s grid, e.g. the image of ``src``) with ``src``'s acquisition metadata that it
    lacks: every coordinate (``pulse_*`` on ``azimuth``, ``orbit_time`` ...) and every variable not on ``azimuth``
    (orbit, attitude, ``cal_pulse``, ``noise_line``, ``doppler_centroid_range``), loaded, attributes kept. Items on
    ``range`` are cut to ``out``'s ``slant_range`` samples (a trimmed image); items on ``azimuth`` are carried only
    when the number of pulses is the same. Per-pulse or per-pixel products (``echo``, ``rfi_pulses`` ...) are not
    carried: each step makes its own."""
    rows = _range_rows_of(out, src)
    coords: dict[str, xr.Variable] = {}
    data: dict[str, xr.Variable] = {}
    for name, var in src.variables.items():
        name = str(name)
        is_coord = name in src.coords
        if name in out.variables or (not is_coord and "azimuth" in var.dims):
            continue
        if "azimuth" in var.dims and out.sizes.get("azimuth") != src.sizes["azimuth"]:
            continue
        if "range" in var.dims:
            if rows is None:
                continue
            var = var.isel(range=rows)
        (coords if is_coord else data)[name] = xr.Variable(var.dims, np.asarray(var.values), dict(var.attrs))
    return out.assign_coords(coords).assign(data) if coords or data else out


def _range_rows_of(out: xr.Dataset, src: xr.Dataset) -> slice | None:
    """The samples of ``src``'s range axis that ``out``'s ``slant_range`` holds (a contiguous run), else None."""
    if "range" not in out.dims or "slant_range" not in out.coords or "slant_range" not in src.coords:
        return None
    mine, theirs = np.asarray(out["slant_range"].values), np.asarray(src["slant_range"].values)
    if mine.size == 0 or mine.size > theirs.size:
        return None
    first = int(np.argmin(np.abs(theirs - mine[0])))
    part = theirs[first : first + mine.size]
    return slice(first, first + mine.size) if part.size == mine.size and np.allclose(part, mine, atol=1e-6) else None


# --------------------------------------------------------------------------------------------- provenance


def scene_fingerprint(ds: xr.Dataset) -> str:
    """A short hash naming a scene: its grid (shape, first and last ``azimuth_time`` and ``slant_range``), the
    required sensor attributes, the ``azimuth_time_epoch`` when there is one and the processing records. Attributes a
    writer adds on saving (e.g. ``sarpipe_product``) are left out, so a dataset and the store written from it have
    the same fingerprint (and a store written before ``processing_history`` keeps its fingerprint)."""

    def ends(name: str) -> list[float]:
        values = np.asarray(ds[name].values, dtype=np.float64) if name in ds.coords else np.zeros(0)
        return [float(values[0]), float(values[-1])] if values.size else []

    doc = {
        "shape": [int(ds.sizes.get("azimuth", 0)), int(ds.sizes.get("range", 0))],
        "azimuth_time": ends("azimuth_time"),
        "slant_range": ends("slant_range"),
        "attrs": {k: _plain(ds.attrs.get(k)) for k in REQUIRED_ATTRS},
        "history": _plain(processing_records(ds.attrs)),
    }
    if EPOCH_ATTR in ds.attrs:
        doc[EPOCH_ATTR] = str(ds.attrs[EPOCH_ATTR])
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
    if RECORDS_ATTR in attrs and not isinstance(attrs[RECORDS_ATTR], (list, tuple)):
        raise InputError("must be a list of processing records", where=_where(source, f"attribute '{RECORDS_ATTR}'"))
    if "history" in attrs and not isinstance(attrs["history"], (str, list, tuple)):
        raise InputError(
            "must be a CF history string (a list is read as the processing records of an older store), "
            f"got {type(attrs['history']).__name__}",
            where=_where(source, "attribute 'history'"),
        )
    if EPOCH_ATTR in attrs:
        parse_epoch(attrs[EPOCH_ATTR], _where(source, f"attribute '{EPOCH_ATTR}'"))
    for key in ("polarisation", "swath", "mission", "acquisition_mode", "doppler_centroid_method"):
        if key in attrs and (not isinstance(attrs[key], str) or not attrs[key].strip()):
            raise InputError(
                f"must be a non-empty string ({OPTIONAL_ATTRS[key]}), got {attrs[key]!r}",
                where=_where(source, f"attribute '{key}'"),
            )
    if "polarisation" in attrs and re.fullmatch(r"[HVRL][HV]", attrs["polarisation"]) is None:
        raise InputError(
            f"must be {OPTIONAL_ATTRS['polarisation']}, got {attrs['polarisation']!r}",
            where=_where(source, "attribute 'polarisation'"),
        )


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
    validate_acquisition(ds, source, check_values=check_values)
    if check_values:
        finite = np.isfinite(var.data).all()
        if not bool(finite.compute() if hasattr(finite, "compute") else finite):
            raise InputError("contains NaN or Inf samples", where=_where(source, f"variable '{name}'"))
    return ds


def validate_acquisition(ds: xr.Dataset, source: str | os.PathLike | None = None, *, check_values: bool = True) -> None:
    """Check the real-acquisition items a dataset may carry (docs/design.md section 2), each only when present:
    ``pulse_*`` coordinates (dim ``azimuth``, finite; ``pulse_pri`` agreeing with ``prf`` when constant), the
    orbit (``orbit_position``, ``orbit_velocity`` on ``("orbit_time", "xyz")``), the attitude
    (``attitude_quaternion`` on ``("attitude_time", "quaternion")``, unit norm, attr ``convention``), ``cal_pulse``
    and ``noise_line`` (complex, 2-D, never on ``azimuth``; scanned for NaN/Inf with ``check_values``),
    ``doppler_centroid_range`` (dim ``range``, Hz), and the ``units`` of every item named in :data:`CF_ATTRS`.
    Raises :class:`InputError` naming the first item at fault."""

    def fail(what: str, message: str) -> NoReturn:
        raise InputError(message, where=_where(source, what))

    for name, var in ds.variables.items():
        known = CF_ATTRS.get(str(name))
        if known is not None and "units" in var.attrs and var.attrs["units"] != known[0]:
            kind = "coordinate" if name in ds.coords else "variable"
            fail(f"{kind} '{name}'", f"units must be {known[0]!r}, got {var.attrs['units']!r}")
    for name in ds.coords:
        if not str(name).startswith("pulse_"):
            continue
        c = ds[name]
        if tuple(c.dims) != ("azimuth",):
            fail(f"coordinate '{name}'", f"a per-pulse coordinate must have dims ('azimuth',), got {tuple(c.dims)}")
        if np.issubdtype(c.dtype, np.number) and not np.all(np.isfinite(np.asarray(c.values))):
            fail(f"coordinate '{name}'", "contains NaN or Inf")
    if "pulse_pri" in ds.coords and ds.sizes["azimuth"] > 0:
        pri = np.asarray(ds["pulse_pri"].values, dtype=np.float64)
        if np.all(pri == pri[0]) and not math.isclose(1.0 / pri[0], float(ds.attrs["prf"]), rel_tol=1e-6):
            fail(
                "coordinate 'pulse_pri'",
                f"1 / pulse_pri = {1.0 / pri[0]:.9g} Hz disagrees with the attribute prf = {ds.attrs['prf']!r} Hz",
            )
    _check_time_series(ds, "orbit_time", {"orbit_position": 3, "orbit_velocity": 3}, "xyz", fail)
    _check_time_series(ds, "attitude_time", {"attitude_quaternion": 4}, "quaternion", fail)
    if "attitude_quaternion" in ds.data_vars:
        q = np.asarray(ds["attitude_quaternion"].values, dtype=np.float64)
        norm = np.sqrt((q * q).sum(axis=1))
        if not np.all(np.abs(norm - 1.0) < 0.01):
            fail(
                "variable 'attitude_quaternion'",
                f"must hold unit quaternions (norms {norm.min():.6g}..{norm.max():.6g})",
            )
        convention = ds["attitude_quaternion"].attrs.get("convention")
        if not isinstance(convention, str) or not convention.strip():
            fail(
                "variable 'attitude_quaternion'",
                "needs the attribute 'convention' (a string: component order q0..q3 and the frames it rotates)",
            )
    for name in ("cal_pulse", "noise_line"):
        if name not in ds.data_vars:
            continue
        v = ds[name]
        if v.ndim != 2 or "azimuth" in v.dims:
            fail(
                f"variable '{name}'",
                f"must be 2-D on its own dims (one row per {name.replace('_', ' ')}, never rows of 'echo' on "
                f"'azimuth'), got dims {tuple(v.dims)}",
            )
        if not np.issubdtype(v.dtype, np.complexfloating):
            fail(f"variable '{name}'", f"dtype must be complex, got {v.dtype}")
        if check_values and not bool(np.isfinite(np.asarray(v.values)).all()):
            fail(f"variable '{name}'", "contains NaN or Inf samples")
    if "doppler_centroid_range" in ds.data_vars:
        v = ds["doppler_centroid_range"]
        if tuple(v.dims) != ("range",):
            fail(
                "variable 'doppler_centroid_range'",
                f"must have dims ('range',) (Hz over slant_range), got {tuple(v.dims)}",
            )
        if not np.issubdtype(v.dtype, np.floating) or not np.all(np.isfinite(np.asarray(v.values))):
            fail("variable 'doppler_centroid_range'", "must be finite real numbers in Hz")


def _check_time_series(ds: xr.Dataset, time: str, widths: Mapping[str, int], component: str, fail) -> None:
    """An orbit or attitude: the variables ``widths`` (name -> components) on dims ``(time, component)``, real and
    finite, and the coordinate ``time`` [s], finite and strictly increasing; all there when one is."""
    present = [n for n in (time, *widths) if n in ds.variables]
    if not present:
        return
    for name, width in widths.items():
        if name not in ds.data_vars:
            fail(
                f"variable '{name}'",
                f"is missing: {', '.join(map(repr, present))} given, an {time.split('_')[0]} needs {time!r} and {', '.join(map(repr, widths))}",
            )
        v = ds[name]
        if tuple(v.dims) != (time, component) or v.sizes[component] != width:
            fail(
                f"variable '{name}'",
                f"must have dims ('{time}', '{component}') with {width} components, got {dict(v.sizes)}",
            )
        if not np.issubdtype(v.dtype, np.floating) or not np.all(np.isfinite(np.asarray(v.values))):
            fail(f"variable '{name}'", "must be finite real numbers")
    if time not in ds.coords or tuple(ds[time].dims) != (time,):
        fail(f"coordinate '{time}'", f"is missing (one time [s from {EPOCH_ATTR}] per row, dims ('{time}',))")
    t = np.asarray(ds[time].values, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        fail(f"coordinate '{time}'", "contains NaN or Inf")
    if t.size > 1 and not np.all(np.diff(t) > 0):
        fail(f"coordinate '{time}'", "must increase strictly")


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
    root attribute ``sarpipe_product`` (how sarpipe recognises its own stores), consolidated metadata and the CF
    ``units`` / ``long_name`` of :data:`CF_ATTRS` (:func:`with_cf_attrs`; values are untouched). Complex variables are stored uncompressed (SAR phase does not compress and zstd would only cost time).
    ``chunks`` sets the on-disk chunking (default: the dataset's Dask chunks, else one chunk per 1024 lines).
    ``compute=False`` writes the metadata only (the variables' chunks are left to the caller).
    """
    out = with_cf_attrs(ds)
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
