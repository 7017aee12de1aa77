"""A Sentinel-1 Level-0 *encoder for tests and benchmarks*: raw contract echoes (e.g. from ``sarpipe simulate``) ->
space packets in bypass or BAQ 3/4/5-bit, with headers that make :func:`sarpipe.io.s1_level0.read_s1_level0`
derive the dataset's own attributes back.

Only what the headers can carry round-trips: the sampling rate must be one of the decimation rates, and chirp rate,
pulse length, PRI and near range lie on the header grids. :func:`level0_attrs` snaps a set of attributes onto them
(simulate with the snapped values, then encode). The ephemeris is a fixed equatorial state vector whose effective
velocity ``V_s sqrt(R_e / |r|)`` equals the dataset's ``velocity``; the carrier must be Sentinel-1's 5.405 GHz.

BAQ quantisation: per 128-quad block one threshold index THIDX (normal reconstruction, the sigma factor nearest the
block's RMS), magnitudes to the nearest normalised reconstruction level. Not a model of the on-board quantiser's
exact decision thresholds; FDBAQ encoding is not provided.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..orbit import WGS84_A
from .s1_level0 import (
    CARRIER_FREQUENCY,
    DECIMATION_FILTER_DELAY,
    RANGE_DECIMATION,
    SPEED_OF_LIGHT,
)
from .s1_packets import HEADER_FIELDS, REFERENCE_FREQUENCY, SYNC_MARKER, USER_DATA_OFFSET
from .s1_user_data import BAQ_NRL, BLOCK_QUADS, SIGMA_FACTORS

__all__ = ["encode_level0", "level0_attrs", "level0_header_codes"]

F = REFERENCE_FREQUENCY
ORBIT_RADIUS = WGS84_A + 693_000.0  # m, equatorial, Sentinel-1-like altitude


def _decimation_code(fs: float) -> int:
    return min(RANGE_DECIMATION, key=lambda c: abs(RANGE_DECIMATION[c][0] * 4 * F - fs))


def level0_header_codes(attrs: Mapping[str, Any]) -> dict[str, int]:
    """The header codes nearest to contract ``attrs`` (decimation, TXPRR, TXPSF, TXPL, PRI, rank, SWST)."""
    kr, tp = float(attrs["chirp_rate"]), float(attrs["pulse_duration"])
    txprr_mag = round(abs(kr) * 2**21 / F**2)
    kr_q = math.copysign(txprr_mag * F**2 / 2**21, kr)
    start = -kr_q * tp / 2 - kr_q / (4 * F)  # chirp centred on zero frequency
    txpsf_mag = round(abs(start) * 2**14 / F)
    pri = round(F / float(attrs["prf"]))
    t0 = 2 * float(attrs["near_range"]) / SPEED_OF_LIGHT - DECIMATION_FILTER_DELAY
    rank = int(t0 // (pri / F))
    swst = round((t0 - rank * pri / F) * F)
    codes = {
        "range_decimation": _decimation_code(float(attrs["range_sampling_rate"])),
        "tx_ramp_rate": (0x8000 if kr > 0 else 0) | txprr_mag,
        "tx_pulse_start_frequency": (0x8000 if start > 0 else 0) | txpsf_mag,
        "tx_pulse_length": round(tp * F),
        "pri": pri,
        "rank": rank,
        "swst": swst,
    }
    if txprr_mag >= 1 << 15 or txpsf_mag >= 1 << 15 or not 0 <= rank < 32 or codes["tx_pulse_length"] >= 1 << 24:
        raise InputError("chirp rate, start frequency, PRI or near range do not fit the Level-0 header fields")
    return codes


def level0_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` with the values Level-0 headers can carry (what the reader will derive), carrier 5.405 GHz."""
    c = level0_header_codes(attrs)
    pri = c["pri"] / F
    out = dict(attrs)
    out.update(
        carrier_frequency=CARRIER_FREQUENCY,
        range_sampling_rate=RANGE_DECIMATION[c["range_decimation"]][0] * 4 * F,
        chirp_rate=math.copysign((c["tx_ramp_rate"] & 0x7FFF) * F**2 / 2**21, float(attrs["chirp_rate"])),
        pulse_duration=c["tx_pulse_length"] / F,
        prf=1 / pri,
        near_range=SPEED_OF_LIGHT / 2 * (c["rank"] * pri + c["swst"] / F + DECIMATION_FILTER_DELAY),
    )
    return out


