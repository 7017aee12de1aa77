"""Notch-filter baselines: the DIFNet paper's time-frequency notch and a notch on the whole-pulse spectrum.

``notch`` (time-frequency): a CFAR test on every spectrogram cell. The background is the running median of
``|S|^2`` along frequency within the frame (``window_bins`` wide, computed separately inside and outside the radar
band so the band edge does not bias it). For a Gaussian background ``|S|^2`` is exponential, so
``P(|S|^2 > a * mean) = exp(-a)`` and the median is ``ln 2 * mean``: the threshold ``-ln(pfa) / ln 2 * median``
gives the nominal false-alarm rate ``pfa`` per cell. Detected cells, widened by ``dilate_bins`` in frequency
(window leakage), are notched (set to zero).

``fnotch`` (pulse spectrum): the same CFAR test on the pulse's power spectrum at fine resolution (long Hann
segments, see :class:`PulseSpectrumNotch`), background the running median over ``window_bins`` frequency bins;
detected bins are notched. Suits narrowband RFI.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .methods import CleanupMethod, MethodContext, MethodOutput, register_method

__all__ = ["running_median", "cfar_mask", "band_segments", "TFNotch", "PulseSpectrumNotch", "in_band"]


@numba.njit(nogil=True, cache=True)
def _lower_bound(buf, n, value):  # pragma: no cover - compiled
    """First index of the sorted ``buf[:n]`` whose entry is not below ``value``."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if buf[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(nogil=True, cache=True)
def _insort(buf, n, value):  # pragma: no cover - compiled
    """Insert ``value`` into the sorted ``buf[:n]``."""
    lo = _lower_bound(buf, n, value)
    for k in range(n, lo, -1):
        buf[k] = buf[k - 1]
    buf[lo] = value


@numba.njit(nogil=True, cache=True)
def _remove(buf, n, value):  # pragma: no cover - compiled
    """Remove one occurrence of ``value`` from the sorted ``buf[:n]``."""
    lo = _lower_bound(buf, n, value)
    for k in range(lo, n - 1):
        buf[k] = buf[k + 1]


