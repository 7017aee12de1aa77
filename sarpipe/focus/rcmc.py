"""Range cell migration correction (RCMC) in the range-Doppler domain.

A target at closest range R0 sits, at Doppler frequency f_eta, at range R0 / D(f_eta) with
D = sqrt(1 - (lambda f_eta / 2V)^2). RCMC therefore makes output bin R read the input at R / D(f_eta),
i.e. ``scale_minus_one = 1/D - 1``; the inverse (used by defocus) reads at R * D (``D - 1``).

Interpolator: a Kaiser-windowed sinc, normalised to unit DC gain, with taps at ``i0 - T/2 + 1 .. i0 + T/2``
for a source position ``i0 + frac``. Its tap count T (16, 24, 32, 48 or 64) and Kaiser beta are chosen from the
signal band ``nu_max = B / (2 fs)`` (cycles per sample): the fewest taps whose worst passband error up to
``nu_max`` stays below ``RCMC_TOLERANCE`` (beta minimising that error). The kernel is precomputed as, per tap,
a degree-8 polynomial in ``u = 2 frac - 1`` (Chebyshev fit; within 2e-7 of the exact weights, i.e. a table of
unlimited fractional resolution), so the kernels evaluate it in SIMD loops without table look-ups.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.polynomial import chebyshev

RCMC_TOLERANCE = 1e-3
TAP_CHOICES = (16, 24, 32, 48, 64)
POLY_DEGREE = 8  # the kernels unroll exactly this degree


def sinc_weights(fraction: np.ndarray, n_taps: int, beta: float) -> np.ndarray:
    """Normalised windowed-sinc weights (float64, shape (len(fraction), n_taps)) for source positions
    ``i0 + fraction``; tap t sits at ``i0 - n_taps/2 + 1 + t``."""
    d = np.asarray(fraction, dtype=np.float64)[:, None] + (n_taps // 2 - 1) - np.arange(n_taps)[None, :]
    w = np.sinc(d) * np.i0(beta * np.sqrt(np.clip(1.0 - (d / (n_taps / 2)) ** 2, 0.0, None))) / np.i0(beta)
    return w / w.sum(axis=1, keepdims=True)


def passband_error(n_taps: int, beta: float, nu_max: float) -> float:
    """Worst |H(nu) - exp(-j 2 pi nu frac)| over |nu| <= nu_max and fractions in [0, 1)."""
    fraction = np.linspace(0.0, 1.0, 33)[:-1]
    nu = np.linspace(0.0, nu_max, 33)
    d = fraction[:, None] + (n_taps // 2 - 1) - np.arange(n_taps)[None, :]
    w = sinc_weights(fraction, n_taps, beta)
    response = (w[:, :, None] * np.exp(-2j * np.pi * nu[None, None, :] * d[:, :, None])).sum(axis=1)
    return float(np.abs(response - 1.0).max())


@functools.lru_cache(maxsize=32)
def kernel_design(band_fraction: float, tolerance: float = RCMC_TOLERANCE) -> tuple[int, float, float]:
    """(n_taps, kaiser_beta, worst passband error) for a signal occupying ``band_fraction`` of the sampling rate."""
    nu_max = min(0.5, max(0.05, band_fraction / 2.0))
    best = (TAP_CHOICES[-1], 0.0, math.inf)
    for n_taps in TAP_CHOICES:
        err, beta = min((passband_error(n_taps, float(b), nu_max), float(b)) for b in np.arange(0.0, 20.01, 0.25))
        best = (n_taps, beta, err)
        if err <= tolerance:
            break
    return best


@functools.lru_cache(maxsize=16)
def sinc_polynomials(n_taps: int, beta: float) -> np.ndarray:
    """Per-tap coefficients (float32, shape (n_taps, POLY_DEGREE + 1), lowest power first) of the weights as
    polynomials in ``u = 2 frac - 1``; read-only."""
    fraction = np.linspace(0.0, 1.0, 2049)
    weights = sinc_weights(fraction, n_taps, beta)
    u = 2.0 * fraction - 1.0
    coeffs = np.empty((n_taps, POLY_DEGREE + 1))
    for t in range(n_taps):
        coeffs[t] = chebyshev.cheb2poly(chebyshev.chebfit(u, weights[:, t], POLY_DEGREE))
    out = coeffs.astype(np.float32)
    out.flags.writeable = False
    return out


def halo_bins(scale_minus_one: np.ndarray, max_range_bins: float, n_taps: int) -> int:
    """Range bins an output block needs on each side: the largest migration plus half the kernel."""
    shift = float(np.max(np.abs(scale_minus_one))) * max_range_bins if scale_minus_one.size else 0.0
    return int(math.ceil(shift)) + n_taps // 2 + 1
