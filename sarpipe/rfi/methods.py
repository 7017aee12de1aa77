"""The cleanup-method slot: one small interface every RFI cleanup method implements, and a registry of them.

A method sees a batch of contaminated pulses as complex spectrograms (``domain = "tf"``, the default; layout and
scaling of :mod:`sarpipe.rfi.stft`) or as the pulses themselves (``domain = "pulse"``, for methods such as a
notch on the whole-pulse spectrum), plus a :class:`MethodContext` (sensor attributes, STFT parameters, the azimuth
indices of the pulses). It returns a :class:`MethodOutput`: either the RFI estimate (same shape, complex) or a mask
in ``[0, 1]`` (1 = RFI), from which the estimate is ``mask * spectrogram``. The chain subtracts the estimate, so a
method never has to know how the pulses are put back.

Methods register by name (:func:`register_method`); learned models register lazily (``"module:attribute"``, so
torch is imported only when that method is chosen) or through the entry-point group ``sarpipe.rfi_methods``.
Super-resolution (``--sr FACTOR``) wraps any method through :func:`wrap_sr`; SR models register with
:func:`register_sr`.
"""

from __future__ import annotations

import functools
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from ..errors import InputError
from ..sensor import SensorParams
from .stft import STFTParams, frame_times, frequencies

__all__ = [
    "MethodContext",
    "MethodOutput",
    "CleanupMethod",
    "register_method",
    "register_lazy_method",
    "create_method",
    "method_factory",
    "registered_lazily",
    "checked_params",
    "parameter_hints",
    "method_names",
    "register_sr",
    "register_lazy_sr",
    "sr_names",
    "wrap_sr",
]


@dataclass(frozen=True)
class MethodContext:
    """What a method may know about the batch besides the data.

    ``attrs``: sensor attributes of the raw dataset (SI units, docs/design.md section 2), also as the validated
    :class:`~sarpipe.sensor.SensorParams` ``sensor``. ``stft``: the transform used.
    ``pulse_indices``: azimuth index of each pulse in the batch (int64). ``n_samples``: fast-time samples per pulse.
    ``extra``: free-form hints (e.g. the detected image mask for that batch); methods must not require them.
    """

    attrs: Mapping[str, Any]
    stft: STFTParams
    pulse_indices: np.ndarray
    n_samples: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def sensor(self) -> SensorParams:
        """The sensor parameters of ``attrs`` (validated once)."""
        return SensorParams.from_attrs(self.attrs)

    @property
    def fs(self) -> float:
        """Range sampling rate [Hz]."""
        return self.sensor.range_sampling_rate

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
        return self.sensor.chirp_bandwidth


@dataclass
class MethodOutput:
    """``kind="estimate"``: ``data`` is the RFI (complex, same shape as the input).
    ``kind="mask"``: ``data`` is in ``[0, 1]`` (bool or float), 1 where the input is RFI."""

    kind: Literal["estimate", "mask"]
    data: np.ndarray

    def rfi_estimate(self, x: np.ndarray) -> np.ndarray:
        """The RFI estimate for input ``x`` (complex64)."""
        if self.data.shape != x.shape:
            raise ValueError(f"method output shape {self.data.shape} differs from its input {x.shape}")
        if self.kind == "estimate":
            return np.asarray(self.data, dtype=np.complex64)
        if self.kind == "mask":
            return (x * np.asarray(self.data, dtype=np.float32)).astype(np.complex64)
        raise ValueError(f"unknown method output kind {self.kind!r}")


