"""Simulated test scenes shared by the tests and the benchmarks (not used by the library itself): the same-sensor
(X-band MiniSAR-like) and cross-sensor (C-band Sentinel-1-like) test sets of the RFI benchmark, also used by the
tests at smaller sizes.

A scene is an extended, speckled reflectivity map (a log-normal texture at two scales with a few darker and
brighter fields) plus optional point targets, thermal noise at ``snr_db``, and RFI from the simulator's preset
for that sensor, in bursts kept half a synthetic aperture away from the scene ends (the image-domain detector
does not test the lines of partial apertures). Everything is drawn from ``seed``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

from .model import SPEED_OF_LIGHT
from .sensor import SensorParams

__all__ = ["TEST_SETS", "reflectivity_map", "scene_config", "make_scene", "point_target_amplitude"]

#: Sensor, scene geometry and RFI of each test set. ``rfi`` is an ``RFIConfig`` mapping without the bursts.
TEST_SETS: dict[str, dict[str, Any]] = {
    "minisar": {
        "sensor": {"preset": "minisar"},
        "n_azimuth": 2048,
        "n_range": 2048,
        "near_range": 2000.0,
        "snr_db": 15.0,
        "rfi": {"preset": "minisar"},
        "burst_length": (32, 128),
        "burst_count": (1, 2),
    },
    "sentinel1": {
        "sensor": {"preset": "sentinel1_sm"},
        "n_azimuth": 3072,
        "n_range": 6144,
        "near_range": 850_000.0,
        "snr_db": 15.0,
        "rfi": {"preset": "sentinel1"},
        "burst_length": (64, 192),
        "burst_count": (1, 2),
    },
}


def reflectivity_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Amplitude map (float64, mean intensity 1): log-normal texture at two scales times a few fields."""
    n_az, n_rg = shape
    coarse = gaussian_filter(rng.standard_normal(shape), sigma=(n_az / 24, n_rg / 24), mode="wrap")
    fine = gaussian_filter(rng.standard_normal(shape), sigma=3.0, mode="wrap")
    log_amp = 0.5 * coarse / max(coarse.std(), 1e-12) + 0.25 * fine / max(fine.std(), 1e-12)
    amp = np.exp(log_amp)
    for _ in range(int(rng.integers(3, 7))):  # fields: rectangles 6 dB darker or brighter
        h, w = int(rng.integers(n_az // 16, n_az // 5)), int(rng.integers(n_rg // 16, n_rg // 5))
        a, r = int(rng.integers(0, n_az - h)), int(rng.integers(0, n_rg - w))
        amp[a : a + h, r : r + w] *= 10 ** (rng.choice([-6.0, 6.0]) / 20)
    return amp / np.sqrt(np.mean(amp**2))


def point_target_amplitude(contrast_db: float) -> float:
    """Amplitude of a point target whose focused peak is ``contrast_db`` above the mean clutter intensity of a
    :func:`reflectivity_map` (mean intensity 1; the simulator maps a pixel ``s`` to a target of amplitude ``s``)."""
    return float(10 ** (contrast_db / 20))


def _far_aperture(sensor: dict, near: float, n_rg: int) -> float:
    from .simulate import SENSORS

    p = dict(SENSORS[sensor["preset"]])
    p.update({k: v for k, v in sensor.items() if k != "preset"})
    lam = SensorParams.from_attrs({**p, "near_range": near}).wavelength
    far = near + n_rg * SPEED_OF_LIGHT / (2 * p["range_sampling_rate"])
    # a matched filter of band 2V/La (capped at the PRF) over the Doppler rate: a little longer than the focuser's,
    # whose default band is the 3 dB one, 0.886 * 2V cos(theta) / La, so the margin errs large
    band = min(2 * p["velocity"] / p["antenna_length"], p["prf"])
    return band / (2 * p["velocity"] ** 2 / (lam * far)) * p["prf"]


def scene_config(
    test_set: str,
    seed: int,
    reflectivity_file: str | Path,
    *,
    rfi: bool = True,
    n_azimuth: int | None = None,
    n_range: int | None = None,
    near_range: float | None = None,
    sir_db: float | tuple[float, float] | None = None,
    targets: list[dict] | None = None,
    rfi_overrides: dict | None = None,
) -> dict[str, Any]:
    """Simulator configuration (a mapping for ``sarpipe.simulate.simulate``) of one scene of ``test_set``."""
    ts = TEST_SETS[test_set]
    n_az = n_azimuth or ts["n_azimuth"]
    n_rg = n_range or ts["n_range"]
    near = near_range or ts["near_range"]
    cfg: dict[str, Any] = {
        "sensor": dict(ts["sensor"]),
        "scene": {"n_azimuth": n_az, "n_range": n_rg, "near_range": near},
        "extended": {"file": str(reflectivity_file)},
        "targets": list(targets or []),
        "noise": {"snr_db": ts["snr_db"]},
        "seed": int(seed),
    }
    if rfi:
        margin = int(np.ceil(_far_aperture(ts["sensor"], near, n_rg) / 2)) + 8
        r = dict(ts["rfi"])
        r["bursts"] = {"count": list(ts["burst_count"]), "length": list(ts["burst_length"]), "margin": margin}
        if sir_db is not None:
            r["sir_db"] = list(sir_db) if isinstance(sir_db, tuple) else sir_db
        r.update(rfi_overrides or {})
        if "pulses" in (rfi_overrides or {}):
            r.pop("bursts", None)
        cfg["rfi"] = r
    return cfg


def make_scene(test_set: str, seed: int, **kwargs: Any) -> xr.Dataset:
    """Simulate one scene of ``test_set`` (see :func:`scene_config` for the options) in memory."""
    from .simulate import simulate

    ts = TEST_SETS[test_set]
    shape = (kwargs.get("n_azimuth") or ts["n_azimuth"], kwargs.get("n_range") or ts["n_range"])
    rng = np.random.default_rng([int(seed), 7])
    with tempfile.TemporaryDirectory(prefix="sarpipe-rfi-scene-") as tmp:
        path = Path(tmp) / "reflectivity.npy"
        np.save(path, reflectivity_map(shape, rng))
        return simulate(scene_config(test_set, seed, path, **kwargs))
