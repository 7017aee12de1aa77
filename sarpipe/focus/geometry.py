"""Sensor and grid quantities the focusing steps share, derived once from the dataset attributes.

Units: SI throughout (Hz, s, m, m/s). The Doppler axis of an azimuth FFT is unwrapped around the Doppler
centroid: bin ``k`` stands for ``f_eta = f_dc + wrap(f_k - f_dc)``, ``wrap`` into ``[-PRF/2, PRF/2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from ..model import SPEED_OF_LIGHT, validate_attrs


@dataclass(frozen=True)
class Geometry:
    carrier_frequency: float  # f0 [Hz]
    range_sampling_rate: float  # fs [Hz]
    chirp_rate: float  # Kr [Hz/s], signed
    pulse_duration: float  # Tp [s]
    prf: float  # [Hz]
    velocity: float  # effective V [m/s]
    near_range: float  # slant range of sample 0 [m]

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], source: str | None = None) -> "Geometry":
        validate_attrs(attrs, source)
        return cls(*(float(attrs[k]) for k in (
            "carrier_frequency", "range_sampling_rate", "chirp_rate", "pulse_duration", "prf", "velocity", "near_range")))

    @property
    def wavelength(self) -> float:
        return SPEED_OF_LIGHT / self.carrier_frequency

    @property
    def range_spacing(self) -> float:
        """Slant-range sample spacing c / (2 fs) [m]."""
        return SPEED_OF_LIGHT / (2.0 * self.range_sampling_rate)

    @property
    def chirp_bandwidth(self) -> float:
        return abs(self.chirp_rate) * self.pulse_duration

    def slant_range(self, n_range: int) -> np.ndarray:
        return self.near_range + np.arange(n_range) * self.range_spacing

    def doppler_frequencies(self, n_azimuth: int, doppler_centroid: float) -> np.ndarray:
        """Unwrapped Doppler frequency [Hz] of each azimuth-FFT bin, within +-PRF/2 of the centroid."""
        f_k = np.fft.fftfreq(n_azimuth, d=1.0 / self.prf)
        return doppler_centroid + np.mod(f_k - doppler_centroid + self.prf / 2.0, self.prf) - self.prf / 2.0

    def migration_factor(self, f_eta: np.ndarray) -> np.ndarray:
        """D(f_eta) = sqrt(1 - (lambda f_eta / 2V)^2); raises InputError when the Doppler band exceeds 2V/lambda."""
        x = self.wavelength * np.asarray(f_eta, dtype=np.float64) / (2.0 * self.velocity)
        if np.any(np.abs(x) >= 0.999):
            raise InputError(
                f"the processed Doppler band (up to {np.max(np.abs(f_eta)):.6g} Hz) reaches 2V/lambda = "
                f"{2 * self.velocity / self.wavelength:.6g} Hz; check prf, velocity, carrier_frequency and doppler_centroid",
                where="attribute 'prf'")
        return np.sqrt(1.0 - x * x)


def check_azimuth_grid(azimuth_time: np.ndarray, prf: float, source: str | None = None) -> None:
    """The azimuth FFT assumes pulses evenly spaced by 1/PRF; raise InputError naming the coordinate if not."""
    t = np.asarray(azimuth_time, dtype=np.float64)
    if t.size > 1:
        step = np.diff(t)
        if not np.allclose(step, 1.0 / prf, rtol=1e-6, atol=1e-9):
            where = f"{source}: coordinate 'azimuth_time'" if source else "coordinate 'azimuth_time'"
            raise InputError(f"pulses must be evenly spaced by 1/prf = {1 / prf:.9g} s (found steps "
                             f"{step.min():.9g}..{step.max():.9g} s)", where=where)
