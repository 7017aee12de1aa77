"""The range-Doppler algorithm on in-memory arrays, and its exact inverse.

Focus: range compression -> azimuth FFT -> RCMC + azimuth compression (per Doppler row) -> azimuth IFFT.
Defocus: azimuth FFT -> azimuth decompression + inverse RCMC -> azimuth IFFT -> range decompression.
Both axes are processed circularly (FFT length = scene size; see :mod:`.range_compression` for the swath
edges); in azimuth the first and last half synthetic aperture therefore mix partial apertures of both scene ends.
complex64 throughout; FFTs by scipy.fft with ``workers`` threads, kernels by numba (parallel over Doppler rows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.fft

from ..errors import InputError
from ..model import last_record
from ..sensor import SensorParams
from ..stripmap import azimuth_fm_rate
from . import kernels
from .azimuth_compression import AzimuthRows, azimuth_rows, default_azimuth_bandwidth
from .doppler import doppler_from_lag_one
from .range_compression import (
    apply_range_filter,
    default_workers,
    range_fft_length,
    range_filter,
    range_inverse_filter,
    replica_half_length,
)
from .rcmc import halo_bins, kernel_design, sinc_polynomials
from .windows import Window, parse_window


@dataclass(frozen=True)
class FocusSettings:
    """What a focusing run used; stored in the SLC history so :func:`defocus` can undo exactly that."""

    range_window: Window
    azimuth_window: Window
    azimuth_bandwidth: float | None  # processed Doppler band [Hz], centred on the centroid
    doppler_centroid: float | None  # [Hz]; None: estimate from the data
    doppler_source: str = "estimated"  # "argument" | "attribute" | "estimated" | "history"

    def record(self, sensor: SensorParams, n_azimuth: int, n_range: int) -> dict[str, Any]:
        """History parameters (plain JSON values)."""
        m = replica_half_length(sensor)
        circular = range_fft_length(sensor, n_range) == n_range
        # azimuth samples a target needs at far range: processed band / Doppler rate
        far = sensor.near_range + (n_range - 1) * sensor.range_pixel_spacing
        doppler_rate = azimuth_fm_rate(far, float(self.doppler_centroid), sensor.wavelength, sensor.velocity)
        aperture = min(n_azimuth, int(math.ceil(self.azimuth_bandwidth / doppler_rate * sensor.prf)))
        taps, beta, _ = kernel_design(_band_fraction(sensor))
        return {
            "range_window": self.range_window.spec,
            "azimuth_window": self.azimuth_window.spec,
            "doppler_centroid": float(self.doppler_centroid),
            "doppler_centroid_source": self.doppler_source,
            "azimuth_bandwidth": float(self.azimuth_bandwidth),
            "range_bandwidth": float(sensor.chirp_bandwidth),
            "range_correlation": "circular" if circular else "linear",
            "rcmc_taps": taps,
            "rcmc_kaiser_beta": beta,
            "valid_range_margin": int(min(m, n_range)),
            "rcm_margin": int(min(n_range, azimuth_plan(sensor, n_azimuth, n_range, self, inverse=False).halo)),
            "valid_azimuth_margin": int(aperture // 2),
        }


def _band_fraction(sensor: SensorParams) -> float:
    return min(1.0, sensor.chirp_bandwidth / sensor.range_sampling_rate)


def resolve_settings(
    sensor: SensorParams,
    *,
    range_window: Any = "rect",
    azimuth_window: Any = "rect",
    doppler_centroid: float | None = None,
    azimuth_bandwidth: float | None = None,
) -> FocusSettings:
    """Parse windows and pick the Doppler centroid: argument, else the sensor's ``doppler_centroid``, else None
    (estimate later, then :func:`complete_settings`). ``azimuth_bandwidth`` None: see
    :func:`~.azimuth_compression.default_azimuth_bandwidth` (resolved once the centroid is known)."""
    rw = parse_window(range_window, where="range window")
    aw = parse_window(azimuth_window, where="azimuth window")
    if azimuth_bandwidth is not None and not (
        isinstance(azimuth_bandwidth, (int, float)) and math.isfinite(azimuth_bandwidth) and azimuth_bandwidth > 0
    ):
        raise InputError(f"must be a positive number of Hz, got {azimuth_bandwidth!r}", where="azimuth_bandwidth")
    if doppler_centroid is not None:
        if not (isinstance(doppler_centroid, (int, float)) and math.isfinite(doppler_centroid)):
            raise InputError(f"must be a finite number of Hz, got {doppler_centroid!r}", where="doppler_centroid")
        settings = FocusSettings(rw, aw, azimuth_bandwidth, float(doppler_centroid), "argument")
    elif sensor.doppler_centroid is not None:
        settings = FocusSettings(rw, aw, azimuth_bandwidth, sensor.doppler_centroid, "attribute")
    else:
        settings = FocusSettings(rw, aw, azimuth_bandwidth, None, "estimated")
    return complete_settings(settings, sensor)


def complete_settings(
    settings: FocusSettings, sensor: SensorParams, doppler_centroid: float | None = None
) -> FocusSettings:
    """Fill in an estimated centroid and, once the centroid is known, the default processed bandwidth."""
    if settings.doppler_centroid is None and doppler_centroid is not None:
        settings = replace(settings, doppler_centroid=float(doppler_centroid))
    if settings.doppler_centroid is not None and settings.azimuth_bandwidth is None:
        settings = replace(
            settings, azimuth_bandwidth=float(default_azimuth_bandwidth(sensor, settings.doppler_centroid))
        )
    elif settings.azimuth_bandwidth is not None:
        settings = replace(settings, azimuth_bandwidth=float(min(settings.azimuth_bandwidth, sensor.prf)))
    return settings


def settings_from_history(attrs: Mapping[str, Any], sensor: SensorParams, **overrides: Any) -> FocusSettings:
    """The settings of the last ``focus`` record in ``attrs['history']`` (defaults when there is none),
    with any non-None ``overrides`` (range_window, azimuth_window, doppler_centroid, azimuth_bandwidth) on top."""
    record = dict((last_record(attrs, "focus") or {}).get("params") or {})
    chosen = {
        "range_window": record.get("range_window", "rect"),
        "azimuth_window": record.get("azimuth_window", "rect"),
        "doppler_centroid": record.get("doppler_centroid"),
        "azimuth_bandwidth": record.get("azimuth_bandwidth"),
    }
    chosen.update({k: v for k, v in overrides.items() if v is not None})
    settings = resolve_settings(sensor, **chosen)
    if record.get("doppler_centroid") is not None and overrides.get("doppler_centroid") is None:
        settings = replace(settings, doppler_source="history")
    return settings


@dataclass(frozen=True)
class AzimuthPlan:
    rows: AzimuthRows
    halo: int
    poly: np.ndarray


def azimuth_plan(
    sensor: SensorParams, n_azimuth: int, n_range: int, settings: FocusSettings, *, inverse: bool
) -> AzimuthPlan:
    rows = azimuth_rows(
        sensor,
        n_azimuth,
        float(settings.doppler_centroid),
        settings.azimuth_window,
        settings.azimuth_bandwidth,
        inverse=inverse,
    )
    n_taps, beta, _ = kernel_design(_band_fraction(sensor))
    halo = halo_bins(rows.scale_minus_one, sensor.near_range / sensor.range_pixel_spacing + n_range, n_taps)
    return AzimuthPlan(rows, halo, sinc_polynomials(n_taps, beta))


def azimuth_block(
    data: np.ndarray,
    plan: AzimuthPlan,
    sensor: SensorParams,
    *,
    n_total: int,
    out_start: int,
    n_out: int,
    in_start: int,
    inverse: bool,
    workers: int | None = None,
    parallel: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Azimuth FFT, RCMC + azimuth (de)compression, azimuth IFFT of range-compressed ``data`` (n_azimuth, n_in).

    ``data`` is overwritten. Output columns are range bins out_start..out_start+n_out-1 (see the kernels for
    ``in_start``). With ``out=data`` (n_out == n_in == n_total) the whole scene is done in place.
    """
    workers = workers or default_workers()
    spec = scipy.fft.fft(data, axis=0, workers=workers, overwrite_x=True)
    if out is None:
        out = np.empty((data.shape[0], n_out), dtype=np.complex64)
    elif out is data:
        out = spec
    kernel = kernels.rcmc_azimuth if parallel else kernels.rcmc_azimuth_serial
    r = plan.rows
    kernel(
        spec,
        in_start,
        out,
        out_start,
        n_total,
        sensor.near_range,
        sensor.range_pixel_spacing,
        r.scale_minus_one,
        r.phase_rate,
        r.gain,
        plan.halo,
        plan.poly,
        inverse,
    )
    return scipy.fft.ifft(out, axis=0, workers=workers, overwrite_x=True)


