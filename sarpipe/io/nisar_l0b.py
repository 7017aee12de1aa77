"""NISAR L0B (RRSD, HDF5) reader: raw echoes per frequency band and polarisation as contract raw datasets.

Layout read (NISAR L0B product specification as implemented by ISCE3's ``nisar.products.readers.Raw``), under
``/science/<band>SAR/RRSD``:
- ``swaths/frequency<F>/tx<T>/rx<R>/<TR>``: range lines x samples, compound ``(r, i)`` of uint16 indices into
  ``rx<R>/BFPQLUT`` (float32 sample values; block-floating-point quantisation), or complex floats directly.
- ``swaths/frequency<F>/tx<T>/``: ``UTCtime`` (pulse transmit time, ``units`` "seconds since <epoch>"),
  ``calType`` per line (HPA = 0: the normal echo line, whose HPA calibration is taken in the same line; LNA = 1,
  BYPASS = 2: calibration / noise-only lines; 255: invalid), ``centerFrequency``, ``chirpSlope`` [Hz/s, signed],
  ``chirpDuration`` [s], ``rangeBandwidth``, ``nominalAcquisitionPRF``, ``slantRange`` and ``slantRangeSpacing``
  (sampling rate ``c / (2 dr)``), ``validSamplesSubSwath<N>`` ([start, end) per line, fill values beyond the line
  clipped), ``rangeLineIndex`` (the hardware range-line counter).
- ``rx<R>/RD``, ``WD``, ``WL`` (optional; round-trip delay, window delay and length per line and channel, in clock
  ticks of ``sampleRateDBF``, 240 MHz when absent): the receive window; a change splits the data into segments.
- ``lowRateTelemetry/orbit`` (``time``, ``position``, ``velocity``; ECEF) and ``lowRateTelemetry/attitude``
  (``time``, ``quaternions``: scalar-first, rotating the radar antenna frame to ECEF, see :mod:`sarpipe.orbit`).
- ``identification/lookDirection``, ``missionId``.

Output parts: ``<F>-<pol>-echo`` (or ``...-echo-seg<N>`` when the PRI or the receive window changes, or a
calibration line leaves a gap in the pulse train) holding HPA lines only, and ``<F>-<pol>-cal`` with the LNA /
BYPASS lines. The decoded samples are held in memory (one band/polarisation at a time).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..model import SPEED_OF_LIGHT, validate, with_history
from ..orbit import effective_velocity, interpolate_orbit

FORMAT_NAME = "nisar-l0b"
CAL_TYPE_HPA, CAL_TYPE_LNA, CAL_TYPE_BYPASS = 0, 1, 2
DEFAULT_DBF_RATE = 240e6  # Hz, NISAR's DBF clock (ISCE3's default when sampleRateDBF is absent)
PRI_TOLERANCE = 1.5e-6  # s: above time-tag rounding (1 us in repackaged ALOS data), below any real PRI step
_BLOCK_LINES = 1024
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

QUATERNION_CONVENTION = (
    "rcs_to_ecef: scalar-first Hamilton (q0 = cos(angle/2)), v_ecef = q v_rcs q*; antenna boresight = RCS +Z"
)


def sniff_nisar_l0b(path: str | os.PathLike) -> bool:
    """True if ``path`` is an HDF5 file holding a ``/science/*/RRSD`` product (never raises)."""
    p = Path(path)
    try:
        if not p.is_file():
            return False
        with open(p, "rb") as fh:
            head = fh.read(8)
        import h5py

        if head != _HDF5_SIGNATURE and not h5py.is_hdf5(p):
            return False
        with h5py.File(p, "r") as f:
            return _product_path(f) is not None
    except Exception:
        return False


def _product_path(f: Any) -> str | None:
    science = f.get("science")
    if science is None or not hasattr(science, "keys"):
        return None
    for band in sorted(science.keys()):
        if f"science/{band}/RRSD" in f:
            return f"/science/{band}/RRSD"
    return None


class _File:
    """An open L0B file with error messages naming the file and the HDF5 path."""

    def __init__(self, path: Path, handle: Any):
        self.path = path
        self.f = handle

    def where(self, h5path: str) -> str:
        return f"{self.path}: {h5path}"

    def node(self, h5path: str) -> Any:
        try:
            obj = self.f.get(h5path)
        except Exception as exc:  # a damaged object header
            raise InputError(f"cannot be read ({exc})", where=self.where(h5path)) from None
        if obj is None:
            raise InputError("is missing (not a complete NISAR L0B RRSD product)", where=self.where(h5path))
        return obj

    def value(self, h5path: str, default: Any = None, *, required: bool = True) -> Any:
        if not required and h5path not in self.f:
            return default
        obj = self.node(h5path)
        try:
            out = obj[()]
        except Exception as exc:
            raise InputError(f"cannot be read ({exc})", where=self.where(h5path)) from None
        return out

    def number(self, h5path: str) -> float:
        v = np.asarray(self.value(h5path))
        if v.size != 1 or not np.issubdtype(v.dtype, np.number) or not math.isfinite(float(v.ravel()[0])):
            raise InputError(f"must be one finite number, got {v!r}", where=self.where(h5path))
        return float(v.ravel()[0])

    def text(self, h5path: str, default: str | None = None) -> str | None:
        if h5path not in self.f:
            return default
        v = np.asarray(self.value(h5path)).ravel()
        item = v[0] if v.size else b""
        return item.decode(errors="replace").strip() if isinstance(item, bytes) else str(item).strip()


def _attr_text(obj: Any, name: str) -> str | None:
    v = obj.attrs.get(name)
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        v = v.ravel()[0] if v.size else b""
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def reference_epoch(lf: _File, h5path: str) -> np.datetime64:
    """The epoch of a time dataset from its ``units`` attribute "seconds since YYYY-MM-DD[ T]hh:mm:ss[.f]"."""
    units = _attr_text(lf.node(h5path), "units")
    m = re.match(r"\s*seconds since\s+(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?))?", units or "")
    if m is None:
        raise InputError(
            f"units must be 'seconds since <UTC date time>', got {units!r}", where=lf.where(f"{h5path} (units)")
        )
    try:
        return np.datetime64(f"{m.group(1)}T{m.group(2) or '00:00:00'}", "ns")
    except ValueError as exc:
        raise InputError(f"bad epoch in units {units!r} ({exc})", where=lf.where(f"{h5path} (units)")) from None


def iso_epoch(epoch: np.datetime64) -> str:
    """UTC ISO 8601 with microseconds and a Z, e.g. ``2011-01-13T00:00:00.000000Z``."""
    return str(np.datetime64(epoch, "us")) + "Z"


def _seconds_between(a: np.datetime64, b: np.datetime64) -> float:
    return float((a - b) / np.timedelta64(1, "ns")) * 1e-9


def decode_bfpq(raw: np.ndarray, lut: np.ndarray | None) -> np.ndarray:
    """Decode stored samples to complex64: ``lut[r] + 1j lut[i]`` for uint16 index pairs, or a cast for floats."""
    names = raw.dtype.names
    if names and len(names) == 2:
        re_, im_ = raw[names[0]], raw[names[1]]
        if np.issubdtype(re_.dtype, np.integer):
            if lut is None:
                raise ValueError("integer samples need a BFPQLUT")
            out = np.empty(raw.shape, np.complex64)
            out.real = lut[re_]
            out.imag = lut[im_]
            return out
        return (re_.astype(np.float32) + 1j * im_.astype(np.float32)).astype(np.complex64)
    if np.iscomplexobj(raw):
        return raw.astype(np.complex64)
    raise ValueError(f"unsupported sample type {raw.dtype}")


def _segments(lines: np.ndarray, times: np.ndarray, window: np.ndarray, dithered: bool, tol: float) -> list[np.ndarray]:
    """Split the selected line indices into runs of consecutive lines with one receive window and one PRI."""
    if lines.size == 0:
        return []
    runs: list[list[int]] = [[int(lines[0])]]
    pri: float | None = None
    for prev, j in zip(lines[:-1], lines[1:]):
        dt = times[j] - times[prev]
        brk = j != prev + 1 or np.any(window[j] != window[prev])
        if not dithered and pri is not None and abs(dt - pri) > tol:
            brk = True
        if brk:
            runs.append([int(j)])
            pri = None
        else:
            runs[-1].append(int(j))
            pri = dt if pri is None else pri
    return [np.asarray(r) for r in runs]


def read_nisar_l0b(
    path: str | os.PathLike, *, on_error: str = "raise", pri_tolerance: float = PRI_TOLERANCE
) -> dict[str, xr.Dataset]:
    """Read a NISAR L0B (RRSD) file into contract raw datasets, keyed ``<F>-<pol>-echo[-seg<N>]`` / ``-cal``.

    ``on_error="skip"``: blocks of range lines that cannot be read (a truncated file) are left out and listed in
    the ingest record (``unreadable_lines``); ``"raise"``: an :class:`InputError` naming the file, the HDF5
    dataset and the lines. Bad files (not HDF5, no RRSD product, missing datasets) always raise InputError.
    """
    import h5py

    if on_error not in ("raise", "skip"):
        raise InputError(f"must be 'raise' or 'skip', got {on_error!r}", where="option 'on_error'")
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", where=str(p))
    try:
        handle = h5py.File(p, "r")
    except Exception as exc:
        raise InputError(f"is not a readable HDF5 file ({exc})", where=str(p)) from None
    with handle:
        lf = _File(p, handle)
        product = _product_path(handle)
        if product is None:
            raise InputError("is missing: not a NISAR L0B RRSD product", where=lf.where("/science/LSAR/RRSD"))
        parts: dict[str, xr.Dataset] = {}
        common = _common(lf, product)
        swaths = lf.node(f"{product}/swaths")
        for freq_name in sorted(k for k in swaths.keys() if re.fullmatch(r"frequency[A-Z]", k)):
            freq_path = f"{product}/swaths/{freq_name}"
            for tx_name in sorted(k for k in lf.node(freq_path).keys() if re.fullmatch(r"tx[HVLR]", k)):
                tx_path = f"{freq_path}/{tx_name}"
                for rx_name in sorted(k for k in lf.node(tx_path).keys() if re.fullmatch(r"rx[HV]", k)):
                    pol = tx_name[2] + rx_name[2]
                    parts.update(
                        _read_channel(
                            lf, common, freq_name[-1], tx_path, f"{tx_path}/{rx_name}", pol, on_error, pri_tolerance
                        )
                    )
        if not parts:
            raise InputError("holds no frequency<F>/tx<T>/rx<R> data", where=lf.where(f"{product}/swaths"))
        return parts


def _common(lf: _File, product: str) -> dict[str, Any]:
    ident = product.rsplit("/", 1)[0] + "/identification"
    look = lf.text(f"{ident}/lookDirection")
    out: dict[str, Any] = {
        "mission": lf.text(f"{ident}/missionId"),
        "look_side": look.lower() if look else None,
        "product": product,
    }
    if out["look_side"] not in (None, "left", "right"):
        raise InputError(f"must be 'Left' or 'Right', got {look!r}", where=lf.where(f"{ident}/lookDirection"))
    orbit = f"{product}/lowRateTelemetry/orbit"
    att = f"{product}/lowRateTelemetry/attitude"
    if orbit not in lf.f:  # older (legacy) products kept telemetry elsewhere
        orbit, att = f"{product}/telemetry/orbit", f"{product}/telemetry/attitude"
    out["orbit_time"] = np.asarray(lf.value(f"{orbit}/time"), np.float64)
    out["orbit_epoch"] = reference_epoch(lf, f"{orbit}/time")
    out["orbit_position"] = np.asarray(lf.value(f"{orbit}/position"), np.float64)
    out["orbit_velocity"] = np.asarray(lf.value(f"{orbit}/velocity"), np.float64)
    n = out["orbit_time"].size
    for name in ("orbit_position", "orbit_velocity"):
        if out[name].shape != (n, 3):
            raise InputError(f"must have shape ({n}, 3), got {out[name].shape}", where=lf.where(f"{orbit}/{name[6:]}"))
    if att in lf.f:
        out["attitude_time"] = np.asarray(lf.value(f"{att}/time"), np.float64)
        out["attitude_epoch"] = reference_epoch(lf, f"{att}/time")
        out["attitude_quaternion"] = np.asarray(lf.value(f"{att}/quaternions"), np.float64)
        if out["attitude_quaternion"].shape != (out["attitude_time"].size, 4):
            raise InputError("must have shape (n, 4)", where=lf.where(f"{att}/quaternions"))
    return out


def _window_per_line(lf: _File, rx_path: str, n_lines: int) -> tuple[np.ndarray, float | None]:
    """Per-line receive window (start, end) in DBF clock ticks, and the DBF clock [Hz]; zeros when absent."""
    names = ("RD", "WD", "WL")
    if not all(f"{rx_path}/{k}" in lf.f for k in names):
        return np.zeros((n_lines, 2), np.int64), None
    rd, wd, wl = (np.asarray(lf.value(f"{rx_path}/{k}"), np.int64).reshape(n_lines, -1) for k in names)
    rate = float(lf.value(f"{rx_path}/sampleRateDBF", DEFAULT_DBF_RATE, required=False))
    return np.stack([np.min(rd + wd, axis=1), np.max(rd + wd + wl, axis=1)], axis=1), rate


def _read_channel(
    lf: _File,
    common: dict[str, Any],
    freq: str,
    tx_path: str,
    rx_path: str,
    pol: str,
    on_error: str,
    pri_tolerance: float,
) -> dict[str, xr.Dataset]:
    data_path = f"{rx_path}/{pol}"
    data = lf.node(data_path)
    if getattr(data, "ndim", 0) != 2:
        raise InputError("must be a 2-D dataset (range lines x samples)", where=lf.where(data_path))
    n_lines, n_samples = data.shape
    time_name = next((k for k in lf.node(tx_path).keys() if k.lower() == "utctime"), "UTCtime")
    time_path = f"{tx_path}/{time_name}"
    times = np.asarray(lf.value(time_path), np.float64)
    if times.shape != (n_lines,):
        raise InputError(f"must hold one time per range line ({n_lines}), got {times.shape}", where=lf.where(time_path))
    epoch = reference_epoch(lf, time_path)
    cal_type = np.asarray(lf.value(f"{tx_path}/calType", np.zeros(n_lines, np.uint8), required=False)).ravel()
    if cal_type.size != n_lines:
        raise InputError(f"must hold one value per range line ({n_lines})", where=lf.where(f"{tx_path}/calType"))
    line_index = lf.value(f"{tx_path}/rangeLineIndex", None, required=False)
    slant = np.asarray(lf.value(f"{tx_path}/slantRange"), np.float64)
    dr = lf.number(f"{tx_path}/slantRangeSpacing")
    if slant.shape != (n_samples,):
        raise InputError(
            f"must hold one range per sample ({n_samples}), got {slant.shape}", where=lf.where(f"{tx_path}/slantRange")
        )
    if dr <= 0 or not np.allclose(np.diff(slant), dr, rtol=1e-6, atol=1e-4):
        raise InputError(
            "slantRange is not evenly spaced by slantRangeSpacing", where=lf.where(f"{tx_path}/slantRange")
        )
    valid = lf.value(f"{tx_path}/validSamplesSubSwath1", None, required=False)
    if valid is not None and np.ndim(valid) == 2 and np.shape(valid) == (n_lines, 2):
        valid = np.clip(np.asarray(valid, np.int64), 0, n_samples)
    else:
        valid = None
    window, dbf_rate = _window_per_line(lf, rx_path, n_lines)
    lut_path = f"{rx_path}/BFPQLUT"
    lut = np.asarray(lf.value(lut_path), np.float32) if lut_path in lf.f else None
    if data.dtype.names and np.issubdtype(data.dtype[0], np.integer) and lut is None:
        raise InputError("is missing (needed to decode the integer samples)", where=lf.where(lut_path))
    if lut is not None and data.dtype.names and int(np.iinfo(data.dtype[0]).max) >= lut.size:
        raise InputError(f"has {lut.size} entries, fewer than the sample indices need", where=lf.where(lut_path))

    # decode block by block; unreadable blocks (a truncated file) raise or are left out
    samples = np.zeros((n_lines, n_samples), np.complex64)
    readable = np.ones(n_lines, bool)
    for a0 in range(0, n_lines, _BLOCK_LINES):
        a1 = min(n_lines, a0 + _BLOCK_LINES)
        try:
            samples[a0:a1] = decode_bfpq(data[a0:a1], lut)
        except Exception as exc:
            if on_error == "raise":
                raise InputError(
                    f"range lines {a0}..{a1 - 1} cannot be read ({exc}); --on-error skip keeps the others",
                    where=lf.where(data_path),
                ) from None
            readable[a0:a1] = False
    bad = ~np.isfinite(samples)
    n_fill = int(bad.sum())
    if n_fill:
        samples[bad] = 0

    echo_lines = np.nonzero((cal_type == CAL_TYPE_HPA) & readable)[0]
    cal_lines = np.nonzero(np.isin(cal_type, (CAL_TYPE_LNA, CAL_TYPE_BYPASS)) & readable)[0]
    invalid_lines = np.nonzero(~np.isin(cal_type, (CAL_TYPE_HPA, CAL_TYPE_LNA, CAL_TYPE_BYPASS)) & readable)[0]
    unreadable = np.nonzero(~readable)[0]
    if echo_lines.size == 0:
        raise InputError("holds no readable echo (calType HPA) range lines", where=lf.where(data_path))

    steps = np.diff(times[echo_lines])
    consecutive = np.diff(echo_lines) == 1
    jumps = np.abs(np.diff(steps[consecutive[: steps.size]])) > pri_tolerance if steps.size > 1 else np.zeros(0)
    dithered = bool(jumps.size and jumps.mean() > 0.2)
    segments = _segments(echo_lines, times, window, dithered, pri_tolerance)

    wavelength_attrs = {
        "carrier_frequency": lf.number(f"{tx_path}/centerFrequency"),
        "range_sampling_rate": SPEED_OF_LIGHT / (2.0 * dr),
        "chirp_rate": lf.number(f"{tx_path}/chirpSlope"),
        "pulse_duration": lf.number(f"{tx_path}/chirpDuration"),
    }
    nominal_prf = lf.value(f"{tx_path}/nominalAcquisitionPRF", None, required=False)
    bandwidth = lf.value(f"{tx_path}/rangeBandwidth", None, required=False)
    base_attrs: dict[str, Any] = {
        **wavelength_attrs,
        "azimuth_time_epoch": iso_epoch(epoch),
        "polarisation": pol,
        "frequency_band": freq,
        "sensor": f"{common['mission'] or 'unknown'} (NISAR L0B RRSD)",
        "source_format": FORMAT_NAME,
    }
    if common["mission"]:
        base_attrs["mission"] = common["mission"]
    if common["look_side"]:
        base_attrs["look_side"] = common["look_side"]
    if nominal_prf is not None:
        base_attrs["nominal_prf"] = float(nominal_prf)
    if bandwidth is not None:
        base_attrs["range_bandwidth"] = float(bandwidth)

    orbit_shift = _seconds_between(common["orbit_epoch"], epoch)
    extras: dict[str, Any] = {
        "orbit_position": (("orbit_time", "xyz"), common["orbit_position"], {"units": "m", "frame": "ECEF"}),
        "orbit_velocity": (("orbit_time", "xyz"), common["orbit_velocity"], {"units": "m/s", "frame": "ECEF"}),
    }
    extra_coords: dict[str, Any] = {"orbit_time": ("orbit_time", common["orbit_time"] + orbit_shift, {"units": "s"})}
    if "attitude_time" in common:
        att_shift = _seconds_between(common["attitude_epoch"], epoch)
        extras["attitude_quaternion"] = (
            ("attitude_time", "quaternion"),
            common["attitude_quaternion"],
            {"convention": QUATERNION_CONVENTION, "units": "1"},
        )
        extra_coords["attitude_time"] = ("attitude_time", common["attitude_time"] + att_shift, {"units": "s"})
    orbit_t = extra_coords["orbit_time"][1]

    record_common = {
        "format": FORMAT_NAME,
        "source": os.fspath(lf.path),
        "hdf5_path": data_path,
        "calibration_lines": [int(i) for i in cal_lines],
        "invalid_lines": [int(i) for i in invalid_lines],
        "unreadable_lines": [int(i) for i in unreadable],
        "fill_samples": n_fill,
        "segments": len(segments),
        "prf_dithered": dithered,
    }

    def build(lines: np.ndarray, signal: str, seg: int | None) -> xr.Dataset:
        t = times[lines]
        attrs = dict(base_attrs, signal_type=signal)
        if lines.size > 1 and signal == "echo":
            attrs["prf"] = float((lines.size - 1) / (t[-1] - t[0]))
        elif nominal_prf is not None:
            attrs["prf"] = float(nominal_prf)
        else:
            attrs["prf"] = float(1.0 / np.median(np.diff(times))) if n_lines > 1 else 0.0
        shift = 0.0
        if dbf_rate is not None:
            shift = SPEED_OF_LIGHT / 2.0 * (window[lines[0], 0] - window[0, 0]) / dbf_rate
        attrs["near_range"] = float(slant[0] + shift)
        mid = float(np.clip(t[t.size // 2], orbit_t[0], orbit_t[-1]))
        pos, vel = interpolate_orbit(orbit_t, common["orbit_position"], common["orbit_velocity"], mid)
        attrs["velocity"] = effective_velocity(pos, vel)
        coords: dict[str, Any] = {
            "azimuth_time": ("azimuth", t),
            "slant_range": ("range", attrs["near_range"] + np.arange(n_samples) * dr),
            **extra_coords,
        }
        if line_index is not None:
            coords["pulse_count"] = ("azimuth", np.asarray(line_index, np.int64).ravel()[lines])
        if signal != "echo":
            coords["pulse_cal_type"] = ("azimuth", cal_type[lines].astype(np.int64))
        if dithered and signal == "echo":
            coords["pulse_pri"] = ("azimuth", np.append(np.diff(t), np.diff(t)[-1:]) if t.size > 1 else t * 0)
        if dbf_rate is not None:
            coords["pulse_swst"] = ("azimuth", window[lines, 0] / dbf_rate)
        if valid is not None:
            v = valid[lines]
            if np.all(v == v[0]):
                attrs["valid_samples"] = [int(v[0, 0]), int(v[0, 1])]
            else:
                coords["pulse_valid_sample_start"] = ("azimuth", v[:, 0])
                coords["pulse_valid_sample_end"] = ("azimuth", v[:, 1])
        ds = xr.Dataset({"echo": (("azimuth", "range"), samples[lines]), **extras}, coords=coords, attrs=attrs)
        record = dict(record_common, lines=[int(lines[0]), int(lines[-1])], signal_type=signal)
        if seg is not None:
            record["segment"] = seg
        ds = with_history(ds, "ingest", record)
        return validate(ds, "raw", source=lf.where(data_path))

    stem = f"{freq}-{pol.lower()}"
    out: dict[str, xr.Dataset] = {}
    for k, lines in enumerate(segments, start=1):
        key = f"{stem}-echo" if len(segments) == 1 else f"{stem}-echo-seg{k}"
        out[key] = build(lines, "echo", None if len(segments) == 1 else k)
    if cal_lines.size:
        out[f"{stem}-cal"] = build(cal_lines, "calibration", None)
    return out
