"""Radio-frequency interference (RFI) sources for the raw-echo simulator.

Three source models (as in the DIFNet paper), each summed over N emitters and switched on over pulse intervals:

- ``narrowband``: ``D * rect(t) * exp(j 2 pi f_n t)`` - a tone; ``bandwidth`` > 0 adds a slow linear sweep of that
  width across the receive window (a narrowband emitter, typically under 2 % of the radar band).
- ``chirp``: ``exp(j 2 pi f_c t + j pi k t^2)`` - a broadband linear FM that repeats with period ``sweep_time``
  (a sawtooth sweep, asynchronous to the radar PRI).
- ``sinfm``: ``exp(j 2 pi f_c t + j beta sin(2 pi f_m t))`` - sinusoidal FM with peak deviation
  ``beta * f_m = bandwidth / 2``.

Optional behaviour of real emitters, per source family (all off by default, and then no random numbers are drawn
for them, so scenes made without them are unchanged):

- ``drift_rate`` [Hz/s]: the emitter's frequency drifts with absolute time, ``f(t) = f_0 + drift_rate * t`` (an
  oscillator that wanders from pulse to pulse); phase term ``pi * drift_rate * t^2``;
- ``pulse_period`` [s] and ``pulse_duty``: a pulsed emitter (a radar, say) on for ``pulse_duty * pulse_period``
  in every period of its own, in absolute time, so it lands at a different fast time on each echo;
- ``fluctuation_db``: pulse-to-pulse amplitude fluctuation, log-normal with this standard deviation [dB]
  (scintillation, antenna scanning).

Time conventions: ``t`` is absolute time ``azimuth_time[i] + tau_j`` [s], with ``tau_j = 2 slant_range[j] / c``
the two-way fast time, so an emitter's phase runs on between pulses (it is not coherent with the radar).
Frequencies are baseband offsets from the radar carrier [Hz]; the radar band is ``[-B/2, B/2]``.

The signal-to-interference ratio (SIR, dB) is ``mean |echo|^2`` over the whole scene before RFI is added, over
``mean |rfi|^2`` over the pulses where RFI is on. ``add_rfi`` stores the RFI as the ground-truth variable ``rfi``
and adds it to ``echo``; the truth per pulse is ``rfi_truth_pulses(ds)``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import InputError
from ..model import SPEED_OF_LIGHT
from ..sensor import SensorParams

Range = float | tuple[float, float]
IntRange = int | tuple[int, int]

__all__ = [
    "RFIConfig",
    "RFISource",
    "RFIBursts",
    "RFI_PRESETS",
    "add_rfi",
    "rfi_truth_pulses",
    "resolve_sources",
    "rfi_waveform",
]


def _check_range(v: Any, name: str, *, positive: bool = False) -> Any:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be a number or a [low, high] pair")
        lo, hi = float(v[0]), float(v[1])
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
            raise ValueError(f"{name} range must be finite with low <= high, got {list(v)}")
        if positive and lo < 0:
            raise ValueError(f"{name} must not be negative, got {list(v)}")
        return (v[0], v[1])
    if v is not None and positive and float(v) < 0:
        raise ValueError(f"{name} must not be negative, got {v}")
    return v


def _check_fraction(v: Any, name: str) -> Any:
    """A number or [low, high] pair inside (0, 1] (a duty cycle)."""
    v = _check_range(v, name, positive=True)
    lo, hi = v if isinstance(v, tuple) else (v, v)
    if not (0 < float(lo) <= float(hi) <= 1):
        raise ValueError(f"{name} must lie in (0, 1]")
    return v


def _draw(rng: np.random.Generator, v: Any) -> float:
    """A number, or a uniform draw from a ``(low, high)`` pair."""
    if isinstance(v, tuple):
        return float(rng.uniform(float(v[0]), float(v[1])))
    return float(v)


def _draw_max(v: Any) -> float:
    """The upper end of a number or ``(low, high)`` pair."""
    return float(v[1]) if isinstance(v, tuple) else float(v)


def _draw_int(rng: np.random.Generator, v: Any) -> int:
    """An integer, or a uniform draw from the inclusive ``(low, high)`` pair."""
    if isinstance(v, tuple):
        return int(rng.integers(int(v[0]), int(v[1]) + 1))
    return int(v)


class RFISource(BaseModel):
    """One family of emitters. Ranges ``[low, high]`` are drawn uniformly per emitter."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["narrowband", "chirp", "sinfm"]
    count: IntRange = 1
    #: centre frequency, offset from the carrier [Hz]; None: anywhere inside the radar band
    frequency: Range | None = None
    #: occupied bandwidth [Hz] (narrowband: width of the slow sweep, 0 = pure tone)
    bandwidth: Range = 0.0
    #: chirp: period of the sawtooth sweep [s]; None: 0.5..4 receive windows (``n_range / fs``)
    sweep_time: Range | None = None
    #: sinfm: modulation frequency f_m [Hz]; None: 0.25..1.5 periods per receive window
    modulation_frequency: Range | None = None
    #: relative power of each emitter of this family (before the SIR scaling); a range gives a spread
    power: Range = (0.5, 2.0)
    #: frequency drift with absolute time [Hz/s]; None: none
    drift_rate: Range | None = None
    #: pulsed emitter: its own pulse repetition interval [s] (None: on all the time) and duty cycle in (0, 1]
    pulse_period: Range | None = None
    pulse_duty: Range = 1.0
    #: pulse-to-pulse amplitude fluctuation: standard deviation of a log-normal gain [dB]; 0: none
    fluctuation_db: Range = 0.0

    @field_validator("drift_rate")
    @classmethod
    def _drift(cls, v: Any) -> Any:
        return _check_range(v, "drift_rate")

    @field_validator("pulse_duty")
    @classmethod
    def _pulse_duty(cls, v: Any) -> Any:
        return _check_fraction(v, "pulse_duty")

    @field_validator("bandwidth", "power", "fluctuation_db")
    @classmethod
    def _nonneg(cls, v: Any, info: Any) -> Any:
        return _check_range(v, info.field_name, positive=True)

    @field_validator("frequency")
    @classmethod
    def _freq(cls, v: Any) -> Any:
        return _check_range(v, "frequency")

    @field_validator("sweep_time", "modulation_frequency", "pulse_period")
    @classmethod
    def _pos(cls, v: Any, info: Any) -> Any:
        v = _check_range(v, info.field_name, positive=True)
        if v is not None and (min(v) if isinstance(v, tuple) else v) <= 0:
            raise ValueError(f"{info.field_name} must be positive")
        return v

    @field_validator("count")
    @classmethod
    def _count(cls, v: Any) -> Any:
        lo = v[0] if isinstance(v, (tuple, list)) else v
        if int(lo) < 0:
            raise ValueError("count must not be negative")
        return _check_range(v, "count")


