"""Image -> pulse mapping: which echo pulses built the image lines where RFI was found.

Focusing is linear. The image line at zero-Doppler time ``eta0`` is the azimuth matched filter applied to the
pulses within one synthetic aperture around the beam-centre crossing ``eta0 + eta_c``:

- squint ``theta`` from the Doppler centroid, ``sin(theta) = lambda f_dc / (2 V)``; ``eta_c = -R0 tan(theta) / V``,
  a shift of ``eta_c * prf`` pulses;
- aperture length in pulses ``T = L / V * prf`` with ``L = 0.886 lambda R0 / L_a`` (the 3 dB beam footprint) or,
  when the processed Doppler bandwidth ``B_p`` is known (the ``focus`` history record), the matched filter's length
  ``T = B_p / |K_a| * prf`` with ``K_a = 2 V^2 cos^2(theta) / (lambda R0)``; the larger is used, at the far range of
  the flagged range cells, so the mapping errs on the conservative side;
- in range, image cell ``j`` is built from echo samples within half a chirp (``Tp fs / 2``) of ``j`` plus the
  range cell migration over the aperture, ``R0 (1 / cos(beam half-angle) - 1)``.

A line flagged in the image therefore maps to pulses ``i + eta_c prf +- (T / 2 + margin)``; with a circular
azimuth focuser (sarpipe's), indices wrap around the scene. This interval always holds the RFI pulses (recall
1 by construction) but is an aperture wider than them; :func:`refine_pulses` keeps only the candidates that the
echo-domain detector also flags (see :mod:`sarpipe.rfi.echo_detect`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import last_record
from ..sensor import SensorParams
from ..stripmap import antenna_doppler_bandwidth, azimuth_fm_rate, beam_centre_offset, squint_angle

__all__ = [
    "ApertureGeometry",
    "aperture_geometry",
    "processed_bandwidth",
    "map_lines_to_pulses",
    "map_range_to_samples",
    "refine_pulses",
    "PulseMapping",
]


@dataclass(frozen=True)
class ApertureGeometry:
    """Aperture of a target at range ``r0`` [m]: ``length_pulses`` (T), ``shift_pulses`` (eta_c * prf, signed),
    ``chirp_samples`` (Tp * fs) and ``migration_samples`` (range cell migration over the aperture)."""

    r0: float
    length_pulses: float
    shift_pulses: float
    chirp_samples: float
    migration_samples: float
    source: str


def processed_bandwidth(attrs: Mapping[str, Any]) -> float | None:
    """The processed Doppler bandwidth [Hz] of the last ``focus`` processing record, None without one."""
    record = last_record(attrs, "focus")
    bw = (record.get("params") or {}).get("azimuth_bandwidth") if record else None
    return float(bw) if bw else None


def aperture_geometry(sensor: SensorParams, r0: float, processed_bandwidth: float | None = None) -> ApertureGeometry:
    """Synthetic-aperture length, beam-centre shift and chirp length for range ``r0`` [m].

    ``processed_bandwidth`` [Hz]: the image's processed Doppler band (see :func:`processed_bandwidth`); without it
    and without the sensor's ``antenna_length`` the full PRF band is assumed.
    """
    lam = sensor.wavelength
    v = sensor.velocity
    prf = sensor.prf
    f_dc = sensor.doppler_centroid or 0.0
    theta = squint_angle(f_dc, lam, v)
    shift = beam_centre_offset(r0, f_dc, lam, v) * prf
    ka = azimuth_fm_rate(r0, f_dc, lam, v)
    lengths = []
    source = []
    la = sensor.antenna_length
    if la:
        lengths.append(antenna_doppler_bandwidth(la, v, f_dc, lam) / ka * prf)  # 3 dB beam footprint
        source.append("beamwidth")
    bp = processed_bandwidth
    if bp is None and not la:
        bp = prf
    if bp is not None:
        lengths.append(min(bp, prf) / ka * prf)
        source.append("processed bandwidth")
    length = max(lengths)
    half_angle = 0.5 * length / prf * v / r0
    migration = r0 * (1 / math.cos(half_angle) - 1) + r0 * abs(math.tan(theta)) * half_angle
    fs = sensor.range_sampling_rate
    return ApertureGeometry(
        r0=float(r0),
        length_pulses=float(length),
        shift_pulses=float(shift),
        chirp_samples=sensor.pulse_duration * fs,
        migration_samples=float(migration / sensor.range_pixel_spacing),
        source=" and ".join(source),
    )


def _dilate_circular(mask: np.ndarray, lo: int, hi: int, wrap: bool) -> np.ndarray:
    """out[k] = any(mask[k - hi .. k - lo]) (i.e. every flagged i marks i + lo .. i + hi)."""
    n = mask.size
    out = np.zeros(n, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]])))
    diff = np.zeros(n + 1, dtype=np.int64)
    for a, b in zip(edges[::2], edges[1::2]):  # each run [a, b) marks [a + lo, b - 1 + hi]
        s, e = a + lo, b + hi
        if wrap:
            if e - s >= n:
                return np.ones(n, dtype=bool)
            s_mod, e_mod = s % n, e % n
            if s_mod < e_mod or e_mod == 0:
                diff[s_mod] += 1
                diff[e_mod if e_mod else n] -= 1
            else:
                diff[s_mod] += 1
                diff[n] -= 1
                diff[0] += 1
                diff[e_mod] -= 1
        else:
            s, e = max(s, 0), min(e, n)
            if e > s:
                diff[s] += 1
                diff[e] -= 1
    out[:] = np.cumsum(diff[:-1]) > 0
    return out


def map_lines_to_pulses(
    lines: np.ndarray, geometry: ApertureGeometry, *, margin: float = 0.05, wrap: bool = True
) -> np.ndarray:
    """Pulses that contribute to the flagged image ``lines`` (bool per line): ``i + shift +- T (1/2 + margin)``."""
    half = geometry.length_pulses * (0.5 + margin)
    lo = int(math.floor(geometry.shift_pulses - half))
    hi = int(math.ceil(geometry.shift_pulses + half))
    return _dilate_circular(np.asarray(lines, bool), lo, hi, wrap)


def map_range_to_samples(range_mask: np.ndarray, geometry: ApertureGeometry) -> np.ndarray:
    """Echo fast-time samples that build the flagged image range cells (bool per cell): +- half a chirp + RCM."""
    half = int(math.ceil(geometry.chirp_samples / 2 + geometry.migration_samples)) + 1
    return _dilate_circular(np.asarray(range_mask, bool), -half, half, wrap=False)


def refine_pulses(candidates: np.ndarray, echo_flags: np.ndarray, *, close_gap: int = 2) -> np.ndarray:
    """Candidates that the echo-domain detector also flags, with gaps of up to ``close_gap`` pulses closed."""
    keep = np.asarray(candidates, bool) & np.asarray(echo_flags, bool)
    if close_gap > 0 and keep.any():
        idx = np.flatnonzero(keep)
        gaps = np.diff(idx)
        for a, g in zip(idx[:-1], gaps):
            if 1 < g <= close_gap + 1:
                keep[a + 1 : a + g] = candidates[a + 1 : a + g]
    return keep


@dataclass
class PulseMapping:
    """Result of the mapping: ``pulses`` (bool per pulse, final), ``candidates`` (geometry only), ``samples``
    (bool per fast-time sample), the aperture geometry used and parameters."""

    pulses: np.ndarray
    candidates: np.ndarray
    samples: np.ndarray
    geometry: ApertureGeometry
    params: dict = field(default_factory=dict)
