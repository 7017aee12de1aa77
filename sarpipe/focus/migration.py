"""Range-Doppler quantities of the focusing (and of the simulator's extended scenes): the unwrapped Doppler axis of
an azimuth FFT and the range-migration factor D(f_eta).

Units: SI throughout (Hz, m, m/s). Bin ``k`` of an azimuth FFT stands for ``f_eta = f_dc + wrap(f_k - f_dc)``,
``wrap`` into ``[-PRF/2, PRF/2)``; a target at closest range R0 sits at range ``R0 / D(f_eta)`` there, with
``D = sqrt(1 - (lambda f_eta / 2V)^2)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..sensor import SensorParams


def doppler_frequencies(sensor: SensorParams, n_azimuth: int, doppler_centroid: float) -> np.ndarray:
    """Unwrapped Doppler frequency [Hz] of each azimuth-FFT bin, within +-PRF/2 of the centroid."""
    f_k = np.fft.fftfreq(n_azimuth, d=1.0 / sensor.prf)
    return doppler_centroid + np.mod(f_k - doppler_centroid + sensor.prf / 2.0, sensor.prf) - sensor.prf / 2.0


def migration_factor(sensor: SensorParams, f_eta: np.ndarray) -> np.ndarray:
    """D(f_eta) = sqrt(1 - (lambda f_eta / 2V)^2); raises InputError when the Doppler band reaches 2V/lambda."""
    x = sensor.wavelength * np.asarray(f_eta, dtype=np.float64) / (2.0 * sensor.velocity)
    if np.any(np.abs(x) >= 0.999):
        raise InputError(
            f"the processed Doppler band (up to {np.max(np.abs(f_eta)):.6g} Hz) reaches 2V/lambda = "
            f"{2 * sensor.velocity / sensor.wavelength:.6g} Hz; check prf, velocity, carrier_frequency and doppler_centroid",
            where="attribute 'prf'",
        )
    return np.sqrt(1.0 - x * x)
