"""DIFNet training data, simulated on the fly: one pulse's spectrogram (input) and its true RFI mask (label).

One sample is one received pulse of ``(frames - 1) * hop`` fast-time samples (so its STFT is ``nperseg x frames``):

- clean echo: a reflectivity profile along range convolved with the sensor's chirp replica (a pulse of
  distributed clutter): circular complex Gaussian speckle times a gamma texture (shape ``clutter_texture``, K
  clutter) times a slowly varying log-normal profile, with dark stretches (``dark_fraction``), plus
  ``strong_targets`` point scatterers ``strong_target_db`` above the clutter (reflectivity power per range sample);
- thermal noise (``sarpipe.simulate.noise``) at ``snr_db`` below the clean echo's power;
- RFI: ``narrowband`` emitters (tones, slow sweeps and tones drifting with absolute time, occupied width
  ``narrowband_bandwidth`` x the chirp bandwidth) and ``broadband`` emitters (sawtooth chirps and sinusoidal FM of
  ``broadband_bandwidth`` x the chirp bandwidth; the DIFNet paper's < 30 MHz and 30-150 MHz of MiniSAR's 300 MHz
  scale to 0..0.1 and 0.1..0.5), waveforms of ``sarpipe.simulate`` evaluated at absolute time
  ``t = t_pulse + tau`` (so they land differently on each echo), each optionally pulsed with its own period and
  duty cycle, and with an amplitude that fluctuates from pulse to pulse (log-normal) and within the pulse (slow
  AM); scaled to an SIR drawn from ``sir_db`` (mean echo power over mean RFI power of the pulse);
- label: ``sarpipe.rfi.metrics.true_tf_mask`` (``|STFT(rfi)| > |STFT(echo - rfi)|``); input: the model-input
  transform of ``STFT(echo)`` (``sarpipe.models.torch_method.spectrogram_to_input``).

Sample ``i`` of split ``s`` (train 0, validation 1) is drawn from ``numpy.random.default_rng([seed, s, i])``: the
same configuration gives the same samples, and validation never shares a stream with training.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "SPLITS",
    "DIFNetDataConfig",
    "SensorBand",
    "draw_emitters",
    "interference",
    "make_batch",
    "make_pulse",
    "make_sample",
    "sensor_band",
]

Pair = tuple[float, float]
IntPair = tuple[int, int]
#: split name -> stream number in the seed
SPLITS = {"train": 0, "validation": 1}


class SensorBand(BaseModel):
    """A sensor's receive band: a preset of ``sarpipe.simulate`` and/or explicit values (Hz, s); an explicit
    ``[low, high]`` is a span drawn uniformly per sample (a family of sensors, for training across sensors)."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = None
    range_sampling_rate: float | Pair | None = None
    chirp_bandwidth: float | Pair | None = None
    pulse_duration: float | Pair | None = None

    @field_validator("range_sampling_rate", "chirp_bandwidth", "pulse_duration")
    @classmethod
    def _positive(cls, v: Any, info: Any) -> Any:
        if v is None:
            return v
        v = _pair(v, info.field_name)
        if float(v[0]) <= 0:
            raise ValueError(f"{info.field_name} must be positive")
        return v

    @model_validator(mode="after")
    def _complete(self) -> SensorBand:
        if self.preset is not None:
            from ..simulate.presets import SENSORS

            if self.preset not in SENSORS:
                raise ValueError(f"unknown sensor preset {self.preset!r}; known: {', '.join(sorted(SENSORS))}")
        elif None in (self.range_sampling_rate, self.chirp_bandwidth, self.pulse_duration):
            raise ValueError("give a preset or all of range_sampling_rate, chirp_bandwidth, pulse_duration")
        return self

    def spans(self) -> tuple[Pair, Pair, Pair]:
        """``[low, high]`` of (range sampling rate [Hz], chirp bandwidth [Hz], pulse duration [s])."""
        fs = bw = tp = None
        if self.preset is not None:
            from ..simulate.presets import SENSORS

            p = SENSORS[self.preset]
            fs = (float(p["range_sampling_rate"]),) * 2
            tp = (float(p["pulse_duration"]),) * 2
            bw = (abs(float(p["chirp_rate"])) * tp[0],) * 2
        fs = self.range_sampling_rate or fs
        bw = self.chirp_bandwidth or bw
        tp = self.pulse_duration or tp
        return tuple((float(v[0]), float(v[1])) for v in (fs, bw, tp))  # type: ignore[return-value,index]


