"""The Doppler-tone test: RFI found as lines of the range-frequency x Doppler plane of a block of pulses.

Range-transformed and then Fourier-transformed along slow time over a block of pulses, clutter's echo has a 2-D
power spectrum that is a smooth product - the system's band (and the scene's brightness) along range frequency
times the antenna's Doppler pattern along Doppler - times speckle, exponential in each cell. An emitter that is
not coherent with the radar but whose phase runs on between pulses (a narrowband transmitter, a periodic sweep)
keeps its range frequencies from pulse to pulse and turns in slow time at its own frequency modulo the PRF: the
block's pulses add up in one Doppler cell. RFI 15 dB below strong clutter per sample stands 24 dB or more above
the clutter's expected power in its strongest cell over 64 pulses, where clutter alone reaches at most 16 dB
(the detection matrix, ``benchmarks/detection_matrix.py``, docs/rfi.md) - though pulse by pulse it is below the clutter's own
spectral peaks. The test is a second echo-domain detector that needs no image and no RFI-free pulse.

Steps (:func:`doppler_tone_pulses`):

1. Blocks of ``block`` pulses, half overlapping; each pulse's centred spectrum over the in-band bins; a Hann window
   and an FFT along slow time; the background is the rank-1 fit of the log power (median polish: Doppler profile
   plus frequency profile), the ratio of a cell to it is ``Exp(1)`` for clutter (:func:`tone_ratios`).
2. Cells over ``max(10^(tone_db/10), ln(cells / pfa))`` are tones: per Doppler row, runs of frequency bins.
3. Each tone is located in slow time around its block: the pulses demodulated at its Doppler, averaged over
   ``window_pulses`` (a Doppler filter of PRF / window), against the same filter's output in the frequency bins
   either side (a CFAR across range frequency at the same Doppler); each run's ends are then placed where the
   likelihood of a constant demodulated tone switching on or off is largest (:func:`run_edges`); gaps of up to
   half a block between flagged pulses are closed.

Where it is blind: emitters whose phase or frequency does not run on over a block (hopping from pulse to pulse,
noise-like jammers) spread over Doppler like the clutter; tones inside the clutter's Doppler band must clear its
peak there. The clutter's ratio tail is heavier than ``Exp(1)`` (the rank-1 background is not exact for
non-stationary clutter: 15.9 dB is reached where the ``Exp(1)`` Bonferroni level at 1e-3 is 13.5 dB), hence
``tone_db``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from ..errors import InputError
from ..sensor import SensorParams
from .echo_detect import complex_rows, in_band_bins, row_blocks
from .pulses import pulse_runs, refine_pulses

__all__ = ["DopplerTone", "ToneDetection", "tone_ratios", "doppler_tone_pulses", "tone_cells", "run_edges"]

#: fraction of the radar band the test reads: the band's edges move with Doppler (the 2-D spectrum's support
#: curves) and break the rank-1 background there
BAND_GUARD = 0.85
#: frequency bins either side of a tone (beyond a gap of ``RING_GAP``) that give its CFAR background
RING_BINS = 32
RING_GAP = 8
#: strongest tones per block that are located in slow time, and the span below the strongest they are taken from
MAX_TONES = 8
LOCATE_SPAN_DB = 10.0
#: blocks whose pulses one task transforms together
BLOCKS_PER_TASK = 8
#: the located ratio wanted over the locating threshold (12 dB: the block's peak includes the clutter's own share)
LOCATE_MARGIN = 16.0


@dataclass(frozen=True)
class DopplerTone:
    """A tone found in the block starting at pulse ``block_start``: Doppler bin ``doppler_bin`` of the block's FFT
    (``doppler_hz`` [Hz], in [-PRF/2, PRF/2)), in-band frequency bins ``[f_lo, f_hi]`` and its largest ratio to the
    background, ``peak_db`` [dB]."""

    block_start: int
    doppler_bin: int
    doppler_hz: float
    f_lo: int
    f_hi: int
    peak_db: float


@dataclass
class ToneDetection:
    """``pulses``: bool per pulse; ``tones``: the tones found; ``block_peak_db``: per block, the largest ratio of a
    cell to the background [dB] (``block_starts`` the blocks' first pulses); ``threshold_db``: the cells' threshold."""

    pulses: np.ndarray
    tones: list[DopplerTone] = field(default_factory=list)
    block_starts: np.ndarray | None = None
    block_peak_db: np.ndarray | None = None
    threshold_db: float = float("nan")


def tone_ratios(spectra: np.ndarray, sweeps: int = 2) -> np.ndarray:
    """Ratio of each cell of the block's range-frequency x Doppler power to the clutter's expected power there.

    ``spectra``: (pulses, bins) complex, the pulses' range spectra. Returns (Doppler bins, bins): Hann along slow
    time, ``|FFT|^2``, over ``exp(row + column)`` of the median polish of its log (``sweeps`` sweeps; the Doppler
    profile's medians over every ``bins // 512``-th bin, the frequency profile's from a sort) scaled so that
    an ``Exp(1)`` cell has ratio 1 on average (the median of ``log Exp(1)`` is ``log log 2``).
    """
    return np.exp(_log_residual(spectra, _PolishWork(*spectra.shape), sweeps)) * np.log(2.0)


class _PolishWork:
    """Scratch arrays for :func:`_log_residual` on blocks of one shape, reused from block to block (fresh
    multi-megabyte arrays per block cost as much in page faults as the arithmetic)."""

    def __init__(self, n: int, bins: int):
        self.window = np.hanning(n + 2)[1:-1].astype(np.float32)[:, None]
        self.x = np.empty((n, bins), np.complex64)
        self.resid = np.empty((n, bins), np.float32)
        self.scratch = np.empty((n, bins), np.float32)


def _log_residual(spectra: np.ndarray, work: _PolishWork, sweeps: int = 2) -> np.ndarray:
    """``log(tone_ratios(spectra, sweeps) / log 2)`` in float32 on ``work``'s arrays (the returned array is
    ``work.resid``, overwritten by the next call); the frequency profile's medians from a sort along Doppler."""
    x, resid, scratch = work.x, work.resid, work.scratch
    np.multiply(spectra, work.window, out=x)
    s = scipy.fft.fft(x, axis=0, overwrite_x=True, workers=1)
    np.square(s.real, out=resid)
    np.square(s.imag, out=scratch)
    resid += scratch
    np.maximum(resid, np.finfo(np.float32).tiny, out=resid)
    np.log(resid, out=resid)
    n = resid.shape[0]
    step = max(1, resid.shape[1] // 512)
    lo, hi = (n - 1) // 2, n // 2
    for _ in range(sweeps):
        resid -= np.median(resid[:, ::step], axis=1, keepdims=True)
        scratch[:] = resid
        scratch.sort(axis=0)
        resid -= 0.5 * (scratch[lo : lo + 1] + scratch[hi : hi + 1])
    return resid


def _slices(idx: np.ndarray) -> list[tuple[tuple[int, int], tuple[int, int]]] | None:
    """``idx`` as runs of consecutive values: ``((dst0, dst1), (src0, src1))`` per run, or None past two runs."""
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    if cuts.size > 1:
        return None
    bounds = [0, *cuts.tolist(), idx.size]
    return [((a, b), (int(idx[a]), int(idx[b - 1]) + 1)) for a, b in zip(bounds[:-1], bounds[1:])]


def tone_cells(ratio: np.ndarray, threshold: float, block_start: int, prf: float) -> list[DopplerTone]:
    """The tones of one block: per Doppler row, runs of bins over ``threshold`` (gaps of up to 2 bins joined),
    the ``MAX_TONES`` strongest."""
    return _row_tones(ratio, np.arange(ratio.shape[0]), ratio.shape[0], threshold, block_start, prf)


def _row_tones(ratio, rows, n_d, threshold, block_start, prf) -> list[DopplerTone]:
    """:func:`tone_cells` on some Doppler rows of a block: ``ratio`` (len(rows), bins), ``rows`` their Doppler
    bins of ``n_d``."""
    out = []
    for i in np.flatnonzero((ratio > threshold).any(axis=1)):
        d = int(rows[i])
        hot = np.flatnonzero(ratio[i] > threshold)
        cuts = np.flatnonzero(np.diff(hot) > 3) + 1
        for run in np.split(hot, cuts):
            f_dop = d * prf / n_d
            f_dop = f_dop - prf if f_dop >= prf / 2 else f_dop
            peak = float(ratio[i, run[0] : run[-1] + 1].max())
            out.append(DopplerTone(block_start, d, float(f_dop), int(run[0]), int(run[-1]), 10 * np.log10(peak)))
    out.sort(key=lambda t: -t.peak_db)
    return out[:MAX_TONES]


def _screened_tones(resid: np.ndarray, threshold: float, block_start: int, prf: float) -> list[DopplerTone]:
    """``tone_cells(exp(resid) log 2, ...)`` with ratios taken only for the Doppler rows whose log residual clears
    the threshold's log (less a margin for rounding): the same tones at a fraction of the cost."""
    rows = np.flatnonzero((resid > np.log(threshold / np.log(2.0)) - 1e-3).any(axis=1))
    if not rows.size:
        return []
    return _row_tones(np.exp(resid[rows]) * np.log(2.0), rows, resid.shape[0], threshold, block_start, prf)


def _running_mean(y: np.ndarray, m: int) -> np.ndarray:
    """Centred running mean over ``m`` rows (axis 0), over the rows available at the ends."""
    c = np.concatenate([np.zeros((1,) + y.shape[1:], y.dtype), np.cumsum(y, axis=0)])
    n = y.shape[0]
    lo = np.clip(np.arange(n) - m // 2, 0, n)
    hi = np.clip(np.arange(n) - m // 2 + m, 0, n)
    return (c[hi] - c[lo]) / (hi - lo).reshape((-1,) + (1,) * (y.ndim - 1))


def _locate(spectra: np.ndarray, start: int, tone: DopplerTone, n_block: int, window: int, pfa: float) -> np.ndarray:
    """Bool per row of ``spectra`` (pulses ``start ...``, in-band bins): the pulses that carry ``tone``."""
    n, nb = spectra.shape
    lo, hi = tone.f_lo, tone.f_hi + 1
    ring = np.r_[
        max(0, lo - RING_GAP - RING_BINS) : max(0, lo - RING_GAP),
        min(nb, hi + RING_GAP) : min(nb, hi + RING_GAP + RING_BINS),
    ]
    if ring.size < 8:
        return np.zeros(n, bool)
    rows = np.arange(n) + start - tone.block_start
    turn = np.exp(-2j * np.pi * tone.doppler_bin * rows / n_block).astype(np.complex64)
    y = spectra[:, np.r_[lo:hi, ring]] * turn[:, None]
    m = _running_mean(y, window)
    p = m.real**2 + m.imag**2
    k = hi - lo
    background = np.median(p[:, k:], axis=1) / np.log(2.0)
    best = np.argmax(p[:, :k], axis=1)
    ratio = p[np.arange(n), best] / np.maximum(background, np.finfo(np.float32).tiny)
    flagged = ratio > np.log(n * k / pfa)  # Bonferroni over the located cells, Exp(1) null
    if not flagged.any():
        return flagged
    # the running mean spreads a tone up to half a window past a run's ends (and a weak one starts late): each
    # end is placed anew where the tone switches on or off, by the likelihood of a constant tone (the run's mean
    # over its bins, the demodulated tone's phase runs on) in clutter
    out = np.zeros(n, bool)
    half = max(1, window // 2)
    for a, b in pulse_runs(flagged):
        inner = slice(a + half, b - half) if b - a > 2 * half else slice(a, b)
        amp = y[inner, :k].mean(axis=0)
        g = 2 * (y[:, :k].real @ amp.real + y[:, :k].imag @ amp.imag) - float(np.sum(np.abs(amp) ** 2))
        out[run_edges(g, a, b, half)] = True
    return out


def run_edges(gain: np.ndarray, a: int, b: int, half: int) -> slice:
    """The pulses of a run first flagged as ``[a, b)`` with its ends moved (by up to ``half`` outwards, up to the
    run's middle inwards) to where the per-pulse log-likelihood increments ``gain`` of the tone being on add up
    most: ``start = argmax_e sum(gain[e:c])``, ``stop = argmax_e sum(gain[c:e])`` about the run's middle ``c``."""
    n = gain.size
    c = (a + b) // 2
    lo = max(0, a - half)
    hi = min(n, b + half)
    suffix = np.cumsum(gain[lo:c][::-1])[::-1]  # suffix[i] = sum(gain[lo + i : c])
    start = lo + int(np.argmax(suffix)) if suffix.size else a
    prefix = np.cumsum(gain[c:hi])  # prefix[i] = sum(gain[c : c + i + 1])
    stop = c + int(np.argmax(prefix)) + 1 if prefix.size else b
    return slice(start, max(stop, start))


def _hann_gain(n: int) -> float:
    """Coherent gain of :func:`tone_ratios`' window on a tone over white clutter: ``(sum w)^2 / sum w^2``."""
    w = np.hanning(n + 2)[1:-1]
    return float(w.sum() ** 2 / (w**2).sum())


def _locate_window(peak_db: float, gain: float, cells: int, pfa: float, block: int) -> int:
    """Pulses averaged to locate a tone of ``peak_db`` in its block (a power of two in [4, block / 2]): its ratio
    over ``window`` pulses is about ``peak * window / gain``, wanted ``LOCATE_MARGIN`` times the locating threshold,
    so strong tones keep their edges sharp and weak ones are averaged longer."""
    need = LOCATE_MARGIN * np.log(cells / pfa) * gain / 10 ** (peak_db / 10)
    w = 2 ** int(np.ceil(np.log2(max(need, 1.0))))
    return int(min(max(w, 4), max(4, block // 2)))


def doppler_tone_pulses(
    echo,
    sensor: SensorParams,
    *,
    block: int = 64,
    tone_db: float = 20.0,
    pfa: float = 1e-3,
    window_pulses: int | None = None,
) -> ToneDetection:
    """Flag the pulses of ``echo`` ((n_azimuth, n_range), complex; numpy or lazy) that carry a Doppler tone.

    ``block``: pulses per block (half overlapping); ``tone_db``: the smallest ratio [dB] of a cell to the clutter's
    background that is a tone (the threshold is also at least the ``Exp(1)`` Bonferroni level for ``pfa`` over
    the scene's cells); ``window_pulses`` (default from each tone's strength, 4 to ``block // 2``): the slow-time
    average that locates a tone.
    Scenes shorter than 16 pulses are not tested (no pulse flagged).
    """
    if int(block) < 16:
        raise InputError(f"block must be at least 16 pulses, got {block}", where="detect tone_block")
    if not tone_db > 0:
        raise InputError(f"tone_db must be positive, got {tone_db}", where="detect tone_db")
    if not 0 < pfa < 0.5:
        raise InputError(f"pfa must lie in (0, 0.5), got {pfa}", where="detect tone pfa")
    x, _ = complex_rows(echo, None, "pulses", "variable 'echo'")
    n_az, n_rg = (int(v) for v in x.shape)
    flagged = np.zeros(n_az, bool)
    block = min(int(block), n_az)
    if block < 16:
        return ToneDetection(flagged)
    window = max(1, int(window_pulses)) if window_pulses is not None else None
    bins = np.flatnonzero(in_band_bins(n_rg, sensor, BAND_GUARD))
    unshifted = (bins + n_rg // 2) % n_rg  # the centred spectrum's bins in the FFT's own order
    pieces = _slices(unshifted)
    hop = block // 2
    starts = list(range(0, n_az - block + 1, hop))
    if starts[-1] != n_az - block:
        starts.append(n_az - block)
    cells = len(starts) * block * bins.size
    threshold = max(10 ** (tone_db / 10), float(np.log(cells / pfa)))
    prf = float(sensor.prf)

    def spectra_of(a: int, b: int) -> np.ndarray:
        out = np.empty((b - a, bins.size), np.complex64)
        for pos, rows in row_blocks(x, np.arange(a, b, dtype=np.int64), 256):
            f = scipy.fft.fft(rows, axis=1, workers=1)
            dst = out[pos : pos + rows.shape[0]]
            if pieces is None:
                dst[:] = f[:, unshifted]
            else:  # the band is one run of the centred spectrum: two slices of the FFT's order, no gather
                for (d0, d1), (s0, s1) in pieces:
                    dst[:, d0:d1] = f[:, s0:s1]
        return out

    gain = _hann_gain(block)

    def one_block(
        a: int, group: np.ndarray, first: int, work: _PolishWork
    ) -> tuple[float, list[DopplerTone], int, np.ndarray | None]:
        """``group``: the spectra of pulses ``first ...``, holding the block's."""
        resid = _log_residual(group[a - first : a - first + block], work)
        peak = 10 * np.log10(float(np.exp(resid.max())) * np.log(2.0))
        found = _screened_tones(resid, threshold, a, prf)
        if not found:
            return peak, found, 0, None
        # locate them over the block and half a block either side
        lo, hi = max(0, a - hop), min(n_az, a + block + hop)
        inside = lo >= first and hi <= first + group.shape[0]
        around = group[lo - first : hi - first] if inside else spectra_of(lo, hi)
        hits = np.zeros(hi - lo, bool)
        for tone in found:
            if tone.peak_db < found[0].peak_db - LOCATE_SPAN_DB:
                break
            w = window or _locate_window(tone.peak_db, gain, (hi - lo) * (tone.f_hi - tone.f_lo + 1), pfa, block)
            hits |= _locate(around, lo, tone, block, w, pfa)
        return peak, found, lo, hits

    def some_blocks(group: list[int]) -> list[tuple[float, list[DopplerTone], int, np.ndarray | None]]:
        # the blocks overlap by half: each pulse is transformed once for a group of them
        first, last = group[0], group[-1] + block
        spectra = spectra_of(first, last)
        work = _PolishWork(block, bins.size)
        return [one_block(a, spectra, first, work) for a in group]

    # groups of blocks are independent (FFTs and numpy's sorts release the GIL); a lazy array is read in order
    groups = [starts[i : i + BLOCKS_PER_TASK] for i in range(0, len(starts), BLOCKS_PER_TASK)]
    workers = max(1, min(os.cpu_count() or 1, len(groups))) if isinstance(x, np.ndarray) else 1
    with ThreadPoolExecutor(workers) as pool:
        results = [r for rs in pool.map(some_blocks, groups) for r in rs]
    tones: list[DopplerTone] = []
    peaks = np.array([r[0] for r in results])
    for _, found, lo, hits in results:
        tones.extend(found)
        if hits is not None:
            flagged[lo : lo + hits.size] |= hits
    # a weak tone's located ratio dips under its threshold here and there inside its burst: gaps shorter than
    # half a block, the test's resolution for such tones, are closed
    flagged = refine_pulses(np.ones(n_az, bool), flagged, close_gap=hop)
    return ToneDetection(flagged, tones, np.asarray(starts), peaks, 10 * np.log10(threshold))
