"""Simulator configuration: pydantic models (``extra="forbid"``) read from YAML with line-numbered errors.

Units are SI throughout (Hz, s, m, rad). Example: ``examples/point_targets.yaml``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ..errors import InputError
from ..model import available_memory, gib, range_pixel_spacing
from ..yamlconf import load_yaml, parse_model
from .presets import SENSOR_PARAMETERS, SENSORS

try:  # the RFI sources live in their own module (owned separately); the simulator works without it
    from .interference import RFIConfig
except ImportError:  # pragma: no cover - only while the module does not exist yet
    RFIConfig = None  # type: ignore[assignment,misc]

PresetName = Literal["sentinel1_sm", "minisar", "radarsat1"]


class _Strict(BaseModel):
    # NaN or Inf in a configuration would reach the samples or zarr.json ('Infinity') of a store that looks fine
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SensorConfig(_Strict):
    """A preset and/or explicit parameters; explicit values override the preset's."""

    preset: PresetName | None = None
    carrier_frequency: float | None = Field(None, gt=0, description="Hz")
    range_sampling_rate: float | None = Field(None, gt=0, description="Hz")
    chirp_rate: float | None = Field(None, description="Hz/s, signed")
    pulse_duration: float | None = Field(None, gt=0, description="s")
    prf: float | None = Field(None, gt=0, description="Hz")
    velocity: float | None = Field(None, gt=0, description="m/s, effective")
    antenna_length: float | None = Field(None, gt=0, description="m, azimuth")
    look_side: Literal["right", "left"] | None = None
    name: str | None = Field(None, description="free text stored as the 'sensor' attribute")

    @field_validator("chirp_rate")
    @classmethod
    def _nonzero(cls, v: float | None) -> float | None:
        if v is not None and (v == 0 or not math.isfinite(v)):
            raise ValueError("chirp_rate must be finite and non-zero (Hz/s, signed)")
        return v

    @model_validator(mode="after")
    def _complete(self) -> SensorConfig:
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

    n_azimuth: int | None = Field(None, gt=0, description="pulses (preset default)")
    n_range: int | None = Field(None, gt=0, description="fast-time samples (preset default)")
    near_range: float | None = Field(None, gt=0, description="m, slant range of sample 0")
    centre_range: float | None = Field(None, gt=0, description="m, slant range of the middle sample")
    azimuth_time0: float = Field(0.0, description="s, azimuth time of pulse 0")

    @model_validator(mode="after")
    def _one_range(self) -> SceneConfig:
        if self.near_range is not None and self.centre_range is not None:
            raise ValueError("give near_range or centre_range, not both")
        return self


class TargetConfig(_Strict):
    """A point target: closest-approach range and zero-Doppler time (physical or as grid indices)."""

    slant_range: float | None = Field(None, gt=0, description="m, closest-approach range")
    range_index: float | None = Field(None, description="fractional range sample of the closest approach")
    azimuth_time: float | None = Field(None, description="s, zero-Doppler time")
    azimuth_index: float | None = Field(None, description="fractional pulse index of the zero-Doppler time")
    amplitude: float = Field(1.0, ge=0)
    phase: float = Field(0.0, description="rad, added to the echo phase")

    @model_validator(mode="after")
    def _one_of_each(self) -> TargetConfig:
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
    length: float | None = Field(None, gt=0, description="m, overrides the sensor's antenna_length")


class NoiseConfig(_Strict):
    """Thermal noise: ``snr_db`` = mean |echo_clean|^2 over all raw samples / noise power per sample."""

    snr_db: float | None = None
    power: float | None = Field(None, ge=0, description="noise power per complex sample (instead of snr_db)")

    @model_validator(mode="after")
    def _one(self) -> NoiseConfig:
        if (self.snr_db is None) == (self.power is None):
            raise ValueError("give exactly one of snr_db or power")
        return self


