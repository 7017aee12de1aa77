"""Echo-domain RFI detection, pulse by pulse: a cross-check of the image-domain detector and the refinement of
the image -> pulse mapping.

Two statistics per pulse, each compared with a reference set of pulses taken as RFI-free (by default all pulses,
robustly; in the chain, the pulses that no flagged image line maps to):

- **power**: ``10 log10`` of the mean ``|echo|^2`` of the pulse, minus its morphological opening over
  ``power_window`` pulses (a scene's brightness enters the beam over a synthetic aperture, a ramp the opening
  keeps; an RFI burst narrower than the window is a step up and down that it removes); it counts only with some
  spectral support (``power_support_pfa``). RFI at SIR ``S`` dB raises it by ``10 log10(1 + 10^(-S/10))`` dB.
- **spectral peak**: a Welch power spectrum per pulse (``n_segments`` segments of ``nfft`` samples spread over
  the pulse, Hann window), divided by the median spectrum of the reference pulses (which removes the chirp's
  spectral shape); the statistic is the largest bin of that ratio over its median, inside the radar band, in dB.
  Narrowband and partial-band RFI stand out; the echo of a speckled scene has a flat ratio however bright.
- **self-referenced peak** (needs no RFI-free pulse): the pulse's spectrum against the system's shape
  (:func:`system_shape`) and its own bins (:func:`self_referenced_scores`); and where bands of the median
  spectrum stand ``min_peak_db`` over the band floor's level (:func:`floor_shape`: RFI on most pulses, which the
  system shape takes in), the pulse's mean over those bands against its own level in the unraised ones
  (:func:`own_peak_scores`), kept where it flags nearly every pulse (the case it is for). The two are one score
  (Bonferroni); without persistent bands only the first counts.
- **runs of one band** (:func:`persistent_band_pulses`, needs no RFI-free pulse either): runs of at least
  ``run_pulses`` consecutive pulses in which one band stands out of the running median's row: RFI too faint for
  any single pulse (at the noise's power over a dark scene) holds its bands for its whole burst, the clutter's own
  peaks drift.

The first two become scores against a null fitted to the reference pulses (:mod:`sarpipe.rfi.robust`:
Gaussian for the power, Gumbel for the spectral peak, a maximum); a pulse is flagged when a score exceeds
``z(1 - pfa / 3)`` (``pfa``: false-alarm rate per pulse under the null, split over the three) *and* the statistic
is at least ``min_power_rise_db`` / ``min_peak_db`` above the reference median, so a very steady scene does not
turn its slow brightness changes into detections.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import scipy.fft
from scipy.ndimage import grey_opening, median_filter
from scipy.special import gammaincinv, ndtri

from ..errors import InputError
from ..sensor import SensorParams
from .detection_kernels import (
    _band_power,
    _welch_shape,
    long_band_runs,
    quiet_level_fit,
    row_medians,
    slow_time_median,
)
from .robust import gaussian_scores, gumbel_scores

__all__ = [
    "PulseStatistics",
    "pulse_statistics",
    "EchoDetection",
    "detect_echo",
    "system_shape",
    "floor_shape",
    "self_referenced_scores",
    "own_peak_scores",
    "persistent_band_pulses",
    "pulse_band_spectra",
    "band_degrees",
    "row_blocks",
    "indexed_rows",
]


@numba.njit(nogil=True, cache=True)
def _segments(x, rows, starts, win, out, power):  # pragma: no cover - compiled
    """out[i, s, k] = x[rows[i], starts[s] + k] * win[k]; power[i] = mean |x|^2 over those samples. Serial: run on
    :func:`in_batches`' threads."""
    n = win.size
    for i in range(rows.size):
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


