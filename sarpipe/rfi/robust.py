"""Null distributions fitted to the lower part of a sample, so that the RFI-raised upper part does not bias them,
and scores on a common scale: the standard normal quantile of the null's upper tail probability.

- Level statistics (log power of a line or a pulse): Gaussian null. With quantiles ``Q(p1) < Q(p2)``,
  ``sigma = (Q(p2) - Q(p1)) / (z(p2) - z(p1))``, ``median = Q(p2) - z(p2) sigma`` (``z``: standard normal quantile).
- Peak statistics (the largest of many spectral bins): an extreme-value (Gumbel) null,
  ``F(x) = exp(-exp(-(x - mu) / beta))``; from ``Q(p) = mu + beta g(p)`` with ``g(p) = -ln(-ln p)``:
  ``beta = (Q(p2) - Q(p1)) / (g(p2) - g(p1))``, ``mu = Q(p2) - beta g(p2)``. Its upper tail is exponential, far
  heavier than a Gaussian fitted to the same sample, so a Gaussian score would overstate the significance of
  maxima by several sigmas.

A score ``z`` means: under the null, ``P(X > x) = 1 - Phi(z)``; thresholding at ``z(1 - pfa)`` gives the false-alarm
rate ``pfa``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import percentile_filter
from scipy.special import ndtri

__all__ = ["gaussian_scores", "gumbel_scores"]


def _gumbel_g(p: float) -> float:
    return -math.log(-math.log(p))


def _quantiles(x: np.ndarray, ps: tuple[float, float], window: int | None) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    if window is None or window >= n:
        return np.quantile(x, ps[0], axis=0), np.quantile(x, ps[1], axis=0)
    size = [int(window)] + [1] * (x.ndim - 1)
    return (
        percentile_filter(x, 100 * ps[0], size=size, mode="nearest"),
        percentile_filter(x, 100 * ps[1], size=size, mode="nearest"),
    )


def gaussian_scores(
    x: np.ndarray, fit: np.ndarray | None = None, *, q: float = 0.25, min_sigma: float = 1e-6, window: int | None = None
) -> np.ndarray:
    """Scores of ``x`` (axis 0) under a Gaussian null fitted to the ``q / 5`` and ``q`` quantiles of ``x[fit]``
    (``fit``: bool mask along axis 0, default all; ``window``: running fit over that many samples, all-fit only).
    ``min_sigma`` floors the fitted scale."""
    x = np.asarray(x, dtype=np.float64)
    sample = x if fit is None else x[np.asarray(fit, bool)]
    p1, p2 = q / 5.0, q
    lo, hi = _quantiles(sample, (p1, p2), window if fit is None else None)
    sigma = np.maximum((hi - lo) / float(ndtri(p2) - ndtri(p1)), min_sigma)
    median = hi - float(ndtri(p2)) * sigma
    return (x - median) / sigma


def gumbel_scores(
    x: np.ndarray, fit: np.ndarray | None = None, *, q: float = 0.25, min_beta: float = 1e-6
) -> np.ndarray:
    """Scores of ``x`` under a Gumbel (maximum) null fitted to the ``q / 2.5`` and ``q`` quantiles of ``x[fit]``."""
    x = np.asarray(x, dtype=np.float64)
    sample = x if fit is None else x[np.asarray(fit, bool)]
    p1, p2 = q / 2.5, q
    lo, hi = np.quantile(sample, p1, axis=0), np.quantile(sample, p2, axis=0)
    beta = np.maximum((hi - lo) / (_gumbel_g(p2) - _gumbel_g(p1)), min_beta)
    mu = hi - beta * _gumbel_g(p2)
    u = np.clip((x - mu) / beta, -50.0, 700.0)
    sf = -np.expm1(-np.exp(-u))  # P(X > x), accurate in the far tail
    with np.errstate(divide="ignore"):
        z = -ndtri(np.clip(sf, 1e-300, 1.0))
    return np.where(sf <= 1e-300, 37.5, z)
