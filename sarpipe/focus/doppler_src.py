"""Secondary range compression per Doppler bin: the exact range-frequency phase of the 2-D spectrum, as a short
range FIR per Doppler row (applied by the RCMC kernel before the migration is corrected).

Physics. After range compression a point target at closest range ``R0`` has the 2-D spectrum phase
``-4 pi R0 / c sqrt((f0 + f_tau)^2 - (c f_eta / 2V)^2)`` (Cumming & Wong eq. 5.44 / 6.19). Its expansion in the
range frequency ``f_tau`` is ``f0 D + f_tau / D + ...`` with ``D = D(f_eta)``: the constant is the azimuth phase
(the azimuth filter), the linear term the migration ``R0 / D`` (RCMC); everything else,
``Phi(f_tau, f_eta) = 4 pi R / c [sqrt((f0 + f_tau)^2 - (c f_eta / 2V)^2) - f0 D - f_tau / D]`` (compensated with
``exp(+j Phi)``), is the range-azimuth coupling. Its quadratic term is ``-pi f_tau^2 / Ksrc(f_eta)`` with the SRC
rate of :func:`~.range_compression.secondary_range_compression_rate`; the plain RDA removes it at the centroid
only. At a large squint in L band, Ksrc changes by tens of % over the processed band and the higher terms matter
(at -6.2 PRF, 1.27 GHz, 28 MHz: 31 rad at the band edge, +-4 rad between the band's ends), which shifts the azimuth
response by half a pixel and widens range and azimuth by 9-13 %. Here ``Phi`` is removed exactly for every
Doppler bin, at the reference (mid-swath) range ``R_ref``; what is left at range ``R`` is
``(R - R_ref) / R_ref`` of it.

Implementation. ``Phi`` at one Doppler bin is a range filter whose impulse response is confined to its group
delay ``dPhi/df_tau / 2 pi`` over ``|f_tau| <= fs / 2``: ``K`` samples each side (plus a margin), a
``2K + 1``-tap FIR, the same taps in memory and in streaming tasks (which read ``K`` more halo bins), so both paths
give the same image. It replaces the single-rate SRC when that one leaves more than :data:`MAX_SINGLE_RATE_ERROR`
rad of the exact phase within the chirp band and the processed Doppler band.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..model import SPEED_OF_LIGHT
from ..sensor import SensorParams
from .migration import migration_factor

#: Largest phase error [rad] of the single-rate SRC (at the centroid) over the chirp band and the processed
#: Doppler band before the per-Doppler FIR is used instead: pi / 4, the quadratic phase error usually taken as
#: negligible (IRW +1 %). The wide-angle airborne L-band scenes of the tests stay below (0.57 rad); L band at
#: 2.3 PRF is above (1.5 rad), C band up to 6.2 PRF below (0.23 rad).
MAX_SINGLE_RATE_ERROR = math.pi / 4
#: Extra taps each side beyond the largest group delay (the Fresnel ripples of the filter's response).
TAP_MARGIN = 48
#: Frequencies of the taps' design grid over [-fs/2, fs/2).
DESIGN_LENGTH = 512
#: Least-squares weight of the frequencies outside the chirp band (the plain matched filter keeps them, weakly).
OUT_OF_BAND_WEIGHT = 0.05


def coupling_phase(sensor: SensorParams, f_tau: np.ndarray, f_eta: np.ndarray, slant_range: float) -> np.ndarray:
    """``Phi(f_tau, f_eta)`` [rad] at ``slant_range`` [m] (module docstring), broadcast over ``f_tau`` [Hz, range
    baseband frequency] and ``f_eta`` [Hz, absolute Doppler]; computed as a difference that keeps its digits."""
    f0, c = sensor.carrier_frequency, SPEED_OF_LIGHT
    d = migration_factor(sensor, f_eta)
    a2 = (c * np.asarray(f_eta, dtype=np.float64) / (2.0 * sensor.velocity)) ** 2
    f = np.asarray(f_tau, dtype=np.float64)
    # sqrt((f0 + f)^2 - a2) - f0 D - f / D, with sqrt(u) - sqrt(v) = (u - v) / (sqrt(u) + sqrt(v)), u - v = 2 f0 f + f^2
    g = np.sqrt((f0 + f) ** 2 - a2)
    first = (2.0 * f0 * f + f * f) / (g + f0 * d)  # g - f0 D
    return 4.0 * np.pi * slant_range / c * (first - f / d)


def single_rate_error(sensor: SensorParams, f_eta: np.ndarray, slant_range: float, src_rate: float | None) -> float:
    """Largest ``|Phi - (-pi f^2 / Ksrc)|`` [rad] over the chirp band and the Doppler frequencies ``f_eta``
    (the error the single-rate SRC at ``src_rate`` leaves; ``src_rate`` None: no SRC at all)."""
    f = np.linspace(-0.5, 0.5, 65)[None, :] * sensor.chirp_bandwidth
    exact = coupling_phase(sensor, f, np.asarray(f_eta, dtype=np.float64)[:, None], slant_range)
    single = 0.0 if src_rate is None else -np.pi * f * f / src_rate
    return float(np.max(np.abs(exact - single))) if exact.size else 0.0


def fir_half_length(sensor: SensorParams, f_eta: np.ndarray, slant_range: float) -> int:
    """K: the largest group delay of ``Phi`` over ``|f_tau| <= fs / 2`` and ``f_eta`` [samples], plus TAP_MARGIN."""
    fs = sensor.range_sampling_rate
    f = np.linspace(-0.5, 0.5, 257) * fs
    phase = coupling_phase(sensor, f[None, :], np.asarray(f_eta, dtype=np.float64)[:, None], slant_range)
    delay = np.diff(phase, axis=1) / np.diff(f)[None, :] / (2.0 * np.pi)  # [s]
    return int(math.ceil(float(np.max(np.abs(delay))) * fs)) + TAP_MARGIN


@functools.lru_cache(maxsize=8)
def _normal_matrix_inverse(band_fraction: float, half: int) -> np.ndarray:
    """Inverse of the least-squares normal matrix ``A^H A`` of the taps' design (A: the weighted DFT of taps
    -K..K on DESIGN_LENGTH frequencies over [-fs/2, fs/2)); depends on the chirp band / fs and K only."""
    u = np.arange(DESIGN_LENGTH) / DESIGN_LENGTH - 0.5
    weight = np.where(np.abs(u) <= 0.5 * band_fraction, 1.0, OUT_OF_BAND_WEIGHT)
    n = np.arange(-half, half + 1)
    basis = np.exp(-2j * np.pi * u[:, None] * n[None, :]) * weight[:, None]
    out = np.linalg.inv(basis.conj().T @ basis)
    out.flags.writeable = False
    return out


def doppler_src_taps(
    sensor: SensorParams, f_eta: np.ndarray, active: np.ndarray, slant_range: float, half: int, *, inverse: bool
) -> np.ndarray:
    """Taps ``h[k, n + K]``, n = -K..K (complex64, (len(f_eta), 2K + 1)) of ``exp(+j Phi)`` for every Doppler bin
    (``exp(-j Phi)`` with ``inverse``) for the echoes found at ``slant_range`` [m] before RCMC (closest range
    ``slant_range * D(f_eta)``), zero where ``active`` is False, so that ``y[j] = sum_n h[n] x[j - n]``
    applies the phase: weighted least squares over DESIGN_LENGTH frequencies, weight 1 within the chirp band
    (where the signal is) and OUT_OF_BAND_WEIGHT beyond it (a cut impulse response would leave Gibbs ripples of a
    few %). The right-hand sides ``A^H W^2 b`` are one inverse FFT per row."""
    fs = sensor.range_sampling_rate
    u = np.arange(DESIGN_LENGTH) / DESIGN_LENGTH - 0.5
    weight2 = np.where(np.abs(u) <= 0.5 * sensor.chirp_bandwidth / fs, 1.0, OUT_OF_BAND_WEIGHT) ** 2
    f_eta = np.asarray(f_eta, dtype=np.float64)
    taps = np.zeros((f_eta.size, 2 * half + 1), dtype=np.complex64)
    rows = np.flatnonzero(active)
    if rows.size:
        closest = slant_range * migration_factor(sensor, f_eta[rows])
        phase = coupling_phase(sensor, u[None, :] * fs, f_eta[rows, None], 1.0) * closest[:, None]
        wanted = np.exp(-1j * phase if inverse else 1j * phase) * weight2[None, :]
        # sum_i w_i^2 b_i exp(+j 2 pi u_i n), u_i = i / L - 1/2: (-1)^n L ifft(w^2 b)[n mod L]
        n = np.arange(-half, half + 1)
        rhs = np.fft.ifft(wanted, axis=1)[:, n % DESIGN_LENGTH] * (DESIGN_LENGTH * (-1.0) ** n)[None, :]
        taps[rows] = rhs @ _normal_matrix_inverse(float(sensor.chirp_bandwidth / fs), half).T
    return taps
