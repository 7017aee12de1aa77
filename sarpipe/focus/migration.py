"""Sensor and grid quantities the focusing steps share, derived once from the dataset attributes.

Units: SI throughout (Hz, s, m, m/s). The Doppler axis of an azimuth FFT is unwrapped around the Doppler
centroid: bin ``k`` stands for ``f_eta = f_dc + wrap(f_k - f_dc)``, ``wrap`` into ``[-PRF/2, PRF/2)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np
import xarray as xr

from .. import model
from ..errors import InputError


@dataclass(frozen=True)
class Geometry:
    carrier_frequency: float  # f0 [Hz]
    range_sampling_rate: float  # fs [Hz]
    chirp_rate: float  # Kr [Hz/s], signed
    pulse_duration: float  # Tp [s]
    prf: float  # [Hz]
    velocity: float  # effective V [m/s]
    near_range: float  # slant range of sample 0 [m]

    # The field names are the contract's attribute names, so vars(self) is an attrs mapping for the model helpers.

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], source: str | None = None) -> "Geometry":
        model.validate_attrs(attrs, source)
        return cls(**{f.name: float(attrs[f.name]) for f in fields(cls)})

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, source: str | None = None) -> "Geometry":
        """Geometry of a raw or SLC dataset whose pulses are evenly spaced by 1/PRF (the azimuth FFT assumes it);
        raises InputError naming the attribute or the ``azimuth_time`` coordinate otherwise."""
        geom = cls.from_attrs(ds.attrs, source)
        t = np.asarray(ds["azimuth_time"].values, dtype=np.float64)
        if t.size > 1:
            step = np.diff(t)
            if not np.allclose(step, 1.0 / geom.prf, rtol=1e-6, atol=1e-9):
                where = f"{source}: coordinate 'azimuth_time'" if source else "coordinate 'azimuth_time'"
                raise InputError(f"pulses must be evenly spaced by 1/prf = {1 / geom.prf:.9g} s (found steps "
                                 f"{step.min():.9g}..{step.max():.9g} s)", where=where)
        return geom

    @property
    def wavelength(self) -> float:
        """Carrier wavelength [m]."""
        return model.wavelength(vars(self))

    @property
    def range_spacing(self) -> float:
        """Slant-range sample spacing c / (2 fs) [m]."""
        return model.range_pixel_spacing(vars(self))

    @property
    def chirp_bandwidth(self) -> float:
        """|Kr| Tp [Hz]."""
        return model.chirp_bandwidth(vars(self))

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

