"""Azimuth compression in the range-Doppler domain, range-dependent and hyperbolic (exact, not parabolic).

For Doppler bin k (unwrapped frequency f_eta) and range bin R the filter is
``W_a((f_eta - f_dc) / B_a) * exp(+j 4 pi f0 R (D(f_eta) - 1) / c) * exp(+j pi / 4)``.
Compared with the textbook ``exp(+j 4 pi f0 R D / c)`` (Cumming & Wong) it omits the Doppler-independent
factor ``exp(+j 4 pi f0 R / c)``: the azimuth focusing is identical, and a target keeps its phase
``exp(-j 4 pi R0 / lambda)`` (phase-preserving SLC) while the image spectrum stays at range baseband.
The processed Doppler band ``B_a`` (centred on f_dc) is the full PRF unless narrowed; bins outside get weight 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import SPEED_OF_LIGHT
from ..sensor import SensorParams
from ..stripmap import antenna_doppler_bandwidth
from .migration import doppler_frequencies, migration_factor
from .windows import Window

#: The azimuth signal is a down-chirp (phase -4 pi R(eta) / lambda); its spectrum carries a constant exp(-j pi/4)
#: (stationary phase), which the filter removes so that a focused target has phase exactly -4 pi R0 / lambda.
_POSP_PHASE = np.exp(1j * np.pi / 4)


@dataclass(frozen=True)
class AzimuthRows:
    """Per-Doppler-bin parameters of the RCMC/azimuth kernels (float64 arrays, one entry per azimuth-FFT bin)."""

    scale_minus_one: np.ndarray  # RCMC: input range = R * (1 + scale_minus_one)
    phase_rate: np.ndarray  # [rad/m], multiplies R
    gain: np.ndarray  # complex128: window weight times exp(+j pi/4) (or the inverse, for defocus)


def default_azimuth_bandwidth(sensor: SensorParams, doppler_centroid: float) -> float:
    """Processed Doppler bandwidth [Hz]: the sensor's ``azimuth_bandwidth`` when recorded (the simulator writes
    it), else the 3 dB Doppler band of the antenna ``0.886 * 2 V cos(theta) / L_a`` when ``antenna_length`` is
    known (``sin(theta) = lambda f_dc / 2V``), else the PRF; never more than the PRF."""
    if sensor.azimuth_bandwidth is not None:
        return min(sensor.prf, sensor.azimuth_bandwidth)
    if sensor.antenna_length is not None:
        return min(
            sensor.prf,
            antenna_doppler_bandwidth(sensor.antenna_length, sensor.velocity, doppler_centroid, sensor.wavelength),
        )
    return sensor.prf


def azimuth_rows(
    sensor: SensorParams,
    n_azimuth: int,
    doppler_centroid: float,
    window: Window,
    bandwidth: float,
    *,
    inverse: bool = False,
) -> AzimuthRows:
    """Parameters for focusing (``inverse=False``) or for undoing the focusing (``inverse=True``)."""
    f_eta = doppler_frequencies(sensor, n_azimuth, doppler_centroid)
    d = migration_factor(sensor, f_eta)
    weight = window((f_eta - doppler_centroid) / min(bandwidth, sensor.prf))
    rate = 4.0 * np.pi * sensor.carrier_frequency * (d - 1.0) / SPEED_OF_LIGHT
    if not inverse:
        return AzimuthRows(1.0 / d - 1.0, rate, weight * _POSP_PHASE)
    inv = np.zeros(weight.shape, dtype=np.complex128)
    usable = weight > 1e-6 * weight.max()
    inv[usable] = 1.0 / (weight[usable] * _POSP_PHASE)
    return AzimuthRows(d - 1.0, -rate, inv)
