"""Absolute Doppler centroid from the data: the fractional part by the correlation estimator, the PRF ambiguity by
multi-look cross-correlation (MLCC, Cumming & Wong 2005, section 12.4) or by the geometric centroid from orbit
and attitude; per range block, fitted by a low-order polynomial in slant range.

Physics (MLCC). The Doppler centroid scales with the radio frequency: a target seen at range frequency ``f``
(baseband, carrier ``f0``) has the centroid ``f_dc (f0 + f) / f0``. Two range looks (the lower and the upper half
of the chirp band, power-weighted centre frequencies ``f_lo``, ``f_hi``) therefore have lag-one azimuth
correlations ``C_lo``, ``C_hi`` whose phases differ by ``2 pi f_dc (f_hi - f_lo) / (f0 PRF)``, small and unambiguous
(``|f_dc| < f0 PRF / (2 (f_hi - f_lo))``, hundreds of PRFs). Hence
``f_abs = PRF f0 arg(C_hi conj(C_lo)) / (2 pi (f_hi - f_lo))`` (noisy: its spread is that of the phase difference
times ``f0 / (f_hi - f_lo)``, ~250 for a 40 MHz C-band chirp), and the ambiguity number
``N = round((f_abs - f_frac) / PRF)`` with ``f_frac`` the baseband correlation estimate
``PRF arg(C) / (2 pi)`` of the full band. The centroid used is ``f_frac + N PRF``: as accurate as the
correlation estimator, provided ``|f_abs - f_true| < PRF / 2``.

Range-varying centroid. The sums are kept per block of ``RANGE_BLOCK_BINS`` range bins; the per-block fractional
parts are unwrapped along range (the centroid changes by less than PRF/2 from one block to the next), shifted by
the whole number of PRFs that brings their energy-weighted mean to the scene's ambiguity-resolved value, and fitted
(energy-weighted least squares) by a polynomial in ``R - R_ref`` (``R_ref`` the mid-swath slant range) of degree
0 to 2, a degree added only when it removes most of the scatter left (:func:`_significant_fit`); blocks with
under 1 % of the strongest block's correlation magnitude are left out. The azimuth compression uses that polynomial (see :mod:`.rda`).

Blocks of ``ESTIMATE_PULSES`` pulses from pulse 0 (pairs across block borders are left out) make the in-memory and
streaming estimates the same numbers up to the order of summation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from ..errors import InputError
from ..sensor import SensorParams
from .range_compression import range_fft_length, range_filter, range_frequencies, replica_half_length
from .windows import parse_window

#: Range bins per estimation block (the resolution of the range-varying centroid).
RANGE_BLOCK_BINS = 256
#: Pulses per estimation task (fixed, so both paths sum the same pairs).
ESTIMATE_PULSES = 256
#: Ambiguity methods: ``auto`` (geometric when the dataset has orbit and attitude and ``sarpipe.orbit`` offers
#: ``geometric_doppler_centroid``, else MLCC), ``mlcc``, ``geometric``, ``baseband`` (no resolution: N = 0).
AMBIGUITY_METHODS = ("auto", "mlcc", "geometric", "baseband")


@dataclass(frozen=True)
class CentroidSums:
    """Per range block: lag-one sums of the full band and of the two looks (complex128), the power per block, and
    the power-weighted look centre frequencies' accumulators (sum P f and sum P over each look)."""

    full: np.ndarray
    low: np.ndarray
    high: np.ndarray
    power: np.ndarray
    look_moments: np.ndarray  # [sum P f (low), sum P (low), sum P f (high), sum P (high)]
    look_power: np.ndarray  # [sum |x_lo|^2, sum |x_hi|^2] over the samples the looks use (pairs of pulses)

    def __add__(self, other: CentroidSums) -> CentroidSums:
        return CentroidSums(
            self.full + other.full,
            self.low + other.low,
            self.high + other.high,
            self.power + other.power,
            self.look_moments + other.look_moments,
            self.look_power + other.look_power,
        )


def _block_sums(lag: np.ndarray, n_blocks: int) -> np.ndarray:
    """Sum a per-column array over consecutive RANGE_BLOCK_BINS columns (the last block may be shorter)."""
    edges = np.arange(0, lag.shape[0], RANGE_BLOCK_BINS)
    return np.add.reduceat(lag, edges)[:n_blocks]


