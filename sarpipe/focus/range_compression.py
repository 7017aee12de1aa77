"""Range compression: FFT fast correlation of each pulse with the sampled chirp replica.

Replica: ``h[n] = exp(j pi Kr (n/fs)^2)`` for ``|n/fs| <= Tp/2`` (rect(t/Tp), centred on t = 0), so zero delay
of the output falls on the echo delay: a target at slant range R0 compresses onto the sample whose
``slant_range`` is R0. Matched filter: ``conj(FFT(h)) * W_r(f / B)`` with ``B = |Kr| Tp``; ``rect`` is the plain
matched filter (no weighting, out-of-band kept, so one chirp compresses to its exact autocorrelation), tapered
windows weight the chirp band and zero everything outside it.

Swath edges (``correlation``): ``linear`` (the default, right for real echoes) zero-pads each pulse to a fast FFT
length (``>= n_range + 2M``, ``M = floor(Tp fs / 2)``; ``>= n_range + M`` for the plain matched filter, whose
impulse response is the replica: see :func:`range_fft_length`) and crops the output to the swath, so nothing
recorded at one swath edge reaches the other; a target whose chirp is cut by an edge compresses at its own position from the recorded part
(lower gain, wider response), and only samples ``[M, n_range - M)`` hold complete chirps. ``circular`` (asked
for, for scenes made circularly, e.g. by ``defocus``) keeps the FFT at the swath length when the replica fits
(``2M + 1 <= n_range``): the replica samples that hang over an edge correlate with the opposite edge, so the outer
``M`` samples mix partial chirps of both edges, but ``defocus`` is an exact inverse. A chirp longer than the
swath is always correlated linearly.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.fft

from ..sensor import SensorParams
from . import kernels
from .windows import Window, parse_window

#: Rows per block of the blocked range pass: ~1 MiB of complex64 per block keeps the FFT, the filter multiply
#: and the lag-one correlation in cache (half a core's L2 here; 2 MiB measured ~10 % slower).
_BLOCK_BYTES = 1 << 20


def default_workers() -> int:
    return os.cpu_count() or 1


def replica_half_length(sensor: SensorParams) -> int:
    """M with replica samples n = -M..M (|n/fs| <= Tp/2)."""
    return int(np.floor(sensor.pulse_duration * sensor.range_sampling_rate / 2.0 * (1 + 1e-12)))


def chirp_replica(sensor: SensorParams) -> np.ndarray:
    """Sampled replica h[n], n = -M..M (complex128)."""
    m = replica_half_length(sensor)
    t = np.arange(-m, m + 1) / sensor.range_sampling_rate
    return np.exp(1j * np.pi * sensor.chirp_rate * t * t)


RANGE_CORRELATIONS = ("linear", "circular")


def range_fft_length(
    sensor: SensorParams, n_range: int, correlation: str = "linear", *, replica_only: bool = False
) -> int:
    """FFT length of the range correlation: ``circular`` with a replica that fits in the swath: ``n_range``;
    otherwise linear (no wrap from one swath edge to the other).

    ``replica_only``: the filter is the plain matched filter (rect window, no SRC), whose impulse response is the
    2M + 1 replica samples: output n in [0, n_range) reads the padded input at n - M .. n + M modulo the length,
    so ``>= n_range + M`` puts every index beyond either edge into the zeros, and the cropped linear correlation
    is exact (:func:`smooth_length`). A tapered window or an SRC phase gives an impulse response longer than the
    replica (the window cuts the band sharply; SRC adds its own chirp): those keep the full correlation's length
    ``next_fast_len(n_range + 2M)``, on whose frequency grid the window and the SRC are defined."""
    m = replica_half_length(sensor)
    if correlation == "circular" and 2 * m + 1 <= n_range:
        return n_range
    if replica_only:
        return smooth_length(n_range + m)
    return scipy.fft.next_fast_len(n_range + 2 * m, real=False)


def smooth_length(n: int) -> int:
    """Smallest ``2^a 3^b 5^c >= n`` (``scipy.fft.next_fast_len`` also admits factors 7 and 11, whose pocketfft
    passes are slower: 10206 = 2 3^6 7 costs more than 10240 = 2^11 5)."""
    best = 1 << max(0, int(n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def is_circular(sensor: SensorParams, n_range: int, correlation: str) -> bool:
    """True when the range correlation of ``n_range`` samples really is circular (FFT length = swath)."""
    return correlation == "circular" and 2 * replica_half_length(sensor) + 1 <= n_range


def range_frequencies(sensor: SensorParams, n_fft: int) -> np.ndarray:
    return np.fft.fftfreq(n_fft, d=1.0 / sensor.range_sampling_rate)


def replica_spectrum(sensor: SensorParams, n_fft: int) -> np.ndarray:
    """FFT of the replica placed circularly (sample n at index n mod n_fft), complex128."""
    h = chirp_replica(sensor)
    m = (h.size - 1) // 2
    placed = np.zeros(n_fft, dtype=np.complex128)
    placed[np.arange(-m, m + 1) % n_fft] = h
    return np.fft.fft(placed)


def range_window_weights(sensor: SensorParams, n_fft: int, window: Window) -> np.ndarray:
    if window.is_rect:
        return np.ones(n_fft)
    return window(range_frequencies(sensor, n_fft) / sensor.chirp_bandwidth)


def secondary_range_compression_rate(sensor: SensorParams, slant_range: float, doppler_centroid: float) -> float | None:
    """``Ksrc = 2 V^2 f0^3 D^3 / (c R0 f_dc^2)`` [Hz/s] (Cumming & Wong eq. 6.22, at the centroid ``f_dc`` and
    range ``R0``): the range FM rate of the range-azimuth coupling of a squinted geometry. None when it is
    negligible (``|Kr / Ksrc| < 1e-6``: a quadratic phase below ~1e-3 rad at the band edge for TBP < 1000)."""
    if doppler_centroid == 0:
        return None
    x = sensor.wavelength * doppler_centroid / (2.0 * sensor.velocity)
    d = np.sqrt(max(1.0 - x * x, 1e-12))
    c = sensor.wavelength * sensor.carrier_frequency
    ksrc = 2.0 * sensor.velocity**2 * sensor.carrier_frequency**3 * d**3 / (c * slant_range * doppler_centroid**2)
    return float(ksrc) if abs(sensor.chirp_rate / ksrc) >= 1e-6 else None


def _src_phase(sensor: SensorParams, n_fft: int, src_rate: float | None) -> np.ndarray | float:
    """``exp(-j pi f^2 / Ksrc)``: with it the matched filter is that of the effective rate Kr / (1 - Kr / Ksrc)."""
    if src_rate is None:
        return 1.0
    f = range_frequencies(sensor, n_fft)
    return np.exp(-1j * np.pi * f * f / src_rate)


def range_filter(sensor: SensorParams, n_fft: int, window: Window, src_rate: float | None = None) -> np.ndarray:
    """Matched filter spectrum ``conj(FFT(replica)) * W_r`` (complex64, length n_fft), times the secondary range
    compression ``exp(-j pi f^2 / Ksrc)`` when ``src_rate`` (Ksrc, Hz/s) is given."""
    h = np.conj(replica_spectrum(sensor, n_fft)) * range_window_weights(sensor, n_fft, window)
    return (h * _src_phase(sensor, n_fft, src_rate)).astype(np.complex64)


def range_inverse_filter(
    sensor: SensorParams, n_fft: int, window: Window, floor: float = 1e-4, src_rate: float | None = None
) -> np.ndarray:
    """Inverse of :func:`range_filter` where it exceeds ``floor`` times its peak magnitude, zero elsewhere."""
    h = np.conj(replica_spectrum(sensor, n_fft)) * range_window_weights(sensor, n_fft, window)
    h = h * _src_phase(sensor, n_fft, src_rate)
    inv = np.zeros(n_fft, dtype=np.complex128)
    usable = np.abs(h) > floor * np.abs(h).max()
    inv[usable] = 1.0 / h[usable]
    return inv.astype(np.complex64)


def apply_range_filter(
    pulses: np.ndarray,
    spectrum: np.ndarray,
    out: np.ndarray | None = None,
    *,
    workers: int | None = None,
    previous_row: np.ndarray | None = None,
    lag_one: bool = True,
) -> tuple[np.ndarray, complex | None]:
    """Filter each row of ``pulses`` (complex64, (n_az, n_range)) by ``spectrum`` (length n_fft >= n_range).

    Returns ``(out, lag_one)`` where ``lag_one`` is ``sum x[i+1] conj(x[i])`` of the output (the correlation
    Doppler estimator's accumulator, also the streaming path's NaN/Inf scan), including the pair
    (``previous_row``, row 0) when given; None when ``lag_one`` is False (one pass less). ``out`` may be
    ``pulses`` itself. With ``workers`` > 1 the rows are split into that many contiguous parts filtered by
    parallel threads (FFTs and numba kernels release the GIL), each in cache-sized row blocks.
    """
    n_az, n_rg = pulses.shape
    workers = workers or default_workers()
    if out is None:
        out = np.empty((n_az, n_rg), dtype=np.complex64)
    parts = min(workers, max(1, n_az // 64))
    if parts == 1:
        return out, _filter_rows(pulses, spectrum, out, previous_row, lag_one)
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, n_az, parts + 1).astype(int)
    with ThreadPoolExecutor(parts) as pool:
        futures = [
            pool.submit(_filter_rows, pulses[a:b], spectrum, out[a:b], previous_row if a == 0 else None, lag_one)
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
        sums = [f.result() for f in futures]
    if not lag_one:
        return out, None
    total = sum(sums)
    for b in bounds[1:-1]:  # pairs across the parts
        total += complex(np.vdot(out[b - 1], out[b]))
    return out, total


def _filter_rows(pulses: np.ndarray, spectrum: np.ndarray, out: np.ndarray, previous_row, lag_one: bool) -> complex:
    n_az, n_rg = pulses.shape
    n_fft = spectrum.shape[0]
    rows = max(1, _BLOCK_BYTES // (8 * n_fft))
    accumulator = 0j
    prev = previous_row if previous_row is not None else np.empty(0, dtype=np.complex64)
    # one zero-padded work block, transformed in place (no allocation per block; pulses and out may alias)
    work = np.empty((min(rows, n_az), n_fft), dtype=np.complex64)
    for a0 in range(0, n_az, rows):
        a1 = min(n_az, a0 + rows)
        block = work[: a1 - a0]
        block[:, :n_rg] = pulses[a0:a1]
        block[:, n_rg:] = 0
        spec = scipy.fft.fft(block, axis=1, workers=1, overwrite_x=True)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf input: reported by the caller's scan
            spec *= spectrum
        spec = scipy.fft.ifft(spec, axis=1, workers=1, overwrite_x=True)
        out[a0:a1] = spec[:, :n_rg]
        if lag_one:
            accumulator += kernels.lag_one_correlation(out[a0:a1], prev)
            prev = out[a1 - 1]
    return accumulator


def range_compress(
    echo: np.ndarray,
    sensor: SensorParams,
    window: str | Window = "rect",
    *,
    correlation: str = "linear",
    workers: int | None = None,
) -> np.ndarray:
    """Range-compress raw pulses (complex64 ndarray (n_azimuth, n_range), rows = pulses) with the matched filter
    of ``sensor``. Returns complex64, same shape; zero delay on the echo delay.
    ``window``: ``rect`` | ``hamming:ALPHA`` | ``kaiser:BETA``; ``correlation``: ``linear`` | ``circular``."""
    win = parse_window(window, where="range window")
    echo = np.ascontiguousarray(echo, dtype=np.complex64)
    if echo.ndim == 1:
        return range_compress(echo[None, :], sensor, win, correlation=correlation, workers=workers)[0]
    n_fft = range_fft_length(sensor, echo.shape[1], correlation, replica_only=win.is_rect)
    out, _ = apply_range_filter(echo, range_filter(sensor, n_fft, win), workers=workers, lag_one=False)
    return out
