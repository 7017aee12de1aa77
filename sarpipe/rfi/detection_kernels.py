"""Compiled kernels of the RFI detectors (:mod:`.echo_detect`, :mod:`.detect`): one pass each over a spectrum or a
stack of spectra, no intermediate ``|X|^2`` arrays, shifted copies or full sorts. Plain-numpy references of each are
in ``tests/test_57_detection_kernels.py``.

Conventions: spectra are ``scipy.fft.fft`` outputs along the last axis (unshifted, bin ``k`` at frequency
``k fs / n`` folded to ``[-fs/2, fs/2)``); "centred" means ``np.fft.fftshift`` order. Sums accumulate in float64.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["slow_time_median", "quiet_level_fit", "row_medians", "long_band_runs"]


@numba.njit(nogil=True, cache=True)
def _band_power(spectrum, edges, bands, power):  # pragma: no cover - compiled
    """Per row ``i`` of ``spectrum`` ((n_rows, n) complex, unshifted): ``bands[i, b]`` = mean of ``|X|^2`` over the
    centred bins ``edges[b] : edges[b + 1]`` (``edges``: int64, ``edges[0] = 0``, ``edges[-1] = n``) and
    ``power[i]`` = ``sum |X|^2 / n^2``, the mean ``|x|^2`` of the pulse (Parseval). Serial: callers run batches of
    rows on their own threads."""
    n = spectrum.shape[1]
    shift = n // 2  # centred bin j holds unshifted bin (j - n // 2) mod n
    for i in range(spectrum.shape[0]):
        total = 0.0
        for b in range(edges.size - 1):
            e0 = edges[b]
            e1 = edges[b + 1]
            acc = 0.0
            for j in range(e0, min(e1, shift)):  # negative frequencies: the upper half of the unshifted bins
                v = spectrum[i, j + n - shift]
                re = np.float64(v.real)
                im = np.float64(v.imag)
                acc += re * re + im * im
            for j in range(max(e0, shift), e1):
                v = spectrum[i, j - shift]
                re = np.float64(v.real)
                im = np.float64(v.imag)
                acc += re * re + im * im
            bands[i, b] = acc / (e1 - e0)
            total += acc
        power[i] = total / (np.float64(n) * n)


@numba.njit(nogil=True, cache=True)
def _welch_shape(segment_spectra, out):  # pragma: no cover - compiled
    """Per row ``i`` of ``segment_spectra`` ((n_rows, n_segments, nfft) complex, unshifted): ``out[i]`` (centred,
    ``nfft``) = mean over the segments of ``|X|^2`` divided by that segment's own mean ``|X|^2`` (floored at 1e-30):
    the Welch spectrum of the row with every segment weighted alike. Serial, as :func:`_band_power`."""
    n_seg = segment_spectra.shape[1]
    nfft = segment_spectra.shape[2]
    shift = nfft // 2
    for i in range(segment_spectra.shape[0]):
        for j in range(nfft):
            out[i, j] = 0.0
        for s in range(n_seg):
            acc = 0.0
            for k in range(nfft):
                v = segment_spectra[i, s, k]
                acc += np.float64(v.real) ** 2 + np.float64(v.imag) ** 2
            scale = 1.0 / (n_seg * max(acc / nfft, 1e-30))
            for k in range(nfft):
                v = segment_spectra[i, s, k]
                j = k + shift
                if j >= nfft:
                    j -= nfft
                out[i, j] += (np.float64(v.real) ** 2 + np.float64(v.imag) ** 2) * scale


@numba.njit(inline="always")
def _before(a, b):  # pragma: no cover - compiled
    """The sort order of ``np.sort``: ``a < b``, NaN after every number."""
    return a < b or (b != b and a == a)


@numba.njit(nogil=True, cache=True, parallel=True)
def _slow_time_median(x, window, out):  # pragma: no cover - compiled
    """``out[i, c]`` = median of ``x[i - h : i + h + 1, c]`` (``h = window // 2``, ``window`` odd; rows beyond the ends
    repeat the end rows), a sorted window per column updated by one removal and one insertion per row."""
    n, m = x.shape
    h = window // 2
    for c in numba.prange(m):
        buf = np.empty(window, x.dtype)
        for t in range(window):  # the window of row 0, sorted by insertion
            v = x[min(max(t - h, 0), n - 1), c]
            p = t
            while p > 0 and _before(v, buf[p - 1]):
                buf[p] = buf[p - 1]
                p -= 1
            buf[p] = v
        out[0, c] = buf[h]
        for i in range(1, n):
            old = x[max(i - 1 - h, 0), c]
            new = x[min(i + h, n - 1), c]
            p = 0  # the outgoing value's slot (a NaN matches a NaN)
            while not (buf[p] == old or (buf[p] != buf[p] and old != old)):
                p += 1
            # close the gap towards where the incoming value belongs, then drop it there
            while p > 0 and _before(new, buf[p - 1]):
                buf[p] = buf[p - 1]
                p -= 1
            while p < window - 1 and _before(buf[p + 1], new):
                buf[p] = buf[p + 1]
                p += 1
            buf[p] = new
            out[i, c] = buf[h]


def slow_time_median(spectra: np.ndarray, window: int) -> np.ndarray:
    """Running median over rows (pulses, slow time) of ``spectra`` ((n_pulses, n_bins) real), per bin, over
    ``window`` pulses centred on each (``window`` odd; the first and last pulse repeat beyond the ends, as
    ``scipy.ndimage.median_filter(spectra, (window, 1), mode="nearest")``). NaN sorts above every number. O(n window)
    per bin. Returns float64."""
    window = int(window)
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number of pulses, got {window}")
    x = np.ascontiguousarray(spectra, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"spectra must be 2-D (pulses x bins), got shape {x.shape}")
    out = np.empty_like(x)
    if x.size:
        _slow_time_median(x, window, out)
    return out


@numba.njit(nogil=True, cache=True)
def _quiet_level_fit(log_m, quiet, half, out):  # pragma: no cover - compiled
    """``out[k]``: the value at ``k`` of a least-squares polynomial in ``x = (j - k) / half`` through
    ``(j, log_m[j])`` over the quiet bins ``j`` within ``half`` of ``k`` (all quiet bins when fewer than 8 are that
    near): a quadratic when at least 4 lie on each side of ``k``, a line otherwise; clipped to those bins' range.
    The normal equations, solved by Cramer's rule (``x`` spans [-1, 1]: well conditioned)."""
    n = log_m.size
    for k in range(n):
        lo = max(0, k - half)
        hi = min(n, k + half + 1)
        near = 0
        for j in range(lo, hi):
            if quiet[j]:
                near += 1
        if near < 8:
            lo = 0
            hi = n
        s0 = s1 = s2 = s3 = s4 = t0 = t1 = t2 = 0.0
        neg = pos = 0
        y_min = np.inf
        y_max = -np.inf
        for j in range(lo, hi):
            if not quiet[j]:
                continue
            x = (j - k) / half
            y = log_m[j]
            s0 += 1.0
            s1 += x
            s2 += x * x
            s3 += x * x * x
            s4 += x * x * x * x
            t0 += y
            t1 += x * y
            t2 += x * x * y
            neg += j < k
            pos += j > k
            y_min = min(y_min, y)
            y_max = max(y_max, y)
        if neg >= 4 and pos >= 4:
            det = s0 * (s2 * s4 - s3 * s3) - s1 * (s1 * s4 - s3 * s2) + s2 * (s1 * s3 - s2 * s2)
            c0 = (t0 * (s2 * s4 - s3 * s3) - s1 * (t1 * s4 - s3 * t2) + s2 * (t1 * s3 - s2 * t2)) / det
        else:
            det = s0 * s2 - s1 * s1
            c0 = (t0 * s2 - s1 * t1) / det if det > 1e-12 * max(s0 * s2, 1e-300) else t0 / max(s0, 1.0)
        out[k] = min(max(c0, y_min), y_max)