class CleanupMethod(ABC):
    """A cleanup method. Subclasses set ``name`` and implement ``__call__``.

    ``domain``: ``"tf"`` (input ``(n_pulses, n_freq, n_frames)`` spectrograms) or ``"pulse"`` (input
    ``(n_pulses, n_samples)`` pulses). ``whole_block``: True if the method needs consecutive pulses together
    (slow-time methods); the chain then hands it runs of consecutive contaminated pulses.
    """

    name: ClassVar[str] = "?"
    domain: ClassVar[Literal["tf", "pulse"]] = "tf"
    whole_block: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        """Predict the RFI in ``x`` (see the class docstring for the shapes)."""

    def params(self) -> dict[str, Any]:
        """Parameters, for the processing history."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


# --------------------------------------------------------------------------------------------- registry

#: Entry-point groups third-party packages use to add cleanup methods and SR wrappers ("module:attribute").
METHOD_ENTRY_POINT_GROUP = "sarpipe.rfi_methods"
SR_ENTRY_POINT_GROUP = "sarpipe.rfi_sr"

_METHODS: dict[str, Callable[..., CleanupMethod]] = {}
_LAZY: dict[str, str] = {}
_SR: dict[str, Callable[..., CleanupMethod]] = {}
_LAZY_SR: dict[str, str] = {}
_ENTRY_POINTS_LOADED = False


def register_method(name: str) -> Callable[[Callable[..., CleanupMethod]], Callable[..., CleanupMethod]]:
    """Decorator: register a method class or factory under ``name`` (``create_method(name, **params)``)."""

    def deco(factory: Callable[..., CleanupMethod]) -> Callable[..., CleanupMethod]:
        _METHODS[name] = factory
        return factory

    return deco


def register_lazy_method(name: str, target: str) -> None:
    """Register ``"package.module:attribute"`` under ``name``; imported only when the method is created."""
    _LAZY[name] = target


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=METHOD_ENTRY_POINT_GROUP):
        _LAZY.setdefault(ep.name, ep.value)
    for ep in entry_points(group=SR_ENTRY_POINT_GROUP):
        _LAZY_SR.setdefault(ep.name, ep.value)


def _builtin() -> None:
    # the classical baselines register themselves on import
    from . import esf, notch  # noqa: F401

    register_lazy_method("difnet", "sarpipe.models.difnet:DIFNetMethod")
    register_lazy_method("dap", "sarpipe.spectral.dap:DAPMethod")
    register_lazy_method("scorecam", "sarpipe.spectral.scorecam:ScoreCAMMethod")
    register_lazy_method("samsnet", "sarpipe.spectral.samsnet_method:SamsNetMethod")


def method_names() -> list[str]:
    """Names of every registered cleanup method (built-in, lazy and entry points)."""
    _builtin()
    _load_entry_points()
    return sorted(set(_METHODS) | set(_LAZY))


_CHECKED_TYPES = {bool, int, bool | None, int | None}


def parameter_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """The resolved type annotations of a method factory's parameters: a class's own ``__init__`` over its bases'
    (a subclass that passes ``**kwargs`` on, as DIFNet's to :class:`TorchMethod`'s); annotations that cannot be
    resolved (an entry point's) are left out."""
    import inspect
    import typing

    if inspect.isclass(factory):
        targets = [c.__init__ for c in reversed(factory.__mro__) if "__init__" in vars(c) and c is not object]
    else:
        targets = [factory]
    hints: dict[str, Any] = {}
    for target in targets:
        try:
            hints.update(typing.get_type_hints(target))
        except Exception:  # noqa: BLE001 - unresolvable annotations: nothing to check by
            continue
    hints.pop("return", None)
    return hints


def checked_params(factory: Callable[..., Any], params: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``params`` with each value for a parameter ``factory`` annotates as ``bool`` or ``int`` (or either or None)
    validated as pydantic does in the run configs: ``"false"`` / ``0`` -> False, ``"31"`` / ``31.0`` -> 31;
    ``"maybe"`` or ``31.5`` is an :class:`InputError` naming ``--param KEY`` (``bool("false")`` would be True, and
    ``int(31.5)`` 31, without a word). Other parameters pass as given: their methods convert and check them."""
    from pydantic import TypeAdapter, ValidationError

    hints = parameter_hints(factory)
    out = dict(params)
    for key, value in params.items():
        hint = hints.get(key)
        if hint not in _CHECKED_TYPES:
            continue
        try:
            out[key] = TypeAdapter(hint).validate_python(value)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise InputError(f"{what}: {key}={value!r}: {reason}", where=f"--param {key}") from None
    return out


def registered_lazily(name: str) -> bool:
    """True for a method registered by import path (the learned ones, entry points): it is imported and built
    only where it runs."""
    _builtin()
    _load_entry_points()
    return name in _LAZY


def method_factory(name: str) -> Callable[..., CleanupMethod]:
    """The factory registered as ``name``, imported now if it is registered lazily; an unknown name, or one that
    cannot be imported, is an :class:`InputError`."""
    _builtin()
    if name not in _METHODS:
        _load_entry_points()
        if name in _LAZY:
            module, _, attr = _LAZY[name].partition(":")
            try:
                factory = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise InputError(
                    f"cleanup method {name!r} is registered as {_LAZY[name]!r} but cannot be loaded ({exc})",
                    where="--method",
                ) from exc
            _METHODS[name] = factory
    if name not in _METHODS:
        raise InputError(f"unknown cleanup method {name!r}; registered: {', '.join(method_names())}", where="--method")
    return _METHODS[name]


def create_method(name: str, **params: Any) -> CleanupMethod:
    """Instantiate the method registered as ``name``; an unknown name is an :class:`InputError`."""
    factory = method_factory(name)
    params = checked_params(factory, params, f"cleanup method {name!r}")
    try:
        return factory(**params)
    except InputError:
        raise  # the method already named what is wrong (e.g. --param weights)
    except (TypeError, ValueError) as exc:  # unknown keyword, or a value the method refuses
        raise InputError(
            f"bad parameters for cleanup method {name!r}: {exc}", where="--param" if params else "--method"
        ) from exc


def register_sr(name: str) -> Callable[[Callable[..., CleanupMethod]], Callable[..., CleanupMethod]]:
    """Decorator: register a super-resolution wrapper ``factory(method, factor, **params) -> CleanupMethod``."""

    def deco(factory: Callable[..., CleanupMethod]) -> Callable[..., CleanupMethod]:
        _SR[name] = factory
        return factory

    return deco


def register_lazy_sr(name: str, target: str) -> None:
    """Register an SR wrapper as ``"package.module:attribute"``; imported only when ``--sr`` names or needs it."""
    _LAZY_SR[name] = target


def sr_names() -> list[str]:
    """Names of every registered super-resolution wrapper (loaded or lazy)."""
    _builtin_sr()
    _load_entry_points()
    return sorted(set(_SR) | set(_LAZY_SR))


def _builtin_sr() -> None:
    register_lazy_sr("sfsrnet", "sarpipe.spectral.sr:SuperResolvedMethod")


def _sr_factory(name: str) -> Callable[..., CleanupMethod]:
    if name not in _SR:
        module, _, attr = _LAZY_SR[name].partition(":")
        try:
            _SR[name] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise InputError(
                f"SR model {name!r} is registered as {_LAZY_SR[name]!r} but cannot be loaded ({exc})", where="--sr"
            ) from exc
    return _SR[name]


def wrap_sr(method: CleanupMethod, factor: float, model: str | None = None, **params: Any) -> CleanupMethod:
    """Wrap ``method`` with the SR model ``model`` (the only one, if None) at ``factor``.

    Raises :class:`InputError` when no SR model is registered (``sarpipe rfi clean --sr`` then exits with 2).
    """
    if not factor or factor <= 1:
        raise InputError(f"the SR factor must be > 1, got {factor}", where="--sr")
    names = sr_names()
    if not names:
        raise InputError("no super-resolution model is registered yet (it comes with sarpipe.spectral)", where="--sr")
    if model is None:
        if len(names) > 1:
            raise InputError(f"several SR models are registered ({', '.join(names)}); name one", where="--sr")
        model = names[0]
    if model not in names:
        raise InputError(f"unknown SR model {model!r}; registered: {', '.join(names)}", where="--sr")
    factory = _sr_factory(model)
    return factory(method, factor, **checked_params(factory, params, f"SR model {model!r}"))