@numba.njit(nogil=True, cache=True, parallel=True)
def _running_median_kernel(x, seg_start, seg_stop, half, out):  # pragma: no cover - compiled
    """Running median along the last axis of the 2-D ``x``, window ``2*half+1`` truncated at the segment ends;
    each segment ``[seg_start[s], seg_stop[s])`` is treated on its own."""
    n_rows = x.shape[0]
    for r in numba.prange(n_rows):
        buf = np.empty(2 * half + 1, dtype=x.dtype)
        for s in range(seg_start.size):
            a, b = seg_start[s], seg_stop[s]
            n = 0
            hi = a  # next index to enter the window
            lo = a  # next index to leave the window
            for c in range(a, b):
                want_hi = min(b, c + half + 1)
                while hi < want_hi:
                    _insort(buf, n, x[r, hi])
                    n += 1
                    hi += 1
                want_lo = max(a, c - half)
                while lo < want_lo:
                    _remove(buf, n, x[r, lo])
                    n -= 1
                    lo += 1
                if n % 2 == 1:
                    out[r, c] = buf[n // 2]
                else:
                    out[r, c] = 0.5 * (buf[n // 2 - 1] + buf[n // 2])


def running_median(x: np.ndarray, window: int, segments: list[tuple[int, int]] | None = None) -> np.ndarray:
    """Running median along the last axis (window ``window`` samples, odd; truncated at the ends of each segment)."""
    x = np.asarray(x)
    shape = x.shape
    flat = np.ascontiguousarray(x.reshape(-1, shape[-1]), dtype=np.float32)
    segs = segments or [(0, shape[-1])]
    out = np.empty_like(flat)
    _running_median_kernel(
        flat,
        np.array([a for a, _ in segs], dtype=np.int64),
        np.array([b for _, b in segs], dtype=np.int64),
        max(window // 2, 0),
        out,
    )
    return out.reshape(shape)


def in_band(freqs: np.ndarray, band: float) -> np.ndarray:
    """True for frequencies [Hz] inside the radar band ``|f| <= band / 2``."""
    return np.abs(freqs) <= band / 2


def band_segments(inside: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``[start, stop)`` of equal ``inside`` (bool per frequency bin): the bands a CFAR treats on their own."""
    edges = np.flatnonzero(np.diff(inside.astype(np.int8))) + 1
    cuts = [0, *edges.tolist(), inside.size]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def cfar_mask(
    power: np.ndarray, pfa: float, window_bins: int, segments: list[tuple[int, int]] | None = None
) -> np.ndarray:
    """Cells of ``power`` (last axis: frequency) above ``-ln(pfa)/ln(2)`` times the running median."""
    if not 0 < pfa < 1:
        raise ValueError(f"pfa must lie in (0, 1), got {pfa}")
    background = running_median(power, window_bins, segments)
    factor = np.float32(-math.log(pfa) / math.log(2.0))
    return power > factor * background


def _dilate_last(mask: np.ndarray, n: int) -> np.ndarray:
    out = mask.copy()
    for k in range(1, n + 1):
        out[..., k:] |= mask[..., :-k]
        out[..., :-k] |= mask[..., k:]
    return out


@register_method("notch")
class TFNotch(CleanupMethod):
    """Time-frequency CFAR notch (DIFNet paper's baseline): mask of detected cells, set to zero by the chain."""

    name = "notch"
    domain = "tf"

    def __init__(self, pfa: float = 1e-3, window_bins: int = 31, dilate_bins: int = 1):
        if not 0 < pfa < 1:
            raise ValueError(f"pfa must lie in (0, 1), got {pfa}")
        self.pfa = float(pfa)
        self.window_bins = int(window_bins)
        self.dilate_bins = int(dilate_bins)

    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        # work on (pulse, frame, frequency) memory: stft() returns that layout behind the (pulse, freq, frame) view
        s = np.asarray(x).transpose(0, 2, 1)
        power = s.real.astype(np.float32) ** 2 + s.imag.astype(np.float32) ** 2
        segs = band_segments(in_band(ctx.frequencies, ctx.radar_band))
        mask = cfar_mask(power, self.pfa, self.window_bins, segs)
        if self.dilate_bins:
            mask = _dilate_last(mask, self.dilate_bins)
        return MethodOutput("mask", mask.transpose(0, 2, 1))


@register_method("fnotch")
class PulseSpectrumNotch(CleanupMethod):
    """Notch on the pulse spectrum at fine frequency resolution: CFAR over the power spectrum of long Hann segments
    (``segment`` samples, 75 % overlap, i.e. a long-window STFT of its own), running median over ``window_bins``
    bins; detected bins are notched and the pulse rebuilt by overlap-add. A single unwindowed FFT of the whole
    pulse would leak an off-bin tone over hundreds of bins; the Hann segments keep it within a few."""

    name = "fnotch"
    domain = "pulse"

    def __init__(self, pfa: float = 1e-4, window_bins: int = 129, dilate_bins: int = 2, segment: int = 512):
        if not 0 < pfa < 1:
            raise ValueError(f"pfa must lie in (0, 1), got {pfa}")
        self.pfa = float(pfa)
        self.window_bins = int(window_bins)
        self.dilate_bins = int(dilate_bins)
        self.segment = int(segment)

    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        from .stft import STFTParams, frequencies, istft, stft

        pulses = np.asarray(x, dtype=np.complex64)
        n = pulses.shape[-1]
        seg = max(16, min(self.segment, 2 * (n // 2)))
        p = STFTParams(nperseg=seg - seg % 2, hop=max(1, (seg - seg % 2) // 4), window="hann")
        spec = stft(pulses, p)
        s = spec.transpose(0, 2, 1)  # (pulse, frame, frequency) memory
        power = s.real**2 + s.imag**2
        segs = band_segments(in_band(frequencies(ctx.fs, p), ctx.radar_band))
        mask = cfar_mask(power, self.pfa, self.window_bins, segs)
        if self.dilate_bins:
            mask = _dilate_last(mask, self.dilate_bins)
        estimate = istft(np.where(mask, s, 0).transpose(0, 2, 1), n, p)
        return MethodOutput("estimate", estimate.astype(np.complex64))
