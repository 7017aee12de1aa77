"""Stripmap acquisition geometry shared by the simulator, focusing, RFI mapping and quality analysis.

Conventions (Cumming & Wong): for a target at closest-approach range ``R0`` the beam points at the squint angle
``theta`` with ``sin(theta) = lambda f_dc / (2 V)``; the beam centre crosses the target at
``eta_c = -R0 tan(theta) / V`` relative to its zero-Doppler time. All quantities in SI units.
"""

from __future__ import annotations

import math

from .errors import InputError


def squint_angle(doppler_centroid: float, wavelength: float, velocity: float) -> float:
    """Squint angle theta [rad] from the Doppler centroid [Hz]: ``sin(theta) = lambda f_dc / (2 V)``."""
    s = wavelength * doppler_centroid / (2.0 * velocity)
    if abs(s) >= 1.0:
        raise InputError(
            f"{doppler_centroid} Hz exceeds 2V/lambda = {2.0 * velocity / wavelength:.6g} Hz", where="doppler_centroid"
        )
    return math.asin(s)


def beam_centre_offset(r0: float, doppler_centroid: float, wavelength: float, velocity: float) -> float:
    """Beam-centre crossing time relative to zero-Doppler time, ``eta_c = -R0 tan(theta) / V`` [s]."""
    return -r0 * math.tan(squint_angle(doppler_centroid, wavelength, velocity)) / velocity


def antenna_doppler_bandwidth(
    antenna_length: float, velocity: float, doppler_centroid: float, wavelength: float
) -> float:
    """Doppler bandwidth of the two-way 3 dB azimuth beam, ``B_a = 0.886 * 2 V cos(theta) / L_a`` [Hz]."""
    theta = squint_angle(doppler_centroid, wavelength, velocity)
    return 0.886 * 2.0 * velocity * math.cos(theta) / antenna_length


def azimuth_fm_rate(r0: float, doppler_centroid: float, wavelength: float, velocity: float) -> float:
    """Azimuth FM rate at the beam centre [Hz/s] (magnitude) for closest-approach range ``R0``.

    ``Ka = 2 V**2 cos(theta)**2 / (lambda R(eta_c))`` with the beam-centre range ``R(eta_c) = R0 / cos(theta)``,
    i.e. ``2 V**2 cos(theta)**3 / (lambda R0)``.
    """
    theta = squint_angle(doppler_centroid, wavelength, velocity)
    return 2.0 * velocity**2 * math.cos(theta) ** 3 / (wavelength * r0)