def complex_rows(data, rows: np.ndarray | None, what: str, where: str) -> tuple[Any, np.ndarray]:
    """``data`` (a numpy array as C-ordered complex64, no copy when it already is one; a lazy array - Dask, Zarr,
    xarray - as it is, read later by :func:`row_blocks`) and the int64 indices of ``rows`` (default all); an empty
    or non-2-D ``data`` is an :class:`InputError` naming ``what`` and ``where``."""
    x = data if hasattr(data, "shape") and not isinstance(data, np.ndarray) else np.asarray(data)
    if len(x.shape) != 2 or 0 in x.shape:
        raise InputError(f"{what} must be 2-D and non-empty, got shape {tuple(x.shape)}", where=where)
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x, dtype=np.complex64)
    idx = np.arange(x.shape[0], dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    return x, idx


#: bytes of one slab of rows read from a lazy array (the memory of a streamed detection, per block)
SLAB_BYTES = 32 * 2**20

#: bytes of the pulses (or Welch segments) transformed together by one thread (they stay in its core's cache)
TRANSFORM_BYTES = 2**21


def row_blocks(data, idx: np.ndarray, max_rows: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    """``(position, block)`` for consecutive batches of the rows ``idx`` (sorted) of ``data``: ``block`` holds the
    rows ``idx[position : position + len(block)]`` as C-ordered complex64. A numpy array is indexed directly; a lazy
    one is read a slab of consecutive rows at a time, each slab at most :data:`SLAB_BYTES` (streamed detection:
    memory bounded by the slab, not the scene). The rows are the same numbers either way."""
    n_rg = int(data.shape[1])
    if isinstance(data, np.ndarray):
        for a in range(0, idx.size, max_rows):
            sel = idx[a : a + max_rows]
            lo = int(sel[0])
            # consecutive rows (every pulse, the common case): a view, not a copy of the scene batch by batch
            block = data[lo : lo + sel.size] if int(sel[-1]) - lo + 1 == sel.size else data[sel]
            yield a, np.ascontiguousarray(block, dtype=np.complex64)
        return
    span = max(1, SLAB_BYTES // (8 * n_rg))
    a = 0
    while a < idx.size:
        lo = int(idx[a])
        b = min(int(np.searchsorted(idx, lo + span, side="left")), a + max_rows)
        b = max(b, a + 1)
        hi = int(idx[b - 1]) + 1
        slab = np.asarray(data[lo:hi])
        yield a, np.ascontiguousarray(slab[idx[a:b] - lo], dtype=np.complex64)
        a = b


def indexed_rows(data, idx: np.ndarray, max_rows: int = 256) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(position, source, local)`` for consecutive batches of the rows ``idx`` (sorted) of ``data``, for kernels
    that take row indices: ``source[local]`` are the rows ``idx[position : position + len(local)]``. A numpy array is
    its own source (the kernel reads only the samples it needs: no copy of whole rows); a lazy one is read by
    :func:`row_blocks`."""
    if isinstance(data, np.ndarray):
        for a in range(0, idx.size, max_rows):
            yield a, data, idx[a : a + max_rows]
        return
    for a, block in row_blocks(data, idx, max_rows):
        yield a, block, np.arange(block.shape[0], dtype=np.int64)


def in_batches(
    data,
    idx: np.ndarray,
    batch: int,
    work: Callable[[np.ndarray, np.ndarray, int, np.ndarray], None],
    buffer: tuple[tuple[int, ...], Any],
) -> None:
    """``work(source, local, position, buf)`` for batches of at most ``batch`` of the rows ``idx`` (sorted) of
    ``data`` (as :func:`indexed_rows`: ``source[local]`` are the rows ``idx[position : position + len(local)]``), on a
    pool of ``os.cpu_count()`` threads that take the batches as they free up (the kernels and FFTs release the GIL;
    on a loaded machine a stalled thread holds up only its own batch). ``buf``: the thread's own scratch array of
    ``buffer = (shape, dtype)`` (leading axis ``batch``), made once per thread and reused. Each batch writes its own
    rows of the outputs, so the threads do not change the numbers. An array in memory is handed out in one go, a
    lazy one a slab at a time (memory bounded by the slab)."""
    workers = max(1, min(os.cpu_count() or 1, -(-idx.size // batch)))
    span = max(1, idx.size) if isinstance(data, np.ndarray) else 256
    scratch = threading.local()

    def run(source: np.ndarray, sel: np.ndarray, at: int) -> None:
        buf = getattr(scratch, "buf", None)
        if buf is None:
            buf = scratch.buf = np.empty(*buffer)
        work(source, sel, at, buf)

    with ThreadPoolExecutor(workers) as pool:
        for a, source, local in indexed_rows(data, idx, span):
            jobs = [pool.submit(run, source, local[b : b + batch], a + b) for b in range(0, local.size, batch)]
            for job in jobs:
                job.result()


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
    win = np.hanning(nfft + 1)[:nfft].astype(np.float32)
    power = np.empty(idx.size, dtype=np.float64)
    psd = np.empty((idx.size, nfft), dtype=np.float64)
    batch = max(1, TRANSFORM_BYTES // (8 * n_seg * nfft))  # the segments of a batch stay in cache

    def transform(source: np.ndarray, sel: np.ndarray, at: int, buf: np.ndarray) -> None:
        seg = buf[: sel.size]
        _segments(source, sel, starts, win, seg, power[at : at + sel.size])
        # each segment counts alike: a bright stretch of the line would otherwise dominate the average and leave
        # few degrees of freedom (large random peaks) on lines of very uneven brightness
        _welch_shape(scipy.fft.fft(seg, axis=-1, overwrite_x=True, workers=1), psd[at : at + sel.size])

    in_batches(x, idx, batch, transform, ((batch, n_seg, nfft), np.complex64))
    return PulseStatistics(10 * np.log10(np.maximum(power, 1e-30)), psd)


def pulse_band_spectra(pulses: np.ndarray, nbands: int = 256, rows: np.ndarray | None = None) -> PulseStatistics:
    """Power and band-averaged periodogram of the whole pulses ``rows`` (default all): the ``|FFT|^2`` of each
    pulse (centred) averaged over ``nbands`` equal bands of adjacent bins and normalised to unit mean.

    For raw echoes this, not :func:`pulse_statistics`, is the right spectrum: a chirped echo maps range to
    frequency inside any short segment (a scatterer at delay ``tau`` sounds at ``K (t - tau)``), so the segments'
    spectra carry the clutter's texture along range as texture along frequency (many dB in strong textured
    clutter), whereas the whole pulse's spectrum is ``|H(f)|^2 |R(f)|^2``, the chirp's flat band times the white
    spectrum of the reflectivity. Each band holds about ``n_samples / nbands`` independent bins
    (:func:`band_degrees`).
    """
    x, idx = complex_rows(pulses, rows, "pulses", "variable 'echo'")
    n = x.shape[1]
    nb = int(min(nbands, n))
    edges = np.linspace(0, n, nb + 1).round().astype(np.int64)
    power = np.empty(idx.size)
    out = np.empty((idx.size, nb))
    # a few pulses at a time, gathered into a reused buffer and transformed in place, so that the band sums (and the
    # power, by Parseval) read the spectrum from cache, straight from the unshifted bins
    batch = max(1, TRANSFORM_BYTES // (8 * n))

    def transform(source: np.ndarray, sel: np.ndarray, at: int, buf: np.ndarray) -> None:
        spectrum = np.take(source, sel, axis=0, out=buf[: sel.size], mode="clip")  # indices are valid
        spectrum = scipy.fft.fft(spectrum, axis=1, workers=1, overwrite_x=True)
        _band_power(spectrum, edges, out[at : at + sel.size], power[at : at + sel.size])

    in_batches(x, idx, batch, transform, ((batch, n), np.complex64))
    out /= np.maximum(out.mean(axis=1, keepdims=True), 1e-30)
    return PulseStatistics(10 * np.log10(np.maximum(power, 1e-30)), out)


def band_degrees(n_samples: int, nbands: int = 256) -> int:
    """Independent periodogram bins per band of :func:`pulse_band_spectra` (its bands' Gamma order)."""
    return max(1, int(n_samples) // int(min(nbands, n_samples)))


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


def system_shape(
    spectrum: np.ndarray, bins: np.ndarray, quantile: float = 0.5, tolerance_db: float = 1.5
) -> np.ndarray:
    """The system's spectral shape over the in-band ``bins``: the ``quantile`` over rows per bin, with its narrow
    peaks cut down to the frequency-local median (over a quarter of the band, at least 31 bins) plus ``tolerance_db``.

    Echo and image of a speckled scene have a smooth range spectrum (the chirp's, flat with a little ripple, times
    the range window); a peak narrower than a quarter of the band and ``tolerance_db`` above it is RFI present on most
    rows, which a quantile over rows alone would take into the shape (and so hide on every row).
    """
    shape = (
        row_medians(spectrum[:, bins], axis=0) if quantile == 0.5 else np.quantile(spectrum[:, bins], quantile, axis=0)
    )
    width = max(31, int(np.count_nonzero(bins)) // 4) | 1
    local = median_filter(shape, size=width, mode="nearest")
    return np.minimum(shape, local * 10 ** (tolerance_db / 10))


#: how far above the clutter's level a bin of the median spectrum is still quiet (:func:`floor_shape`) [dB]
PERSISTENT_QUIET_DB = 1.5
#: the share of the tested pulses the band-floor score must flag to count (:func:`detect_echo`): it is the test
#: for RFI on every pulse
EVERY_PULSE_SHARE = 0.9


def floor_shape(
    spectrum: np.ndarray, quiet_db: float = PERSISTENT_QUIET_DB, low: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """The band floor that RFI present on every row cannot raise, and the clutter's smooth level under it:
    ``(floor, level)`` per bin of ``spectrum`` (``m``: the median over rows of the in-band bins, linear).

    ``m`` holds the system's shape and any RFI present on (nearly) every row. The bins of ``m`` within ``quiet_db``
    of its ``low`` quantile over the band are *quiet* (clutter: a persistent emitter raises its bands, never lowers
    the others); ``level`` is a least-squares quadratic (in log; a line at the band's edges) through the quiet
    bins' ``m`` within a quarter band of each bin, clipped to their range (the clutter's slow shape across the
    band), and the floor is ``m`` cut down to ``level`` plus ``quiet_db``. Narrow and wide persistent bands alike
    leave it, as long as the quiet bins are at least a ``low`` fraction of the band.
    """
    m = np.asarray(spectrum, dtype=np.float64)
    log_m = np.log(np.maximum(m, 1e-30))
    quiet = m <= np.quantile(m, low) * 10 ** (quiet_db / 10)
    # a quadratic through the quiet bins on both sides of each bin (the chirp's spectrum curves towards the band's
    # edges, which a running median would flatten), a line where they lie on one side only (a band edge, or the
    # flank of a wide persistent band); never outside their range (no wild extrapolation)
    log_level = quiet_level_fit(log_m, quiet, max(4, m.size // 4))
    level = np.exp(log_level)
    return np.minimum(m, level * 10 ** (quiet_db / 10)), level


def _row_log_spread(spectrum: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``L = log(spectrum / shape)`` (rows x M) with each row's median and robust spread (1.4826 MAD) of ``L``."""
    log_ratio = np.log(np.maximum(spectrum, 1e-30) / np.maximum(shape, 1e-30)[None, :])
    med = row_medians(log_ratio)
    return log_ratio, med, np.maximum(1.4826 * row_medians(np.abs(log_ratio - med[:, None])), 1e-6)


def self_referenced_scores(spectrum: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Per row of ``spectrum`` (in-band bins only, rows x M) the spectral-peak score against ``shape``, as a standard
    normal quantile: with ``L = log(spectrum / shape)``, ``u = (max L - median L) / (1.4826 MAD L)`` (the row's own
    bins set its level and spread, so no null is fitted across rows) and, for ``M`` independent roughly Gaussian
    bins, ``P(max > u) = 1 - Phi(u)^M``. Correlated neighbouring bins and the left skew of a log-Gamma make it
    conservative."""
    from scipy.special import log_ndtr

    log_ratio, med, sigma = _row_log_spread(spectrum, shape)
    u = (log_ratio.max(axis=1) - med) / sigma
    p_value = -np.expm1(spectrum.shape[1] * log_ndtr(u))  # 1 - Phi(u)^M, accurate in the far tail
    with np.errstate(divide="ignore"):
        return np.where(p_value <= 1e-300, 37.5, -ndtri(np.clip(p_value, 1e-300, 1.0)))


def own_peak_scores(
    spectrum: np.ndarray, floor: np.ndarray, peak_bins: np.ndarray, other_bins: np.ndarray, dof: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``spectrum`` (in-band bins, rows x M): the mean of ``spectrum / floor`` over ``peak_bins`` (the
    persistent bands) over its mean over ``other_bins`` (the row's own level elsewhere), and its score as a standard
    normal quantile: ``(score, ratio_db)``. A band of ``dof`` exponential bins is ``Gamma(dof) / dof`` times its
    shape, so for a row that follows ``floor`` the ratio is ``F(2 dof P, 2 dof Q)`` distributed (``P``, ``Q``: the
    bins in each set). A persistent band stands out pulse by pulse against the band floor although the median
    spectrum over pulses holds it."""
    from scipy.special import fdtrc

    ratio = np.maximum(spectrum, 1e-30) / np.maximum(floor, 1e-30)[None, :]
    a = ratio[:, peak_bins].mean(axis=1)
    b = np.maximum(ratio[:, other_bins].mean(axis=1), 1e-30)
    p, q = 2 * dof * int(np.count_nonzero(peak_bins)), 2 * dof * int(np.count_nonzero(other_bins))
    p_value = fdtrc(p, q, a / b)
    with np.errstate(divide="ignore"):
        z = np.where(p_value <= 1e-300, 37.5, -ndtri(np.clip(p_value, 1e-300, 1.0)))
    return z, 10 * np.log10(a / b)


def persistent_band_pulses(
    smoothed: np.ndarray,
    shape: np.ndarray,
    pulse_index: np.ndarray,
    *,
    pfa: float = 1e-3,
    min_run: int = 45,
    tolerance: int = 2,
) -> np.ndarray:
    """Bool per row of ``smoothed`` (the running median over pulses of in-band spectra, rows x M, pulses
    ``pulse_index`` in order): the rows of runs of at least ``min_run`` consecutive pulses in which one band,
    give or take ``tolerance`` bands, stands out of the row.

    A band stands out where ``u = (L - median L) / (1.4826 MAD L)`` (``L = log(smoothed / shape)``, the row's
    own level and spread, as :func:`self_referenced_scores`) exceeds the level at which the row's largest band
    would have false-alarm rate ``pfa``: ``Phi(u) = (1 - pfa)^(1 / M)``. RFI too faint to clear ``z(1 - 1e-5)``
    on one pulse holds the same bands over its whole burst; the clutter's own peaks drift from band to band (on the
    detection matrix's clean scenes no such run was longer than 12 pulses, against bursts of hundreds). The running
    median keeps a single pulse's peak for up to half its window, so ``min_run`` should be a few windows. Runs end
    where ``pulse_index`` skips pulses.
    """
    x = np.asarray(smoothed, np.float64)
    out = np.zeros(x.shape[0], bool)
    if x.shape[0] < min_run or x.shape[1] < 2:
        return out
    log_ratio, med, sigma = _row_log_spread(x, np.asarray(shape, np.float64))
    level = float(ndtri((1.0 - pfa) ** (1.0 / x.shape[1])))
    elevated = (log_ratio - med[:, None]) > level * sigma[:, None]
    cuts = np.flatnonzero(np.diff(np.asarray(pulse_index)) != 1) + 1
    for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [x.shape[0]]])):
        out[a:b] = long_band_runs(elevated[a:b], min_run, tolerance)
    return out


def _trim_run_ends(runs: np.ndarray, keep: np.ndarray, pulse_index: np.ndarray, most: int) -> np.ndarray:
    """``runs`` (bool per row, rows = pulses ``pulse_index``) with up to ``most`` rows dropped from each end of every
    run while ``keep`` is False there."""
    out = np.asarray(runs, bool).copy()
    starts = np.flatnonzero(out & ~np.concatenate([[False], out[:-1] & (np.diff(pulse_index) == 1)]))
    for a in starts:
        b = a
        while b + 1 < out.size and out[b + 1] and pulse_index[b + 1] == pulse_index[b] + 1:
            b += 1
        for i in range(a, min(a + most, b + 1)):
            if keep[i]:
                break
            out[i] = False
        for i in range(b, max(b - most, a - 1), -1):
            if keep[i]:
                break
            out[i] = False
    return out


def _bonferroni2(z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
    """One score from two tests of the same rows: the smaller upper-tail probability, doubled (Bonferroni), so the
    pair keeps the false-alarm rate of one test."""
    from scipy.special import log_ndtr

    log_p = np.minimum(log_ndtr(-np.asarray(z1, float)), log_ndtr(-np.asarray(z2, float))) + np.log(2.0)
    with np.errstate(divide="ignore"):
        return np.where(np.isneginf(log_p), -np.inf, -ndtri(np.minimum(np.exp(log_p), 1.0)))


def spectral_peak_db(spectrum: np.ndarray, reference: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Per row: largest in-band bin of ``spectrum / median(spectrum[reference])`` over that ratio's median [dB]."""
    shape = row_medians(spectrum[reference][:, bins], axis=0)
    ratio = spectrum[:, bins] / np.maximum(shape, 1e-30)[None, :]
    return 10 * np.log10(ratio.max(axis=1) / np.maximum(row_medians(ratio), 1e-30))


def _sharp_runs(rise: np.ndarray, power_db: np.ndarray, idx: np.ndarray, min_step_db: float, k: int = 4) -> np.ndarray:
    """Pulses of the runs of ``rise`` (over the read pulses ``idx``) with a sharp edge: at the run's start or end
    the median power of the ``k`` pulses inside exceeds that of the ``k`` consecutive pulses outside by at least
    ``min_step_db`` and by half the run's median rise over its surroundings - a burst switches on and off between
    two pulses, a field entering the beam ramps up over an aperture. A scene end is no edge."""
    out = np.zeros(rise.size, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rise.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        inside = np.median(power_db[a:b])
        steps = []
        if a >= k and idx[a - 1] - idx[a - k] == k - 1 and idx[a] - idx[a - 1] == 1:
            steps.append(np.median(power_db[a : a + k]) - np.median(power_db[a - k : a]))
        if b + k <= idx.size and idx[b + k - 1] - idx[b] == k - 1 and idx[b] - idx[b - 1] == 1:
            steps.append(np.median(power_db[b - k : b]) - np.median(power_db[b : b + k]))
        outside = [np.median(power_db[max(0, a - k) : a])] if a else []
        outside += [np.median(power_db[b : b + k])] if b < idx.size else []
        level = inside - (min(outside) if outside else inside)
        if steps and max(steps) >= max(min_step_db, 0.5 * level):
            out[a:b] = True
    return out


def _stepped_segments(power_db: np.ndarray, min_step_db: float, k: int = 4) -> np.ndarray:
    """Pulses between a step up and the next step down of the power (or a scene end), each step at least
    ``min_step_db`` between the medians of ``k`` consecutive pulses on either side, whose median level exceeds the
    ``k`` pulses outside both its ends by as much, and whose larger step is at least half its rise over the lower
    outside: RFI that switches on and off between two pulses, however long.
    The clutter's power changes over an aperture (a field entering the beam is a ramp), never by a step."""
    n = power_db.size
    out = np.zeros(n, bool)
    if n < 4 * k:
        return out
    c = np.cumsum(np.concatenate([[0.0], power_db]))  # means over k pulses (medians would cost more, same here)
    mean_k = (c[k:] - c[:-k]) / k  # mean_k[i] = mean(power[i : i + k])
    step = np.full(n, 0.0)
    step[k : n - k + 1] = mean_k[k:] - mean_k[: n - 2 * k + 1]  # step[p]: mean(p : p + k) - mean(p - k : p)
    ups = [p for p in range(k, n - k + 1) if step[p] >= min_step_db and step[p] == step[max(0, p - k) : p + k].max()]
    downs = [p for p in range(k, n - k + 1) if step[p] <= -min_step_db and step[p] == step[max(0, p - k) : p + k].min()]
    starts = ([0] if downs and (not ups or downs[0] < ups[0]) else []) + ups
    for a in starts:
        later = [d for d in downs if d > a]
        b = later[0] if later else n
        outside = ([power_db[a - k : a]] if a >= k else []) + ([power_db[b : b + k]] if b + k <= n else [])
        if not outside or b - a < k:
            continue
        inside = np.median(power_db[a:b])
        levels = [np.median(o) for o in outside]
        # the steps that bound it carry its rise (at least half of it, as for a burst's edges in _sharp_runs): a
        # step where the clutter is dark (a scene end beyond the beam) does not make all that precedes it a plateau
        steps = ([step[a]] if a in ups else []) + ([-step[b]] if b < n else [])
        if inside - max(levels) >= min_step_db and max(steps) >= 0.5 * (inside - min(levels)):
            out[a:b] = True
    return out


def _fill_gaps(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaNs (pulses not read)."""
    bad = np.isnan(x)
    if bad.any() and not bad.all():
        x = x.copy()
        x[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), x[~bad])
    return x


@dataclass
class EchoDetection:
    """``pulses``: bool per pulse; ``z_power`` / ``z_spectrum`` / ``z_self``: scores (robust sigmas; NaN where not
    tested); ``threshold``: z to exceed; ``persistent``: bool per pulse, the pulses of the long band runs
    (:func:`persistent_band_pulses`; a part of ``pulses``)."""

    pulses: np.ndarray
    z_power: np.ndarray
    z_spectrum: np.ndarray
    threshold: float
    z_self: np.ndarray | None = None
    persistent: np.ndarray | None = None


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
    min_power_rise_db: float = 3.0,
    min_peak_db: float = 3.0,
    max_reference: int = 512,
    smooth_pulses: int = 15,
    power_support_pfa: float = 1e-3,
    run_pfa: float = 1e-3,
    run_pulses: int | None = None,
) -> EchoDetection:
    """Flag RFI pulses of ``echo`` ((n_azimuth, n_range), complex).

    ``rows``: the pulses to test (default all); ``reference``: bool per pulse, the RFI-free pulses to take the null
    from (default: all tested rows, robustly - fine while RFI is on under half of them). Only ``rows`` and the
    reference pulses are read (at most ``max_reference`` of the latter, evenly spread), and of each only the
    Welch segments. Returns per-pulse arrays over all ``n_azimuth`` pulses (False / NaN where not tested).
    ``power_window``: pulses of the opening the power is compared with (the chain uses half a synthetic
    aperture: bursts up to that long are removed by it, hence seen). ``smooth_pulses``: the self-referenced
    spectral score (:func:`self_referenced_scores`, which needs no RFI-free pulse) is taken on the running median
    of the tested pulses' spectra over this many pulses (sensitivity; a median keeps a burst's edges where they
    are). RFI on nearly every pulse (no RFI-free pulse: the median spectrum holds it) is tested band by band
    against the band floor (:func:`own_peak_scores`), combined with that score. ``power_support_pfa``: a power
    rise flags a pulse only where a spectral score also passes at this false-alarm rate. ``sensor``: restricts the
    spectral test to the radar band. ``min_power_rise_db`` / ``min_peak_db``: the smallest rises [dB] that may flag a pulse, whatever the spread
    of the reference (the scene's own changes along azimuth are not RFI: strong textured clutter moves the
    power by a few dB over a quarter aperture as fields enter the beam); 3 dB of power is RFI as strong as the
    clutter, weaker RFI has to show in the spectrum. ``run_pfa`` / ``run_pulses`` (default three running-median
    windows): a pulse is also flagged inside a run of at least ``run_pulses`` tested pulses that hold one band
    above the row's ``run_pfa`` level (:func:`persistent_band_pulses`): faint RFI that no single pulse carries.
    """
    if not 0 < pfa < 0.5:
        raise InputError(f"pfa must lie in (0, 0.5), got {pfa}", where="detect.echo_pfa")
    if not 0 < run_pfa < 0.5:
        raise InputError(f"run_pfa must lie in (0, 0.5), got {run_pfa}", where="detect_echo run_pfa")
    if run_pulses is not None and int(run_pulses) < 2:
        raise InputError(f"run_pulses must be at least 2, got {run_pulses}", where="detect_echo run_pulses")
    echo, _ = complex_rows(echo, None, "pulses", "variable 'echo'")
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
    st = pulse_band_spectra(echo, nfft, rows=idx)
    is_ref = ref[idx]

    # power over its morphological opening (running minimum, then running maximum) over ``power_window``
    # pulses: the opening removes every rise narrower than the window (a burst) and keeps ramps and wide plateaus
    # exactly. The clutter's power is a moving sum over the beam: a field of F rows makes a trapezoid whose top is
    # T - F wide, which a window of T / 2 keeps while F < T / 2 (a running median lags at its corners).
    full = np.full(n_az, np.nan)
    full[idx] = st.power_db
    full = _fill_gaps(full)
    trend = grey_opening(full, size=max(3, int(power_window) | 1), mode="nearest")[idx]
    dp = st.power_db - trend

    bins = in_band_bins(st.spectrum.shape[1], sensor)
    peak = spectral_peak_db(st.spectrum, is_ref, bins)

    # the same peak against the pulse's own bins and the system's shape (narrow persistent peaks cut): it needs no
    # RFI-free reference, so it holds when RFI is on every pulse
    tested = test[idx]
    thr = float(ndtri(1.0 - pfa / 3))
    z_p = gaussian_scores(dp, is_ref, q=0.25, min_sigma=1e-3)
    z_s = gumbel_scores(peak, is_ref, q=0.25, min_beta=1e-3)
    # independent of the shape: the tested pulses' spectra and their running median, the power and peak tests
    own = st.spectrum[tested][:, bins]
    smoothed = own
    if smooth_pulses > 1 and own.shape[0] > 2:
        smoothed = slow_time_median(own, min(int(smooth_pulses), own.shape[0]) | 1)
    dof = band_degrees(echo.shape[1], nfft)
    # strong textured clutter moves a pulse's power by up to ~10 dB within half an aperture (a bright field in
    # the short near-range beam of an airborne sensor): a power rise counts only with some spectral support, or
    # as a run that switches on or off from one pulse to the next (a burst's edge; the clutter's rises are ramps)
    rise = (z_p > thr) & (dp - np.median(dp[is_ref]) > min_power_rise_db)
    sharp = _sharp_runs(rise, st.power_db, idx, min_power_rise_db)
    # RFI on longer than the opening (half an aperture) is a plateau between a step up and a step down
    stepped = _stepped_segments(full, min_power_rise_db)[idx]
    by_peak = (z_s > thr) & (peak - np.median(peak[is_ref]) > min_peak_db)
    # the system's shape and the band floor are the clutter's: a burst on part of the tested pulses raises the
    # median spectrum in its bands, and the bands it leaves then stand out of every RFI-free pulse, where the
    # clutter's own bands hold them over a run (a fresh seed's L-2ap-burst: three runs of 47-80 clutter pulses).
    # So a second pass takes them from the pulses the first left unflagged, while those are at least half
    shape_rows = np.ones(idx.size, bool)
    for second in (False, True):
        z_own = np.full(idx.size, -np.inf)
        by_run = np.zeros(idx.size, bool)
        if tested.any():
            ref_rows = st.spectrum[(tested | is_ref) & shape_rows]
            shape = system_shape(ref_rows, bins)
            z_sm = self_referenced_scores(smoothed, shape)
            # its null from the bins of one row assumes independent bins; the clutter's are not (a band's power persists
            # over tens of pulses, which the running median keeps while it averages the bins' noise away), so over clean
            # pulses its tail is heavier than N(0, 1) (development seed, a clean scene: 99 % point 4.0, not 2.3). Unless
            # RFI is on nearly every pulse (the band floor below), the score must also clear a Gumbel null fitted to the
            # lower part of the tested rows' own scores
            z_fit = gumbel_scores(z_sm, None, q=0.25, min_beta=1e-3)
            # the running median spreads a strong burst onto the pulses just outside it (its median at the edge is the
            # largest clean value): a pulse must also carry the peak at the smoothed spectrum's peak bin itself, above
            # the 1 % point of a clean band (the mean of ``dof`` exponential bins, Gamma(dof) / dof)
            ratio = own / shape[None, :]
            ratio /= np.maximum(row_medians(ratio), 1e-30)[:, None]
            at_peak = ratio[np.arange(own.shape[0]), np.argmax(smoothed / shape[None, :], axis=1)]
            carries = at_peak >= gammaincinv(dof, 0.99) / dof
            z_sm[~carries] = -np.inf
            runs = persistent_band_pulses(
                smoothed,
                shape,
                idx[tested],
                pfa=run_pfa,
                min_run=int(run_pulses) if run_pulses is not None else 3 * max(1, int(smooth_pulses)),
            )
            # the same spreading lengthens a run by up to half a window at each end: its end pulses must carry the peak
            by_run[tested] = _trim_run_ends(runs, carries, idx[tested], max(1, int(smooth_pulses)) // 2)
            # RFI on (nearly) every pulse is in the median spectrum, hence in ``shape``: where bands stand
            # ``min_peak_db`` over the band floor's level, each pulse's mean over them is tested against its own level
            # in the unraised bands
            m = row_medians(ref_rows[:, bins], axis=0)
            floor, level = floor_shape(m)
            persistent = m >= level * 10 ** (min_peak_db / 10)
            quiet = floor >= m  # not cut: the clutter's own shape
            every = False
            if persistent.any() and quiet.any():
                z_pb, rise_db = own_peak_scores(own, floor, persistent, quiet, dof)
                z_pb[rise_db <= 0] = -np.inf
                # its null knows the bands' noise, not the clutter's own shape changing from pulse to pulse (the
                # partial chirps of the swath's ends tilt a pulse's spectrum by a few dB with the brightness there):
                # it counts only where it flags nearly every tested pulse, the case it is for. Where RFI is on part of
                # the pulses the others are a reference for the other tests, and a median raised by RFI on half the
                # pulses would read tilted clean pulses as RFI
                every = np.mean(z_pb > thr) >= EVERY_PULSE_SHARE
            if every:  # RFI on nearly every tested pulse: their own scores are no null
                z_sm = _bonferroni2(z_sm, z_pb)
            else:
                z_sm = np.minimum(z_sm, z_fit)
            z_own[tested] = z_sm

        support = np.fmax(z_own, z_s) > float(ndtri(1.0 - power_support_pfa))
        by_power = rise & (support | sharp) | stepped
        flagged = (by_power | by_peak | (z_own > thr) | by_run) & tested
        kept = (tested | is_ref) & ~flagged
        if second or not flagged.any() or 2 * kept.sum() < (tested | is_ref).sum():
            break
        shape_rows = ~flagged

    out = np.zeros(n_az, bool)
    out[idx] = flagged
    zp = np.full(n_az, np.nan, np.float32)
    zs = np.full(n_az, np.nan, np.float32)
    zo = np.full(n_az, np.nan, np.float32)
    zp[idx] = z_p
    zs[idx] = z_s
    zo[idx[tested]] = z_own[tested]
    in_runs = np.zeros(n_az, bool)
    in_runs[idx] = by_run & tested
    return EchoDetection(out, zp, zs, thr, zo, in_runs)
