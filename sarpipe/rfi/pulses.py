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
    "pulse_runs",
    "aperture_geometry",
    "processed_bandwidth",
    "map_lines_to_pulses",
    "map_range_to_samples",
    "map_pulses_to_lines",
    "line_rfi_to_clutter",
    "pulse_rfi_to_clutter",
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


def pulse_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of consecutive True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(flags, np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


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
    """Result of the mapping: ``pulses`` (bool per pulse, final), ``candidates`` (the geometry's, and the pulses of
    the Doppler-tone test, which reads every pulse), ``samples``
    (bool per fast-time sample), the aperture geometry used and parameters."""

    pulses: np.ndarray
    candidates: np.ndarray
    samples: np.ndarray
    geometry: ApertureGeometry
    params: dict = field(default_factory=dict)


_CLUTTER_QUANTILE = 10  # percent: the running lower percentile that tracks the clutter under a run
_CLUTTER_PULSES = 15  # pulses: its window, as the echo detector's running median


def _nearest_clean(clean: np.ndarray, a: int, b: int, count: int, wrap: bool) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` unflagged pulses (``clean``: sorted indices) just before pulse ``a`` and just after ``b - 1``
    (circular with ``wrap``): ``(before, after)``."""
    n_clean = clean.size
    k = int(np.searchsorted(clean, a))  # clean[k - 1] < a <= clean[k]
    m = int(np.searchsorted(clean, b))  # the first clean pulse at or after b
    if wrap:
        before = clean[(k - 1 - np.arange(count)) % n_clean]
        after = clean[(m + np.arange(count)) % n_clean]
        return before, after
    return clean[max(0, k - count) : k], clean[m : m + count]


def pulse_rfi_to_clutter(
    echo: Any,
    pulses: np.ndarray,
    sensor: SensorParams | None = None,
    *,
    nbands: int = 256,
    neighbours: int = 16,
    wrap: bool = True,
) -> np.ndarray:
    """Per pulse, the estimated in-band RFI-to-clutter power ratio ``r = S / C - 1`` of the flagged ``pulses``
    (bool per pulse; 0 elsewhere). ``echo``: (pulses, samples), numpy or Dask (only the flagged pulses and their
    neighbours are read).

    ``S``: the pulse's in-band power (whole-pulse band spectra, :func:`~.echo_detect.pulse_band_spectra`, inside
    the radar band). ``C``, the clutter's in-band power under the RFI, from two estimates: (1) the RFI-free pulses
    around each flagged run (``neighbours`` on each side, the median of their in-band power on either side,
    interpolated in log across the run); (2) the pulse's own lower-quartile band over the clutter's spectral level
    (:func:`~.echo_detect.floor_shape`), divided by that quantile of ``Gamma(k) / k``, times the level's in-band
    sum. (2) follows the clutter pulse by pulse, but RFI in the pulse's lowest bands raises it (all of them when
    the RFI fills more than three quarters of the band); (1) knows nothing of the clutter inside the run, which
    textured clutter moves by tens of dB over a long burst. So inside a run ``C`` is (2)'s trend, its running 10th
    percentile over 15 pulses (the clutter changes slowly from pulse to pulse, the emitters' share of (2) does
    not), less the RFI's share of (2) measured where the clutter is known: the step of (2) from the neighbours into
    the run's first or last eighth (at least 8 pulses; the larger step, as an end may hold RFI-free pulses flagged
    with the run), bounded by the lower of (1) and (2) below and by (2) above. Without an RFI-free pulse (RFI on
    every pulse) only (2) is used.
    """
    from scipy.ndimage import percentile_filter
    from scipy.special import gammaincinv

    from .echo_detect import band_degrees, floor_shape, in_band_bins, pulse_band_spectra

    flags = np.asarray(pulses, bool)
    n = flags.size
    ratio = np.zeros(n)
    if not flags.any():
        return ratio
    clean = np.flatnonzero(~flags)
    runs = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    use_clean = clean.size >= neighbours
    for a, b in zip(edges[::2], edges[1::2]):
        before, after = _nearest_clean(clean, int(a), int(b), neighbours, wrap) if use_clean else ((), ())
        runs.append((int(a), int(b), np.asarray(before, np.int64), np.asarray(after, np.int64)))
    near = np.unique(np.concatenate([np.concatenate([r[2], r[3]]) for r in runs])) if use_clean else np.zeros(0, int)
    rows = np.union1d(np.flatnonzero(flags), near)
    st = pulse_band_spectra(echo, nbands, rows=rows)
    bins = in_band_bins(st.spectrum.shape[1], sensor)
    spectrum = st.spectrum[:, bins]  # unit mean over all bands per pulse
    power = 10 ** (st.power_db / 10)
    in_band = power * spectrum.mean(axis=1)  # in-band power per band, the pulse's power scale
    at = np.full(n, -1, np.int64)
    at[rows] = np.arange(rows.size)
    is_near = np.isin(rows, near)
    _, level = floor_shape(np.median(spectrum[is_near] if is_near.sum() >= neighbours else spectrum, axis=0))
    k = band_degrees(int(echo.shape[1]), nbands)
    quartile = np.quantile(spectrum / level[None, :], 0.25, axis=1) / (gammaincinv(k, 0.25) / k)
    clutter = power * quartile * level.mean()  # estimate (2), per band
    for a, b, before, after in runs:
        if not use_clean or not (before.size or after.size):
            continue
        sides = [np.median(in_band[at[s]]) for s in (before, after) if s.size]
        lo, hi = np.log(sides[0]), np.log(sides[-1])
        idx = np.arange(a, b)
        frac = (idx - a + 0.5) / max(b - a, 1)
        estimate = np.exp(lo + (hi - lo) * frac)  # estimate (1)
        own = clutter[at[idx]]  # estimate (2)
        m = min(b - a, max(8, (b - a) // 8))
        steps = [
            np.percentile(own[e], _CLUTTER_QUANTILE) - np.percentile(clutter[at[s]], _CLUTTER_QUANTILE)
            for s, e in ((before, slice(0, m)), (after, slice(-m, None)))
            if s.size
        ]
        rfi_share = max(max(steps), 0.0)  # the larger: an end can hold RFI-free pulses flagged with the run
        trend = percentile_filter(own, _CLUTTER_QUANTILE, size=min(_CLUTTER_PULSES, b - a), mode="nearest")
        clutter[at[idx]] = np.clip(trend - rfi_share, np.minimum(own, estimate), own)
    flagged = np.flatnonzero(flags)
    ratio[flagged] = np.maximum(in_band[at[flagged]] / np.maximum(clutter[at[flagged]], 1e-30) - 1, 0)
    return ratio


def _aperture_sums(ratio: np.ndarray, geometry: ApertureGeometry, wrap: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per line ``i``: (the sum of ``ratio`` over the pulses ``i + shift +- T / 2``, how many pulses that is)."""
    r = np.asarray(ratio, np.float64)
    n = r.size
    width = int(min(n, max(1, round(geometry.length_pulses))))
    start = np.round(np.arange(n) + geometry.shift_pulses - geometry.length_pulses / 2).astype(np.int64)
    if wrap:
        cum = np.concatenate([[0.0], np.cumsum(np.tile(r, 2))])
        a = start % n
        return cum[a + width] - cum[a], np.full(n, width)
    cum = np.concatenate([[0.0], np.cumsum(r)])
    a = np.clip(start, 0, n)
    b = np.clip(start + width, 0, n)
    return cum[b] - cum[a], b - a


def line_rfi_to_clutter(ratio: np.ndarray, geometry: ApertureGeometry, *, wrap: bool = True) -> np.ndarray:
    """Per image line, the focused RFI-to-clutter ratio that :func:`map_pulses_to_lines` thresholds at 1: the mean
    of the per-pulse ``ratio`` over the line's pulses (0 for a line with none inside the scene)."""
    total, count = _aperture_sums(ratio, geometry, wrap)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def map_pulses_to_lines(ratio: np.ndarray, geometry: ApertureGeometry, *, wrap: bool = True) -> np.ndarray:
    """Image lines where the focused RFI exceeds the clutter, from the per-pulse RFI-to-clutter ratio ``ratio``
    (:func:`pulse_rfi_to_clutter`): line ``i`` is built from the pulses ``i + shift +- T / 2`` (``shift``, ``T``:
    ``geometry.shift_pulses``, ``length_pulses``), and focusing adds RFI and distributed clutter alike incoherently
    (each line's intensity is the sum of its pulses' powers times the filter's gain), so the line's focused
    RFI-to-clutter ratio is the mean of ``ratio`` over those pulses (:func:`line_rfi_to_clutter`); a line counts
    where that is 1 or more. ``wrap``: circular focuser (indices wrap); otherwise the mean runs over the pulses
    inside the scene."""
    if not np.asarray(ratio).any():
        return np.zeros(np.asarray(ratio).size, bool)
    total, count = _aperture_sums(ratio, geometry, wrap)
    return (count > 0) & (total >= np.maximum(count, 1))