class SimulationConfig(_Strict):
    """Everything ``simulate`` needs. ``base_dir`` (not a YAML key) resolves relative file paths."""

    sensor: SensorConfig = SensorConfig(preset="sentinel1_sm")
    scene: SceneConfig = SceneConfig()
    targets: list[TargetConfig] = []
    extended: ExtendedConfig | None = None
    antenna: AntennaConfig = AntennaConfig()
    doppler_centroid: float = Field(0.0, description="Hz (squint), at the mid-swath slant range")
    doppler_centroid_rate: float = Field(
        0.0,
        description="Hz per metre of slant range: the centroid at R is doppler_centroid + rate * (R - mid-swath "
        "range), a range-varying squint (point targets only); written as the variable doppler_centroid_range",
    )
    noise: NoiseConfig | None = None
    seed: int | None = None
    if RFIConfig is not None:
        rfi: RFIConfig | None = None  # type: ignore[valid-type]

    _base_dir: Path | None = PrivateAttr(None)

    def resolve(self, path: Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(os.path.expanduser(path))
        if not p.is_absolute() and self._base_dir is not None:
            p = self._base_dir / p
        return p


#: Peak bytes the simulator holds per raw sample: echo_clean, echo, noise or rfi, and the summed echo (complex64)
#: for point targets, noise and RFI; an extended scene adds its padded complex128 grid and two FFTs of it.
SIMULATION_BYTES_PER_SAMPLE = 40
EXTENDED_BYTES_PER_SAMPLE = 56


def simulation_bytes(cfg: SimulationConfig, n_azimuth: int, n_range: int) -> int:
    """Estimated peak memory [bytes] of simulating an ``n_azimuth`` x ``n_range`` scene with ``cfg``."""
    per_sample = SIMULATION_BYTES_PER_SAMPLE + (EXTENDED_BYTES_PER_SAMPLE if cfg.extended is not None else 0)
    return int(n_azimuth) * int(n_range) * per_sample


def scene_problems(cfg: SimulationConfig) -> list[tuple[tuple, str]]:
    """Problems only the resolved scene shows, as ``(key location, message)``: a scene too large for the memory
    available, nothing in it (it would be all zeros), targets whose closest approach lies outside the grid, RFI
    intervals beyond the pulses. Raises InputError for parameters that do not resolve (see ``scene_attrs``)."""
    from .scene import scene_attrs  # scene.py imports this module

    attrs, n_az, n_rg, az0 = scene_attrs(cfg)
    problems: list[tuple[tuple, str]] = []
    need = simulation_bytes(cfg, n_az, n_rg)
    available = available_memory()
    if need > available:
        given = [k for k in ("n_azimuth", "n_range") if getattr(cfg.scene, k) is not None]
        loc = ("scene", given[0]) if len(given) == 1 else ("scene",)
        problems.append(
            (
                loc,
                f"scene.n_azimuth x scene.n_range = {n_az:,} x {n_rg:,} samples needs about "
                f"{gib(need)} of memory to simulate, {gib(available)} are available; make the scene "
                "smaller",
            )
        )
        return problems  # the other checks cost nothing, but one message is enough here
    if not cfg.targets and cfg.extended is None and cfg.noise is None:
        problems.append(
            (
                (),
                "the scene is empty: no targets, no extended scene and no noise (its echo would be "
                "all zeros); give targets:, extended: or noise:",
            )
        )
    dr = range_pixel_spacing(attrs)
    near, far = float(attrs["near_range"]), float(attrs["near_range"]) + (n_rg - 1) * dr
    t_first, t_last = az0, az0 + (n_az - 1) / float(attrs["prf"])
    for i, t in enumerate(cfg.targets):
        if t.slant_range is not None and not near <= t.slant_range <= far:
            problems.append(
                (
                    ("targets", i, "slant_range"),
                    f"{t.slant_range:.6g} m lies outside the scene's slant ranges {near:.6g}..{far:.6g} m",
                )
            )
        if t.range_index is not None and not 0 <= t.range_index <= n_rg - 1:
            problems.append(
                (
                    ("targets", i, "range_index"),
                    f"{t.range_index:g} lies outside the scene's range samples 0..{n_rg - 1}",
                )
            )
        # a squinted target may have its zero-Doppler time outside the pulses as long as the beam centre crosses
        # it within them (real-like squint of several PRFs; the SLC shows it at its time modulo the scene length)
        crossing = _beam_crossing_pulses(attrs, cfg, t, near, dr, n_rg)
        if t.azimuth_time is not None and not t_first <= t.azimuth_time <= t_last:
            if not t_first <= t.azimuth_time + crossing / float(attrs["prf"]) <= t_last:
                problems.append(
                    (
                        ("targets", i, "azimuth_time"),
                        f"{t.azimuth_time:.9g} s lies outside the scene's azimuth times {t_first:.9g}..{t_last:.9g} s",
                    )
                )
        inside = [0 <= t.azimuth_index + c <= n_az - 1 for c in (0.0, crossing)] if t.azimuth_index is not None else []
        if t.azimuth_index is not None and not any(inside):
            problems.append(
                (("targets", i, "azimuth_index"), f"{t.azimuth_index:g} lies outside the scene's pulses 0..{n_az - 1}")
            )
    if cfg.extended is not None:
        problems += _extended_aperture_problems(attrs, n_az, n_rg, near, dr)
        if cfg.doppler_centroid_rate != 0:
            problems.append(
                (("doppler_centroid_rate",), "a range-varying centroid is simulated for point targets only")
            )
    rfi = getattr(cfg, "rfi", None)
    if rfi is not None and rfi.pulses is not None:
        for i, (start, stop) in enumerate(rfi.pulses):
            if stop > n_az:
                problems.append(
                    (
                        ("rfi", "pulses", i),
                        f"pulse interval [{start}, {stop}) reaches beyond the scene's {n_az} pulses (0..{n_az - 1})",
                    )
                )
    if rfi is not None and rfi.bursts is not None:
        b = rfi.bursts
        room = n_az - 2 * b.margin
        shortest = min(b.length) if isinstance(b.length, tuple) else b.length
        if room < 1:
            problems.append(
                (
                    ("rfi", "bursts", "margin"),
                    f"a margin of {b.margin} pulses at each end leaves no room in the scene's {n_az} pulses",
                )
            )
        elif shortest > room:
            problems.append(
                (
                    ("rfi", "bursts", "length"),
                    f"bursts of {shortest} pulses do not fit the {room} pulses "
                    f"between the margins ({n_az} pulses, margin {b.margin})",
                )
            )
    return problems


def centroid_at_range(cfg: SimulationConfig, slant_range: Any, mid_range: float) -> Any:
    """Doppler centroid [Hz] at ``slant_range`` [m]: ``doppler_centroid + doppler_centroid_rate * (R - mid)``."""
    return cfg.doppler_centroid + cfg.doppler_centroid_rate * (slant_range - mid_range)


def _beam_crossing_pulses(
    attrs: dict[str, Any], cfg: SimulationConfig, t: TargetConfig, near: float, dr: float, n_rg: int
) -> float:
    """Beam-centre crossing of target ``t`` relative to its zero-Doppler time, in pulses (0 without squint)."""
    from ..model import SPEED_OF_LIGHT
    from ..stripmap import beam_centre_offset

    r0 = t.slant_range if t.slant_range is not None else near + t.range_index * dr
    f_dc = centroid_at_range(cfg, r0, near + 0.5 * (n_rg - 1) * dr)
    lam = SPEED_OF_LIGHT / float(attrs["carrier_frequency"])
    try:
        return beam_centre_offset(r0, f_dc, lam, float(attrs["velocity"])) * float(attrs["prf"])
    except InputError:
        return 0.0


def _extended_aperture_problems(attrs: dict[str, Any], n_az: int, n_rg: int, near: float, dr: float) -> list:
    """An extended scene is calibrated by focusing a unit point target on the scene's pulses (a narrow swath at the
    centre range, see ``extended._unit_target_gain``): the pulses must hold its synthetic aperture."""
    from ..focus.checks import synthetic_aperture_length
    from ..sensor import SensorParams

    geom = SensorParams.from_attrs(attrs)
    swath = 2 * int(geom.pulse_duration * geom.range_sampling_rate / 2) + 65
    far = near + (n_rg // 2) * dr + (swath - 1 - swath // 2) * dr
    aperture = synthetic_aperture_length(geom, far, float(attrs.get("doppler_centroid", 0.0)))
    if aperture is None or n_az >= aperture:
        return []
    return [
        (
            ("scene", "n_azimuth"),
            f"an extended scene needs at least one synthetic aperture of pulses "
            f"({math.ceil(aperture)} at the centre range), the scene has {n_az}",
        )
    ]


def check_scene(cfg: SimulationConfig, doc: Any = None) -> None:
    """Raise (ConfigError, every problem with its YAML line when ``doc`` is given) on :func:`scene_problems`."""
    from ..yamlconf import ConfigError, dotted

    problems = scene_problems(cfg)
    if not problems:
        return
    if doc is not None:
        lines = [f"{doc.where(loc)}: {dotted(loc)}: {msg}" for loc, msg in problems]
        raise ConfigError(lines, title=f"{doc.source}: invalid simulator configuration")
    raise ConfigError([f"{dotted(loc)}: {msg}" for loc, msg in problems], title="invalid simulator configuration")


def _non_finite(value: Any, key: str) -> str | None:
    """The dotted key of the first NaN/Inf float inside an attribute value (zarr.json would hold 'Infinity')."""
    if isinstance(value, float) and not math.isfinite(value):
        return key
    if isinstance(value, dict):
        return next((k for k in (_non_finite(v, f"{key}.{n}") for n, v in value.items()) if k), None)
    if isinstance(value, (list, tuple)):
        return next((k for k in (_non_finite(v, f"{key}[{i}]") for i, v in enumerate(value)) if k), None)
    return None


def check_finite_product(ds: Any) -> None:
    """Refuse a simulated dataset with NaN/Inf samples or attributes (the parameters overflowed), before it is
    written as a store that looks finished."""
    import numpy as np

    for name in ds.data_vars:
        if np.iscomplexobj(ds[name].values) and not np.isfinite(ds[name].values).all():
            raise InputError(
                "the simulated samples contain NaN or Inf: amplitudes, powers or snr_db too large for complex64",
                where=f"variable '{name}'",
            )
    for key, value in ds.attrs.items():
        bad = _non_finite(value, str(key))
        if bad:
            raise InputError(
                "the simulation produced a NaN or Inf value (a parameter too large or too small)",
                where=f"attribute '{bad}'",
            )


def load_config(path: str | os.PathLike) -> SimulationConfig:
    """Read and check a simulator YAML file; errors name FILE:LINE:COL and the dotted key."""
    doc = load_yaml(path)
    if doc.empty or doc.data == {}:
        raise InputError(
            "empty configuration: it holds no keys (give at least sensor:, scene: and targets:, see "
            "examples/point_targets.yaml)",
            where=str(path),
        )
    if not isinstance(doc.data, dict):
        raise InputError(
            "the simulator configuration must be a mapping (sensor:, scene:, targets:, ...)", where=str(path)
        )
    doc.refuse_duplicates("invalid simulator configuration")
    cfg = parse_model(SimulationConfig, doc)
    cfg._base_dir = Path(path).resolve().parent
    if cfg.extended is not None:
        f = cfg.resolve(cfg.extended.file)
        if not f.is_file():
            raise InputError(
                f"no such reflectivity file: {f}", where=f"{doc.where(('extended', 'file'))}: extended.file"
            )
    check_scene(cfg, doc)
    return cfg
