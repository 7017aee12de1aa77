"""Sentinel-1 product annotation (``annotation/s1?-*.xml``) into the contract's SLC attributes.

Read with ElementTree (the annotation is small). Conventions:

- times: UTC ISO 8601 in the XML; returned as ``numpy.datetime64[ns]`` or seconds from an epoch.
- slant range ``R = c * tau / 2`` with ``tau`` the two-way slant-range time [s].
- Doppler centroid (``dcEstimate``) and azimuth FM rate (``azimuthFmRate``) polynomials are in ``tau - t0`` [s]:
  ``f(tau) = sum_k c_k (tau - t0)^k`` [Hz, Hz/s]; the estimate nearest in azimuth time to the reference is used.
- ``prf`` in the contract is the image **line rate** ``1 / azimuthTimeInterval`` (what every consumer of the grid
  assumes); the radar's pulse repetition frequency of the downlink is kept as ``radar_prf``. They are equal for
  stripmap; for TOPS (IW/EW) the SLC lines are resampled (``azimuthTimeInterval`` ~ 2.06 ms vs PRI ~ 0.59 ms).
- effective velocity: from the zero-Doppler azimuth FM rate, ``Vr = sqrt(-Ka * lambda * R / 2)`` at the reference
  range (the velocity the hyperbolic range model needs); ``platform_speed`` is |v| of the orbit at the reference.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..model import SPEED_OF_LIGHT

TOPS_MODES = ("IW", "EW")


def parse_time(text: str) -> np.datetime64:
    """An annotation/EOF time (``2022-09-18T07:49:21.513561``, optionally ``UTC=`` prefixed or ``Z`` suffixed)."""
    return np.datetime64(text.strip().removeprefix("UTC=").removesuffix("Z"), "ns")


def iso_epoch(t: np.datetime64) -> str:
    """UTC ISO 8601 with microseconds and a ``Z`` (the contract's ``azimuth_time_epoch``)."""
    return str(np.datetime_as_string(t, unit="us")) + "Z"


def seconds_since(t: Any, epoch: np.datetime64) -> np.ndarray:
    """Seconds (float64) from ``epoch`` to ``t`` (datetime64 scalar or array)."""
    return (np.asarray(t, dtype="datetime64[ns]") - epoch).astype("timedelta64[ns]").astype(np.int64) / 1e9


def _ns(seconds: Any) -> np.ndarray:
    return np.round(np.asarray(seconds, dtype=np.float64) * 1e9).astype(np.int64).astype("timedelta64[ns]")


def _text(root: ET.Element, path: str, where: str) -> str:
    node = root.find(path)
    if node is None or node.text is None:
        raise InputError(f"element {path!r} is missing", where=where)
    return node.text.strip()


def _float(root: ET.Element, path: str, where: str) -> float:
    text = _text(root, path, where)
    try:
        return float(text)
    except ValueError as exc:
        raise InputError(f"element {path!r} is not a number: {text!r}", where=where) from exc


def _floats(text: str | None) -> np.ndarray:
    return np.array([float(v) for v in (text or "").split()], dtype=np.float64)


@dataclass
class S1Annotation:
    """The parsed product annotation of one swath and polarisation (full-swath line/pixel numbering)."""

    source: str
    mission: str
    product_type: str  # SLC | GRD
    mode: str  # SM (S1..S6), IW, EW, WV
    swath: str  # S3, IW1, ...
    polarisation: str
    pass_direction: str
    carrier_frequency: float
    range_sampling_rate: float
    radar_prf: float
    pulse_duration: float
    chirp_rate: float
    slant_range_time: float  # two-way time of pixel 0 [s]
    azimuth_time_interval: float  # line spacing [s]
    first_line_time: np.datetime64
    number_of_lines: int
    number_of_samples: int
    range_pixel_spacing: float
    azimuth_steering_rate: float  # deg/s
    look_side: str
    dc_times: np.ndarray  # datetime64[ns]
    dc_t0: np.ndarray
    dc_data_poly: list[np.ndarray]
    dc_geometry_poly: list[np.ndarray]
    fm_times: np.ndarray
    fm_t0: np.ndarray
    fm_poly: list[np.ndarray]
    orbit_times: np.ndarray
    orbit_position: np.ndarray  # (n, 3) ECEF m
    orbit_velocity: np.ndarray  # (n, 3) ECEF m/s
    geolocation: dict[str, np.ndarray]  # line, pixel, latitude, longitude, height, incidence_angle, azimuth_time
    lines_per_burst: int = 0
    bursts: list[dict[str, Any]] = field(default_factory=list)  # azimuth_time, first/last valid sample, burst_id

    @property
    def is_tops(self) -> bool:
        return self.mode in TOPS_MODES

    @property
    def wavelength(self) -> float:
        return SPEED_OF_LIGHT / self.carrier_frequency

    def nearest(self, times: np.ndarray, t: np.datetime64) -> int:
        return int(np.argmin(np.abs((times - t).astype(np.int64))))

    def doppler_centroid(self, t: np.datetime64, tau: np.ndarray, which: str = "data") -> np.ndarray:
        """Doppler centroid [Hz] at azimuth time ``t`` (nearest estimate) and two-way range times ``tau`` [s]."""
        k = self.nearest(self.dc_times, t)
        poly = (self.dc_data_poly if which == "data" else self.dc_geometry_poly)[k]
        return np.polynomial.polynomial.polyval(np.asarray(tau) - self.dc_t0[k], poly)

    def azimuth_fm_rate(self, t: np.datetime64, tau: np.ndarray) -> np.ndarray:
        """Azimuth FM rate [Hz/s] (negative) at azimuth time ``t`` (nearest estimate) and range times ``tau``."""
        k = self.nearest(self.fm_times, t)
        return np.polynomial.polynomial.polyval(np.asarray(tau) - self.fm_t0[k], self.fm_poly[k])

    def line_times(self, lines: np.ndarray) -> np.ndarray:
        """Zero-Doppler azimuth time (datetime64[ns]) of full-swath lines; per burst for TOPS (bursts are stacked
        in the measurement, each starting at its ``azimuthTime``)."""
        lines = np.asarray(lines, dtype=np.int64)
        if self.bursts and self.lines_per_burst:
            b = np.clip(lines // self.lines_per_burst, 0, len(self.bursts) - 1)
            starts = np.array([x["azimuth_time"] for x in self.bursts], dtype="datetime64[ns]")
            offset = (lines - b * self.lines_per_burst) * self.azimuth_time_interval
            return starts[b] + _ns(offset)
        return self.first_line_time + _ns(lines * self.azimuth_time_interval)


def read_annotation(path: str | os.PathLike) -> S1Annotation:
    """Parse a Sentinel-1 product annotation XML; :class:`InputError` naming the file and element when it is not."""
    where = os.fspath(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"not a readable annotation XML: {exc}", where=where) from exc
    if root.tag != "product" or root.find("adsHeader") is None:
        raise InputError(f"not a Sentinel-1 product annotation (root element {root.tag!r})", where=where)
    gi = "generalAnnotation/"
    ii = "imageAnnotation/imageInformation/"

    def times_and(node_path: str, poly_tag: str) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        nodes = root.findall(node_path)
        times = np.array([parse_time(_text(n, "azimuthTime", where)) for n in nodes], dtype="datetime64[ns]")
        t0 = np.array([_float(n, "t0", where) for n in nodes])
        polys = [_floats(n.findtext(poly_tag)) for n in nodes]
        return times, t0, polys

    dc_times, dc_t0, dc_data = times_and("dopplerCentroid/dcEstimateList/dcEstimate", "dataDcPolynomial")
    dc_geom = [
        _floats(n.findtext("geometryDcPolynomial")) for n in root.findall("dopplerCentroid/dcEstimateList/dcEstimate")
    ]
    fm_times, fm_t0, fm_poly = times_and(gi + "azimuthFmRateList/azimuthFmRate", "azimuthFmRatePolynomial")
    if not fm_poly:  # IPF < 2.x wrote the coefficients as c0, c1, c2 elements
        for n in root.findall(gi + "azimuthFmRateList/azimuthFmRate"):
            fm_poly.append(np.array([float(n.findtext(c) or 0.0) for c in ("c0", "c1", "c2")]))

    orbits = root.findall(gi + "orbitList/orbit")
    orbit_times = np.array([parse_time(_text(o, "time", where)) for o in orbits], dtype="datetime64[ns]")
    pos = np.array([[float(o.findtext(f"position/{a}")) for a in "xyz"] for o in orbits]).reshape(-1, 3)
    vel = np.array([[float(o.findtext(f"velocity/{a}")) for a in "xyz"] for o in orbits]).reshape(-1, 3)

    grid_nodes = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    tags = {
        "line": "line",
        "pixel": "pixel",
        "latitude": "latitude",
        "longitude": "longitude",
        "height": "height",
        "incidence_angle": "incidenceAngle",
        "elevation_angle": "elevationAngle",
        "slant_range_time": "slantRangeTime",
    }
    geolocation = {k: np.array([float(n.findtext(t) or "nan") for n in grid_nodes]) for k, t in tags.items()}
    geolocation["azimuth_time"] = np.array(
        [parse_time(_text(n, "azimuthTime", where)) for n in grid_nodes], dtype="datetime64[ns]"
    )

    bursts = []
    for b in root.findall("swathTiming/burstList/burst"):
        bursts.append(
            {
                "azimuth_time": parse_time(_text(b, "azimuthTime", where)),
                "first_valid_sample": _floats(b.findtext("firstValidSample")).astype(np.int64),
                "last_valid_sample": _floats(b.findtext("lastValidSample")).astype(np.int64),
                "burst_id": int(b.findtext("burstId")) if b.findtext("burstId") else None,
            }
        )
    lines_per_burst = int(root.findtext("swathTiming/linesPerBurst") or 0)

    pulse = gi + "downlinkInformationList/downlinkInformation/"
    return S1Annotation(
        source=where,
        mission=_text(root, "adsHeader/missionId", where),
        product_type=_text(root, "adsHeader/productType", where),
        mode=_text(root, "adsHeader/mode", where),
        swath=_text(root, "adsHeader/swath", where),
        polarisation=_text(root, "adsHeader/polarisation", where),
        pass_direction=root.findtext(gi + "productInformation/pass") or "",
        carrier_frequency=_float(root, gi + "productInformation/radarFrequency", where),
        range_sampling_rate=_float(root, gi + "productInformation/rangeSamplingRate", where),
        radar_prf=_float(root, pulse + "prf", where),
        pulse_duration=_float(root, pulse + "downlinkValues/txPulseLength", where),
        chirp_rate=_float(root, pulse + "downlinkValues/txPulseRampRate", where),
        slant_range_time=_float(root, ii + "slantRangeTime", where),
        azimuth_time_interval=_float(root, ii + "azimuthTimeInterval", where),
        first_line_time=parse_time(_text(root, ii + "productFirstLineUtcTime", where)),
        number_of_lines=int(_float(root, ii + "numberOfLines", where)),
        number_of_samples=int(_float(root, ii + "numberOfSamples", where)),
        range_pixel_spacing=_float(root, ii + "rangePixelSpacing", where),
        azimuth_steering_rate=float(root.findtext(gi + "productInformation/azimuthSteeringRate") or 0.0),
        look_side="right",  # Sentinel-1 always looks right
        dc_times=dc_times,
        dc_t0=dc_t0,
        dc_data_poly=dc_data,
        dc_geometry_poly=dc_geom,
        fm_times=fm_times,
        fm_t0=fm_t0,
        fm_poly=fm_poly,
        orbit_times=orbit_times,
        orbit_position=pos,
        orbit_velocity=vel,
        geolocation=geolocation,
        lines_per_burst=lines_per_burst,
        bursts=bursts,
    )


def contract_attrs(
    ann: S1Annotation, *, first_line: int, n_lines: int, first_sample: int, n_samples: int
) -> tuple[dict[str, Any], np.datetime64, np.ndarray, np.ndarray]:
    """The contract's SLC attributes for the window ``[first_line, +n_lines) x [first_sample, +n_samples)`` of the
    full-swath measurement (within one burst for TOPS).

    Returns ``(attrs, epoch, doppler_centroid_range [Hz, per sample], azimuth_time [s from epoch, per line])``. The
    reference for the scalar Doppler centroid, FM rate and velocity is the window's centre line and sample.
    """
    line_times = ann.line_times(np.arange(first_line, first_line + n_lines))
    epoch = line_times[0]
    azimuth_time = seconds_since(line_times, epoch)
    tau = ann.slant_range_time + (first_sample + np.arange(n_samples)) / ann.range_sampling_rate
    t_ref = line_times[n_lines // 2]
    tau_ref = float(tau[n_samples // 2])
    dc_range = ann.doppler_centroid(t_ref, tau) if ann.dc_data_poly else np.zeros(n_samples)
    fm_rate = float(ann.azimuth_fm_rate(t_ref, tau_ref)) if ann.fm_poly else float("nan")
    r_ref = SPEED_OF_LIGHT * tau_ref / 2
    velocity = float(np.sqrt(-fm_rate * ann.wavelength * r_ref / 2)) if fm_rate < 0 else float("nan")
    speed = float("nan")
    if len(ann.orbit_times):
        k = ann.nearest(ann.orbit_times, t_ref)
        speed = float(np.linalg.norm(ann.orbit_velocity[k]))
    if not np.isfinite(velocity):
        velocity = speed  # no FM rate: the platform speed, an upper bound of the effective velocity
    fm_k = ann.nearest(ann.fm_times, t_ref) if len(ann.fm_times) else None
    attrs: dict[str, Any] = {
        "carrier_frequency": ann.carrier_frequency,
        "range_sampling_rate": ann.range_sampling_rate,
        "chirp_rate": ann.chirp_rate,
        "pulse_duration": ann.pulse_duration,
        "prf": 1.0 / ann.azimuth_time_interval,
        "radar_prf": ann.radar_prf,
        "velocity": velocity,
        "velocity_method": "zero-Doppler azimuth FM rate: sqrt(-Ka * wavelength * R / 2) at the window centre"
        if fm_rate < 0
        else "orbit speed |v| (no azimuth FM rate)",
        "platform_speed": speed,
        "near_range": SPEED_OF_LIGHT * float(tau[0]) / 2,
        "doppler_centroid": float(ann.doppler_centroid(t_ref, tau_ref)) if ann.dc_data_poly else 0.0,
        "doppler_centroid_method": "annotation dcEstimate dataDcPolynomial (nearest estimate to the window centre)",
        "azimuth_fm_rate": fm_rate,
        "azimuth_fm_rate_t0": float(ann.fm_t0[fm_k]) if fm_k is not None else None,
        "azimuth_fm_rate_coefficients": ann.fm_poly[fm_k].tolist() if fm_k is not None else None,
        "azimuth_steering_rate": float(np.deg2rad(ann.azimuth_steering_rate)),
        "azimuth_time_epoch": iso_epoch(epoch),
        "look_side": ann.look_side,
        "mission": ann.mission,
        "sensor": f"Sentinel-1{ann.mission[-1]} {ann.mode} {ann.product_type}",
        "acquisition_mode": ann.mode,
        "swath": ann.swath,
        "polarisation": ann.polarisation,
        "pass_direction": ann.pass_direction,
        "product_type": ann.product_type,
        "first_line": int(first_line),
        "first_sample": int(first_sample),
        "annotation": Path(ann.source).name,
    }
    if ann.is_tops and ann.lines_per_burst:
        attrs["burst_index"] = int(first_line // ann.lines_per_burst)
    return attrs, epoch, dc_range, azimuth_time
