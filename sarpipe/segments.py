"""Segments of a data take: runs of pulses over which the radar's timing, sampling and transmitted pulse stay the
same, so that one range-Doppler focusing applies (docs/design.md section 2).

Per-pulse values live in ``pulse_*`` coordinates on ``azimuth`` (:data:`SEGMENT_COORDS` are the ones whose change
starts a new segment). A reader splits a take into parts (``...-seg<N>`` keys), each a valid raw dataset;
:func:`check_one_segment` is how focusing refuses a dataset that still holds a change, naming the coordinate and
the first pulse where it changes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr

from .errors import InputError
from .model import SPEED_OF_LIGHT, _where, range_pixel_spacing

#: Per-pulse coordinates whose change starts a new segment: pulse repetition interval [s], sampling window start
#: time [s], rank (PRIs between a pulse and its echo), complex samples recorded, range decimation code, signal
#: type (echo / noise / calibration), the transmitted pulse (length [s], ramp rate [Hz/s], start frequency [Hz]),
#: swath and polarisation.
SEGMENT_COORDS = (
    "pulse_pri",
    "pulse_swst",
    "pulse_rank",
    "pulse_sample_count",
    "pulse_decimation_code",
    "pulse_signal_type",
    "pulse_tx_pulse_length",
    "pulse_tx_ramp_rate",
    "pulse_tx_start_frequency",
    "pulse_swath",
    "pulse_polarisation",
)


def _changes(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """For each segment coordinate present: the pulse indices ``i`` where its value differs from pulse ``i - 1``."""
    out = {}
    for name in SEGMENT_COORDS:
        if name in ds.coords and ds[name].dims == ("azimuth",):
            values = np.asarray(ds[name].values)
            out[name] = np.flatnonzero(values[1:] != values[:-1]) + 1
    return out


def segment_boundaries(ds: xr.Dataset) -> list[slice]:
    """The segments of ``ds`` as pulse slices ``[start, stop)`` covering every pulse in order (one slice when
    nothing changes; none for an empty dataset)."""
    n = int(ds.sizes.get("azimuth", 0))
    if n == 0:
        return []
    starts = sorted({0, *(int(i) for idx in _changes(ds).values() for i in idx)})
    return [slice(a, b) for a, b in zip(starts, starts[1:] + [n])]


def first_change(ds: xr.Dataset) -> tuple[str, int, Any, Any] | None:
    """``(coordinate, pulse index, value before, value at that pulse)`` of the earliest change, None without one
    (at equal pulses the coordinate listed first in :data:`SEGMENT_COORDS` is named)."""
    best = None
    for name, idx in _changes(ds).items():
        if idx.size and (best is None or idx[0] < best[1]):
            values = np.asarray(ds[name].values)
            best = (name, int(idx[0]), values[idx[0] - 1].item(), values[idx[0]].item())
    return best


def check_one_segment(ds: xr.Dataset, where: str | os.PathLike | None = None) -> None:
    """Refuse ``ds`` when a segment coordinate changes over its pulses: an :class:`InputError` naming the
    coordinate (in ``where``, the store) and the first pulse index where it changes."""
    change = first_change(ds)
    if change is None:
        return
    name, pulse, before, after = change
    n = len(segment_boundaries(ds))
    raise InputError(
        f"changes at pulse {pulse} (from {before!r} to {after!r}): the data take holds {n} segments of different "
        "radar timing or sampling, which one focusing cannot process; split it into its segments "
        "(sarpipe.segments.split_segments, or the reader's -seg<N> parts) and focus each",
        where=_where(where, f"coordinate '{name}'"),
    )


def split_segments(ds: xr.Dataset) -> list[xr.Dataset]:
    """``ds`` cut into its segments (:func:`segment_boundaries`), each a raw dataset of its own.

    The attributes of ``ds`` are taken to describe its first pulse (as readers write them). In each part:
    ``prf`` = 1 / ``pulse_pri``; ``near_range`` moved by ``c/2`` times the change of the receive delay
    ``swst + rank * pri`` since pulse 0 (terms whose coordinate is absent count as 0) and ``slant_range`` rebuilt
    from it; the range axis cut to ``pulse_sample_count`` when that is shorter (the rest is padding); attributes
    ``segment_index`` (0-based) and ``segment_first_pulse`` (the part's first pulse in ``ds``).
    """
    parts = []
    delay0 = _receive_delay(ds, 0)
    for k, rows in enumerate(segment_boundaries(ds)):
        part = ds.isel(azimuth=rows)
        attrs = dict(ds.attrs)
        attrs.update(segment_index=k, segment_first_pulse=int(rows.start))
        if "pulse_pri" in ds.coords:
            attrs["prf"] = 1.0 / float(ds["pulse_pri"].values[rows.start])
        attrs["near_range"] = float(ds.attrs["near_range"]) + SPEED_OF_LIGHT / 2 * (
            _receive_delay(ds, rows.start) - delay0
        )
        if "pulse_sample_count" in ds.coords:
            count = int(ds["pulse_sample_count"].values[rows.start])
            if 0 < count < part.sizes["range"]:
                part = part.isel(range=slice(0, count))
        slant_range = attrs["near_range"] + np.arange(part.sizes["range"]) * range_pixel_spacing(attrs)
        part = part.assign_coords(slant_range=("range", slant_range, dict(ds["slant_range"].attrs)))
        part.attrs = attrs
        parts.append(part)
    return parts


def _receive_delay(ds: xr.Dataset, pulse: int) -> float:
    """Time from a pulse's transmission to the start of its receive window [s]: ``swst + rank * pri``."""

    def value(name: str) -> float:
        return float(ds[name].values[pulse]) if name in ds.coords else 0.0

    return value("pulse_swst") + value("pulse_rank") * value("pulse_pri")
