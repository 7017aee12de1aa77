"""Echo-domain RFI detection, pulse by pulse: a cross-check of the image-domain detector and the refinement of
the image -> pulse mapping.

Two statistics per pulse, each compared with a reference set of pulses taken as RFI-free (by default all pulses,
robustly; in the chain, the pulses that no flagged image line maps to):

- **power**: ``10 log10`` of the mean ``|echo|^2`` of the pulse, minus the running median of the reference pulses
  (the scene's brightness changes slowly along azimuth). RFI at SIR ``S`` dB raises it by
  ``10 log10(1 + 10^(-S/10))`` dB.
- **spectral peak**: a Welch power spectrum per pulse (``n_segments`` segments of ``nfft`` samples spread over
  the pulse, Hann window), divided by the median spectrum of the reference pulses (which removes the chirp's
  spectral shape and the out-of-band noise floor); the statistic is the largest bin of that ratio over its median,
  in dB. Narrowband and partial-band RFI stand out; the echo of a stationary scene has a flat ratio.

Each statistic becomes a robust score ``(x - median_ref) / (1.4826 MAD_ref)``; a pulse is flagged when either
score exceeds ``z(1 - pfa / 2)`` (``pfa``: false-alarm rate per pulse under a Gaussian null, split over the two);
the scale never drops below a floor (``min_power_rise_db``, ``min_peak_db`` over that z), so a very steady
scene does not turn its slow brightness changes into detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft
from scipy.ndimage import median_filter
from scipy.special import ndtri

from ..errors import InputError

__all__ = ["PulseStatistics", "pulse_statistics", "EchoDetection", "detect_echo"]


@numba.njit(nogil=True, cache=True, parallel=True)
def _pulse_power(x, out):  # pragma: no cover - compiled
    for i in numba.prange(x.shape[0]):
        acc = 0.0
        for j in range(x.shape[1]):
            v = x[i, j]
            acc += v.real * v.real + v.imag * v.imag
        out[i] = acc / x.shape[1]


@numba.njit(nogil=True, cache=True, parallel=True)
def _segments(x, starts, win, out):  # pragma: no cover - compiled
    """out[i, s, k] = x[i, starts[s] + k] * win[k]."""
    n = win.size
    for i in numba.prange(x.shape[0]):
        for s in range(starts.size):
            a = starts[s]
            for k in range(n):
                out[i, s, k] = x[i, a + k] * win[k]


@dataclass
class PulseStatistics:
    """Per-pulse power [dB] (mean ``|x|^2``) and Welch power spectrum (``(n_pulses, nfft)``, centred)."""

    power_db: np.ndarray
    spectrum: np.ndarray


def pulse_statistics(pulses: np.ndarray, nfft: int = 256, n_segments: int = 8) -> PulseStatistics:
    """Power and Welch spectrum of each pulse of ``pulses`` (complex, (n_pulses, n_samples))."""
    x = np.ascontiguousarray(pulses, dtype=np.complex64)
    if x.ndim != 2 or 0 in x.shape:
        raise InputError(f"pulses must be 2-D and non-empty, got shape {x.shape}", where="variable 'echo'")
    power = np.empty(x.shape[0], dtype=np.float64)
    _pulse_power(x, power)
    nfft = int(min(nfft, x.shape[1]))
    n_seg = int(max(1, min(n_segments, x.shape[1] // nfft)))
    starts = np.linspace(0, x.shape[1] - nfft, n_seg).round().astype(np.int64)
    seg = np.empty((x.shape[0], n_seg, nfft), dtype=np.complex64)
    _segments(x, starts, np.hanning(nfft + 1)[:nfft].astype(np.float32), seg)
    spec = scipy.fft.fft(seg, axis=-1, overwrite_x=True)
    psd = np.fft.fftshift(np.mean(np.abs(spec) ** 2, axis=1), axes=-1)
    return PulseStatistics(10 * np.log10(np.maximum(power, 1e-30)), psd.astype(np.float64))


def _robust_score(x: np.ndarray, ref: np.ndarray, min_scale: float) -> np.ndarray:
    med = np.median(x[ref])
    mad = 1.4826 * np.median(np.abs(x[ref] - med))
    return (x - med) / max(mad, min_scale, 1e-6)


@dataclass
class EchoDetection:
    """``pulses``: bool per pulse; ``z_power`` / ``z_spectrum``: robust scores; ``threshold``: z to exceed."""

    pulses: np.ndarray
    z_power: np.ndarray
    z_spectrum: np.ndarray
    threshold: float


def detect_echo(
    echo: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    pfa: float = 1e-5,
    nfft: int = 256,
    n_segments: int = 8,
    power_window: int = 129,
    min_power_rise_db: float = 1.0,
    min_peak_db: float = 3.0,
) -> EchoDetection:
    """Flag RFI pulses of ``echo`` ((n_azimuth, n_range), complex).

    ``rows``: the pulses to test (default all); ``reference``: bool per pulse, the RFI-free pulses to take the null
    from (default: all tested rows, robustly - fine while RFI is on under half of them). Only ``rows`` and the
    reference pulses are read. Returns per-pulse arrays over all ``n_azimuth`` pulses (False / NaN where not tested).
    ``min_power_rise_db`` / ``min_peak_db``: the smallest rises [dB] that may flag a pulse, whatever the spread
    of the reference (the scene's own slow changes along azimuth are not RFI); 1 dB of power is RFI at an SIR of
    about +6 dB.
    """
    if not 0 < pfa < 0.5:
        raise InputError(f"pfa must lie in (0, 0.5), got {pfa}", where="detect.echo_pfa")
    n_az = echo.shape[0]
    test = np.ones(n_az, bool) if rows is None else np.asarray(rows, bool)
    ref = test.copy() if reference is None else (np.asarray(reference, bool) & ~test)
    if np.count_nonzero(ref) < 16:  # too few clean pulses to learn the null from: use the tested ones, robustly
        ref = test | ref
    use = test | ref
    idx = np.flatnonzero(use)
    st = pulse_statistics(np.asarray(echo[idx]), nfft, n_segments)
    is_ref = ref[idx]

    # power relative to a running median of the reference pulses (interpolated over the tested ones)
    ref_pos = idx[is_ref]
    ref_pow = st.power_db[is_ref]
    if ref_pos.size > 2 * power_window:
        ref_pow_smooth = median_filter(ref_pow, size=power_window, mode="nearest")
    else:
        ref_pow_smooth = np.full_like(ref_pow, np.median(ref_pow))
    trend = np.interp(idx, ref_pos, ref_pow_smooth)
    dp = st.power_db - trend

    shape = np.median(st.spectrum[is_ref], axis=0)
    ratio = st.spectrum / np.maximum(shape, 1e-30)[None, :]
    peak = 10 * np.log10(ratio.max(axis=1) / np.maximum(np.median(ratio, axis=1), 1e-30))

    thr = float(ndtri(1.0 - pfa / 2))
    z_p = _robust_score(dp, is_ref, min_power_rise_db / thr)
    z_s = _robust_score(peak, is_ref, min_peak_db / thr)
    flagged = ((z_p > thr) | (z_s > thr)) & test[idx]

    out = np.zeros(n_az, bool)
    out[idx] = flagged
    zp = np.full(n_az, np.nan, np.float32)
    zs = np.full(n_az, np.nan, np.float32)
    zp[idx] = z_p
    zs[idx] = z_s
    return EchoDetection(out, zp, zs, thr)
