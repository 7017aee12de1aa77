"""The simulator's azimuth antenna: illuminated Doppler band, time of a Doppler frequency, two-way antenna pattern.

Conventions (Cumming & Wong): for a target at closest-approach range ``R0`` and zero-Doppler time ``eta0``,
``R(eta) = sqrt(R0**2 + V**2 (eta - eta0)**2)`` and the instantaneous Doppler is
``f(eta) = -2 V**2 (eta - eta0) / (lambda R(eta)) = 2 V sin(phi) / lambda`` (positive before closest approach).
The beam points at the squint angle ``theta`` with ``sin(theta) = lambda f_dc / (2 V)``; the beam centre crosses
the target at ``eta_c = -R0 tan(theta) / V`` relative to ``eta0``.

Azimuth antenna patterns (two-way amplitude, as a function of Doppler, so range-independent):
- ``rect``: 1 inside the Doppler band ``|f - f_dc| <= B_a / 2`` with ``B_a = 0.886 * 2 V cos(theta) / L_a``
  (the 3 dB two-way beamwidth mapped to Doppler), 0 outside. The processed azimuth bandwidth is exactly ``B_a``.
- ``sinc2``: ``sinc(L_a sin(psi) / lambda)**2`` with ``psi = phi - theta`` the angle off boresight, kept over
  the main lobe (first nulls at ``L_a sin(psi) / lambda = +-1``) and zero beyond.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..sensor import SensorParams
from ..stripmap import antenna_doppler_bandwidth, squint_angle

PATTERNS = ("rect", "sinc2")
PATTERN_CODES = {"rect": 0, "sinc2": 1}


def doppler_band(
    pattern: str, antenna_length: float, velocity: float, doppler_centroid: float, wavelength: float
) -> tuple[float, float]:
    """Lowest and highest Doppler frequency [Hz] the pattern illuminates."""
    if pattern == "rect":
        ba = antenna_doppler_bandwidth(antenna_length, velocity, doppler_centroid, wavelength)
        return doppler_centroid - ba / 2.0, doppler_centroid + ba / 2.0
    if pattern == "sinc2":
        theta = squint_angle(doppler_centroid, wavelength, velocity)
        half = math.asin(min(1.0, wavelength / antenna_length))
        return (
            2.0 * velocity * math.sin(theta - half) / wavelength,
            2.0 * velocity * math.sin(theta + half) / wavelength,
        )
    raise ValueError(f"unknown antenna pattern {pattern!r} (expected one of {PATTERNS})")


def time_of_doppler(f: np.ndarray | float, r0: float, velocity: float, wavelength: float) -> np.ndarray | float:
    """Time relative to zero-Doppler [s] at which a target at ``R0`` is seen at Doppler ``f`` [Hz]."""
    s = np.asarray(wavelength * np.asarray(f, dtype=np.float64) / (2.0 * velocity))
    return -r0 * s / (velocity * np.sqrt(1.0 - s * s))


def pattern_of_doppler(
    f: np.ndarray,
    pattern: str,
    antenna_length: float,
    velocity: float,
    doppler_centroid: float,
    wavelength: float,
) -> np.ndarray:
    """Two-way azimuth antenna amplitude (peak 1) at Doppler frequencies ``f`` [Hz] (physical, not aliased)."""
    f = np.asarray(f, dtype=np.float64)
    if pattern == "rect":
        ba = antenna_doppler_bandwidth(antenna_length, velocity, doppler_centroid, wavelength)
        return (np.abs(f - doppler_centroid) <= ba / 2.0).astype(np.float64)
    if pattern == "sinc2":
        theta = squint_angle(doppler_centroid, wavelength, velocity)
        s = np.clip(wavelength * f / (2.0 * velocity), -1.0, 1.0)
        u = antenna_length * np.sin(np.arcsin(s) - theta) / wavelength
        return np.where(np.abs(u) < 1.0, np.sinc(u) ** 2, 0.0)
    raise ValueError(f"unknown antenna pattern {pattern!r} (expected one of {PATTERNS})")


def synthetic_aperture_pulses(sensor: SensorParams, r0: float, pattern: str = "rect") -> float:
    """Number of pulses in the synthetic aperture of a target at ``R0`` [m] (illuminated time x PRF); needs the
    sensor's ``antenna_length``."""
    if sensor.antenna_length is None:
        raise InputError("the antenna length is needed for the synthetic aperture", where="attribute 'antenna_length'")
    lam = sensor.wavelength
    f_dc = sensor.doppler_centroid if sensor.doppler_centroid is not None else 0.0
    f_lo, f_hi = doppler_band(pattern, sensor.antenna_length, sensor.velocity, f_dc, lam)
    t_lo = time_of_doppler(f_hi, r0, sensor.velocity, lam)
    t_hi = time_of_doppler(f_lo, r0, sensor.velocity, lam)
    return float(t_hi - t_lo) * sensor.prf
