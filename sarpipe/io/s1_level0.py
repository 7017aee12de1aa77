"""Sentinel-1 Level-0 reader: a measurement ``.dat`` file or a ``.SAFE`` folder -> raw contract datasets, one per part.

Steps: the index pass finds every packet (:mod:`.s1_packets`), all header fields are decoded at once, packets are
grouped into parts by swath, polarisation and signal type and split into segments wherever the geometry or the
waveform changes (PRI, SWST, SWL, rank, sample count, decimation, TXPRR/TXPSF/TXPL), then each part's user data is
decoded in parallel (:mod:`.s1_user_data`). Calibration and noise packets are parts of their own (``-noise``,
``-tx-cal``, ...), never rows of an echo part.

Header -> attribute derivations (f_ref = 37.53472224 MHz, docs/ingest.md):
- ``range_sampling_rate`` = ratio(decimation code) * 4 f_ref;
- ``chirp_rate`` = ±TXPRR_mag f_ref^2 / 2^21 (sign bit 1 = up-chirp); ``chirp_start_frequency`` =
  chirp_rate / (4 f_ref) ± TXPSF_mag f_ref / 2^14; ``pulse_duration`` = TXPL / f_ref;
- ``prf`` = f_ref / PRI; ``near_range`` = c/2 (rank PRI + SWST + 320 / (8 f_ref)), the last term the decimation
  filter's suppressed transient;
- ``velocity``: the effective velocity from the sub-commutated ephemeris, ``V_s sqrt(R_e / |r|)`` (platform speed
  ``V_s = |v|``, local Earth radius ``R_e`` under the platform; a spherical-Earth approximation, no Earth
  rotation), kept with ``platform_speed``;
- ``azimuth_time``: seconds after ``azimuth_time_epoch`` (UTC), on the PRI grid fitted to the packets' datation
  times run by run of consecutive PRI counts (the datation fine time has a 15 us step).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..orbit import effective_velocity
from .s1_ancillary import Ephemeris, reassemble_ancillary
from .s1_packets import PACKET_PROBLEMS, REFERENCE_FREQUENCY, USER_DATA_OFFSET, decode_headers, index_packets
from .s1_user_data import USER_DATA_PROBLEMS, baq_user_data_bytes, bypass_user_data_bytes, decode_user_data

__all__ = [
    "CARRIER_FREQUENCY",
    "read_s1_level0",
    "sniff_s1_level0",
]

SPEED_OF_LIGHT = 299_792_458.0
#: Sentinel-1 C-SAR centre frequency [Hz] and antenna length [m] (instrument facts; not in the packets).
CARRIER_FREQUENCY = 5.405e9
ANTENNA_LENGTH = 12.3
#: used only when the packets hold no complete ephemeris cycle (recorded in ``velocity_source``)
NOMINAL_EFFECTIVE_VELOCITY = 7200.0
GPS_EPOCH = _dt.datetime(1980, 1, 6, tzinfo=_dt.UTC)
#: GPS - UTC [s] from each date on (IERS bulletins); Sentinel-1 flies after 2014.
_LEAP_SECONDS = ((_dt.datetime(2012, 7, 1, tzinfo=_dt.UTC), 16), (_dt.datetime(2015, 7, 1, tzinfo=_dt.UTC), 17),
                 (_dt.datetime(2017, 1, 1, tzinfo=_dt.UTC), 18))  # fmt: skip

#: range decimation code -> (decimation ratio of 4 f_ref, filter output offset in samples) (section 3.2.5.4)
RANGE_DECIMATION = {
    0: (3 / 4, 87), 1: (2 / 3, 87), 3: (5 / 9, 88), 4: (4 / 9, 90), 5: (3 / 8, 92), 6: (1 / 3, 93),
    7: (1 / 6, 103), 8: (3 / 7, 89), 9: (5 / 16, 97), 10: (3 / 26, 110), 11: (4 / 11, 91),
}  # fmt: skip
#: suppressed transient of the decimation filter [s], added to SWST for the first sample's time
DECIMATION_FILTER_DELAY = 320.0 / (8.0 * REFERENCE_FREQUENCY)
BAQ_MODES = {0: "bypass", 3: "baq3", 4: "baq4", 5: "baq5", 12: "fdbaq0", 13: "fdbaq1", 14: "fdbaq2"}
SIGNAL_TYPES = {0: "echo", 1: "noise", 8: "tx-cal", 9: "rx-cal", 10: "epdn-cal", 11: "ta-cal", 12: "apdn-cal",
                15: "txh-cal-iso"}  # fmt: skip
#: ECC number -> (acquisition mode, stripmap swath or None) (S1-IF-ASD-PL-0007 table 3.2-8)
_STRIPMAP = {1: "S1", 2: "S2", 3: "S3", 4: "S4", 5: "S5", 6: "S6", 10: "S5", 11: "S1", 12: "S2", 13: "S3", 14: "S4",
             17: "S3", 18: "S1", 19: "S2", 20: "S3", 21: "S4", 22: "S5", 23: "S5", 24: "S6", 25: "S5", 26: "S5",
             27: "S6", 31: "S3", 33: "S1", 34: "S3", 35: "S6", 37: "S1", 38: "S2", 39: "S3", 40: "S4", 41: "S5",
             42: "S5", 43: "S6"}  # fmt: skip
_TOPS = {8: "IW", 45: "IW", 32: "EW", 44: "EW"}
_WAVE = {9: "WV", 46: "WV"}
#: header fields whose change starts a new segment (geometry or waveform)
SEGMENT_FIELDS = ("pri", "swst", "swl", "rank", "number_of_quads", "range_decimation", "tx_ramp_rate",
                  "tx_pulse_start_frequency", "tx_pulse_length")  # fmt: skip


def _mode_and_swath(ecc: int, swath_number: int) -> tuple[str, str]:
    if ecc in _STRIPMAP:
        return "SM", _STRIPMAP[ecc]
    if ecc in _TOPS:
        mode = _TOPS[ecc]
        first = 10 if mode == "IW" else 13  # IW1..3 = 10..12, EW1..5 = 13..17
        k = swath_number - first + 1
        return mode, f"{mode}{k}" if 1 <= k <= (3 if mode == "IW" else 5) else f"{mode}-sw{swath_number}"
    if ecc in _WAVE:
        return "WV", f"WV-sw{swath_number}"
    return f"ECC{ecc}", f"sw{swath_number}"


def _polarisation(code: int, rx_channel: int) -> str:
    tx = "H" if code < 4 else "V"
    return tx + ("V" if rx_channel == 0 else "H")


def _tx_ramp_rate(code: np.ndarray) -> np.ndarray:
    """TXPRR code -> chirp rate [Hz/s] (sign bit 1: positive)."""
    sign = np.where(code >> 15, 1.0, -1.0)
    return sign * (code & 0x7FFF) * REFERENCE_FREQUENCY**2 / 2**21


def _tx_start_frequency(txpsf: np.ndarray, txprr: np.ndarray) -> np.ndarray:
    sign = np.where(txpsf >> 15, 1.0, -1.0)
    return _tx_ramp_rate(txprr) / (4.0 * REFERENCE_FREQUENCY) + sign * (txpsf & 0x7FFF) * REFERENCE_FREQUENCY / 2**14


def gps_to_utc_iso(gps_seconds: float) -> str:
    """UTC ISO 8601 (``...Z``, microseconds) of a GPS time in seconds after 1980-01-06."""
    t = GPS_EPOCH + _dt.timedelta(seconds=gps_seconds)
    leap = 0
    for when, value in _LEAP_SECONDS:
        if t >= when:
            leap = value
    return (t - _dt.timedelta(seconds=leap)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ephemeris_velocity(eph: Ephemeris, gps_time: float) -> tuple[float, float] | None:
    """(effective velocity, platform speed) [m/s] at ``gps_time`` from the nearest orbit record, or None."""
    if eph.empty:
        return None
    k = int(np.argmin(np.abs(eph.orbit_time - gps_time)))
    return effective_velocity(eph.position[k], eph.velocity[k]), float(np.linalg.norm(eph.velocity[k]))


# ------------------------------------------------------------------------------------------- files


def measurement_files(path: Path) -> list[Path]:
    """The measurement ``.dat`` files of a ``.SAFE`` folder (annotation and index files left out), or ``[path]``."""
    if path.is_dir():
        files = sorted(
            p for p in path.glob("*.dat") if not p.name.endswith(("-annot.dat", "-index.dat")) and p.is_file()
        )
        if not files:
            raise InputError("no Level-0 measurement file (*.dat) in the folder", where=str(path))
        return files
    return [path]


def sniff_s1_level0(path: Path) -> bool:
    """Whether ``path`` looks like Sentinel-1 Level-0: a ``.SAFE`` folder with measurement files, or a file that
    starts with a Sentinel-1 space packet (primary header, sync marker)."""
    from .s1_packets import _header_ok

    path = Path(path)
    try:
        if path.is_dir():
            if not path.name.upper().endswith(".SAFE"):
                return False
            path = measurement_files(path)[0]
        with open(path, "rb") as f:
            head = np.frombuffer(f.read(USER_DATA_OFFSET), dtype=np.uint8)
    except (OSError, InputError):
        return False
    if head.size < USER_DATA_OFFSET:
        return False
    return _header_ok(np.concatenate([head, np.zeros(1 << 16, np.uint8)]), 0) == 0


# ------------------------------------------------------------------------------------------ reading


def _expected_user_data(nq: np.ndarray, mode: np.ndarray) -> np.ndarray:
    """Minimum user-data bytes per packet (exact for bypass and BAQ; FDBAQ is checked while decoding)."""
    out = np.zeros(nq.size, dtype=np.int64)
    for k in np.unique(mode):
        sel = mode == k
        if k == 0:
            out[sel] = [bypass_user_data_bytes(int(q)) for q in nq[sel]]
        elif k in (3, 4, 5):
            out[sel] = [baq_user_data_bytes(int(q), int(k)) for q in nq[sel]]
    return out


def _header_problems(h: dict[str, np.ndarray], lengths: np.ndarray) -> list[str | None]:
    nq, mode = h["number_of_quads"], h["baq_mode"]
    room = lengths - USER_DATA_OFFSET
    need = _expected_user_data(nq, mode)
    out: list[str | None] = []
    for k in range(nq.size):
        if int(mode[k]) not in BAQ_MODES:
            out.append(f"unknown BAQ mode {int(mode[k])}")
        elif int(h["range_decimation"][k]) not in RANGE_DECIMATION:
            out.append(f"unknown range decimation code {int(h['range_decimation'][k])}")
        elif int(h["pri"][k]) == 0 or int(h["tx_pulse_length"][k]) == 0:
            out.append("PRI or Tx pulse length is zero")
        elif nq[k] <= 0:
            out.append(USER_DATA_PROBLEMS[4])
        elif need[k] > room[k]:
            out.append(f"user data holds {int(room[k])} bytes, {int(need[k])} needed for {int(nq[k])} quads")
        else:
            out.append(None)
    return out


def _azimuth_times(datation: np.ndarray, pri_count: np.ndarray, pri_s: float) -> tuple[np.ndarray, str]:
    """Pulse times on the PRI grid, fitted to the datation times per run of consecutive PRI counts."""
    step = (np.diff(pri_count) % (1 << 32)).astype(np.int64)
    breaks = np.flatnonzero(step != 1) + 1
    out = np.empty_like(datation)
    for run in np.split(np.arange(datation.size), breaks):
        n = np.arange(run.size, dtype=np.float64) * pri_s
        out[run] = n + np.mean(datation[run] - n)
    if out.size > 1 and not np.all(np.diff(out) > 0):
        return datation.copy(), "packet datation (coarse + (fine + 0.5) 2^-16 s)"
    return out, "PRI grid fitted to the packet datation, per run of consecutive PRI counts"


def _problem(index: int, offset: int, reason: str) -> dict[str, Any]:
    return {"index": int(index), "offset": int(offset), "reason": reason}


def _read_file(path: Path, on_error: str) -> dict[str, xr.Dataset]:
    try:
        buf = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.empty(0, np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    offsets, lengths, problems = index_packets(buf)
    if offsets.size == 0:
        raise InputError("empty file: no Sentinel-1 packets", where=str(path))
    skipped: list[dict[str, Any]] = []
    good = problems == 0
    for k in np.flatnonzero(~good):
        skipped.append(_problem(k, offsets[k], PACKET_PROBLEMS[int(problems[k])]))
    idx = np.flatnonzero(good)
    if idx.size == 0:
        raise _packet_error(path, skipped[0], len(skipped), "no intact Sentinel-1 packet: ")
    h = decode_headers(buf, offsets[idx])
    for k, reason in enumerate(_header_problems(h, lengths[idx])):
        if reason is not None:
            skipped.append(_problem(idx[k], offsets[idx[k]], reason))
    if skipped and on_error == "raise":
        first = min(skipped, key=lambda s: s["index"])
        raise _packet_error(path, first, len(skipped))
    bad = {s["index"] for s in skipped}
    keep = np.array([k for k, i in enumerate(idx) if i not in bad], dtype=np.int64)
    h = {name: v[keep] for name, v in h.items()}
    idx = idx[keep]
    eph = reassemble_ancillary(h["subcom_data_word_index"], h["subcom_data_word"])
    datation = h["coarse_time"] + (h["fine_time"] + 0.5) * 2.0**-16
    epoch_gps = float(np.floor(datation.min())) if datation.size else 0.0

    # group: (mode, swath, polarisation, signal type), then segments where SEGMENT_FIELDS change
    groups: dict[tuple, list[int]] = {}
    for k in range(idx.size):
        mode, swath = _mode_and_swath(int(h["ecc_number"][k]), int(h["swath_number"][k]))
        key = (mode, swath, _polarisation(int(h["polarisation"][k]), int(h["rx_channel_id"][k])),
               SIGNAL_TYPES.get(int(h["signal_type"][k]), f"signal{int(h['signal_type'][k])}"))  # fmt: skip
        groups.setdefault(key, []).append(k)
    parts: dict[str, xr.Dataset] = {}
    decode_failures: list[dict[str, Any]] = []
    for key, members in groups.items():
        rows = np.asarray(members)
        sig = np.stack([h[f][rows] for f in SEGMENT_FIELDS], axis=1)
        change = np.flatnonzero(np.any(sig[1:] != sig[:-1], axis=1)) + 1
        segments = np.split(rows, change)
        for n, seg in enumerate(segments, start=1):
            name = f"{key[1]}-{key[2]}-{key[3]}".lower() + (f"-seg{n}" if len(segments) > 1 else "")
            ds, failed = _part(buf, offsets[idx[seg]], lengths[idx[seg]], idx[seg], {f: v[seg] for f, v in h.items()},
                               key, datation[seg], epoch_gps, eph, path)  # fmt: skip
            decode_failures.extend(failed)
            if ds is not None:
                parts[name] = ds
    if decode_failures and on_error == "raise":
        raise _packet_error(path, min(decode_failures, key=lambda s: s["index"]), len(decode_failures))
    skipped = sorted(skipped + decode_failures, key=lambda s: s["index"])
    for ds in parts.values():
        ds.attrs["skipped_packets"] = skipped
        ds.attrs["packets_in_file"] = int(offsets.size)
    if not parts:
        raise InputError("no decodable Sentinel-1 packets", where=str(path))
    return parts


def _packet_error(path: Path, first: dict[str, Any], count: int, prefix: str = "") -> InputError:
    more = f" ({count} damaged packets in all; --on-error skip keeps the others)" if count > 1 else (
        " (--on-error skip keeps the other packets)")  # fmt: skip
    return InputError(f"{prefix}packet {first['index']} at byte offset {first['offset']}: {first['reason']}{more}",
                      where=str(path))  # fmt: skip


def _part(buf, offsets, lengths, packet_index, h, key, datation, epoch_gps, eph, path):
    """One part's dataset, and the packets whose user data failed to decode."""
    mode, swath, pol, signal = key
    nq = int(h["number_of_quads"][0])
    samples, status = decode_user_data(
        buf, offsets + USER_DATA_OFFSET, offsets + lengths, h["number_of_quads"], h["baq_mode"], 2 * nq
    )
    failed = [
        _problem(packet_index[k], offsets[k], USER_DATA_PROBLEMS.get(int(status[k]), "decode failed"))
        for k in np.flatnonzero(status)
    ]
    ok = status == 0
    if not ok.any():
        return None, failed
    samples = samples[ok]
    h = {f: v[ok] for f, v in h.items()}
    datation, offsets, packet_index = datation[ok], offsets[ok], packet_index[ok]
    pri = float(h["pri"][0]) / REFERENCE_FREQUENCY
    swst = float(h["swst"][0]) / REFERENCE_FREQUENCY
    rank = int(h["rank"][0])
    ratio, _ = RANGE_DECIMATION[int(h["range_decimation"][0])]
    fs = ratio * 4.0 * REFERENCE_FREQUENCY
    chirp_rate = float(_tx_ramp_rate(h["tx_ramp_rate"][:1])[0])
    start_freq = float(_tx_start_frequency(h["tx_pulse_start_frequency"][:1], h["tx_ramp_rate"][:1])[0])
    tp = float(h["tx_pulse_length"][0]) / REFERENCE_FREQUENCY
    near_range = SPEED_OF_LIGHT / 2.0 * (rank * pri + swst + DECIMATION_FILTER_DELAY)
    times, time_method = _azimuth_times(datation - epoch_gps, h["pri_count"], pri)
    v = ephemeris_velocity(eph, float(np.median(datation)))
    attrs: dict[str, Any] = {
        "carrier_frequency": CARRIER_FREQUENCY,
        "range_sampling_rate": fs,
        "chirp_rate": chirp_rate if chirp_rate != 0 else float("nan"),
        "pulse_duration": tp,
        "prf": 1.0 / pri,
        "velocity": v[0] if v else NOMINAL_EFFECTIVE_VELOCITY,
        "near_range": near_range,
        "antenna_length": ANTENNA_LENGTH,
        "look_side": "right",
        "sensor": "Sentinel-1 C-SAR",
        "mission": "Sentinel-1",
        "acquisition_mode": mode,
        "swath": swath,
        "polarisation": pol,
        "signal_type": signal,
        "azimuth_time_epoch": gps_to_utc_iso(epoch_gps),
        "azimuth_time_method": time_method,
        "chirp_start_frequency": start_freq,
        "range_decimation_code": int(h["range_decimation"][0]),
        "sampling_window_length": float(h["swl"][0]) / REFERENCE_FREQUENCY,
        "data_take_id": int(h["data_take_id"][0]),
        "ecc_number": int(h["ecc_number"][0]),
        "level0_file": os.fspath(path),
        "velocity_source": (
            "effective velocity V_s sqrt(R_e / |r|) from the packets' ephemeris (platform speed in platform_speed)"
            if v
            else "nominal: no complete ephemeris cycle (64 consecutive sub-commutated words) in the packets"
        ),
    }
    if v:
        attrs["platform_speed"] = v[1]
    if mode in ("IW", "EW"):
        attrs["focus_note"] = "TOPS (IW/EW) bursts decode, but TOPS focusing is not supported by sarpipe"
    n_rg = samples.shape[1]
    coords = {
        "azimuth_time": ("azimuth", times),
        "slant_range": ("range", near_range + np.arange(n_rg) * SPEED_OF_LIGHT / (2.0 * fs)),
        "pulse_datation_time": ("azimuth", datation - epoch_gps),
        "pulse_pri": ("azimuth", h["pri"] / REFERENCE_FREQUENCY),
        "pulse_swst": ("azimuth", h["swst"] / REFERENCE_FREQUENCY),
        "pulse_rank": ("azimuth", h["rank"].astype(np.int32)),
        "pulse_decimation_code": ("azimuth", h["range_decimation"].astype(np.int32)),
        "pulse_baq_mode": ("azimuth", h["baq_mode"].astype(np.int32)),
        "pulse_count": ("azimuth", h["space_packet_count"]),
        "pulse_pri_count": ("azimuth", h["pri_count"]),
        "pulse_rx_gain": ("azimuth", -0.5 * h["rx_gain"]),
        "pulse_elevation_beam_address": ("azimuth", h["sas_dynamic_data"].astype(np.int32)),
        "pulse_azimuth_beam_address": ("azimuth", h["beam_address"].astype(np.int32)),
        "pulse_packet_index": ("azimuth", packet_index.astype(np.int64)),
        "pulse_byte_offset": ("azimuth", offsets.astype(np.int64)),
    }
    ds = xr.Dataset({"echo": (("azimuth", "range"), samples)}, coords=coords, attrs=attrs)
    for name, unit in (("pulse_pri", "s"), ("pulse_swst", "s"), ("pulse_datation_time", "s"), ("pulse_rx_gain", "dB")):
        ds[name].attrs["units"] = unit
    if not eph.empty:
        ds = ds.assign(
            orbit_position=(("orbit_time", "xyz"), eph.position),
            orbit_velocity=(("orbit_time", "xyz"), eph.velocity),
            attitude_quaternion=(("attitude_time", "quaternion"), eph.quaternion),
        ).assign_coords(orbit_time=eph.orbit_time - epoch_gps, attitude_time=eph.attitude_time - epoch_gps)
        ds["orbit_position"].attrs.update(units="m", frame="ECEF (WGS84)")
        ds["orbit_velocity"].attrs.update(units="m/s", frame="ECEF (WGS84)")
        ds["attitude_quaternion"].attrs["convention"] = "q0..q3 as in the packets (S1-IF-ASD-PL-0007 table 3.2-6)"
    return ds, failed


def read_s1_level0(path: str | os.PathLike, *, on_error: str = "raise") -> dict[str, xr.Dataset]:
    """Read a Sentinel-1 Level-0 measurement file or ``.SAFE`` folder into raw contract datasets, one per part
    (keys ``<swath>-<pol>-<signal>[-seg<N>]``, e.g. ``s3-vv-echo``, ``iw2-vh-noise``).

    ``on_error="raise"``: a damaged packet (bad header, truncated, undecodable user data) is an
    :class:`InputError` naming its byte offset and packet index; ``"skip"``: it is left out, the packets before and
    after kept, and every part lists the skipped ones in the attribute ``skipped_packets`` (index, offset, reason).
    """
    if on_error not in ("raise", "skip"):
        raise InputError(f"must be 'raise' or 'skip', got {on_error!r}", where="on_error")
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", where=str(path))
    files = measurement_files(path)
    parts: dict[str, xr.Dataset] = {}
    for f in files:
        for key, ds in _read_file(f, on_error).items():
            parts[key if key not in parts else f"{f.stem}-{key}"] = ds
    return parts
