"""The sensor parameters of a raw or SLC dataset as one validated value, built once and passed around.

The fields are the data contract's attributes (:data:`sarpipe.model.REQUIRED_ATTRS` and ``OPTIONAL_ATTRS``) with
the same names, in SI units, so :meth:`SensorParams.as_attrs` gives them back as a contract mapping. Derived
quantities (wavelength, chirp bandwidth, pixel spacings) are properties; the squint-dependent stripmap formulas
live in :mod:`sarpipe.stripmap`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import xarray as xr

from .errors import InputError
from .model import SPEED_OF_LIGHT, azimuth_pixel_spacing, range_pixel_spacing, validate_attrs

__all__ = ["SensorParams"]


def _usable_bandwidth(value: Any) -> float | None:
    """A recorded Doppler bandwidth [Hz] when it is a positive finite number, else None (ignored)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


@dataclass(frozen=True)
class SensorParams:
    """Sensor and acquisition parameters of one scene, SI units."""

    carrier_frequency: float  # f0 [Hz]
    range_sampling_rate: float  # fs [Hz]
    chirp_rate: float  # Kr [Hz/s], signed
    pulse_duration: float  # Tp [s]
    prf: float  # pulse repetition frequency [Hz]
    velocity: float  # effective platform velocity V [m/s]
    near_range: float  # slant range of fast-time sample 0 [m]
    doppler_centroid: float | None = None  # f_dc [Hz]; None: not known (focusing estimates it)
    antenna_length: float | None = None  # azimuth antenna length L_a [m]
    look_side: str | None = None  # 'right' | 'left'
    sensor: str | None = None  # free text
    #: Doppler band of the antenna recorded by the simulator [Hz] (attribute ``azimuth_bandwidth``); focusing
    #: processes this band by default. Only a positive finite number is kept.
    azimuth_bandwidth: float | None = None

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], source: str | os.PathLike | None = None) -> SensorParams:
        """Validate ``attrs`` against the contract (:func:`sarpipe.model.validate_attrs`, raising InputError
        naming ``source`` and the attribute) and read them."""
        validate_attrs(attrs, source)

        def optional_float(key: str) -> float | None:
            value = attrs.get(key)
            return None if value is None else float(value)

        return cls(
            carrier_frequency=float(attrs["carrier_frequency"]),
            range_sampling_rate=float(attrs["range_sampling_rate"]),
            chirp_rate=float(attrs["chirp_rate"]),
            pulse_duration=float(attrs["pulse_duration"]),
            prf=float(attrs["prf"]),
            velocity=float(attrs["velocity"]),
            near_range=float(attrs["near_range"]),
            doppler_centroid=optional_float("doppler_centroid"),
            antenna_length=optional_float("antenna_length"),
            look_side=attrs.get("look_side"),
            sensor=None if attrs.get("sensor") is None else str(attrs["sensor"]),
            azimuth_bandwidth=_usable_bandwidth(attrs.get("azimuth_bandwidth")),
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, source: str | os.PathLike | None = None) -> SensorParams:
        """Parameters of a raw or SLC dataset whose pulses are evenly spaced by 1/PRF (the azimuth FFT assumes
        it); raises InputError naming the attribute or the ``azimuth_time`` coordinate otherwise."""
        sensor = cls.from_attrs(ds.attrs, source)
        t = np.asarray(ds["azimuth_time"].values, dtype=np.float64)
        if t.size > 1:
            step = np.diff(t)
            if not np.allclose(step, 1.0 / sensor.prf, rtol=1e-6, atol=1e-9):
                where = f"{os.fspath(source)}: coordinate 'azimuth_time'" if source else "coordinate 'azimuth_time'"
                raise InputError(
                    f"pulses must be evenly spaced by 1/prf = {1 / sensor.prf:.9g} s (found steps "
                    f"{step.min():.9g}..{step.max():.9g} s)",
                    where=where,
                )
        return sensor

    def as_attrs(self) -> dict[str, Any]:
        """The parameters as contract attributes (optional ones left out when unknown)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @property
    def wavelength(self) -> float:
        """Carrier wavelength c / f0 [m]."""
        return SPEED_OF_LIGHT / self.carrier_frequency

    @property
    def chirp_bandwidth(self) -> float:
        """Transmitted chirp bandwidth |Kr| Tp [Hz]."""
        return abs(self.chirp_rate) * self.pulse_duration

    @property
    def range_pixel_spacing(self) -> float:
        """Slant-range sample spacing c / (2 fs) [m]."""
        return range_pixel_spacing(self.as_attrs())

    @property
    def azimuth_pixel_spacing(self) -> float:
        """Azimuth line spacing along the track V / PRF [m] (effective velocity)."""
        return azimuth_pixel_spacing(self.as_attrs())