class RFIBursts(BaseModel):
    """Random on-intervals in slow time: ``count`` bursts of ``length`` pulses, placed without overlap."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    count: IntRange = (1, 3)
    length: IntRange = (64, 256)
    #: fraction of the pulses inside a burst on which the RFI is actually on (intermittent emitters)
    duty: float = Field(1.0, gt=0.0, le=1.0)
    #: pulses kept free of bursts at each end of the scene
    margin: int = Field(0, ge=0)

    @field_validator("count", "length")
    @classmethod
    def _ints(cls, v: Any, info: Any) -> Any:
        lo = v[0] if isinstance(v, (tuple, list)) else v
        if int(lo) < (0 if info.field_name == "count" else 1):
            raise ValueError(f"{info.field_name} too small")
        return _check_range(v, info.field_name)


#: Source families of the presets. Bandwidth values are absolute [Hz]; they are clipped to the radar band.
RFI_PRESETS: dict[str, dict[str, Any]] = {
    # The DIFNet paper's MiniSAR setting: 2 narrowband emitters under 30 MHz (and under 2 % of the band),
    # 3-5 broadband emitters of 30-150 MHz (chirp and sinusoidal FM).
    "minisar": {
        "sources": [
            {"kind": "narrowband", "count": 2, "bandwidth": (0.0, 4e6)},
            {"kind": "chirp", "count": (2, 3), "bandwidth": (30e6, 150e6)},
            {"kind": "sinfm", "count": (1, 2), "bandwidth": (30e6, 150e6)},
        ],
        "sir_db": (-15.0, 0.0),
    },
    # Sentinel-1-like C-band: mostly narrowband ground emitters, a few broadband ones of some MHz.
    "sentinel1": {
        "sources": [
            {"kind": "narrowband", "count": 2, "bandwidth": (0.0, 0.8e6)},
            {"kind": "chirp", "count": (1, 2), "bandwidth": (4e6, 20e6)},
            {"kind": "sinfm", "count": 1, "bandwidth": (4e6, 20e6)},
        ],
        "sir_db": (-15.0, 0.0),
    },
}


class RFIConfig(BaseModel):
    """The ``rfi:`` section of the simulator configuration.

    ``preset`` (``minisar`` | ``sentinel1``) supplies ``sources`` and ``sir_db`` unless they are given.
    On-intervals: ``pulses`` (explicit ``[start, stop)`` pulse intervals) or ``bursts`` (random); default bursts.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    preset: Literal["minisar", "sentinel1"] | None = None
    sources: list[RFISource] | None = None
    #: signal-to-interference ratio [dB]; a [low, high] pair is drawn once per scene
    sir_db: Range | None = None
    pulses: list[tuple[int, int]] | None = None
    bursts: RFIBursts | None = None
    #: fraction of the receive window (fast time) on which each emitter is on: rect(t); 1 = whole window
    fast_time_duty: Range = 1.0

    @field_validator("sir_db")
    @classmethod
    def _sir(cls, v: Any) -> Any:
        return _check_range(v, "sir_db")

    @field_validator("fast_time_duty")
    @classmethod
    def _duty(cls, v: Any) -> Any:
        return _check_fraction(v, "fast_time_duty")

    @field_validator("pulses")
    @classmethod
    def _pulses(cls, v: Any) -> Any:
        if v is None:
            return v
        for start, stop in v:
            if start < 0 or stop <= start:
                raise ValueError(f"pulse interval [{start}, {stop}) must have 0 <= start < stop")
        return v

    @model_validator(mode="after")
    def _one_interval_source(self) -> RFIConfig:
        if self.pulses is not None and self.bursts is not None:
            raise ValueError("give either 'pulses' (explicit intervals) or 'bursts' (random), not both")
        if self.preset is None and self.sources is None:
            raise ValueError("give a 'preset' or a list of 'sources'")
        return self

    def resolved_sources(self) -> list[RFISource]:
        if self.sources is not None:
            return list(self.sources)
        return [RFISource(**s) for s in RFI_PRESETS[str(self.preset)]["sources"]]

    def resolved_sir(self) -> Range:
        if self.sir_db is not None:
            return self.sir_db
        if self.preset is not None:
            return RFI_PRESETS[self.preset]["sir_db"]
        return -5.0