def _bits(values: np.ndarray, width: int) -> np.ndarray:
    """(..., n) unsigned ints -> (..., n * width) bits, MSB first."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[..., None].astype(np.int64) >> shifts) & 1).astype(np.uint8).reshape(*values.shape[:-1], -1)


def _pad16(bits: np.ndarray) -> np.ndarray:
    extra = (-bits.shape[1]) % 16
    return np.pad(bits, ((0, 0), (0, extra)))


def _sign_magnitude(values: np.ndarray, m: np.ndarray, width: int) -> np.ndarray:
    return (np.signbit(values).astype(np.int64) << (width - 1)) | m


def _bypass_bits(channels: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    parts, recon = [], []
    for v in channels:
        m = np.minimum(np.rint(np.abs(v)), 511).astype(np.int64)
        parts.append(_pad16(_bits(_sign_magnitude(v, m, 10), 10)))
        recon.append(np.where(np.signbit(v), -m, m).astype(np.float32))
    return np.concatenate(parts, axis=1), recon


def _baq_bits(channels: list[np.ndarray], bits: int) -> tuple[np.ndarray, list[np.ndarray]]:
    n_az, nq = channels[0].shape
    n_blocks = -(-nq // BLOCK_QUADS)
    padded = [np.pad(v, ((0, 0), (0, n_blocks * BLOCK_QUADS - nq))).reshape(n_az, n_blocks, BLOCK_QUADS)
              for v in channels]  # fmt: skip
    count = np.minimum(BLOCK_QUADS, nq - BLOCK_QUADS * np.arange(n_blocks))
    rms = np.sqrt(sum((p**2).sum(axis=2) for p in padded) / (4 * count))
    sf = np.asarray(SIGMA_FACTORS, dtype=np.float64)
    simple_max = {3: 3, 4: 5, 5: 10}[bits]
    thidx = np.clip(np.abs(sf[None, None, :] - rms[..., None]).argmin(axis=2), simple_max + 1, 255)
    nrl = np.asarray(BAQ_NRL[bits], dtype=np.float32)
    levels = nrl[None, None, :] * sf.astype(np.float32)[thidx][..., None]  # (az, block, level)
    mids = (levels[..., 1:] + levels[..., :-1]) / 2
    parts, recon = [], []
    for ch, p in enumerate(padded):
        m = (np.abs(p)[..., None] > mids[:, :, None, :]).sum(axis=3).astype(np.int64)
        r = np.take_along_axis(levels, m.reshape(n_az, n_blocks, -1), axis=2).reshape(p.shape)
        recon.append(np.where(np.signbit(p), -r, r).reshape(n_az, -1)[:, :nq].astype(np.float32))
        codes = _sign_magnitude(p, m, bits).reshape(n_az, -1)[:, :nq]
        if ch != 2:
            parts.append(_pad16(_bits(codes, bits)))
            continue
        blocks = []
        for b in range(n_blocks):
            blocks.append(_bits(thidx[:, b : b + 1], 8))
            blocks.append(_bits(codes[:, b * BLOCK_QUADS : (b + 1) * BLOCK_QUADS], bits))
        parts.append(_pad16(np.concatenate(blocks, axis=1)))
    return np.concatenate(parts, axis=1), recon


def _headers(values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    bits = np.zeros((n, USER_DATA_OFFSET * 8), dtype=np.uint8)
    for name, off, width in HEADER_FIELDS:
        v = np.broadcast_to(np.asarray(values.get(name, 0), dtype=np.int64), (n,))
        bits[:, off : off + width] = _bits(v[:, None], width)
    return np.packbits(bits, axis=1)


def _subcom_words(gps_time: float, velocity: float) -> np.ndarray:
    """The 64 sub-commutated words of one cycle: an equatorial ECEF state with effective velocity ``velocity``."""
    speed = velocity / math.sqrt(WGS84_A / ORBIT_RADIUS)
    pos = np.array([ORBIT_RADIUS, 0.0, 0.0], dtype=">f8").view(">u2")
    vel = np.array([0.0, speed, 0.0], dtype=">f4").view(">u2")
    quat = np.array([1.0, 0.0, 0.0, 0.0], dtype=">f4").view(">u2")
    seconds = int(gps_time)
    frac = int((gps_time - seconds) * 2**32)
    t = np.array([seconds >> 16, seconds & 0xFFFF, frac >> 16, frac & 0xFFFF], dtype=np.int64)
    words = np.zeros(64, dtype=np.int64)
    words[0:12], words[12:18], words[18:22] = pos, vel, t
    words[22:30], words[36:40] = quat, t
    return words


def encode_level0(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    baq_mode: int = 0,
    scale: float | None = None,
    variable: str = "echo",
    gps_start: float = 1_276_273_467.0,
    ecc_number: int = 13,
    swath_number: int = 2,
    polarisation: str = "VV",
) -> dict[str, Any]:
    """Write ``ds[variable]`` (one packet per pulse) as a Level-0 file at ``path``.

    ``baq_mode``: 0 (bypass), 3, 4 or 5 (BAQ bits). ``scale`` multiplies the samples before quantisation (default:
    bypass peak component 500 of 511; BAQ RMS 60, well inside the sigma-factor table). The packet time of pulse
    ``k`` is ``gps_start + azimuth_time[k]`` (GPS seconds; default a 2020 date). Returns ``{"scale": ...,
    "reconstruction": complex64 array}``, the values a correct decoder gives.
    """
    if baq_mode not in (0, 3, 4, 5):
        raise InputError(f"baq_mode must be 0, 3, 4 or 5, got {baq_mode}", where="baq_mode")
    a = ds.attrs
    codes = level0_header_codes(a)
    snapped = level0_attrs(a)
    for key in ("range_sampling_rate", "chirp_rate", "pulse_duration", "prf", "near_range", "carrier_frequency"):
        if not math.isclose(float(a[key]), float(snapped[key]), rel_tol=1e-9):
            raise InputError(
                f"{a[key]!r} is not representable in Level-0 headers (nearest {snapped[key]!r}); simulate with "
                "sarpipe.io.s1_encoder.level0_attrs(...) values",
                where=f"attribute '{key}'",
            )
    echo = np.asarray(ds[variable].values)
    n_az, n_rg = echo.shape
    if n_rg % 2:
        raise InputError("an even number of range samples is needed (two per quad)", where=f"variable '{variable}'")
    nq = n_rg // 2
    if scale is None:
        peak = max(float(np.abs(echo.real).max()), float(np.abs(echo.imag).max()), 1e-30)
        rms = max(float(np.sqrt(np.mean(np.abs(echo) ** 2) / 2)), 1e-30)
        scale = 500.0 / peak if baq_mode == 0 else 60.0 / rms
    x = echo.astype(np.complex128) * scale
    channels = [x.real[:, 0::2], x.real[:, 1::2], x.imag[:, 0::2], x.imag[:, 1::2]]
    bits, recon = _bypass_bits(channels) if baq_mode == 0 else _baq_bits(channels, baq_mode)
    user = np.packbits(bits, axis=1)
    user = np.pad(user, ((0, 0), (0, (-(USER_DATA_OFFSET + user.shape[1])) % 4)))
    length = USER_DATA_OFFSET + user.shape[1]
    t = gps_start + np.asarray(ds["azimuth_time"].values, dtype=np.float64)
    coarse = np.floor(t).astype(np.int64)
    fine = np.clip(np.rint((t - coarse) * 2**16 - 0.5), 0, 65535).astype(np.int64)
    k = np.arange(n_az)
    cycle_start = t[(k // 64) * 64]
    words = np.stack([_subcom_words(float(ts), float(a["velocity"])) for ts in cycle_start[::64]])
    subcom = words[k // 64, k % 64]
    pol = {"HH": (1, 1), "HV": (2, 0), "VV": (6, 0), "VH": (5, 1)}[polarisation.upper()]
    values = {
        "secondary_header_flag": 1, "pid": 65, "pcat": 12, "sequence_flags": 3,
        "packet_sequence_count": k % (1 << 14), "packet_data_length": length - 7,
        "coarse_time": coarse, "fine_time": fine, "sync_marker": SYNC_MARKER, "data_take_id": 1,
        "ecc_number": ecc_number, "rx_channel_id": pol[1], "instrument_configuration_id": 1,
        "subcom_data_word_index": k % 64 + 1, "subcom_data_word": subcom, "space_packet_count": k, "pri_count": k,
        "baq_mode": baq_mode, "baq_block_length": 31, "rx_gain": 0, "swl": round(n_rg / snapped["range_sampling_rate"] * F),
        "polarisation": pol[0], "signal_type": 0, "swath_number": swath_number, "number_of_quads": nq, **codes,
    }  # fmt: skip
    packets = np.concatenate([_headers(values, n_az), user], axis=1)
    Path(path).write_bytes(packets.tobytes())
    out = np.empty((n_az, n_rg), dtype=np.complex64)
    out[:, 0::2] = recon[0] + 1j * recon[2]
    out[:, 1::2] = recon[1] + 1j * recon[3]
    return {"scale": scale, "reconstruction": out, "packet_bytes": length}
