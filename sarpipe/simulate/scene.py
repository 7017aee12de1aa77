"""Stripmap raw-echo simulation: point targets, extended scenes, thermal noise and RFI, into a raw dataset.

``echo = echo_clean + noise (+ rfi)``; ``echo_clean`` (and ``rfi``) are kept as ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from pydantic import ValidationError

from ..errors import InputError
from ..model import SPEED_OF_LIGHT, range_pixel_spacing, sar_dataset, with_history
from ..sensor import SensorParams
from ..stripmap import antenna_doppler_bandwidth, squint_angle
from ..yamlconf import ConfigError, format_validation_error
from . import antenna
from .config import SimulationConfig, check_finite_product, check_scene
from .kernels import add_point_echoes
from .noise import noise_power, thermal_noise


def _as_config(config: SimulationConfig | Mapping[str, Any]) -> SimulationConfig:
    if isinstance(config, SimulationConfig):
        return config
    try:
        return SimulationConfig.model_validate(dict(config))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, None), title="invalid simulator configuration") from exc


def scene_attrs(config: SimulationConfig | Mapping[str, Any]) -> tuple[dict[str, Any], int, int, float]:
    """Resolve the configuration into (contract attrs, n_azimuth, n_range, azimuth_time0).

    Attrs: the contract's required ones plus ``doppler_centroid``, ``antenna_length``, ``look_side``, ``sensor``,
    ``antenna_pattern`` and ``azimuth_bandwidth`` (the rect pattern's Doppler band ``B_a``, Hz).
    """
    cfg = _as_config(config)
    p = cfg.sensor.parameters()
    if cfg.antenna.length is not None:
        p["antenna_length"] = cfg.antenna.length
    n_az = cfg.scene.n_azimuth or p.get("n_azimuth")
    n_rg = cfg.scene.n_range or p.get("n_range")
    if n_az is None or n_rg is None:
        raise InputError("scene.n_azimuth and scene.n_range are required without a sensor preset", where="scene")
    attrs: dict[str, Any] = {
        k: p[k] for k in ("carrier_frequency", "range_sampling_rate", "chirp_rate", "pulse_duration", "prf", "velocity")
    }
    dr = range_pixel_spacing(attrs)
    if cfg.scene.near_range is not None:
        near = cfg.scene.near_range
    elif cfg.scene.centre_range is not None:
        near = cfg.scene.centre_range - (n_rg // 2) * dr
    elif "near_range" in p:
        near = p["near_range"]
    else:
        raise InputError("scene.near_range (or scene.centre_range) is required without a sensor preset", where="scene")
    if near <= 0:
        raise InputError(f"the near range comes out non-positive ({near} m)", where="scene.centre_range")
    attrs["near_range"] = float(near)
    sensor = SensorParams.from_attrs(attrs, "sensor")
    lam = sensor.wavelength
    bandwidth = sensor.chirp_bandwidth
    if bandwidth > sensor.range_sampling_rate:
        raise InputError(
            f"chirp bandwidth |Kr| Tp = {bandwidth / 1e6:.3f} MHz exceeds the range sampling rate "
            f"{sensor.range_sampling_rate / 1e6:.3f} MHz (the chirp would alias)",
            where="sensor",
        )
    if abs(lam * cfg.doppler_centroid / (2 * sensor.velocity)) >= 0.5:
        raise InputError(
            f"Doppler centroid {cfg.doppler_centroid} Hz implies a squint beyond 30 degrees", where="doppler_centroid"
        )
    attrs.update(
        doppler_centroid=float(cfg.doppler_centroid),
        antenna_length=float(p["antenna_length"]),
        look_side=p["look_side"],
        sensor=str(p["sensor"]),
        antenna_pattern=cfg.antenna.pattern,
        azimuth_bandwidth=antenna_doppler_bandwidth(p["antenna_length"], sensor.velocity, cfg.doppler_centroid, lam),
    )
    return attrs, int(n_az), int(n_rg), float(cfg.scene.azimuth_time0)


def resolve_targets(cfg: SimulationConfig, sensor: SensorParams, azimuth_time0: float) -> list[dict[str, float]]:
    """Targets as ``slant_range`` [m], ``azimuth_time`` [s], ``amplitude``, ``phase`` [rad] (indices converted)."""
    dr = sensor.range_pixel_spacing
    out = []
    for t in cfg.targets:
        r0 = t.slant_range if t.slant_range is not None else sensor.near_range + t.range_index * dr
        eta0 = t.azimuth_time if t.azimuth_time is not None else azimuth_time0 + t.azimuth_index / sensor.prf
        out.append({"slant_range": float(r0), "azimuth_time": float(eta0), "amplitude": t.amplitude, "phase": t.phase})
    return out


def point_target_echoes(
    targets: list[Mapping[str, float]],
    attrs: Mapping[str, Any],
    shape: tuple[int, int],
    azimuth_time0: float = 0.0,
    pattern: str = "rect",
    out: np.ndarray | None = None,
    centroid_rate: float = 0.0,
) -> np.ndarray:
    """Raw echoes (complex64, (azimuth, range)) of point targets, added to ``out`` when given.

    ``targets``: mappings with ``slant_range`` [m] (closest approach), ``azimuth_time`` [s] (zero Doppler),
    ``amplitude`` and ``phase`` [rad]. ``attrs``: contract attrs with ``antenna_length`` (as :func:`scene_attrs`
    gives them); no ``doppler_centroid`` means 0 Hz. ``centroid_rate`` [Hz/m]: the centroid at range R is
    ``doppler_centroid + centroid_rate * (R - mid-swath range)`` (each target gets the squint of its range).
    """
    n_az, n_rg = shape
    if out is None:
        out = np.zeros(shape, dtype=np.complex64)
    if not targets:
        return out
    sensor = SensorParams.from_attrs(attrs)
    if sensor.antenna_length is None:
        raise InputError("the antenna length is needed to simulate echoes", where="attribute 'antenna_length'")
    lam = sensor.wavelength
    v = sensor.velocity
    prf = sensor.prf
    f_dc = sensor.doppler_centroid if sensor.doppler_centroid is not None else 0.0
    la = sensor.antenna_length
    r0 = np.array([t["slant_range"] for t in targets], dtype=np.float64)
    eta0 = np.array([t["azimuth_time"] for t in targets], dtype=np.float64)
    amp = np.array([t.get("amplitude", 1.0) * np.exp(1j * t.get("phase", 0.0)) for t in targets], dtype=np.complex128)
    # -4 pi R0 / lambda reduced mod 2 pi in float64 before it reaches the kernel
    carrier_phase = -2.0 * np.pi * np.mod(2.0 * r0 / lam, 1.0)
    eta = azimuth_time0 + np.arange(n_az, dtype=np.float64) / prf
    tau0 = 2.0 * sensor.near_range / SPEED_OF_LIGHT
    if centroid_rate == 0.0:
        groups = [(np.arange(r0.size), f_dc)]
    else:  # each target sees the squint of its own range: one kernel call per target
        mid = sensor.near_range + 0.5 * (n_rg - 1) * sensor.range_pixel_spacing
        groups = [(np.array([k]), f_dc + centroid_rate * (r0[k] - mid)) for k in range(r0.size)]
    for idx, f_k in groups:
        f_lo, f_hi = antenna.doppler_band(pattern, la, v, f_k, lam)
        t_lo = np.asarray(antenna.time_of_doppler(f_hi, r0[idx], v, lam)) - 1.0 / prf
        t_hi = np.asarray(antenna.time_of_doppler(f_lo, r0[idx], v, lam)) + 1.0 / prf
        add_point_echoes(
            out,
            eta,
            tau0,
            sensor.range_sampling_rate,
            lam,
            sensor.chirp_rate,
            sensor.pulse_duration,
            v,
            r0[idx],
            eta0[idx],
            amp[idx],
            carrier_phase[idx],
            t_lo,
            t_hi,
            antenna.PATTERN_CODES[pattern],
            la,
            squint_angle(f_k, lam, v),
            f_k,
            antenna_doppler_bandwidth(la, v, f_k, lam),
        )
    return out


def simulate(config: SimulationConfig | Mapping[str, Any]) -> xr.Dataset:
    """Simulate a stripmap raw-echo dataset (contract of docs/design.md section 2) from a configuration.

    Variables: ``echo`` = ``echo_clean`` + thermal noise (+ ``rfi`` when configured), all complex64.
    Attrs: see :func:`scene_attrs`, plus ``point_targets`` (the resolved target list) and a history record.
    The seed drives independent streams for the extended scene's phases, the noise and the RFI.
    """
    cfg = _as_config(config)
    check_scene(cfg)
    attrs, n_az, n_rg, az0 = scene_attrs(cfg)
    sensor = SensorParams.from_attrs(attrs)
    rng_ext, rng_noise, rng_rfi = np.random.default_rng(cfg.seed).spawn(3)

    targets = resolve_targets(cfg, sensor, az0)
    echo_clean = np.zeros((n_az, n_rg), dtype=np.complex64)
    if cfg.extended is not None:
        from .extended import extended_echoes

        echo_clean += extended_echoes(
            cfg.extended, cfg.resolve(cfg.extended.file), sensor, (n_az, n_rg), az0, cfg.antenna.pattern, rng_ext
        )
    point_target_echoes(
        targets, attrs, (n_az, n_rg), az0, cfg.antenna.pattern, out=echo_clean, centroid_rate=cfg.doppler_centroid_rate
    )

    echo = echo_clean.copy()
    if cfg.noise is not None:
        p_n = noise_power(echo_clean, cfg.noise.snr_db, cfg.noise.power)
        echo += thermal_noise((n_az, n_rg), p_n, rng_noise)
        attrs["noise_power"] = p_n

    attrs["point_targets"] = targets
    ds = sar_dataset(echo, attrs, azimuth_time0=az0, extra_vars={"echo_clean": echo_clean})
    if cfg.doppler_centroid_rate != 0:
        from .config import centroid_at_range

        r = ds["slant_range"].values
        ds["doppler_centroid_range"] = ("range", centroid_at_range(cfg, r, 0.5 * (r[0] + r[-1])))
    ds = with_history(ds, "simulate", cfg.model_dump(mode="json", exclude_none=True))
    rfi_cfg = getattr(cfg, "rfi", None)
    if rfi_cfg is not None:
        from .interference import add_rfi

        ds = add_rfi(ds, rfi_cfg, rng_rfi)
    check_finite_product(ds)
    return ds