def quiet_level_fit(log_m: np.ndarray, quiet: np.ndarray, half: int) -> np.ndarray:
    """The band floor's smooth level (:func:`~.echo_detect.floor_shape`) in log: per bin, a local quadratic (a line
    where the quiet bins lie on one side only) through the ``quiet`` bins of ``log_m`` within ``half`` bins,
    evaluated at the bin and clipped to the fitted bins' range. Needs at least one quiet bin."""
    log_m = np.ascontiguousarray(log_m, dtype=np.float64)
    quiet = np.ascontiguousarray(quiet, dtype=np.bool_)
    if log_m.ndim != 1 or quiet.shape != log_m.shape or not quiet.any():
        raise ValueError("log_m and quiet must be 1-D of one size, with at least one quiet bin")
    out = np.empty_like(log_m)
    _quiet_level_fit(log_m, quiet, max(1, int(half)), out)
    return out


@numba.njit(nogil=True, cache=True, parallel=True)
def _row_medians(x, out):  # pragma: no cover - compiled
    """``out[i]`` = median of ``x[i]`` (the mean of the two middle values for an even count), a selection per row."""
    for i in numba.prange(x.shape[0]):
        out[i] = np.median(x[i].copy())


def row_medians(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``np.median(x, axis)`` of a 2-D float array without NaNs, one compiled selection per row (``axis=1``) or per
    column (``axis=0``, on a transposed copy), rows in parallel. Returns float64."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or axis not in (0, 1):
        raise ValueError(f"row_medians takes a 2-D array and axis 0 or 1, got shape {a.shape}, axis {axis}")
    a = np.ascontiguousarray(a.T if axis == 0 else a)
    out = np.empty(a.shape[0])
    if a.shape[0]:
        if a.shape[1] == 0:
            raise ValueError("row_medians of empty rows")
        _row_medians(a, out)
    return out


@numba.njit(nogil=True, cache=True)
def _long_band_runs(elevated, tolerance, min_run, out):  # pragma: no cover - compiled
    """``out[i]`` = True where row ``i`` lies in a run of at least ``min_run`` consecutive rows in which one column
    ``b`` of ``elevated`` ((rows, columns) bool) has a True within ``b +- tolerance`` columns."""
    n, m = elevated.shape
    length = np.zeros(m, np.int64)
    for i in range(n + 1):
        for b in range(m):
            hit = False
            if i < n:
                for c in range(max(0, b - tolerance), min(m, b + tolerance + 1)):
                    if elevated[i, c]:
                        hit = True
                        break
            if hit:
                length[b] += 1
            else:
                if length[b] >= min_run:
                    for j in range(i - length[b], i):
                        out[j] = True
                length[b] = 0


def long_band_runs(elevated: np.ndarray, min_run: int, tolerance: int = 0) -> np.ndarray:
    """Bool per row of ``elevated`` ((rows, bands) bool: rows = consecutive pulses): True on the rows of every run
    of at least ``min_run`` consecutive rows that hold a True in one band, give or take ``tolerance`` bands (a
    narrowband emitter that sweeps or wanders a little stays one run)."""
    e = np.ascontiguousarray(elevated, dtype=np.bool_)
    out = np.zeros(e.shape[0], np.bool_)
    if e.size:
        _long_band_runs(e, int(tolerance), max(1, int(min_run)), out)
    return out
