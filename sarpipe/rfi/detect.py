"""RFI detection in the focused image: robust per-line and per-range-block statistics with a stated false-alarm rate.

Focused RFI is not coherent with the radar, so it spreads over many range cells of the image lines it reaches
(range compression spreads a tone or a foreign chirp over a chirp length and more) and raises their intensity
*floor*; scene features raise only a few cells. The statistics are built to follow the floor:

1. per line ``i`` and range block ``b`` (``range_block`` cells): ``q[i, b] = log10 median |slc|^2`` (one numba pass);
2. per line: ``s[i] = median_b q[i, b]`` (a bright target in a few blocks does not move it);
3. null distribution of ``s`` from its *lower* quantiles only, over the scene (or a running window of
   ``window_lines``): with ``q = background_quantile`` (default 0.25), ``sigma = (Q(q) - Q(q/5)) / (z(q) - z(q/5))``
   and ``median = Q(q) - z(q) sigma`` (``z``: standard normal quantile). RFI raises lines above the median, so it
   does not enter these estimates as long as it reaches fewer than ``1 - q`` of the lines;
4. a line is flagged when ``(s - median) / sigma > z(1 - pfa)``: under the null hypothesis (``s`` Gaussian, no
   RFI) each line is flagged with probability ``pfa`` (default 1e-6 per line). Flagged runs shorter than
   ``min_run`` lines are dropped. A scene whose brightness changes along azimuth breaks the Gaussian null
   (bright stretches read as RFI); ``window_lines`` then follows the change.

``rfi_image_mask`` marks, on flagged lines, the range blocks whose own statistic passes the same test per block
column (``pfa_block``); a flagged line with no such block is marked whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy.ndimage import percentile_filter
from scipy.special import ndtri

from ..errors import InputError

__all__ = ["ImageDetection", "detect_image", "block_statistics"]


@numba.njit(nogil=True, cache=True, parallel=True)
def _block_log_median(img, block, out):  # pragma: no cover - compiled
    """out[i, b] = log10(median |img[i, b*block:(b+1)*block]|^2) (last block may be shorter)."""
    n_az, n_rg = img.shape
    n_b = out.shape[1]
    for i in numba.prange(n_az):
        buf = np.empty(block, dtype=np.float32)
        for b in range(n_b):
            a = b * block
            e = min(n_rg, a + block)
            n = e - a
            for j in range(n):
                v = img[i, a + j]
                buf[j] = v.real * v.real + v.imag * v.imag
            m = np.median(buf[:n])
            out[i, b] = math.log10(m) if m > 0 else -30.0


def block_statistics(image: np.ndarray, range_block: int = 256) -> np.ndarray:
    """``log10(median |image|^2)`` per line and range block, shape ``(n_azimuth, ceil(n_range / range_block))``."""
    img = np.asarray(image)
    if img.ndim != 2 or 0 in img.shape:
        raise InputError(f"the image must be 2-D and non-empty, got shape {img.shape}", where="variable 'slc'")
    if not np.iscomplexobj(img):
        img = img.astype(np.complex64)
    block = int(min(range_block, img.shape[1]))
    out = np.empty((img.shape[0], -(-img.shape[1] // block)), dtype=np.float32)
    _block_log_median(np.ascontiguousarray(img, dtype=np.complex64), block, out)
    return out


def _robust_z(series: np.ndarray, quantile: float, window: int | None) -> np.ndarray:
    """Standard score of ``series`` along axis 0 from its lower quantiles only (1-D or 2-D).

    Background: the ``quantile`` (q) quantile; scale: ``(Q(q) - Q(q/5)) / (z(q) - z(q/5))`` with ``z`` the
    standard normal quantile, so values above the q quantile (where RFI lives) do not enter either estimate.
    The score is shifted by ``-z(q)`` so that it reads as sigmas above the null median.
    """
    x = np.asarray(series, dtype=np.float64)
    n = x.shape[0]
    lo_q = quantile / 5.0
    if window is None or window >= n:
        bg = np.quantile(x, quantile, axis=0)
        low = np.quantile(x, lo_q, axis=0)
    else:
        size = [int(window)] + [1] * (x.ndim - 1)
        bg = percentile_filter(x, 100 * quantile, size=size, mode="nearest")
        low = percentile_filter(x, 100 * lo_q, size=size, mode="nearest")
    sigma = (bg - low) / float(ndtri(quantile) - ndtri(lo_q))
    sigma = np.maximum(sigma, 1e-3)  # 1e-3 in log10 power (0.01 dB): never divide by zero on flat images
    return (x - bg) / sigma + float(ndtri(quantile))


def _drop_short_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    if min_run <= 1 or not mask.any():
        return mask
    out = mask.copy()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a < min_run:
            out[a:b] = False
    return out


@dataclass
class ImageDetection:
    """Result of :func:`detect_image`. ``lines``: bool per azimuth line; ``mask``: bool (azimuth, range);
    ``z``: per-line statistic in robust sigmas above background; ``threshold``: the z a line had to exceed."""

    lines: np.ndarray
    mask: np.ndarray
    z: np.ndarray
    threshold: float
    params: dict


def detect_image(
    image: np.ndarray,
    *,
    pfa: float = 1e-6,
    range_block: int = 256,
    background_quantile: float = 0.25,
    window_lines: int | None = None,
    min_run: int = 3,
    pfa_block: float = 1e-3,
    valid_lines: np.ndarray | None = None,
) -> ImageDetection:
    """Detect RFI in a focused image (complex or amplitude, dims azimuth x range); see the module docstring.

    ``valid_lines``: bool per line, the lines to use and test (default all). A circular azimuth focuser mixes
    partial apertures of both scene ends into the first and last half aperture; leave those out.
    """
    if not 0 < pfa < 0.5 or not 0 < pfa_block < 0.5:
        raise InputError(f"false-alarm rates must lie in (0, 0.5), got pfa={pfa}, pfa_block={pfa_block}", where="detect.pfa")
    if not 0 < background_quantile < 1:
        raise InputError(f"background_quantile must lie in (0, 1), got {background_quantile}", where="detect.background_quantile")
    q = block_statistics(image, range_block)
    valid = np.ones(q.shape[0], bool) if valid_lines is None else np.asarray(valid_lines, bool)
    if valid.shape != (q.shape[0],):
        raise InputError(f"valid_lines must have one flag per line ({q.shape[0]}), got shape {valid.shape}", where="detect.valid_lines")
    if np.count_nonzero(valid) < 16:
        raise InputError(f"only {np.count_nonzero(valid)} valid image lines: too few to learn the background from",
                         where="variable 'slc'")
    s = np.median(q, axis=1)
    z_line = np.full(q.shape[0], np.nan, dtype=np.float64)
    z_line[valid] = _robust_z(s[valid], background_quantile, window_lines)
    thr = float(ndtri(1.0 - pfa))
    lines = _drop_short_runs(np.nan_to_num(z_line, nan=-np.inf) > thr, min_run)

    n_az, n_rg = np.shape(image)
    block = int(min(range_block, n_rg))
    mask = np.zeros((n_az, n_rg), dtype=bool)
    if lines.any():
        z_blk = np.full(q.shape, -np.inf)
        z_blk[valid] = _robust_z(q[valid], background_quantile, window_lines)
        thr_blk = float(ndtri(1.0 - pfa_block))
        hit = (z_blk > thr_blk) & lines[:, None]
        hit[lines & ~hit.any(axis=1)] = True
        mask = np.repeat(hit, block, axis=1)[:, :n_rg]
    params = dict(pfa=pfa, range_block=range_block, background_quantile=background_quantile, window_lines=window_lines,
                  min_run=min_run, pfa_block=pfa_block)
    return ImageDetection(lines=lines, mask=mask, z=z_line.astype(np.float32), threshold=thr, params=params)