def focus_array(
    echo: np.ndarray, sensor: SensorParams, settings: FocusSettings, *, workers: int | None = None
) -> tuple[np.ndarray, FocusSettings]:
    """Focus raw pulses (complex64 (n_azimuth, n_range)); returns the SLC (complex64) and the settings used
    (with the Doppler centroid filled in when it was estimated from the range-compressed data)."""
    n_az, n_rg = echo.shape
    n_fft = range_fft_length(sensor, n_rg)
    data, lag_one = apply_range_filter(echo, range_filter(sensor, n_fft, settings.range_window), workers=workers)
    settings = complete_settings(settings, sensor, doppler_from_lag_one(lag_one, sensor.prf))
    plan = azimuth_plan(sensor, n_az, n_rg, settings, inverse=False)
    slc = azimuth_block(
        data,
        plan,
        sensor,
        n_total=n_rg,
        out_start=0,
        n_out=n_rg,
        in_start=(-plan.halo) % n_rg,
        inverse=False,
        workers=workers,
        out=data,
    )
    return slc, settings


def defocus_array(
    slc: np.ndarray, sensor: SensorParams, settings: FocusSettings, *, workers: int | None = None
) -> np.ndarray:
    """Undo :func:`focus_array` with the given settings (Doppler centroid required); complex64 in and out."""
    n_az, n_rg = slc.shape
    plan = azimuth_plan(sensor, n_az, n_rg, settings, inverse=True)
    data = np.array(slc, dtype=np.complex64, order="C", copy=True)
    data = azimuth_block(
        data,
        plan,
        sensor,
        n_total=n_rg,
        out_start=0,
        n_out=n_rg,
        in_start=(-plan.halo) % n_rg,
        inverse=True,
        workers=workers,
        out=data,
    )
    n_fft = range_fft_length(sensor, n_rg)
    echo, _ = apply_range_filter(
        data, range_inverse_filter(sensor, n_fft, settings.range_window), out=data, workers=workers
    )
    return echo