# --------------------------------------------------------------------------------------------- emitters


def resolve_sources(
    cfg: RFIConfig, sensor: SensorParams, rng: np.random.Generator, window: float
) -> list[dict[str, Any]]:
    """Draw the concrete emitters (kind, frequency [Hz], bandwidth [Hz], sweep/modulation, relative power).

    ``window``: length of the receive window [s] (n_range / fs), the time scale of the default sweeps.
    """
    band = sensor.chirp_bandwidth
    fs = sensor.range_sampling_rate
    usable = min(band, fs)
    out: list[dict[str, Any]] = []
    for fam in cfg.resolved_sources():
        for _ in range(_draw_int(rng, fam.count)):
            bw = min(_draw(rng, fam.bandwidth), 0.9 * usable)
            if fam.frequency is None:
                half = max(usable / 2 - bw / 2, 0.0)
                f0 = float(rng.uniform(-half, half))
            else:
                f0 = _draw(rng, fam.frequency)
            em: dict[str, Any] = {
                "kind": fam.kind,
                "frequency": f0,
                "bandwidth": bw,
                "power": _draw(rng, fam.power),
                "phase": float(rng.uniform(0, 2 * np.pi)),
            }
            if fam.kind == "chirp":
                em["sweep_time"] = (
                    _draw(rng, fam.sweep_time) if fam.sweep_time is not None else window * float(rng.uniform(0.5, 4.0))
                )
                em["sweep_offset"] = float(rng.uniform(0, em["sweep_time"]))
                em["sweep_sign"] = float(rng.choice([-1.0, 1.0]))
            elif fam.kind == "sinfm":
                em["modulation_frequency"] = (
                    _draw(rng, fam.modulation_frequency)
                    if fam.modulation_frequency is not None
                    else float(rng.uniform(0.25, 1.5)) / window
                )
            # the optional behaviours draw only when asked for, so existing scenes keep their random streams
            if fam.drift_rate is not None:
                em["drift_rate"] = _draw(rng, fam.drift_rate)
            if fam.pulse_period is not None:
                em["pulse_period"] = _draw(rng, fam.pulse_period)
                em["pulse_duty"] = _draw(rng, fam.pulse_duty)
                em["pulse_offset"] = float(rng.uniform(0, em["pulse_period"]))
            if _draw_max(fam.fluctuation_db) > 0:
                em["fluctuation_db"] = _draw(rng, fam.fluctuation_db)
            out.append(em)
    return out


