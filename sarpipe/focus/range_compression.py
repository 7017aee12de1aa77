"""Range compression: FFT fast correlation of each pulse with the sampled chirp replica.

Replica: ``h[n] = exp(j pi Kr (n/fs)^2)`` for ``|n/fs| <= Tp/2`` (rect(t/Tp), centred on t = 0), so zero delay
of the output falls on the echo delay: a target at slant range R0 compresses onto the sample whose
``slant_range`` is R0. Matched filter: ``conj(FFT(h)) * W_r(f / B)`` with ``B = |Kr| Tp``; ``rect`` is the plain
matched filter (no weighting, out-of-band kept, so one chirp compresses to its exact autocorrelation), tapered
windows weight the chirp band and zero everything outside it.

Swath edges: when the replica fits in the swath (``2M + 1 <= n_range``) the correlation is circular over the
``n_range`` samples. A target whose chirp is cut by a swath edge compresses at its own position with the part
of the chirp that was recorded; the replica samples that hang over the edge correlate with the opposite edge,
so the outer ``M`` samples at each side (``M = floor(Tp fs / 2)``) mix partial chirps of both edges. Only
the inner ``n_range - 2M`` samples are fully compressed (reported in the focus history). Circular processing
keeps the FFT at the swath length and makes ``defocus`` an exact inverse. When the chirp is longer than the
swath the pulses are zero-padded instead (linear correlation, output cropped); ``defocus`` is then approximate
near the edges.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.fft

from ..sensor import SensorParams
from . import kernels
from .windows import Window, parse_window

#: Rows per block of the blocked range pass: ~2 MiB of complex64 per block keeps the FFT, the filter multiply
#: and the lag-one correlation in cache.
_BLOCK_BYTES = 2 << 20


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


def range_fft_length(sensor: SensorParams, n_range: int) -> int:
    """n_range (circular) when the replica fits in the swath, else a fast length for linear correlation."""
    m = replica_half_length(sensor)
    if 2 * m + 1 <= n_range:
        return n_range
    return scipy.fft.next_fast_len(n_range + 2 * m, real=False)


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


def range_filter(sensor: SensorParams, n_fft: int, window: Window) -> np.ndarray:
    """Matched filter spectrum ``conj(FFT(replica)) * W_r`` (complex64, length n_fft)."""
    return (np.conj(replica_spectrum(sensor, n_fft)) * range_window_weights(sensor, n_fft, window)).astype(np.complex64)


def range_inverse_filter(sensor: SensorParams, n_fft: int, window: Window, floor: float = 1e-4) -> np.ndarray:
    """Inverse of :func:`range_filter` where it exceeds ``floor`` times its peak magnitude, zero elsewhere."""
    h = np.conj(replica_spectrum(sensor, n_fft)) * range_window_weights(sensor, n_fft, window)
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
) -> tuple[np.ndarray, complex]:
    """Filter each row of ``pulses`` (complex64, (n_az, n_range)) by ``spectrum`` (length n_fft >= n_range).

    Returns ``(out, lag_one)`` where ``lag_one`` is ``sum x[i+1] conj(x[i])`` of the output (the correlation
    Doppler estimator's accumulator), including the pair (``previous_row``, row 0) when given. ``out`` may be
    ``pulses`` itself. With ``workers`` > 1 the rows are split into that many contiguous parts filtered by
    parallel threads (FFTs and numba kernels release the GIL), each in cache-sized row blocks.
    """
    n_az, n_rg = pulses.shape
    workers = workers or default_workers()
    if out is None:
        out = np.empty((n_az, n_rg), dtype=np.complex64)
    parts = min(workers, max(1, n_az // 64))
    if parts == 1:
        return out, _filter_rows(pulses, spectrum, out, previous_row)
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, n_az, parts + 1).astype(int)
    with ThreadPoolExecutor(parts) as pool:
        futures = [
            pool.submit(_filter_rows, pulses[a:b], spectrum, out[a:b], previous_row if a == 0 else None)
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
        total = sum(f.result() for f in futures)
    for b in bounds[1:-1]:  # pairs across the parts
        total += complex(np.vdot(out[b - 1], out[b]))
    return out, total


def _filter_rows(pulses: np.ndarray, spectrum: np.ndarray, out: np.ndarray, previous_row) -> complex:
    n_az, n_rg = pulses.shape
    n_fft = spectrum.shape[0]
    rows = max(1, _BLOCK_BYTES // (8 * n_fft))
    accumulator = 0j
    prev = previous_row if previous_row is not None else np.empty(0, dtype=np.complex64)
    for a0 in range(0, n_az, rows):
        a1 = min(n_az, a0 + rows)
        spec = scipy.fft.fft(pulses[a0:a1], n=n_fft, axis=1, workers=1)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf input: reported by the caller's scan
            spec *= spectrum
        block = scipy.fft.ifft(spec, axis=1, workers=1, overwrite_x=True)
        out[a0:a1] = block[:, :n_rg]
        accumulator += kernels.lag_one_correlation(out[a0:a1], prev)
        prev = out[a1 - 1]
    return accumulator


def range_compress(
    echo: np.ndarray, sensor: SensorParams, window: str | Window = "rect", *, workers: int | None = None
) -> np.ndarray:
    """Range-compress raw pulses (complex64 ndarray (n_azimuth, n_range), rows = pulses) with the matched filter
    of ``sensor``. Returns complex64, same shape; zero delay on the echo delay.
    ``window``: ``rect`` | ``hamming:ALPHA`` | ``kaiser:BETA``."""
    win = parse_window(window, where="range window")
    echo = np.ascontiguousarray(echo, dtype=np.complex64)
    if echo.ndim == 1:
        return range_compress(echo[None, :], sensor, win, workers=workers)[0]
    n_fft = range_fft_length(sensor, echo.shape[1])
    out, _ = apply_range_filter(echo, range_filter(sensor, n_fft, win), workers=workers)
    return out
