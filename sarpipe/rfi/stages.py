"""The cleanup-stage slot: one small interface every RFI cleanup method implements, and a registry of them.

A stage sees a batch of contaminated pulses as complex spectrograms (``domain = "tf"``, the default; layout and
scaling of :mod:`sarpipe.rfi.stft`) or as the pulses themselves (``domain = "pulse"``, for methods such as a
notch on the whole-pulse spectrum), plus a :class:`StageContext` (sensor attributes, STFT parameters, the azimuth
indices of the pulses). It returns a :class:`StageOutput`: either the RFI estimate (same shape, complex) or a mask
in ``[0, 1]`` (1 = RFI), from which the estimate is ``mask * spectrogram``. The chain subtracts the estimate, so a
stage never has to know how the pulses are put back.

Methods register by name (:func:`register_stage`); learned models register lazily (``"module:attribute"``, so
torch is imported only when that stage is chosen) or through the entry-point group ``sarpipe.cleanup_stages``.
Super-resolution (``--sr FACTOR``) wraps any stage through :func:`wrap_sr`; SR models register with
:func:`register_sr`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Mapping

import numpy as np

from ..errors import InputError
from ..model import chirp_bandwidth
from .stft import STFTParams, frame_times, frequencies

__all__ = [
    "StageContext",
    "StageOutput",
    "CleanupStage",
    "register_stage",
    "register_lazy_stage",
    "create_stage",
    "stage_names",
    "register_sr",
    "sr_names",
    "wrap_sr",
]


@dataclass(frozen=True)
class StageContext:
    """What a stage may know about the batch besides the data.

    ``attrs``: sensor attributes of the raw dataset (SI units, DESIGN.md section 2). ``stft``: the transform used.
    ``pulse_indices``: azimuth index of each pulse in the batch (int64). ``n_samples``: fast-time samples per pulse.
    ``extra``: free-form hints (e.g. the detected image mask for that batch); stages must not require them.
    """

    attrs: Mapping[str, Any]
    stft: STFTParams
    pulse_indices: np.ndarray
    n_samples: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fs(self) -> float:
        """Range sampling rate [Hz]."""
        return float(self.attrs["range_sampling_rate"])

    @property
    def frequencies(self) -> np.ndarray:
        """Baseband frequency of each spectrogram bin [Hz]."""
        return frequencies(self.fs, self.stft)

    @property
    def frame_times(self) -> np.ndarray:
        """Fast time of each spectrogram frame from the first sample [s]."""
        return frame_times(self.n_samples, self.fs, self.stft)

    @property
    def radar_band(self) -> float:
        """Transmitted chirp bandwidth [Hz]."""
        return chirp_bandwidth(self.attrs)


@dataclass
class StageOutput:
    """``kind="estimate"``: ``data`` is the RFI (complex, same shape as the input).
    ``kind="mask"``: ``data`` is in ``[0, 1]`` (bool or float), 1 where the input is RFI."""

    kind: Literal["estimate", "mask"]
    data: np.ndarray

    def rfi_estimate(self, x: np.ndarray) -> np.ndarray:
        """The RFI estimate for input ``x`` (complex64)."""
        if self.data.shape != x.shape:
            raise ValueError(f"stage output shape {self.data.shape} differs from its input {x.shape}")
        if self.kind == "estimate":
            return np.asarray(self.data, dtype=np.complex64)
        if self.kind == "mask":
            return (x * np.asarray(self.data, dtype=np.float32)).astype(np.complex64)
        raise ValueError(f"unknown stage output kind {self.kind!r}")


class CleanupStage(ABC):
    """A cleanup method. Subclasses set ``name`` and implement ``__call__``.

    ``domain``: ``"tf"`` (input ``(n_pulses, n_freq, n_frames)`` spectrograms) or ``"pulse"`` (input
    ``(n_pulses, n_samples)`` pulses). ``whole_block``: True if the stage needs consecutive pulses together
    (slow-time methods); the chain then hands it runs of consecutive contaminated pulses.
    """

    name: ClassVar[str] = "?"
    domain: ClassVar[Literal["tf", "pulse"]] = "tf"
    whole_block: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, x: np.ndarray, ctx: StageContext) -> StageOutput:
        """Predict the RFI in ``x`` (see the class docstring for the shapes)."""

    def params(self) -> dict[str, Any]:
        """Parameters, for the processing history."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


