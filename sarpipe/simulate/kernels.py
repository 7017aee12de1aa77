"""Numba kernel: add the raw echoes of point targets to a complex64 (azimuth, range) array.

Echo model (docs/design.md section 2), per target with closest-approach range ``R0``, zero-Doppler time ``eta0`` and
complex amplitude ``A``::

    s(tau, eta) = A w_a(eta) rect((tau - 2R/c) / Tp) exp(-j 4 pi R / lambda) exp(j pi Kr (tau - 2R/c)**2)

``w_a`` is the two-way azimuth pattern of :mod:`sarpipe.simulate.antenna` evaluated at the instantaneous
Doppler of the pulse. Inside a pulse the chirp phase is a quadratic in the sample index, advanced by complex
recurrences (two complex multiplications per sample; four interleaved chains of step 4 so they pipeline) and
re-anchored exactly every ``_RESYNC`` samples, which keeps the phase error far below float32 resolution.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..model import SPEED_OF_LIGHT as C

_RESYNC = 256


@numba.njit(nogil=True, cache=True, inline="always")
def _pattern_weight(t, r0, velocity, wavelength, pattern, antenna_length, theta, doppler_centroid, bandwidth):
    rng = math.sqrt(r0 * r0 + velocity * velocity * t * t)
    s = -velocity * t / rng  # sin(phi), phi the look angle in the slant plane
    if pattern == 0:
        f = 2.0 * velocity * s / wavelength
        return 1.0 if abs(f - doppler_centroid) <= 0.5 * bandwidth else 0.0
    u = antenna_length * math.sin(math.asin(s) - theta) / wavelength
    if abs(u) >= 1.0:
        return 0.0
    if u == 0.0:
        return 1.0
    x = math.pi * u
    v = math.sin(x) / x
    return v * v


@numba.njit(nogil=True, cache=True, inline="always")
def _anchor(x, phase_c, a, chirp_rate, dt):
    """Exact sample value at chirp time x and its phase step to x + 4 dt (re, im pairs)."""
    ph = phase_c + math.pi * chirp_rate * x * x
    dph = math.pi * chirp_rate * (8.0 * x * dt + 16.0 * dt * dt)
    return (
        a.real * math.cos(ph) - a.imag * math.sin(ph),
        a.real * math.sin(ph) + a.imag * math.cos(ph),
        math.cos(dph),
        math.sin(dph),
    )


@numba.njit(nogil=True, cache=True, parallel=True)
def add_point_echoes(
    out,
    eta,
    tau0,
    fs,
    wavelength,
    chirp_rate,
    pulse_duration,
    velocity,
    r0,
    eta0,
    amplitude,
    carrier_phase,
    t_lo,
    t_hi,
    pattern,
    antenna_length,
    theta,
    doppler_centroid,
    bandwidth,
):
    """Add point-target echoes into ``out`` (complex64, (n_pulses, n_samples)) in place.

    eta: azimuth time of each pulse [s]; tau0: two-way fast time of sample 0 [s]; fs [Hz]; wavelength [m];
    chirp_rate [Hz/s]; pulse_duration [s]; velocity [m/s]. Per target: r0 [m], eta0 [s], complex amplitude,
    carrier_phase = (-4 pi R0 / lambda) mod 2 pi [rad], and t_lo/t_hi [s], a superset of the illuminated
    interval relative to eta0 (the pattern is evaluated exactly per pulse). pattern: 0 rect, 1 sinc2;
    theta: squint [rad]; doppler_centroid and bandwidth [Hz] (rect band).
    """
    n_az, n_rg = out.shape
    dt = 1.0 / fs
    half = 0.5 * pulse_duration
    # second difference of the chirp phase over a step of 4 samples: 2 pi Kr (4 dt)^2
    qr, qi = math.cos(32.0 * math.pi * chirp_rate * dt * dt), math.sin(32.0 * math.pi * chirp_rate * dt * dt)
    for i in numba.prange(n_az):
        for k in range(r0.shape[0]):
            t = eta[i] - eta0[k]
            if t < t_lo[k] or t > t_hi[k]:
                continue
            w = _pattern_weight(
                t, r0[k], velocity, wavelength, pattern, antenna_length, theta, doppler_centroid, bandwidth
            )
            if w == 0.0:
                continue
            vt2 = velocity * velocity * t * t
            d_r = vt2 / (math.sqrt(r0[k] * r0[k] + vt2) + r0[k])  # R - R0 without cancellation
            # fast time of sample 0 relative to the echo delay, formed so that the large terms cancel first
            x_base = (tau0 - 2.0 * r0[k] / C) - 2.0 * d_r / C
            j0 = max(0, int(math.ceil((-half - x_base) * fs)))
            j1 = min(n_rg - 1, int(math.floor((half - x_base) * fs)))
            if j1 < j0:
                continue
            # guard the rect edges against rounding of the ceil/floor above
            while j0 <= j1 and abs(x_base + j0 * dt) > half:
                j0 += 1
            while j1 >= j0 and abs(x_base + j1 * dt) > half:
                j1 -= 1
            a = amplitude[k] * w
            phase_c = carrier_phase[k] - 4.0 * math.pi * d_r / wavelength
            row = out[i]
            j = j0
            while j <= j1:
                # four interleaved recurrences (samples j+m, step 4) so the multiplications pipeline
                stop = min(j1, j + _RESYNC - 1)
                x = x_base + j * dt
                z0r, z0i, s0r, s0i = _anchor(x, phase_c, a, chirp_rate, dt)
                z1r, z1i, s1r, s1i = _anchor(x + dt, phase_c, a, chirp_rate, dt)
                z2r, z2i, s2r, s2i = _anchor(x + 2 * dt, phase_c, a, chirp_rate, dt)
                z3r, z3i, s3r, s3i = _anchor(x + 3 * dt, phase_c, a, chirp_rate, dt)
                n4 = (stop - j + 1) // 4
                for t in range(n4):
                    b = j + 4 * t
                    row[b] += np.complex64(complex(z0r, z0i))
                    row[b + 1] += np.complex64(complex(z1r, z1i))
                    row[b + 2] += np.complex64(complex(z2r, z2i))
                    row[b + 3] += np.complex64(complex(z3r, z3i))
                    z0r, z0i = z0r * s0r - z0i * s0i, z0r * s0i + z0i * s0r
                    z1r, z1i = z1r * s1r - z1i * s1i, z1r * s1i + z1i * s1r
                    z2r, z2i = z2r * s2r - z2i * s2i, z2r * s2i + z2i * s2r
                    z3r, z3i = z3r * s3r - z3i * s3i, z3r * s3i + z3i * s3r
                    s0r, s0i = s0r * qr - s0i * qi, s0r * qi + s0i * qr
                    s1r, s1i = s1r * qr - s1i * qi, s1r * qi + s1i * qr
                    s2r, s2i = s2r * qr - s2i * qi, s2r * qi + s2i * qr
                    s3r, s3i = s3r * qr - s3i * qi, s3r * qi + s3i * qr
                b = j + 4 * n4
                rest = stop - b + 1  # 0..3 samples, each the next value of its chain
                if rest > 0:
                    row[b] += np.complex64(complex(z0r, z0i))
                if rest > 1:
                    row[b + 1] += np.complex64(complex(z1r, z1i))
                if rest > 2:
                    row[b + 2] += np.complex64(complex(z2r, z2i))
                j = stop + 1
    return out