def centroid_sums(pulses: np.ndarray, sensor: SensorParams) -> CentroidSums:
    """Estimation sums of raw pulses (complex, (n_pulses, n_range)): each pulse is range-compressed (linear,
    rect matched filter) as the full band and as its lower and upper half-band looks."""
    n_az, n_rg = pulses.shape
    n_blocks = -(-n_rg // RANGE_BLOCK_BINS)
    n_fft = range_fft_length(sensor, n_rg, "linear")
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf samples: the caller refuses non-finite sums
        return _centroid_sums(pulses, sensor, n_fft, n_blocks)


def _centroid_sums(pulses: np.ndarray, sensor: SensorParams, n_fft: int, n_blocks: int) -> CentroidSums:
    n_az, n_rg = pulses.shape
    spectrum = scipy.fft.fft(np.asarray(pulses, dtype=np.complex64), n=n_fft, axis=1, workers=1)
    spectrum *= range_filter(sensor, n_fft, parse_window("rect"))
    f = range_frequencies(sensor, n_fft)
    in_band = np.abs(f) <= sensor.chirp_bandwidth / 2
    low = in_band & (f < 0)
    high = in_band & (f >= 0)
    p = (np.abs(spectrum) ** 2).sum(axis=0)
    moments = np.array([(p * f)[low].sum(), p[low].sum(), (p * f)[high].sum(), p[high].sum()])

    # the looks use only samples holding whole chirps: an echo cut by a swath edge loses one end of its band,
    # differently from pulse to pulse as it migrates, which modulates one look's amplitude along azimuth and biases
    # MLCC (whose phase difference is ~250 times magnified). The full band uses every sample: leaving columns out
    # cuts the migration paths of the targets there, which biases the fractional estimate by tens of Hz.
    m = replica_half_length(sensor)
    whole = np.zeros(n_rg, dtype=bool)
    whole[m : max(m, n_rg - m)] = True

    look_power = np.zeros(2)

    def lag_one(mask: np.ndarray | None, look: int = -1) -> np.ndarray:
        spec = spectrum if mask is None else spectrum * mask
        x = scipy.fft.ifft(spec, axis=1, workers=1)[:, :n_rg]
        if n_az < 2:
            return np.zeros(n_blocks, dtype=np.complex128)
        per_column = (x[1:] * np.conj(x[:-1])).sum(axis=0, dtype=np.complex128)
        if look >= 0:
            p2 = np.abs(x[1:]) * np.abs(x[:-1])
            look_power[look] = float(p2[:, whole].sum())
        return _block_sums(per_column if mask is None else np.where(whole, per_column, 0), n_blocks)

    full_x = scipy.fft.ifft(spectrum, axis=1, workers=1)[:, :n_rg]
    power = _block_sums((np.abs(full_x) ** 2).sum(axis=0, dtype=np.float64), n_blocks)
    full, lo, hi = lag_one(None), lag_one(low, 0), lag_one(high, 1)
    return CentroidSums(full, lo, hi, power, moments, look_power)


def scene_centroid_sums(echo: Any, sensor: SensorParams) -> CentroidSums:
    """:func:`centroid_sums` over a whole (n_azimuth, n_range) array, in blocks of ESTIMATE_PULSES pulses."""
    total = None
    for a0 in range(0, echo.shape[0], ESTIMATE_PULSES):
        s = centroid_sums(np.asarray(echo[a0 : a0 + ESTIMATE_PULSES]), sensor)
        total = s if total is None else total + s
    return total


def block_ranges(sensor: SensorParams, n_range: int) -> np.ndarray:
    """Slant range [m] of each estimation block's centre."""
    starts = np.arange(0, n_range, RANGE_BLOCK_BINS)
    stops = np.minimum(starts + RANGE_BLOCK_BINS, n_range)
    return sensor.near_range + 0.5 * (starts + stops - 1) * sensor.range_pixel_spacing


#: Smallest lag-one correlation coefficient |C_look| / sum |x[i+1]| |x[i]| of each look for MLCC to be trusted:
#: white noise gives ~1/sqrt(samples) (0 in the limit), an azimuth-oversampled scene 0.3-0.9; below it (noise,
#: no azimuth signal) MLCC would pick a random ambiguity, and N = 0 is kept (method "correlation").
MLCC_MIN_COHERENCE = 0.1


def mlcc_centroid(sums: CentroidSums, sensor: SensorParams) -> float:
    """Absolute (unambiguous, coarse) centroid [Hz] from the two looks' lag-one phases; NaN when a look is empty
    or its lag-one coherence is below MLCC_MIN_COHERENCE."""
    m = sums.look_moments
    if m[1] <= 0 or m[3] <= 0:
        return math.nan
    for look, c in ((0, sums.low), (1, sums.high)):
        if not sums.look_power[look] > 0 or abs(c.sum()) < MLCC_MIN_COHERENCE * sums.look_power[look]:
            return math.nan
    delta_f = m[2] / m[3] - m[0] / m[1]
    cross = complex(sums.high.sum() * np.conj(sums.low.sum()))
    if cross == 0 or delta_f <= 0:
        return math.nan
    return sensor.prf * sensor.carrier_frequency * math.atan2(cross.imag, cross.real) / (2 * math.pi * delta_f)


def _fraction(lag_one: complex, prf: float) -> float:
    return prf * math.atan2(lag_one.imag, lag_one.real) / (2 * math.pi) if lag_one != 0 else 0.0


def geometric_centroid(ds: Any, sensor: SensorParams) -> float | None:
    """Mean geometric centroid [Hz] from orbit + attitude via ``sarpipe.orbit.geometric_doppler_centroid(ds)``
    (scalar or one value per range bin), when the dataset carries ``orbit_position`` and ``attitude_quaternion``
    and that function exists; None otherwise (the data-only path is then used)."""
    if ds is None or not {"orbit_position", "attitude_quaternion"} <= set(getattr(ds, "data_vars", ())):
        return None
    try:
        from ..orbit import geometric_doppler_centroid  # written by the NISAR reader's side; optional here
    except ImportError:
        return None
    value = np.asarray(geometric_doppler_centroid(ds), dtype=np.float64)
    value = value[np.isfinite(value)]
    return float(value.mean()) if value.size else None


@dataclass(frozen=True)
class DopplerEstimate:
    """An absolute centroid estimate. ``centroid`` [Hz] at ``reference_range`` [m]; ``polynomial`` Hz coefficients
    in powers of ``R - reference_range`` [m] (lowest first); ``record`` the JSON details for the history."""

    centroid: float
    reference_range: float
    polynomial: tuple[float, ...]
    method: str
    record: dict[str, Any]


def resolve_centroid(
    sums: CentroidSums, sensor: SensorParams, n_range: int, *, method: str = "auto", dataset: Any = None
) -> DopplerEstimate:
    """The ambiguity-resolved, range-varying centroid from the estimation sums (see the module docstring)."""
    if method not in AMBIGUITY_METHODS:
        raise InputError(f"must be one of {', '.join(AMBIGUITY_METHODS)}, got {method!r}", where="doppler_ambiguity")
    prf = sensor.prf
    fraction = _fraction(complex(sums.full.sum()), prf)
    coarse = mlcc_centroid(sums, sensor) if method in ("auto", "mlcc") else math.nan
    geometric = geometric_centroid(dataset, sensor) if method in ("auto", "geometric") else None
    if method == "geometric" and geometric is None:
        raise InputError(
            "needs orbit_position/attitude_quaternion variables and sarpipe.orbit.geometric_doppler_centroid",
            where="doppler_ambiguity 'geometric'",
        )
    if geometric is not None:
        used, reference = "correlation+geometric", geometric
    elif method != "baseband" and math.isfinite(coarse):
        used, reference = "correlation+mlcc", coarse
    else:
        used, reference = "correlation", fraction
    ambiguity = int(round((reference - fraction) / prf))
    centroid = fraction + ambiguity * prf

    # per range block: unwrap the fractional parts along range, shift them onto the resolved scene value, fit
    weights = np.abs(sums.full)
    ranges = block_ranges(sensor, n_range)
    r_ref = sensor.near_range + 0.5 * (n_range - 1) * sensor.range_pixel_spacing
    # blocks with under 1 % of the strongest block's correlation carry sidelobes and cut echoes only
    good = weights > 1e-2 * weights.max() if weights.max() > 0 else np.zeros(weights.shape, bool)
    polynomial: tuple[float, ...] = (centroid,)
    blocks: list[float] = []
    if good.sum() >= 2:
        phase = np.unwrap(np.angle(sums.full[good]))
        values = prf * phase / (2 * math.pi)
        w = weights[good]
        shift = round((centroid - float(np.sum(w * values) / np.sum(w))) / prf)
        values = values + shift * prf
        coeffs = _significant_fit(ranges[good] - r_ref, values, w)
        # the scene-wide sum (all whole columns, each target over its full migration path) is the better mean:
        # the block values are biased where a migration path crosses a block border; keep it, fit the shape only
        fitted = np.polynomial.polynomial.polyval(ranges[good] - r_ref, coeffs)
        coeffs[0] += centroid - float(np.sum(w * fitted) / np.sum(w))
        polynomial = tuple(float(c) for c in coeffs)
        blocks = [float(v) for v in values]
        centroid = float(coeffs[0])
    record = {
        "doppler_centroid_method": used,
        "doppler_ambiguity": ambiguity,
        "doppler_fraction": float(fraction),
        "doppler_mlcc": float(coarse) if math.isfinite(coarse) else None,
        "doppler_geometric": geometric,
        "doppler_reference_range": float(r_ref),
        "doppler_polynomial": list(polynomial),
        "doppler_block_range": [float(r) for r in ranges[good]] if blocks else [],
        "doppler_block_centroid": blocks,
    }
    return DopplerEstimate(float(centroid), float(r_ref), polynomial, used, record)


#: A polynomial term is kept only when it removes this fraction of the weighted scatter left by the lower degree.
SIGNIFICANT_REDUCTION = 0.75


def _significant_fit(x: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Energy-weighted polynomial fit of the block centroids, degree 0 to 2: a degree is added only while at
    least two blocks per coefficient remain and it removes SIGNIFICANT_REDUCTION of the weighted residual variance
    (block estimates of a point-target scene scatter by tens of Hz where targets' migration paths cross block
    borders; a spurious slope would move the processed band at the swath edges)."""

    def fit(degree: int) -> tuple[np.ndarray, float]:
        c = np.polynomial.polynomial.polyfit(x, values, degree, w=np.sqrt(weights))
        r = values - np.polynomial.polynomial.polyval(x, c)
        return c, float(np.sum(weights * r * r) / np.sum(weights))

    best, variance = fit(0)
    for degree in (1, 2):
        if x.size < 2 * (degree + 1):
            break
        c, v = fit(degree)
        if v > (1.0 - SIGNIFICANT_REDUCTION) * variance:
            break
        best, variance = c, v
    return best


def centroid_from_variable(ds: Any, sensor: SensorParams, doppler_centroid: float | None = None) -> dict[str, Any]:
    """Settings for a range-varying centroid given by the dataset's ``doppler_centroid_range`` variable (Hz per
    range bin, absolute): a polynomial of degree <= 2 fitted to it, as keyword arguments of
    :func:`.rda.resolve_settings` (empty when there is no such variable or ``doppler_centroid`` is given)."""
    if doppler_centroid is not None or ds is None or "doppler_centroid_range" not in getattr(ds, "data_vars", ()):
        return {}
    values = np.asarray(ds["doppler_centroid_range"].values, dtype=np.float64)
    n_range = ds.sizes["range"]
    if ds["doppler_centroid_range"].dims != ("range",) or not np.isfinite(values).all():
        raise InputError("must be finite values over dimension 'range' (Hz)", where="variable 'doppler_centroid_range'")
    r_ref = sensor.near_range + 0.5 * (n_range - 1) * sensor.range_pixel_spacing
    x = sensor.near_range + np.arange(n_range) * sensor.range_pixel_spacing - r_ref
    coeffs = np.polynomial.polynomial.polyfit(x, values, int(min(2, n_range - 1)))
    return {"doppler_polynomial": [float(c) for c in coeffs], "doppler_reference_range": float(r_ref)}
