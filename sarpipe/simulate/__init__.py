"""Stripmap raw-echo simulator: sensor presets, point targets (numba), extended scenes, noise, RFI.

``simulate(config) -> xr.Dataset`` builds a raw dataset per the contract (docs/design.md section 2) with
``echo``, ``echo_clean`` (and ``rfi`` when configured). See ``docs/simulation.md``.
"""

from .antenna import synthetic_aperture_pulses
from .config import (
    AntennaConfig,
    ExtendedConfig,
    NoiseConfig,
    SceneConfig,
    SensorConfig,
    SimulationConfig,
    TargetConfig,
    load_config,
)
from .presets import SENSORS
from .scene import point_target_echoes, scene_attrs, simulate

__all__ = [
    "AntennaConfig",
    "ExtendedConfig",
    "NoiseConfig",
    "SENSORS",
    "SceneConfig",
    "SensorConfig",
    "SimulationConfig",
    "TargetConfig",
    "load_config",
    "point_target_echoes",
    "scene_attrs",
    "simulate",
    "synthetic_aperture_pulses",
]
