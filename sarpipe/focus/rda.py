"""The range-Doppler algorithm on in-memory arrays, and its exact inverse.

Focus: range compression -> azimuth FFT -> RCMC + azimuth compression (per Doppler row) -> azimuth IFFT.
Defocus: azimuth FFT -> azimuth decompression + inverse RCMC -> azimuth IFFT -> range decompression.
Range is correlated linearly by default (zero-padded: nothing wraps from one swath edge to the other, and RCMC
reads zeros beyond the edges) or circularly when asked (see :mod:`.range_compression`). Azimuth is circular (FFT
length = scene size): the first and last half synthetic aperture mix partial apertures of both scene ends.
A range-varying Doppler centroid (polynomial in slant range) is applied per range segment of nearly constant
centroid (:func:`doppler_segments`).
complex64 throughout; FFTs by scipy.fft with ``workers`` threads, kernels by numba (parallel over Doppler rows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.fft

from ..errors import InputError
from ..model import last_record
from ..sensor import SensorParams
from ..stripmap import azimuth_fm_rate
from . import kernels
from .azimuth_compression import AzimuthRows, azimuth_rows, default_azimuth_bandwidth
from .migration import doppler_frequencies
from .range_compression import (
    RANGE_CORRELATIONS,
    apply_range_filter,
    default_workers,
    is_circular,
    range_fft_length,
    range_filter,
    range_inverse_filter,
    replica_half_length,
    secondary_range_compression_rate,
)
from .rcmc import halo_bins, kernel_design, sinc_polynomials
from .windows import Window, parse_window


@dataclass(frozen=True)
class FocusSettings:
    """What a focusing run used; stored in the SLC history so :func:`defocus` can undo exactly that."""

    range_window: Window
    azimuth_window: Window
    azimuth_bandwidth: float | None  # processed Doppler band [Hz], centred on the centroid
    doppler_centroid: float | None  # [Hz]; None: estimate from the data
    doppler_source: str = "estimated"  # "argument" | "attribute" | "estimated" | "history"
    range_correlation: str = "linear"  # "linear" (zero-padded) | "circular" (asked for)
    range_edges: str = "mark"  # "mark" (valid_range_samples attr) | "trim" (output only the valid samples)
    doppler_polynomial: tuple[float, ...] | None = None  # Hz, powers of R - doppler_reference_range [m]
    doppler_reference_range: float | None = None  # [m]
    doppler_ambiguity: str = "auto"  # see doppler_ambiguity.AMBIGUITY_METHODS
    doppler_estimate: dict[str, Any] | None = None  # the estimator's record (when estimated)
    src: bool = True  # secondary range compression at the centroid and mid-swath range
    src_rate: float | None = None  # Ksrc [Hz/s] once known (None: none applied)
    src_doppler: bool = False  # SRC per Doppler bin instead (exact coupling phase, .doppler_src); src_rate None

    @property
    def replica_only(self) -> bool:
        """The range filter is the plain matched filter (rect window, no SRC): see
        :func:`~.range_compression.range_fft_length`."""
        return self.range_window.is_rect and self.src_rate is None

    @property
    def doppler_method(self) -> str:
        """``doppler_centroid_method``: argument | attribute | history, or the estimator's method."""
        if self.doppler_estimate is not None:
            return str(self.doppler_estimate["doppler_centroid_method"])
        return self.doppler_source

    def centroid_at(self, slant_range: np.ndarray | float) -> np.ndarray | float:
        """Doppler centroid [Hz] at ``slant_range`` [m] (the polynomial, else the constant)."""
        if self.doppler_polynomial is None or len(self.doppler_polynomial) < 2:
            return np.zeros_like(np.asarray(slant_range, dtype=float)) + float(self.doppler_centroid)
        x = np.asarray(slant_range, dtype=float) - float(self.doppler_reference_range)
        return np.polynomial.polynomial.polyval(x, np.asarray(self.doppler_polynomial))

    def record(self, sensor: SensorParams, n_azimuth: int, n_range: int) -> dict[str, Any]:
        """History parameters (plain JSON values)."""
        m = replica_half_length(sensor)
        circular = is_circular(sensor, n_range, self.range_correlation)
        # azimuth samples a target needs at far range: processed band / Doppler rate
        far = sensor.near_range + (n_range - 1) * sensor.range_pixel_spacing
        doppler_rate = azimuth_fm_rate(far, float(self.doppler_centroid), sensor.wavelength, sensor.velocity)
        aperture = min(n_azimuth, int(math.ceil(self.azimuth_bandwidth / doppler_rate * sensor.prf)))
        taps, beta, _ = kernel_design(_band_fraction(sensor))
        plan = azimuth_plan(sensor, n_azimuth, n_range, self, inverse=False, taps=False)
        first, stop = valid_range_samples(sensor, n_range, plan)
        extra: dict[str, Any] = {}
        if self.doppler_polynomial is not None and len(self.doppler_polynomial) > 1:
            extra["doppler_polynomial"] = [float(c) for c in self.doppler_polynomial]
            extra["doppler_reference_range"] = float(self.doppler_reference_range)
        if self.doppler_estimate is not None:
            extra.update({k: v for k, v in self.doppler_estimate.items() if k not in extra})
        return {
            "range_window": self.range_window.spec,
            "azimuth_window": self.azimuth_window.spec,
            "doppler_centroid": float(self.doppler_centroid),
            "doppler_centroid_source": self.doppler_source,
            "doppler_centroid_method": self.doppler_method,
            "azimuth_bandwidth": float(self.azimuth_bandwidth),
            "range_bandwidth": float(sensor.chirp_bandwidth),
            "secondary_range_compression_rate": None if self.src_rate is None else float(self.src_rate),
            "secondary_range_compression": "doppler" if self.src_doppler else "centroid" if self.src_rate else None,
            "secondary_range_compression_taps": int(plan.fir.shape[3]),
            "range_correlation": "circular" if circular else "linear",
            "rcmc_taps": taps,
            "rcmc_kaiser_beta": beta,
            "range_edges": self.range_edges,
            "valid_range_margin": int(min(m, n_range)),
            "valid_range_samples": [int(first), int(stop)],
            "rcm_margin": int(min(n_range, plan.halo - plan.fir_half)),
            "valid_azimuth_margin": int(aperture // 2),
            **extra,
        }


def valid_range_samples(sensor: SensorParams, n_range: int, plan: AzimuthPlan) -> tuple[int, int]:
    """``[first, stop)``: the range samples whose targets' echoes were recorded whole over the aperture: at least
    ``M`` (half a replica) inside the near edge, and ``M`` plus the largest range migration inside the far edge
    (echoes migrate to farther range away from zero Doppler)."""
    m = replica_half_length(sensor)
    migration = max(0, plan.halo - plan.fir_half - plan.poly.shape[0] // 2 - 1)
    first = min(m, n_range)
    return first, max(first, n_range - m - migration)


def _band_fraction(sensor: SensorParams) -> float:
    return min(1.0, sensor.chirp_bandwidth / sensor.range_sampling_rate)


def resolve_settings(
    sensor: SensorParams,
    *,
    range_window: Any = "rect",
    azimuth_window: Any = "rect",
    doppler_centroid: float | None = None,
    azimuth_bandwidth: float | None = None,
    range_correlation: str = "linear",
    range_edges: str = "mark",
    doppler_ambiguity: str = "auto",
    doppler_polynomial: Any = None,
    doppler_reference_range: float | None = None,
    secondary_range_compression: bool = True,
) -> FocusSettings:
    """Parse windows and pick the Doppler centroid: argument, else the sensor's ``doppler_centroid``, else None
    (estimate later, then :func:`complete_settings`). ``azimuth_bandwidth`` None: see
    :func:`~.azimuth_compression.default_azimuth_bandwidth` (resolved once the centroid is known).
    ``range_correlation``: linear | circular; ``range_edges``: mark | trim; ``doppler_ambiguity``: how an
    estimated centroid's PRF ambiguity is resolved (:data:`.doppler_ambiguity.AMBIGUITY_METHODS`)."""
    from .doppler_ambiguity import AMBIGUITY_METHODS

    rw = parse_window(range_window, where="range window")
    aw = parse_window(azimuth_window, where="azimuth window")
    for name, value, allowed in (
        ("range_correlation", range_correlation, RANGE_CORRELATIONS),
        ("range_edges", range_edges, ("mark", "trim")),
        ("doppler_ambiguity", doppler_ambiguity, AMBIGUITY_METHODS),
    ):
        if value not in allowed:
            raise InputError(f"must be one of {', '.join(allowed)}, got {value!r}", where=name)
    modes = dict(
        range_correlation=range_correlation,
        range_edges=range_edges,
        doppler_ambiguity=doppler_ambiguity,
        src=bool(secondary_range_compression),
    )
    if azimuth_bandwidth is not None and not (
        isinstance(azimuth_bandwidth, (int, float)) and math.isfinite(azimuth_bandwidth) and azimuth_bandwidth > 0
    ):
        raise InputError(f"must be a positive number of Hz, got {azimuth_bandwidth!r}", where="azimuth_bandwidth")
    if doppler_centroid is not None:
        if not (isinstance(doppler_centroid, (int, float)) and math.isfinite(doppler_centroid)):
            raise InputError(f"must be a finite number of Hz, got {doppler_centroid!r}", where="doppler_centroid")
        settings = FocusSettings(rw, aw, azimuth_bandwidth, float(doppler_centroid), "argument", **modes)
    elif sensor.doppler_centroid is not None:
        settings = FocusSettings(rw, aw, azimuth_bandwidth, sensor.doppler_centroid, "attribute", **modes)
    else:
        settings = FocusSettings(rw, aw, azimuth_bandwidth, None, "estimated", **modes)
    if doppler_polynomial is not None:  # a range-varying centroid (variable doppler_centroid_range, or history)
        coeffs = tuple(float(c) for c in doppler_polynomial)
        source = "argument" if doppler_centroid is not None else "attribute"
        settings = replace(
            settings,
            doppler_polynomial=coeffs,
            doppler_reference_range=float(doppler_reference_range),
            doppler_centroid=coeffs[0],
            doppler_source=source,
        )
    return complete_settings(settings, sensor)


def complete_settings(settings: FocusSettings, sensor: SensorParams, doppler_centroid: Any = None) -> FocusSettings:
    """Fill in an estimated centroid (Hz, or a :class:`~.doppler_ambiguity.DopplerEstimate`) and, once the
    centroid is known, the default processed bandwidth."""
    if settings.doppler_centroid is None and doppler_centroid is not None:
        if isinstance(doppler_centroid, (int, float)):
            settings = replace(settings, doppler_centroid=float(doppler_centroid))
        else:
            settings = replace(
                settings,
                doppler_centroid=doppler_centroid.centroid,
                doppler_polynomial=doppler_centroid.polynomial if len(doppler_centroid.polynomial) > 1 else None,
                doppler_reference_range=doppler_centroid.reference_range,
                doppler_estimate=doppler_centroid.record,
            )
    if settings.doppler_centroid is not None and settings.azimuth_bandwidth is None:
        settings = replace(
            settings, azimuth_bandwidth=float(default_azimuth_bandwidth(sensor, settings.doppler_centroid))
        )
    elif settings.azimuth_bandwidth is not None:
        settings = replace(settings, azimuth_bandwidth=float(min(settings.azimuth_bandwidth, sensor.prf)))
    return settings


def with_secondary_range_compression(settings: FocusSettings, sensor: SensorParams, n_range: int) -> FocusSettings:
    """Settle the SRC when ``src`` is on: Ksrc at the (known) centroid and the mid-swath range
    (:func:`~.range_compression.secondary_range_compression_rate`, None when negligible), or, when that single
    rate leaves more than :data:`~.doppler_src.MAX_SINGLE_RATE_ERROR` of the exact coupling phase within the chirp
    and processed Doppler bands (large squints, L band), SRC per Doppler bin (``src_doppler``); kept as it is when
    already set."""
    if settings.doppler_centroid is None or not settings.src or settings.src_rate is not None or settings.src_doppler:
        return settings
    mid = sensor.near_range + 0.5 * max(0, n_range - 1) * sensor.range_pixel_spacing
    rate = secondary_range_compression_rate(sensor, mid, float(settings.doppler_centroid))
    if rate is not None:
        from .doppler_src import MAX_SINGLE_RATE_ERROR, single_rate_error

        f_eta = settings.doppler_centroid + np.array([-0.5, -0.25, 0.0, 0.25, 0.5]) * settings.azimuth_bandwidth
        if single_rate_error(sensor, f_eta, mid, rate) > MAX_SINGLE_RATE_ERROR:
            return replace(settings, src_doppler=True)
    return replace(settings, src_rate=rate)


def settings_from_history(attrs: Mapping[str, Any], sensor: SensorParams, **overrides: Any) -> FocusSettings:
    """The settings of the last ``focus`` record (defaults when there is none: rect windows, linear range), with
    any non-None ``overrides`` (range_window, azimuth_window, doppler_centroid, azimuth_bandwidth,
    range_correlation) on top. A record's range-varying centroid polynomial is kept unless the centroid is
    overridden."""
    record = dict((last_record(attrs, "focus") or {}).get("params") or {})
    chosen = {
        "range_window": record.get("range_window", "rect"),
        "azimuth_window": record.get("azimuth_window", "rect"),
        "doppler_centroid": record.get("doppler_centroid"),
        "azimuth_bandwidth": record.get("azimuth_bandwidth"),
        "range_correlation": record.get("range_correlation", "linear"),
    }
    chosen.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("doppler_centroid") is None and record.get("doppler_polynomial") is not None:
        chosen["doppler_polynomial"] = record["doppler_polynomial"]
        chosen["doppler_reference_range"] = record["doppler_reference_range"]
    src = overrides.get("secondary_range_compression")
    chosen.pop("secondary_range_compression", None)
    settings = resolve_settings(sensor, **chosen)
    if src is None and "secondary_range_compression_rate" in record:  # exactly what that focus applied
        settings = replace(
            settings,
            src=False,
            src_rate=record["secondary_range_compression_rate"],
            src_doppler=record.get("secondary_range_compression") == "doppler",
        )
    else:  # as focus would choose it (or as asked)
        settings = replace(settings, src=True if src is None else bool(src))
    if record.get("doppler_centroid") is not None and overrides.get("doppler_centroid") is None:
        settings = replace(settings, doppler_source="history")
    return settings


#: Largest centroid change [fraction of the PRF] within one range segment of a range-varying centroid.
SEGMENT_CENTROID_STEP = 1.0 / 256
#: Fewest range bins per segment.
SEGMENT_MIN_BINS = 32


def doppler_segments(sensor: SensorParams, n_range: int, settings: FocusSettings) -> list[tuple[int, int, float]]:
    """``(start, stop, f_dc)`` range segments covering ``[0, n_range)``, each focused with the constant centroid
    ``f_dc`` [Hz] (the polynomial at its middle bin). One segment for a constant centroid; otherwise equal
    segments, aligned on bin 0, short enough that the polynomial changes by at most SEGMENT_CENTROID_STEP PRF
    within one (a fixed grid: the in-memory and the streaming paths use the same segments)."""
    f_dc = float(settings.doppler_centroid)
    if settings.doppler_polynomial is None or len(settings.doppler_polynomial) < 2 or n_range < 2:
        return [(0, n_range, f_dc)]
    ranges = sensor.near_range + np.arange(n_range) * sensor.range_pixel_spacing
    slope = np.abs(np.diff(settings.centroid_at(ranges))).max()  # Hz per bin
    width = n_range if slope == 0 else int(SEGMENT_CENTROID_STEP * sensor.prf / slope)
    width = max(SEGMENT_MIN_BINS, min(n_range, width))
    out = []
    for a in range(0, n_range, width):
        b = min(n_range, a + width)
        out.append(
            (a, b, float(settings.centroid_at(sensor.near_range + 0.5 * (a + b - 1) * sensor.range_pixel_spacing)))
        )
    return out


@dataclass(frozen=True)
class AzimuthPlan:
    segments: tuple[tuple[int, int, AzimuthRows], ...]  # (start, stop, rows) over range bins
    halo: int  # range bins read beyond each side of an output block: RCMC's, plus fir_half
    poly: np.ndarray
    periodic: bool  # circular range (RCMC wraps) or linear (zeros beyond the swath)
    fir: np.ndarray  # per-Doppler SRC taps (n_segments, n_doppler, n_pieces, 2K + 1) complex64 (last axis 0: none)
    fir_half: int = 0  # K (0: no per-Doppler SRC)
    fir_start: int = 0  # range bin where the first tap piece starts (pieces over the migrated range axis)
    fir_width: int = 1  # range bins per tap piece

    @property
    def rows(self) -> AzimuthRows:
        return self.segments[0][2]


#: Largest phase [rad] the per-Doppler SRC leaves at a range bin by its piece's reference range (the coupling
#: phase scales with R: what remains at R is (R - R_ref) / R_ref of it, over the chirp band and processed band).
SRC_RANGE_ERROR = np.pi / 32


def azimuth_plan(
    sensor: SensorParams, n_azimuth: int, n_range: int, settings: FocusSettings, *, inverse: bool, taps: bool = True
) -> AzimuthPlan:
    """Per range segment (:func:`doppler_segments`): the kernels' Doppler rows and the halo; with per-Doppler SRC
    its taps, per piece of the migrated range axis (bins where the range-compressed echoes lie, before RCMC): for
    Doppler bin k and piece j, the coupling phase at ``R_j D_k``, the closest range of the echoes at the piece's
    middle range ``R_j``; pieces short enough to leave at most SRC_RANGE_ERROR at their ends. Focus applies the
    taps before RCMC and defocus after inverse RCMC, both on that axis, so defocus inverts focus. ``taps`` False:
    the plan's sizes only (zero taps; for the history record, not for the kernels)."""
    pieces = doppler_segments(sensor, n_range, settings)
    segments = tuple(
        (
            a,
            b,
            azimuth_rows(sensor, n_azimuth, f_dc, settings.azimuth_window, settings.azimuth_bandwidth, inverse=inverse),
        )
        for a, b, f_dc in pieces
    )
    n_taps, beta, _ = kernel_design(_band_fraction(sensor))
    far_bins = sensor.near_range / sensor.range_pixel_spacing + n_range
    halo = max(halo_bins(rows.scale_minus_one, far_bins, n_taps) for _, _, rows in segments)
    periodic = is_circular(sensor, n_range, settings.range_correlation)
    poly = sinc_polynomials(n_taps, beta)
    if not settings.src_doppler:
        return AzimuthPlan(segments, halo, poly, periodic, np.zeros((len(segments), n_azimuth, 1, 0), np.complex64))
    from .doppler_src import doppler_src_taps, fir_half_length, single_rate_error

    dr = sensor.range_pixel_spacing
    far = sensor.near_range + (n_range - 1) * dr
    doppler = [doppler_frequencies(sensor, n_azimuth, f_dc) for _, _, f_dc in pieces]
    active = [rows.gain != 0 for _, _, rows in segments]
    half = max(fir_half_length(sensor, f[m], far) for f, m in zip(doppler, active))
    # pieces over the bins a block can read: [-(halo + K), n_range + halo + K)
    start, stop = -(halo + half), n_range + halo + half
    mid = sensor.near_range + 0.5 * (n_range - 1) * dr
    band = settings.doppler_centroid + np.array([-0.5, -0.25, 0.0, 0.25, 0.5]) * settings.azimuth_bandwidth
    phase = single_rate_error(sensor, band, mid, None)  # the whole coupling phase at mid-swath
    width = stop - start if phase == 0 else int(2 * SRC_RANGE_ERROR * mid / (phase * dr))
    width = max(SEGMENT_MIN_BINS, min(stop - start, width))
    centres = sensor.near_range + (start + (np.arange(-(-(stop - start) // width)) + 0.5) * width) * dr
    if not taps:
        fir = np.zeros((len(segments), 1, centres.size, 2 * half + 1), np.complex64)
        return AzimuthPlan(segments, halo + half, poly, periodic, fir, half, start, width)
    fir = np.stack(
        [
            np.stack([doppler_src_taps(sensor, f, m, r, half, inverse=inverse) for r in centres], axis=1)
            for f, m in zip(doppler, active)
        ]
    )
    return AzimuthPlan(segments, halo + half, poly, periodic, fir, half, start, width)


def azimuth_block(
    data: np.ndarray,
    plan: AzimuthPlan,
    sensor: SensorParams,
    *,
    n_total: int,
    out_start: int,
    n_out: int,
    in_start: int,
    inverse: bool,
    workers: int | None = None,
    parallel: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Azimuth FFT, RCMC + azimuth (de)compression, azimuth IFFT of range-compressed ``data`` (n_azimuth, n_in).

    ``data`` is overwritten. Output columns are range bins out_start..out_start+n_out-1 (see the kernels for
    ``in_start``). With ``out=data`` (n_out == n_in == n_total) the whole scene is done in place (one centroid
    segment; with several, a separate output is used).
    """
    workers = workers or default_workers()
    spec = scipy.fft.fft(data, axis=0, workers=workers, overwrite_x=True)
    parts = [(i, a, b, rows) for i, (a, b, rows) in enumerate(plan.segments) if a < out_start + n_out and b > out_start]
    if out is data and len(parts) == 1:
        out = spec
    elif out is None or out is data:
        out = np.empty((data.shape[0], n_out), dtype=np.complex64)
    kernel = kernels.rcmc_azimuth if parallel else kernels.rcmc_azimuth_serial
    n_in = spec.shape[1]
    for i, a, b, r in parts:
        a, b = max(a, out_start), min(b, out_start + n_out)
        whole = a == out_start and b == out_start + n_out
        target = out if whole else np.empty((out.shape[0], b - a), dtype=np.complex64)
        kernel(
            spec,
            (in_start + a - out_start) % n_in,
            target,
            a,
            n_total,
            sensor.near_range,
            sensor.range_pixel_spacing,
            r.scale_minus_one,
            r.phase_rate,
            r.gain,
            plan.halo,
            plan.poly,
            inverse,
            plan.periodic,
            plan.fir[i],
            plan.fir_start,
            plan.fir_width,
        )
        if not whole:
            out[:, a - out_start : b - out_start] = target
    return scipy.fft.ifft(out, axis=0, workers=workers, overwrite_x=True)


def focus_array(
    echo: np.ndarray,
    sensor: SensorParams,
    settings: FocusSettings,
    *,
    workers: int | None = None,
    dataset: Any = None,
) -> tuple[np.ndarray, FocusSettings]:
    """Focus raw pulses (complex64 (n_azimuth, n_range)); returns the SLC (complex64) and the settings used
    (with the Doppler centroid filled in when it was estimated: :mod:`.doppler_ambiguity`; ``dataset``, the raw
    dataset, lends its orbit and attitude to the geometric ambiguity resolution)."""
    n_az, n_rg = echo.shape
    if settings.doppler_centroid is None:
        from .doppler_ambiguity import resolve_centroid, scene_centroid_sums

        sums = scene_centroid_sums(echo, sensor)
        settings = complete_settings(
            settings, sensor, resolve_centroid(sums, sensor, n_rg, method=settings.doppler_ambiguity, dataset=dataset)
        )
    settings = with_secondary_range_compression(settings, sensor, n_rg)
    n_fft = range_fft_length(sensor, n_rg, settings.range_correlation, replica_only=settings.replica_only)
    data, _ = apply_range_filter(
        echo, range_filter(sensor, n_fft, settings.range_window, settings.src_rate), workers=workers, lag_one=False
    )
    plan = azimuth_plan(sensor, n_az, n_rg, settings, inverse=False)
    slc = azimuth_block(
        data,
        plan,
        sensor,
        n_total=n_rg,
        out_start=0,
        n_out=n_rg,
        in_start=(-plan.halo) % n_rg,
        inverse=False,
        workers=workers,
        out=data,
    )
    return slc, settings


def defocus_array(
    slc: np.ndarray, sensor: SensorParams, settings: FocusSettings, *, workers: int | None = None
) -> np.ndarray:
    """Undo :func:`focus_array` with the given settings (Doppler centroid required); complex64 in and out."""
    n_az, n_rg = slc.shape
    plan = azimuth_plan(sensor, n_az, n_rg, settings, inverse=True)
    data = np.array(slc, dtype=np.complex64, order="C", copy=True)
    data = azimuth_block(
        data,
        plan,
        sensor,
        n_total=n_rg,
        out_start=0,
        n_out=n_rg,
        in_start=(-plan.halo) % n_rg,
        inverse=True,
        workers=workers,
        out=data,
    )
    n_fft = range_fft_length(sensor, n_rg, settings.range_correlation)
    echo, _ = apply_range_filter(
        data,
        range_inverse_filter(sensor, n_fft, settings.range_window, src_rate=settings.src_rate),
        out=data,
        workers=workers,
        lag_one=False,
    )
    return echo