def rfi_waveform(em: dict[str, Any], t_abs: np.ndarray, t_rel: np.ndarray, window: float) -> np.ndarray:
    """Unit-amplitude complex waveform of one emitter at absolute times ``t_abs`` [s] (float64 arrays).

    ``t_rel`` is fast time from the start of the receive window [s], ``window`` its length [s].
    """
    f0 = em["frequency"]
    phase = 2 * np.pi * f0 * t_abs + em["phase"]
    kind = em["kind"]
    if kind == "narrowband":
        if em["bandwidth"] > 0:
            k = em["bandwidth"] / window
            phase = phase + np.pi * k * (t_rel - window / 2) ** 2
    elif kind == "chirp":
        ts = em["sweep_time"]
        k = em["sweep_sign"] * em["bandwidth"] / ts
        tm = np.mod(t_abs - em["sweep_offset"], ts) - ts / 2
        phase = phase + np.pi * k * tm**2
    elif kind == "sinfm":
        fm = em["modulation_frequency"]
        beta = em["bandwidth"] / (2 * fm)
        phase = phase + beta * np.sin(2 * np.pi * fm * t_abs)
    else:  # pragma: no cover - guarded by the pydantic Literal
        raise ValueError(kind)
    if em.get("drift_rate"):
        phase = phase + np.pi * em["drift_rate"] * t_abs**2
    out = np.exp(1j * phase)
    if em.get("pulse_period"):
        period = em["pulse_period"]
        out = out * (np.mod(t_abs - em["pulse_offset"], period) < em["pulse_duty"] * period)
    return out


def _on_pulses(cfg: RFIConfig, n_az: int, rng: np.random.Generator) -> np.ndarray:
    on = np.zeros(n_az, dtype=bool)
    if cfg.pulses is not None:
        for start, stop in cfg.pulses:
            if stop > n_az:
                raise InputError(
                    f"pulse interval [{start}, {stop}) reaches beyond the scene's {n_az} pulses", where="rfi.pulses"
                )
            on[start:stop] = True
        return on
    bursts = cfg.bursts or RFIBursts()
    n = _draw_int(rng, bursts.count)
    lo_free, hi_free = (bursts.margin, n_az - bursts.margin) if n_az > 2 * bursts.margin else (0, n_az)
    for _ in range(n):
        length = min(_draw_int(rng, bursts.length), hi_free - lo_free)
        for _attempt in range(50):  # place without overlap when there is room
            start = int(rng.integers(lo_free, hi_free - length + 1))
            if not on[max(start - 1, 0) : start + length + 1].any():
                break
        seg = np.ones(length, dtype=bool)
        if bursts.duty < 1.0:
            seg = rng.random(length) < bursts.duty
        on[start : start + length] |= seg
    return on


