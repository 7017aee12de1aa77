"""Simulator configuration: pydantic models (``extra="forbid"``) read from YAML with line-numbered errors.

Units are SI throughout (Hz, s, m, rad). Example: ``examples/point_targets.yaml``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ..errors import InputError
from ..yamlconf import load_yaml, parse_model
from .presets import SENSOR_PARAMETERS, SENSORS

try:  # the RFI sources live in their own module (owned separately); the simulator works without it
    from .interference import RFIConfig
except ImportError:  # pragma: no cover - only while the module does not exist yet
    RFIConfig = None  # type: ignore[assignment,misc]

PresetName = Literal["sentinel1_sm", "minisar", "radarsat1"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SensorConfig(_Strict):
    """A preset and/or explicit parameters; explicit values override the preset's."""

    preset: Optional[PresetName] = None
    carrier_frequency: Optional[float] = Field(None, gt=0, description="Hz")
    range_sampling_rate: Optional[float] = Field(None, gt=0, description="Hz")
    chirp_rate: Optional[float] = Field(None, description="Hz/s, signed")
    pulse_duration: Optional[float] = Field(None, gt=0, description="s")
    prf: Optional[float] = Field(None, gt=0, description="Hz")
    velocity: Optional[float] = Field(None, gt=0, description="m/s, effective")
    antenna_length: Optional[float] = Field(None, gt=0, description="m, azimuth")
    look_side: Optional[Literal["right", "left"]] = None
    name: Optional[str] = Field(None, description="free text stored as the 'sensor' attribute")

    @field_validator("chirp_rate")
    @classmethod
    def _nonzero(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and (v == 0 or not math.isfinite(v)):
            raise ValueError("chirp_rate must be finite and non-zero (Hz/s, signed)")
        return v

    @model_validator(mode="after")
    def _complete(self) -> "SensorConfig":
        if self.preset is None:
            missing = [p for p in SENSOR_PARAMETERS if getattr(self, p) is None]
            if missing:
                raise ValueError(f"without a preset these parameters are required: {', '.join(missing)}")
        return self

    def parameters(self) -> dict[str, Any]:
        """The resolved parameters (preset values overridden by explicit ones)."""
        base = dict(SENSORS[self.preset]) if self.preset else {}
        for p in SENSOR_PARAMETERS:
            if getattr(self, p) is not None:
                base[p] = getattr(self, p)
        base["sensor"] = self.name or (base.get("description") if self.preset else "custom")
        return base


class SceneConfig(_Strict):
    """The raw-data grid: pulses x fast-time samples, and where it starts."""

    n_azimuth: Optional[int] = Field(None, gt=0, description="pulses (preset default)")
    n_range: Optional[int] = Field(None, gt=0, description="fast-time samples (preset default)")
    near_range: Optional[float] = Field(None, gt=0, description="m, slant range of sample 0")
    centre_range: Optional[float] = Field(None, gt=0, description="m, slant range of the middle sample")
    azimuth_time0: float = Field(0.0, description="s, azimuth time of pulse 0")

    @model_validator(mode="after")
    def _one_range(self) -> "SceneConfig":
        if self.near_range is not None and self.centre_range is not None:
            raise ValueError("give near_range or centre_range, not both")
        return self


class TargetConfig(_Strict):
    """A point target: closest-approach range and zero-Doppler time (physical or as grid indices)."""

    slant_range: Optional[float] = Field(None, gt=0, description="m, closest-approach range")
    range_index: Optional[float] = Field(None, description="fractional range sample of the closest approach")
    azimuth_time: Optional[float] = Field(None, description="s, zero-Doppler time")
    azimuth_index: Optional[float] = Field(None, description="fractional pulse index of the zero-Doppler time")
    amplitude: float = Field(1.0, ge=0)
    phase: float = Field(0.0, description="rad, added to the echo phase")

    @model_validator(mode="after")
    def _one_of_each(self) -> "TargetConfig":
        if (self.slant_range is None) == (self.range_index is None):
            raise ValueError("give exactly one of slant_range or range_index")
        if (self.azimuth_time is None) == (self.azimuth_index is None):
            raise ValueError("give exactly one of azimuth_time or azimuth_index")
        return self


class ExtendedConfig(_Strict):
    """A reflectivity map turned into raw echoes (see docs/simulation.md for the approximation)."""

    file: Path = Field(description=".npy (complex or real) or an image readable by pillow (png, tif, ...)")
    scale: float = Field(1.0, ge=0, description="multiplies the reflectivity")
    speckle: bool = Field(
        True,
        description="real maps are mean amplitudes: multiply each pixel by a circular complex Gaussian of unit "
        "power (fully developed speckle); false keeps them real",
    )
    azimuth_offset: int = Field(0, ge=0, description="pulse index of the map's first row")
    range_offset: int = Field(0, ge=0, description="range sample of the map's first column")


class AntennaConfig(_Strict):
    pattern: Literal["rect", "sinc2"] = "rect"
    length: Optional[float] = Field(None, gt=0, description="m, overrides the sensor's antenna_length")


class NoiseConfig(_Strict):
    """Thermal noise: ``snr_db`` = mean |echo_clean|^2 over all raw samples / noise power per sample."""

    snr_db: Optional[float] = None
    power: Optional[float] = Field(None, ge=0, description="noise power per complex sample (instead of snr_db)")

    @model_validator(mode="after")
    def _one(self) -> "NoiseConfig":
        if (self.snr_db is None) == (self.power is None):
            raise ValueError("give exactly one of snr_db or power")
        return self


class SimulationConfig(_Strict):
    """Everything ``simulate`` needs. ``base_dir`` (not a YAML key) resolves relative file paths."""

    sensor: SensorConfig = SensorConfig(preset="sentinel1_sm")
    scene: SceneConfig = SceneConfig()
    targets: list[TargetConfig] = []
    extended: Optional[ExtendedConfig] = None
    antenna: AntennaConfig = AntennaConfig()
    doppler_centroid: float = Field(0.0, description="Hz (squint)")
    noise: Optional[NoiseConfig] = None
    seed: Optional[int] = None
    if RFIConfig is not None:
        rfi: Optional[RFIConfig] = None  # type: ignore[valid-type]

    _base_dir: Optional[Path] = PrivateAttr(None)

    def resolve(self, path: Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(os.path.expanduser(path))
        if not p.is_absolute() and self._base_dir is not None:
            p = self._base_dir / p
        return p


def load_config(path: str | os.PathLike) -> SimulationConfig:
    """Read and check a simulator YAML file; errors name FILE:LINE:COL and the dotted key."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError("the simulator configuration must be a mapping (sensor:, scene:, targets:, ...)", where=str(path))
    cfg = parse_model(SimulationConfig, doc)
    cfg._base_dir = Path(path).resolve().parent
    if cfg.extended is not None:
        f = cfg.resolve(cfg.extended.file)
        if not f.is_file():
            raise InputError(f"no such reflectivity file: {f}", where=f"{doc.where(('extended', 'file'))}: extended.file")
    return cfg
