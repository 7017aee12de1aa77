"""Sentinel-1 orbit files (``AUX_POEORB`` precise, ``AUX_RESORB`` restituted; Earth Explorer ``.EOF`` XML) into
state vectors: UTC times, ECEF positions [m] and velocities [m/s] (frame ``EARTH_FIXED``)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .s1_annotation import parse_time, seconds_since


@dataclass
class OrbitStateVectors:
    times: np.ndarray  # datetime64[ns], UTC
    position: np.ndarray  # (n, 3) ECEF m
    velocity: np.ndarray  # (n, 3) ECEF m/s
    source: str

    def window(self, start: np.datetime64, stop: np.datetime64, margin_s: float = 60.0) -> OrbitStateVectors:
        """The state vectors within ``[start - margin, stop + margin]`` (the orbit files span ~a day or ~3 h)."""
        m = np.timedelta64(int(margin_s * 1e9), "ns")
        keep = (self.times >= start - m) & (self.times <= stop + m)
        return OrbitStateVectors(self.times[keep], self.position[keep], self.velocity[keep], self.source)

    def contract_variables(self, epoch: np.datetime64) -> dict:
        """``orbit_time`` [s from ``epoch``], ``orbit_position``, ``orbit_velocity`` as xarray (dims, data) pairs."""
        return {
            "orbit_position": (("orbit_time", "xyz"), self.position),
            "orbit_velocity": (("orbit_time", "xyz"), self.velocity),
        }, {"orbit_time": ("orbit_time", seconds_since(self.times, epoch))}


def read_orbit_file(path: str | os.PathLike) -> OrbitStateVectors:
    """Parse an ``.EOF`` orbit file; :class:`InputError` naming the file when it is not one."""
    where = os.fspath(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"not a readable orbit file: {exc}", where=where) from exc
    osvs = root.findall(".//List_of_OSVs/OSV")
    if not osvs:
        raise InputError("no List_of_OSVs/OSV state vectors (not an AUX_POEORB/RESORB file?)", where=where)
    frame = root.findtext(".//Variable_Header/Ref_Frame")
    if frame and frame != "EARTH_FIXED":
        raise InputError(f"reference frame is {frame}, expected EARTH_FIXED", where=where)
    try:
        times = np.array([parse_time(o.findtext("UTC") or "") for o in osvs], dtype="datetime64[ns]")
        pos = np.array([[float(o.findtext(k)) for k in ("X", "Y", "Z")] for o in osvs])
        vel = np.array([[float(o.findtext(k)) for k in ("VX", "VY", "VZ")] for o in osvs])
    except (TypeError, ValueError) as exc:
        raise InputError(f"a state vector is incomplete: {exc}", where=where) from exc
    order = np.argsort(times)
    return OrbitStateVectors(times[order], pos[order], vel[order], where)
