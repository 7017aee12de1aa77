"""Echo-domain RFI detection, pulse by pulse: a cross-check of the image-domain detector and the refinement of
the image -> pulse mapping.

Two statistics per pulse, each compared with a reference set of pulses taken as RFI-free (by default all pulses,
robustly; in the chain, the pulses that no flagged image line maps to):

- **power**: ``10 log10`` of the mean ``|echo|^2`` of the pulse, minus its running median over ``power_window``
  pulses (a scene's brightness enters the beam over a synthetic aperture, smoothly; an RFI burst switches on from
  one pulse to the next). RFI at SIR ``S`` dB raises it by ``10 log10(1 + 10^(-S/10))`` dB.
- **spectral peak**: a Welch power spectrum per pulse (``n_segments`` segments of ``nfft`` samples spread over
  the pulse, Hann window), divided by the median spectrum of the reference pulses (which removes the chirp's
  spectral shape); the statistic is the largest bin of that ratio over its median, inside the radar band, in dB.
  Narrowband and partial-band RFI stand out; the echo of a speckled scene has a flat ratio however bright.

Each statistic becomes a score against a null fitted to the reference pulses (:mod:`sarpipe.rfi.robust`:
Gaussian for the power, Gumbel for the spectral peak, a maximum); a pulse is flagged when a score exceeds
``z(1 - pfa / 2)`` (``pfa``: false-alarm rate per pulse under the null, split over the two) *and* the statistic
is at least ``min_power_rise_db`` / ``min_peak_db`` above the reference median, so a very steady scene does not
turn its slow brightness changes into detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft
from scipy.ndimage import median_filter
from scipy.special import ndtri

from ..errors import InputError
from ..sensor import SensorParams
from .robust import gaussian_scores, gumbel_scores

__all__ = ["PulseStatistics", "pulse_statistics", "EchoDetection", "detect_echo"]


@numba.njit(nogil=True, cache=True, parallel=True)
def _segments(x, rows, starts, win, out, power):  # pragma: no cover - compiled
    """out[i, s, k] = x[rows[i], starts[s] + k] * win[k]; power[i] = mean |x|^2 over those samples."""
    n = win.size
    for i in numba.prange(rows.size):
        r = rows[i]
        acc = 0.0
        for s in range(starts.size):
            a = starts[s]
            for k in range(n):
                v = x[r, a + k]
                acc += v.real * v.real + v.imag * v.imag
                out[i, s, k] = v * win[k]
        power[i] = acc / (n * starts.size)


@dataclass
class PulseStatistics:
    """Per-pulse power [dB] (mean ``|x|^2`` over the Welch segments' samples) and Welch power spectrum
    (``(n_pulses, nfft)``, centred)."""

    power_db: np.ndarray
    spectrum: np.ndarray


def complex_rows(data: np.ndarray, rows: np.ndarray | None, what: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``data`` as a C-ordered complex64 2-D array (no copy when it already is one) and the int64 indices of
    ``rows`` (default all); an empty or non-2-D ``data`` is an :class:`InputError` naming ``what`` and ``where``."""
    x = np.asarray(data)
    if x.ndim != 2 or 0 in x.shape:
        raise InputError(f"{what} must be 2-D and non-empty, got shape {x.shape}", where=where)
    x = np.ascontiguousarray(x, dtype=np.complex64)
    idx = np.arange(x.shape[0], dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    return x, idx


def pulse_statistics(
    pulses: np.ndarray, nfft: int = 256, n_segments: int = 8, rows: np.ndarray | None = None
) -> PulseStatistics:
    """Power and Welch spectrum of the pulses ``rows`` (int indices, default all) of ``pulses`` (complex,
    (n_pulses, n_samples)); only the ``n_segments`` segments of ``nfft`` samples spread over each pulse are read.

    The spectrum is the mean of the segments' periodograms, each normalised to unit mean (a spectral *shape*).
    """
    x, idx = complex_rows(pulses, rows, "pulses", "variable 'echo'")
    nfft = int(min(nfft, x.shape[1]))
    n_seg = int(max(1, min(n_segments, x.shape[1] // nfft)))
    starts = np.linspace(0, x.shape[1] - nfft, n_seg).round().astype(np.int64)
    seg = np.empty((idx.size, n_seg, nfft), dtype=np.complex64)
    power = np.empty(idx.size, dtype=np.float64)
    _segments(x, idx, starts, np.hanning(nfft + 1)[:nfft].astype(np.float32), seg, power)
    spec = scipy.fft.fft(seg, axis=-1, overwrite_x=True)
    periodograms = np.abs(spec) ** 2
    # each segment counts alike: a bright stretch of the line would otherwise dominate the average and leave
    # few degrees of freedom (large random peaks) on lines of very uneven brightness
    periodograms /= np.maximum(periodograms.mean(axis=-1, keepdims=True), 1e-30)
    psd = np.fft.fftshift(np.mean(periodograms, axis=1), axes=-1)
    return PulseStatistics(10 * np.log10(np.maximum(power, 1e-30)), psd.astype(np.float64))


def in_band_bins(nfft: int, sensor: SensorParams | None, guard: float = 0.95) -> np.ndarray:
    """Bins of a centred ``nfft`` spectrum inside ``guard`` times the radar band (all bins without a ``sensor``).

    Only in-band RFI matters: range compression removes the rest, and the ratio of in-band echo to out-of-band
    noise changes with the scene's brightness, so out-of-band bins would read bright or dark lines as peaks.
    """
    if sensor is None:
        return np.ones(nfft, bool)
    fs = sensor.range_sampling_rate
    band = sensor.chirp_bandwidth
    f = (np.arange(nfft) - nfft // 2) * (fs / nfft)
    inside = np.abs(f) <= guard * min(band, fs) / 2
    return inside if inside.sum() >= 8 else np.ones(nfft, bool)


def spectral_peak_db(spectrum: np.ndarray, reference: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Per row: largest in-band bin of ``spectrum / median(spectrum[reference])`` over that ratio's median [dB]."""
    shape = np.median(spectrum[reference][:, bins], axis=0)
    ratio = spectrum[:, bins] / np.maximum(shape, 1e-30)[None, :]
    return 10 * np.log10(ratio.max(axis=1) / np.maximum(np.median(ratio, axis=1), 1e-30))


def _fill_gaps(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaNs (pulses not read)."""
    bad = np.isnan(x)
    if bad.any() and not bad.all():
        x = x.copy()
        x[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), x[~bad])
    return x


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
    power_window: int = 257,
    sensor: SensorParams | None = None,
    min_power_rise_db: float = 1.0,
    min_peak_db: float = 3.0,
    max_reference: int = 512,
) -> EchoDetection:
    """Flag RFI pulses of ``echo`` ((n_azimuth, n_range), complex).

    ``rows``: the pulses to test (default all); ``reference``: bool per pulse, the RFI-free pulses to take the null
    from (default: all tested rows, robustly - fine while RFI is on under half of them). Only ``rows`` and the
    reference pulses are read (at most ``max_reference`` of the latter, evenly spread), and of each only the
    Welch segments. Returns per-pulse arrays over all ``n_azimuth`` pulses (False / NaN where not tested).
    ``power_window``: pulses of the running median the power is compared with (the chain uses a synthetic
    aperture: bursts shorter than half of it do not raise the median). ``sensor``: restricts the
    spectral test to the radar band. ``min_power_rise_db`` / ``min_peak_db``: the smallest rises [dB] that may flag a pulse, whatever the spread
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
    ref_idx = np.flatnonzero(ref & ~test)
    if ref_idx.size > max_reference:
        ref = ref & test
        ref[ref_idx[np.linspace(0, ref_idx.size - 1, max_reference).round().astype(int)]] = True
    use = test | ref
    idx = np.flatnonzero(use)
    st = pulse_statistics(echo, nfft, n_segments, rows=idx)
    is_ref = ref[idx]

    # power relative to its running median over ``power_window`` pulses: a scene brightness change enters the
    # beam over a synthetic aperture (smooth), an RFI burst switches on from one pulse to the next (a step)
    full = np.full(n_az, np.nan)
    full[idx] = st.power_db
    full = _fill_gaps(full)
    trend = median_filter(full, size=max(3, int(power_window) | 1), mode="nearest")[idx]
    dp = st.power_db - trend

    peak = spectral_peak_db(st.spectrum, is_ref, in_band_bins(st.spectrum.shape[1], sensor))

    thr = float(ndtri(1.0 - pfa / 2))
    z_p = gaussian_scores(dp, is_ref, q=0.25, min_sigma=1e-3)
    z_s = gumbel_scores(peak, is_ref, q=0.25, min_beta=1e-3)
    by_power = (z_p > thr) & (dp - np.median(dp[is_ref]) > min_power_rise_db)
    by_peak = (z_s > thr) & (peak - np.median(peak[is_ref]) > min_peak_db)
    flagged = (by_power | by_peak) & test[idx]

    out = np.zeros(n_az, bool)
    out[idx] = flagged
    zp = np.full(n_az, np.nan, np.float32)
    zs = np.full(n_az, np.nan, np.float32)
    zp[idx] = z_p
    zs[idx] = z_s
    return EchoDetection(out, zp, zs, thr)