def add_rfi(ds: xr.Dataset, cfg: RFIConfig | dict, rng: np.random.Generator) -> xr.Dataset:
    """Return ``ds`` with RFI added: variable ``rfi`` (complex64, dims azimuth, range) and ``echo += rfi``.

    Records the drawn emitters in ``attrs['rfi_sources']``, the SIR in ``attrs['rfi_sir_db']`` [dB] and the
    on-pulses as ``[start, stop)`` runs in ``attrs['rfi_intervals']``. An existing ``rfi`` variable is added to.
    """
    if isinstance(cfg, dict):
        cfg = RFIConfig(**cfg)
    if "echo" not in ds.data_vars:
        raise InputError("no variable 'echo' to add RFI to", where="variable 'echo'")
    attrs = dict(ds.attrs)
    echo = np.asarray(ds["echo"].values)
    n_az, n_rg = echo.shape
    sensor = SensorParams.from_attrs(attrs)
    window = n_rg / sensor.range_sampling_rate  # receive window [s]
    emitters = resolve_sources(cfg, sensor, rng, window)
    sir_db = _draw(rng, cfg.resolved_sir())
    on = _on_pulses(cfg, n_az, rng)

    rfi = np.zeros((n_az, n_rg), dtype=np.complex64)
    rows = np.flatnonzero(on)
    if emitters and rows.size:
        az_time = np.asarray(ds["azimuth_time"].values, dtype=np.float64)
        tau = 2.0 * np.asarray(ds["slant_range"].values, dtype=np.float64) / SPEED_OF_LIGHT
        t_rel = tau - tau[0]
        amps = np.sqrt(np.array([em["power"] for em in emitters], dtype=np.float64))
        # rect(t): each emitter is on over a random part of the receive window, fixed per emitter
        gates = []
        for em in emitters:
            duty = _draw(rng, cfg.fast_time_duty)
            length = max(1, int(round(duty * n_rg)))
            start = int(rng.integers(0, n_rg - length + 1))
            g = np.zeros(n_rg, dtype=bool)
            g[start : start + length] = True
            gates.append(g)
            em["gate"] = [start, start + length]
        # pulse-to-pulse log-normal gains (drawn only for emitters that fluctuate)
        gains = [
            10 ** (rng.standard_normal(rows.size) * em["fluctuation_db"] / 20) if em.get("fluctuation_db") else None
            for em in emitters
        ]
        for lo in range(0, rows.size, 256):
            blk = rows[lo : lo + 256]
            t_abs = az_time[blk, None] + tau[None, :]
            acc = np.zeros((blk.size, n_rg), dtype=np.complex128)
            for em, a, g, gain in zip(emitters, amps, gates, gains):
                w = a * g[None, :] * rfi_waveform(em, t_abs, np.broadcast_to(t_rel, t_abs.shape), window)
                acc += w if gain is None else w * gain[lo : lo + 256, None]
            rfi[blk] = acc.astype(np.complex64)
        p_sig = float(np.mean(np.abs(echo.astype(np.complex128)) ** 2))
        p_rfi = float(np.mean(np.abs(rfi[rows].astype(np.complex128)) ** 2))
        if p_sig <= 0:
            raise InputError("the echo has zero power; an SIR cannot be set", where="variable 'echo'")
        scale = math.sqrt(p_sig / p_rfi * 10 ** (-sir_db / 10.0))
        rfi[rows] *= np.float32(scale)
        for em, a in zip(emitters, amps):
            em["amplitude"] = float(a * scale)

    out = ds.copy(deep=False)
    total_rfi = rfi if "rfi" not in ds.data_vars else (np.asarray(ds["rfi"].values) + rfi).astype(np.complex64)
    out["echo"] = (("azimuth", "range"), (echo + rfi).astype(np.complex64))
    out["rfi"] = (("azimuth", "range"), total_rfi)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    out.attrs = dict(attrs)
    out.attrs["rfi_sir_db"] = float(sir_db)
    out.attrs["rfi_sources"] = [
        {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in em.items()} for em in emitters
    ]
    out.attrs["rfi_intervals"] = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]
    return out


def rfi_truth_pulses(ds: xr.Dataset) -> np.ndarray:
    """Boolean per pulse: True where the ground-truth ``rfi`` is non-zero (the pulses to be cleaned)."""
    if "rfi" not in ds.data_vars:
        return np.zeros(ds.sizes["azimuth"], dtype=bool)
    return np.asarray(np.abs(ds["rfi"]).max("range").values) > 0
