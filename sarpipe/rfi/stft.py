"""Batched pulse-by-pulse short-time Fourier transform (STFT) and its inverse (ISTFT), with perfect reconstruction.

Conventions:
- Input: complex baseband pulses, shape ``(n_pulses, n_samples)`` (one row per echo pulse, fast time along rows).
- Output spectrogram: complex64, shape ``(n_pulses, n_freq, n_frames)`` with ``n_freq = nperseg``, frequency
  bins ordered from ``-fs/2`` to ``fs/2 - fs/nperseg`` (centred: DC in bin ``nperseg // 2``), frame ``m`` centred
  on fast-time sample ``m * hop``. Pulses are zero-padded by ``nperseg // 2`` at both ends (so every sample is
  covered by whole frames) and at the end up to a whole number of hops.
- Scaling: plain DFT of the windowed frame (no 1/N): a tone of amplitude A in bin k reads ``A * sum(window)``.
- Inverse: windowed overlap-add divided by ``sum_m window^2(n - m hop)``, which gives the input back exactly
  (to float32 rounding) for any window and hop with that sum non-zero ("NOLA"), whatever the spectrogram was
  before any modification.

The centring is done by modulating the window with ``(-1)^n`` (requires an even ``nperseg``), so no fftshift copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import scipy.fft
import scipy.signal

from ..errors import InputError

__all__ = ["STFTParams", "stft", "istft", "n_frames", "frequencies", "frame_times"]


@dataclass(frozen=True)
class STFTParams:
    """Window name (any ``scipy.signal.get_window`` name, periodic), segment length and hop, in samples."""

    nperseg: int = 128
    hop: int = 32
    window: str = "hann"

    def __post_init__(self) -> None:
        if self.nperseg < 2 or self.nperseg % 2:
            raise InputError(f"nperseg must be an even number >= 2, got {self.nperseg}", where="stft.nperseg")
        if not 1 <= self.hop <= self.nperseg:
            raise InputError(f"hop must lie in [1, nperseg={self.nperseg}], got {self.hop}", where="stft.hop")
        w = _window(self.window, self.nperseg)
        # NOLA: every sample must be covered by a frame whose window is non-zero there
        cover = np.zeros(self.nperseg + self.hop)
        for m in range(0, self.nperseg + self.hop, self.hop):
            seg = cover[m : m + self.nperseg]
            seg += (w**2)[: seg.size]
        if np.min(cover[self.nperseg // 2 : self.nperseg // 2 + self.hop]) <= 1e-10 * np.max(w**2):
            raise InputError(
                f"window {self.window!r} with nperseg={self.nperseg}, hop={self.hop} cannot be inverted (NOLA fails)",
                where="stft.hop",
            )

    def as_dict(self) -> dict:
        return {"nperseg": self.nperseg, "hop": self.hop, "window": self.window}


@lru_cache(maxsize=32)
def _window(name: str, nperseg: int) -> np.ndarray:
    try:
        return np.asarray(scipy.signal.get_window(name, nperseg, fftbins=True), dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"unknown window {name!r} ({exc})", where="stft.window") from exc


@lru_cache(maxsize=32)
def _modulated_window(name: str, nperseg: int) -> np.ndarray:
    sign = np.where(np.arange(nperseg) % 2 == 0, 1.0, -1.0)
    return (_window(name, nperseg) * sign).astype(np.float32)


def _padded_length(n_samples: int, p: STFTParams) -> int:
    base = n_samples + 2 * (p.nperseg // 2)
    extra = (-(base - p.nperseg)) % p.hop
    return base + extra


def n_frames(n_samples: int, p: STFTParams = STFTParams()) -> int:
    """Number of STFT frames for a pulse of ``n_samples``."""
    return 1 + (_padded_length(n_samples, p) - p.nperseg) // p.hop


def frequencies(fs: float, p: STFTParams = STFTParams()) -> np.ndarray:
    """Baseband frequency of each bin [Hz], from ``-fs/2`` upwards."""
    return (np.arange(p.nperseg) - p.nperseg // 2) * (fs / p.nperseg)


def frame_times(n_samples: int, fs: float, p: STFTParams = STFTParams()) -> np.ndarray:
    """Fast time of each frame centre from the first sample of the pulse [s]."""
    return np.arange(n_frames(n_samples, p)) * p.hop / fs


@numba.njit(nogil=True, cache=True)
def _frame_kernel(x, win, hop, pad, out):  # pragma: no cover - compiled
    """out[p, m, k] = xpad[p, m*hop + k] * win[k], xpad = x zero-padded by ``pad`` in front."""
    n_p, n_t, n_f = out.shape
    n_s = x.shape[1]
    for ip in range(n_p):
        for m in range(n_t):
            s0 = m * hop - pad
            for k in range(n_f):
                s = s0 + k
                if 0 <= s < n_s:
                    out[ip, m, k] = x[ip, s] * win[k]
                else:
                    out[ip, m, k] = 0


@numba.njit(nogil=True, cache=True)
def _overlap_add_kernel(frames, win, hop, pad, norm, out):  # pragma: no cover - compiled
    """out[p, s] = sum_m frames[p, m, s + pad - m*hop] * win[.] / norm[s]."""
    n_p, n_t, n_f = frames.shape
    n_s = out.shape[1]
    for ip in range(n_p):
        acc = np.zeros(n_s + 2 * pad + n_f, dtype=np.complex64)
        for m in range(n_t):
            s0 = m * hop
            for k in range(n_f):
                acc[s0 + k] += frames[ip, m, k] * win[k]
        for s in range(n_s):
            out[ip, s] = acc[s + pad] / norm[s]


@lru_cache(maxsize=32)
def _norm(n_samples: int, p: STFTParams) -> np.ndarray:
    w2 = _window(p.window, p.nperseg) ** 2
    total = np.zeros(_padded_length(n_samples, p))
    for m in range(n_frames(n_samples, p)):
        total[m * p.hop : m * p.hop + p.nperseg] += w2
    pad = p.nperseg // 2
    return total[pad : pad + n_samples].astype(np.float32)


_CHUNK = 32  # pulses per FFT batch: keeps the frames of a batch in cache


def _workers() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _run_chunks(fn, n: int) -> None:
    """Run ``fn(lo, hi)`` over pulse chunks, on a thread pool (the kernels and pocketfft release the GIL)."""
    chunks = [(lo, min(lo + _CHUNK, n)) for lo in range(0, n, _CHUNK)]
    workers = min(_workers(), len(chunks))
    if workers <= 1:
        for lo, hi in chunks:
            fn(lo, hi)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda c: fn(*c), chunks))


def stft(pulses: np.ndarray, p: STFTParams = STFTParams()) -> np.ndarray:
    """STFT of each pulse: ``(n_pulses, n_samples)`` -> complex64 ``(n_pulses, nperseg, n_frames)``.

    The result is a ``(pulse, frequency, frame)`` view of memory laid out as ``(pulse, frame, frequency)`` (so
    no transpose copy is made); use ``np.ascontiguousarray`` where a C-ordered array is needed.
    A 1-D input is treated as one pulse and gives ``(nperseg, n_frames)``.
    """
    x = np.asarray(pulses)
    one = x.ndim == 1
    if one:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] == 0 or x.shape[0] == 0:
        raise InputError(
            f"pulses must be (n_pulses, n_samples) with samples, got shape {np.shape(pulses)}", where="stft input"
        )
    x = np.ascontiguousarray(x, dtype=np.complex64)
    nt = n_frames(x.shape[1], p)
    out = np.empty((x.shape[0], nt, p.nperseg), dtype=np.complex64)
    win = _modulated_window(p.window, p.nperseg)

    def work(lo: int, hi: int) -> None:
        blk = out[lo:hi]
        _frame_kernel(x[lo:hi], win, p.hop, p.nperseg // 2, blk)
        res = scipy.fft.fft(blk, axis=-1, overwrite_x=True, workers=1)
        if not np.shares_memory(res, blk):
            blk[...] = res

    _run_chunks(work, x.shape[0])
    spec = out.transpose(0, 2, 1)
    return spec[0] if one else spec


def istft(spec: np.ndarray, n_samples: int, p: STFTParams = STFTParams()) -> np.ndarray:
    """Inverse of :func:`stft`: ``(n_pulses, nperseg, n_frames)`` -> complex64 ``(n_pulses, n_samples)``."""
    s = np.asarray(spec)
    one = s.ndim == 2
    if one:
        s = s[None]
    if s.ndim != 3 or s.shape[1] != p.nperseg or s.shape[2] != n_frames(n_samples, p):
        raise InputError(
            f"spectrogram shape {np.shape(spec)} does not match nperseg={p.nperseg}, "
            f"n_frames={n_frames(n_samples, p)} for {n_samples} samples",
            where="istft input",
        )
    frames_view = s.transpose(0, 2, 1)  # (pulse, frame, frequency); contiguous for output of stft()
    out = np.empty((s.shape[0], n_samples), dtype=np.complex64)
    win = _modulated_window(p.window, p.nperseg)
    norm = _norm(n_samples, p)

    def work(lo: int, hi: int) -> None:
        buf = np.array(frames_view[lo:hi], dtype=np.complex64, order="C")
        res = scipy.fft.ifft(buf, axis=-1, overwrite_x=True, workers=1)
        _overlap_add_kernel(np.ascontiguousarray(res, dtype=np.complex64), win, p.hop, p.nperseg // 2, norm, out[lo:hi])

    _run_chunks(work, s.shape[0])
    return out[0] if one else out
