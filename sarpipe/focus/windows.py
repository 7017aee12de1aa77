"""Spectral weighting windows for range and azimuth compression.

A window spec is a string: ``rect`` (no weighting), ``hamming:ALPHA`` (generalised Hamming,
``ALPHA + (1 - ALPHA) cos(2 pi u)``, 0.5 <= ALPHA <= 1) or ``kaiser:BETA`` (``I0(BETA sqrt(1 - (2u)^2)) / I0(BETA)``,
BETA >= 0), with ``u = f / B`` the frequency normalised by the processed bandwidth ``B`` (``|u| <= 1/2`` in band).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Window:
    """A parsed window spec. ``kind`` is ``rect``, ``hamming`` or ``kaiser``; ``param`` is ALPHA or BETA."""

    kind: str
    param: float | None = None

    @property
    def spec(self) -> str:
        """The canonical spec string (round-trips through :func:`parse_window`)."""
        return self.kind if self.param is None else f"{self.kind}:{self.param:g}"

    @property
    def is_rect(self) -> bool:
        return self.kind == "rect"

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Window weights at normalised frequency ``u`` (float64); zero outside ``|u| <= 1/2``."""
        u = np.asarray(u, dtype=np.float64)
        inside = np.abs(u) <= 0.5
        if self.kind == "rect":
            w = np.ones_like(u)
        elif self.kind == "hamming":
            w = self.param + (1.0 - self.param) * np.cos(2.0 * np.pi * u)
        else:
            arg = np.sqrt(np.clip(1.0 - (2.0 * u) ** 2, 0.0, None))
            w = np.i0(self.param * arg) / np.i0(self.param)
        return np.where(inside, w, 0.0)


def parse_window(spec: str | Window, *, where: str = "window") -> Window:
    """Parse ``rect`` | ``hamming:ALPHA`` | ``kaiser:BETA``; raise :class:`InputError` naming ``where`` if bad."""
    if isinstance(spec, Window):
        return spec
    if not isinstance(spec, str):
        raise InputError(f"must be a string like 'rect', 'hamming:0.75' or 'kaiser:2.5', got {spec!r}", where=where)
    text = spec.strip().lower()
    name, sep, arg = text.partition(":")
    if name == "rect" and not sep:
        return Window("rect")
    if name not in ("hamming", "kaiser") or not sep:
        raise InputError(f"unknown window {spec!r} (use rect, hamming:ALPHA or kaiser:BETA)", where=where)
    try:
        value = float(arg)
    except ValueError:
        raise InputError(f"{name} needs a number after ':', got {arg!r}", where=where) from None
    if not math.isfinite(value):
        raise InputError(f"{name} parameter must be finite, got {arg!r}", where=where)
    if name == "hamming" and not 0.5 <= value <= 1.0:
        raise InputError(f"hamming ALPHA must be in [0.5, 1], got {value:g}", where=where)
    if name == "kaiser" and value < 0:
        raise InputError(f"kaiser BETA must be >= 0, got {value:g}", where=where)
    return Window(name, value)