def sensor_band(s: SensorBand, rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """(range sampling rate [Hz], chirp bandwidth [Hz] (at most the sampling rate), pulse duration [s]) of one
    draw from ``s`` (the low ends without ``rng``)."""
    fs, bw, tp = (_u(rng, v) if rng is not None else v[0] for v in s.spans())
    return fs, min(bw, fs), tp


def _pair(v: Any, name: str, lo: float | None = None) -> Any:
    if isinstance(v, (int, float)):
        v = (v, v)
    if not isinstance(v, (tuple, list)) or len(v) != 2 or float(v[1]) < float(v[0]):
        raise ValueError(f"{name} must be a number or a [low, high] pair with low <= high")
    if lo is not None and float(v[0]) < lo:
        raise ValueError(f"{name} must be >= {lo}")
    return (v[0], v[1])


class DIFNetDataConfig(BaseModel):
    """The training-data recipe (module docstring). Ranges ``[low, high]`` are drawn uniformly per sample or emitter."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    sensors: list[SensorBand] = Field(default_factory=lambda: [SensorBand(preset="minisar")], min_length=1)
    nperseg: int = Field(128, ge=2)
    hop: int = Field(32, ge=1)
    window: str = "hann"
    frames: int = Field(128, ge=2)
    snr_db: float | Pair = (0.0, 20.0)
    clutter_texture: float | Pair = (0.5, 10.0)
    dark_fraction: float = Field(0.2, ge=0, le=1)
    strong_targets: int | IntPair = (0, 4)
    strong_target_db: float | Pair = (25.0, 35.0)
    sir_db: float | Pair = (-15.0, 0.0)
    narrowband_count: int | IntPair = 2
    broadband_count: int | IntPair = (3, 5)
    narrowband_bandwidth: float | Pair = (0.0, 0.1)
    broadband_bandwidth: float | Pair = (0.1, 0.5)
    #: probability that a narrowband emitter drifts (frequency moves with absolute time)
    drift_probability: float = Field(0.3, ge=0, le=1)
    #: drift rate [fraction of the chirp bandwidth per second]
    drift_rate: float | Pair = (-0.5, 0.5)
    #: probability that an emitter is pulsed, with period [receive windows] and duty cycle
    pulsed_probability: float = Field(0.3, ge=0, le=1)
    pulsed_period: float | Pair = (0.2, 3.0)
    pulsed_duty: float | Pair = (0.05, 0.6)
    #: standard deviation [dB] of each emitter's pulse-to-pulse amplitude (log-normal)
    fluctuation_db: float | Pair = (0.0, 4.0)
    #: depth of the slow amplitude modulation inside a pulse (0 = none)
    modulation_depth: float | Pair = (0.0, 0.5)
    #: fraction of samples without any RFI (the network must learn empty masks too)
    rfi_free_fraction: float = Field(0.05, ge=0, le=1)
    #: absolute time of the pulses [s], drawn per sample (drift and pulsed emitters depend on it)
    pulse_time: float | Pair = (0.0, 10.0)
    seed: int = 0
    #: number of distinct training samples, cycled; None = a fresh sample for every draw
    train_samples: int | None = Field(None, ge=1)
    validation_samples: int = Field(64, ge=1)

    @field_validator("snr_db", "sir_db", "strong_target_db", "drift_rate", "pulse_time")
    @classmethod
    def _range(cls, v: Any, info: Any) -> Any:
        return _pair(v, info.field_name)

    @field_validator("clutter_texture", "pulsed_period", "pulsed_duty")
    @classmethod
    def _positive(cls, v: Any, info: Any) -> Any:
        v = _pair(v, info.field_name, 0.0)
        if float(v[0]) <= 0:
            raise ValueError(f"{info.field_name} must be positive")
        return v

    @field_validator("narrowband_bandwidth", "broadband_bandwidth", "fluctuation_db", "modulation_depth")
    @classmethod
    def _nonneg(cls, v: Any, info: Any) -> Any:
        return _pair(v, info.field_name, 0.0)

    @field_validator("strong_targets", "narrowband_count", "broadband_count")
    @classmethod
    def _count(cls, v: Any, info: Any) -> Any:
        return _pair(v, info.field_name, 0)

    @model_validator(mode="after")
    def _stft(self) -> DIFNetDataConfig:
        from ..rfi.stft import STFTParams

        STFTParams(self.nperseg, self.hop, self.window)  # InputError (a ValueError) for an STFT that cannot invert
        if float(self.pulsed_duty[1]) > 1:  # type: ignore[index]
            raise ValueError("pulsed_duty must lie in (0, 1]")
        return self

    @property
    def n_samples(self) -> int:
        """Fast-time samples per pulse (gives exactly ``frames`` STFT frames)."""
        return (self.frames - 1) * self.hop

    def stft_params(self) -> Any:
        from ..rfi.stft import STFTParams

        return STFTParams(self.nperseg, self.hop, self.window)

    def valid_for(self) -> Any:
        """What weights trained on this data are valid for (:class:`sarpipe.models.weights.ValidFor`)."""
        from .weights import ValidFor

        spans = [s.spans() for s in self.sensors]
        fs = [v for sp in spans for v in sp[0]]
        bw = [min(b, sp[0][1]) for sp in spans for b in sp[1]]
        return ValidFor(
            stft=self.stft_params().as_dict(),
            range_sampling_rate=(min(fs), max(fs)),
            chirp_bandwidth=(min(bw), max(bw)),
        )


def _u(rng: np.random.Generator, v: Any) -> float:
    return float(rng.uniform(float(v[0]), float(v[1]))) if v[1] != v[0] else float(v[0])


def _ui(rng: np.random.Generator, v: Any) -> int:
    return int(rng.integers(int(v[0]), int(v[1]) + 1))


def _clean_echo(cfg: DIFNetDataConfig, rng: np.random.Generator, fs: float, bw: float, tp: float) -> np.ndarray:
    """One pulse of clutter + strong scatterers, convolved with the chirp replica (complex128, n_samples)."""
    import scipy.signal

    n = cfg.n_samples
    n_chirp = max(2, round(tp * fs))
    m = n + n_chirp - 1
    nu = _u(rng, cfg.clutter_texture)
    texture = rng.gamma(nu, 1.0 / nu, m)
    # slowly varying backscatter (fields, water, towns): a smoothed log-normal profile
    knots = max(2, m // max(8, int(rng.integers(32, 512))))
    prof_db = np.interp(np.arange(m), np.linspace(0, m - 1, knots), rng.normal(0.0, 3.0, knots))
    power = texture * 10 ** (prof_db / 10)
    if rng.random() < cfg.dark_fraction:  # a radar shadow or calm water
        a = int(rng.integers(0, m))
        power[a : a + int(rng.integers(m // 16 + 1, m // 3 + 2))] *= 10 ** (-rng.uniform(10, 25) / 10)
    refl = np.sqrt(power / 2) * (rng.standard_normal(m) + 1j * rng.standard_normal(m))
    for _ in range(_ui(rng, cfg.strong_targets)):
        k = int(rng.integers(0, m))
        refl[k] += math.sqrt(10 ** (_u(rng, cfg.strong_target_db) / 10)) * np.exp(2j * np.pi * rng.random())
    t = (np.arange(n_chirp) - n_chirp / 2) / fs
    k_r = float(rng.choice([-1.0, 1.0])) * bw / tp
    replica = np.exp(1j * np.pi * k_r * t**2)
    echo = scipy.signal.fftconvolve(refl, replica, mode="full")
    return echo[n_chirp - 1 : n_chirp - 1 + n] / math.sqrt(n_chirp)


def draw_emitters(cfg: DIFNetDataConfig, rng: np.random.Generator, bw: float, window: float) -> list[dict[str, Any]]:
    """The emitters of one sample, in the dict form of ``sarpipe.simulate``'s ``rfi_waveform`` plus the keys
    ``gate`` (``None`` or ``(period [s], duty, offset [s])``), ``drift`` [Hz/s], ``fluctuation_db``,
    ``modulation`` (``(depth, frequency [Hz], phase)``) and ``power``."""
    out = []
    kinds = ["narrowband"] * _ui(rng, cfg.narrowband_count) + ["broadband"] * _ui(rng, cfg.broadband_count)
    for family in kinds:
        width = bw * _u(rng, cfg.narrowband_bandwidth if family == "narrowband" else cfg.broadband_bandwidth)
        width = min(width, 0.95 * bw)
        if family == "narrowband":
            kind = "narrowband"
            if rng.random() < 0.5:
                width = 0.0  # a pure tone
        else:
            kind = str(rng.choice(["chirp", "sinfm"]))
        half = max(bw / 2 - width / 2, 0.0)
        em: dict[str, Any] = {
            "kind": kind,
            "frequency": float(rng.uniform(-half, half)),
            "bandwidth": width,
            "phase": float(rng.uniform(0, 2 * np.pi)),
            "power": float(rng.uniform(0.5, 2.0)),
            "gate": None,
            "drift": 0.0,
        }
        if kind == "chirp":
            em["sweep_time"] = window * float(rng.uniform(0.5, 4.0))
            em["sweep_offset"] = float(rng.uniform(0, em["sweep_time"]))
            em["sweep_sign"] = float(rng.choice([-1.0, 1.0]))
        elif kind == "sinfm":
            em["modulation_frequency"] = float(rng.uniform(0.25, 1.5)) / window
        if kind == "narrowband" and rng.random() < cfg.drift_probability:
            em["drift"] = bw * _u(rng, cfg.drift_rate)
        if rng.random() < cfg.pulsed_probability:
            period = window * _u(rng, cfg.pulsed_period)
            em["gate"] = (period, _u(rng, cfg.pulsed_duty), float(rng.uniform(0, period)))
        em["fluctuation_db"] = _u(rng, cfg.fluctuation_db)
        em["modulation"] = (
            _u(rng, cfg.modulation_depth),
            float(rng.uniform(0.2, 2.0)) / window,
            float(rng.uniform(0, 2 * np.pi)),
        )
        out.append(em)
    return out


def interference(
    emitters: list[dict[str, Any]],
    t_abs: np.ndarray,
    t_rel: np.ndarray,
    window: float,
    bw: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sum of the emitters at absolute times ``t_abs`` [s] of one pulse (``t_rel`` from the window start), before
    the SIR scaling (complex128)."""
    from ..simulate.interference import (
        rfi_waveform,  # the simulator's emitter waveforms (module may be renamed)
    )

    t0 = float(t_abs[0])
    out = np.zeros(t_abs.shape, np.complex128)
    for em in emitters:
        e = dict(em)
        if e["drift"]:
            # frequency at this pulse; folded back into the band like an emitter sweeping up and down
            f = e["frequency"] + e["drift"] * t0
            span = max(bw - e["bandwidth"], 1e-9)
            f = abs(((f + span / 2) % (2 * span)) - span) - span / 2
            e["frequency"] = f
        s = rfi_waveform(e, t_abs, t_rel, window)
        amp = math.sqrt(e["power"]) * 10 ** (rng.normal(0.0, e["fluctuation_db"]) / 20)
        depth, f_am, ph = e["modulation"]
        s = s * amp * (1 + depth * np.sin(2 * np.pi * f_am * t_rel + ph))
        if e["gate"] is not None:
            period, duty, offset = e["gate"]
            s = s * (np.mod(t_abs - offset, period) < duty * period)
        out += s
    return out


def make_sample(
    cfg: DIFNetDataConfig, split: Literal["train", "validation"], index: int
) -> tuple[np.ndarray, np.ndarray]:
    """(model input ``(nperseg, frames)`` float32, label ``(nperseg, frames)`` float32 in {0, 1}) of one sample."""
    from ..rfi.metrics import true_tf_mask
    from ..rfi.stft import stft
    from .torch_method import spectrogram_to_input

    echo, rfi, _band = make_pulse(cfg, split, index)
    p = cfg.stft_params()
    label = true_tf_mask(rfi[None], echo[None], p)[0].astype(np.float32)
    x = spectrogram_to_input(stft((echo + rfi)[None], p))[0]
    return x, label


def make_pulse(
    cfg: DIFNetDataConfig, split: Literal["train", "validation"], index: int
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """The pulse behind :func:`make_sample`: (echo without RFI (clutter + targets + noise), RFI, both complex64
    ``(n_samples,)``; (range sampling rate [Hz], chirp bandwidth [Hz], pulse duration [s]) of its sensor)."""
    from ..simulate.noise import noise_power, thermal_noise

    rng = np.random.default_rng([int(cfg.seed), SPLITS[split], int(index)])
    fs, bw, tp = sensor_band(cfg.sensors[int(rng.integers(0, len(cfg.sensors)))], rng)
    n = cfg.n_samples
    clean = _clean_echo(cfg, rng, fs, bw, tp).astype(np.complex64)
    p_n = noise_power(clean, snr_db=_u(rng, cfg.snr_db))
    echo = clean + thermal_noise((1, n), p_n, rng)[0]
    window = n / fs
    t_rel = np.arange(n) / fs
    t_abs = _u(rng, cfg.pulse_time) + t_rel
    rfi = np.zeros(n, np.complex64)
    if rng.random() >= cfg.rfi_free_fraction:
        r = interference(draw_emitters(cfg, rng, bw, window), t_abs, t_rel, window, bw, rng)
        p_r = float(np.mean(np.abs(r) ** 2))
        if p_r > 0:
            p_s = float(np.mean(np.abs(echo.astype(np.complex128)) ** 2))
            rfi = (r * math.sqrt(p_s / p_r * 10 ** (-_u(rng, cfg.sir_db) / 10))).astype(np.complex64)
    return echo, rfi, (fs, bw, tp)


def make_batch(
    cfg: DIFNetDataConfig, split: Literal["train", "validation"], indices: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Stacked :func:`make_sample` results: inputs ``(B, 1, H, W)`` and labels ``(B, 1, H, W)``, float32."""
    pairs = [make_sample(cfg, split, int(i)) for i in indices]
    return (np.stack([p[0] for p in pairs])[:, None], np.stack([p[1] for p in pairs])[:, None])