# --------------------------------------------------------------------------------------------- registry

_STAGES: dict[str, Callable[..., CleanupStage]] = {}
_LAZY: dict[str, str] = {}
_SR: dict[str, Callable[..., CleanupStage]] = {}
_ENTRY_POINTS_LOADED = False


def register_stage(name: str) -> Callable[[Callable[..., CleanupStage]], Callable[..., CleanupStage]]:
    """Decorator: register a stage class or factory under ``name`` (``create_stage(name, **params)``)."""

    def deco(factory: Callable[..., CleanupStage]) -> Callable[..., CleanupStage]:
        _STAGES[name] = factory
        return factory

    return deco


def register_lazy_stage(name: str, target: str) -> None:
    """Register ``"package.module:attribute"`` under ``name``; imported only when the stage is created."""
    _LAZY[name] = target


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="sarpipe.cleanup_stages"):
        _LAZY.setdefault(ep.name, ep.value)


def _builtin() -> None:
    # the classical baselines register themselves on import
    from . import esf, notch  # noqa: F401


def stage_names() -> list[str]:
    """Names of every registered cleanup method (built-in, lazy and entry points)."""
    _builtin()
    _load_entry_points()
    return sorted(set(_STAGES) | set(_LAZY))


def create_stage(name: str, **params: Any) -> CleanupStage:
    """Instantiate the stage registered as ``name``; an unknown name is an :class:`InputError`."""
    _builtin()
    if name not in _STAGES:
        _load_entry_points()
        if name in _LAZY:
            module, _, attr = _LAZY[name].partition(":")
            try:
                factory = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise InputError(f"cleanup method {name!r} is registered as {_LAZY[name]!r} but cannot be loaded ({exc})",
                                 where="--method") from exc
            _STAGES[name] = factory
    if name not in _STAGES:
        raise InputError(f"unknown cleanup method {name!r}; registered: {', '.join(stage_names())}", where="--method")
    try:
        return _STAGES[name](**params)
    except (TypeError, ValueError) as exc:  # unknown keyword, or a value the stage refuses
        raise InputError(f"bad parameters for cleanup method {name!r}: {exc}", where="--method") from exc


def register_sr(name: str) -> Callable[[Callable[..., CleanupStage]], Callable[..., CleanupStage]]:
    """Decorator: register a super-resolution wrapper ``factory(stage, factor, **params) -> CleanupStage``."""

    def deco(factory: Callable[..., CleanupStage]) -> Callable[..., CleanupStage]:
        _SR[name] = factory
        return factory

    return deco


def sr_names() -> list[str]:
    return sorted(_SR)


def wrap_sr(stage: CleanupStage, factor: float, model: str | None = None, **params: Any) -> CleanupStage:
    """Wrap ``stage`` with the SR model ``model`` (the only one, if None) at ``factor``.

    Raises :class:`InputError` when no SR model is registered (``sarpipe rfi clean --sr`` then exits with 2).
    """
    if not factor or factor <= 1:
        raise InputError(f"the SR factor must be > 1, got {factor}", where="--sr")
    if not _SR:
        try:  # the spectral package registers its SR wrapper on import, when it exists
            importlib.import_module("sarpipe.spectral")
        except ImportError:
            pass
    if not _SR:
        raise InputError("no super-resolution model is registered yet (it comes with sarpipe.spectral)", where="--sr")
    if model is None:
        if len(_SR) > 1:
            raise InputError(f"several SR models are registered ({', '.join(sr_names())}); name one", where="--sr")
        model = next(iter(_SR))
    if model not in _SR:
        raise InputError(f"unknown SR model {model!r}; registered: {', '.join(sr_names())}", where="--sr")
    return _SR[model](stage, factor, **params)
