"""The Sentinel-1 IPF's RFI annotations (``annotation/rfi/rfi-*.xml``, IPF >= 3.40) as tables, and beside ours.

What the file holds (ESA, "Sentinel-1: Using the RFI annotations", DI-MPC-OTH-0540):

- ``rfiMitigationApplied``: ``None`` | ``TimeDomain`` | ``FrequencyDomain`` | ``TimeAndFrequency`` ...
- ``rfiDetectionFromNoiseReportList``: per noise-sensing record (every ~2.76 s per swath): ``rfiDetected`` and
  the statistics behind it, ``maxKLDivergence``, ``maxFisherZ``, ``maxRfiPsd``.
- ``rfiBurstReportList``: per burst (TOPS) or block (stripmap): ``inBandOutBandPowerRatio`` and, where the IPF
  ran its detectors, ``timeDomainRfiReport`` (``percentageAffectedLines``, ``avgPercentageAffectedSamples``,
  ``maxPercentageAffectedSamples``) and ``frequencyDomainRfiBurstReport`` (``numSubBlocks``, ``subBlockSize``,
  ``isolatedRfiReport/percentageAffectedLines``, ``isolatedRfiReport/maxPercentageAffectedBW``,
  ``percentageBlocksPersistentRfi``, ``maxPercentageBWAffectedPersistentRfi``).

Nested elements become flat keys, ``timeDomainRfiReport/percentageAffectedLines`` -> ``time_domain_rfi_report.
percentage_affected_lines``; values are numbers, booleans or datetime64 (times); anything else stays text.
:func:`rfi_tables` turns both lists into xarray Datasets (dims ``noise_report``, ``burst_report``).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from .s1_annotation import parse_time, seconds_since

_TIME_TAGS = {"azimuthTime", "noiseSensingTime", "startTime", "stopTime"}


def snake(name: str) -> str:
    """``inBandOutBandPowerRatio`` -> ``in_band_out_band_power_ratio`` (runs of capitals kept: ``BW`` -> ``bw``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _value(tag: str, text: str) -> Any:
    text = text.strip()
    if tag in _TIME_TAGS:
        return parse_time(text)
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    except ValueError:
        return text


def flatten(element: ET.Element, prefix: str = "") -> dict[str, Any]:
    """Leaf elements of ``element`` as ``{"a.b": value}`` (snake_case keys, typed values)."""
    out: dict[str, Any] = {}
    for child in element:
        key = prefix + snake(child.tag)
        if len(child):
            out.update(flatten(child, key + "."))
        else:
            out[key] = _value(child.tag, child.text or "")
    return out


@dataclass
class RfiAnnotation:
    source: str
    header: dict[str, Any]
    mitigation_applied: str
    noise_reports: list[dict[str, Any]]
    burst_reports: list[dict[str, Any]]


def read_rfi_annotation(path: str | os.PathLike) -> RfiAnnotation:
    """Parse an ``rfi-*.xml``; :class:`InputError` naming the file when it is not one."""
    where = os.fspath(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"not a readable RFI annotation: {exc}", where=where) from exc
    if root.tag != "rfi":
        raise InputError(f"not a Sentinel-1 RFI annotation (root element {root.tag!r}, expected 'rfi')", where=where)
    header = root.find("adsHeader")
    return RfiAnnotation(
        source=where,
        header={snake(e.tag): (e.text or "").strip() for e in header} if header is not None else {},
        mitigation_applied=(root.findtext("rfiMitigationApplied") or "").strip(),
        noise_reports=[flatten(e) for e in root.findall("rfiDetectionFromNoiseReportList/rfiDetectionFromNoiseReport")],
        burst_reports=[flatten(e) for e in root.findall("rfiBurstReportList/rfiBurstReport")],
    )


def _table(rows: list[dict[str, Any]], dim: str) -> xr.Dataset:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    data = {}
    for k in keys:
        values = [r.get(k) for r in rows]
        sample = next(v for v in values if v is not None)
        if isinstance(sample, np.datetime64):
            arr = np.array([v if v is not None else np.datetime64("NaT") for v in values], dtype="datetime64[ns]")
        elif isinstance(sample, bool):
            arr = np.array([bool(v) for v in values])
        elif isinstance(sample, (int, float)):
            arr = np.array([np.nan if v is None else float(v) for v in values])
        else:
            arr = np.array(["" if v is None else str(v) for v in values])
        data[k.replace(".", "__")] = ((dim,), arr)
    return xr.Dataset(data)


def rfi_tables(ann: RfiAnnotation) -> dict[str, xr.Dataset]:
    """``{"noise": Dataset(dim noise_report), "burst": Dataset(dim burst_report)}``; nested keys joined by ``__``
    (``time_domain_rfi_report__percentage_affected_lines``); attrs: ``rfi_mitigation_applied`` and the header."""
    attrs = {"rfi_mitigation_applied": ann.mitigation_applied, "source": os.path.basename(ann.source)}
    attrs.update({k: str(v) for k, v in ann.header.items()})
    out = {}
    for name, rows, dim in (("noise", ann.noise_reports, "noise_report"), ("burst", ann.burst_reports, "burst_report")):
        ds = _table(rows, dim) if rows else xr.Dataset()
        ds.attrs = dict(attrs)
        out[name] = ds
    return out


def ipf_beside_detection(
    ann: RfiAnnotation,
    azimuth_time: np.ndarray,
    epoch: str,
    flagged_lines: np.ndarray,
    *,
    swath: str | None = None,
    burst_duration: float | None = None,
) -> list[dict[str, Any]]:
    """Put the IPF's per-burst RFI reports next to our per-line detection over the same azimuth times.

    ``azimuth_time`` [s from ``epoch``, the contract's ``azimuth_time_epoch``] and ``flagged_lines`` (bool per
    line: ``rfi_image_lines`` of ``sarpipe rfi detect``, or :func:`sarpipe.rfi.detect.detect_image`'s ``lines``)
    describe our image; ``swath`` picks the reports of one swath (IW1...; default all). A burst report covers from
    its ``azimuth_time`` to the next report's of the same swath (or ``burst_duration`` [s] for the last). One row
    per report overlapping the image: the IPF's values (``rfi_detected`` of the nearest noise report of the swath,
    ``in_band_out_band_power_ratio``, time-domain ``percentage_affected_lines`` if present) and ours
    (``lines``, ``flagged_lines``, ``percentage_flagged_lines``)."""
    t0 = np.datetime64(epoch.removesuffix("Z"), "ns")
    az = np.asarray(azimuth_time, float)
    flagged = np.asarray(flagged_lines, bool)
    if flagged.shape != az.shape:
        raise InputError(f"flagged_lines has shape {flagged.shape}, azimuth_time {az.shape}", where="flagged_lines")
    reports = [r for r in ann.burst_reports if swath is None or r.get("swath") == swath]
    noise = [r for r in ann.noise_reports if swath is None or r.get("swath") == swath]
    rows = []
    for sw in sorted({r.get("swath") for r in reports}):
        mine = sorted((r for r in reports if r.get("swath") == sw), key=lambda r: r["azimuth_time"])
        starts = np.array([seconds_since(r["azimuth_time"], t0) for r in mine], float)
        if burst_duration is None:
            last = float(np.median(np.diff(starts))) if starts.size > 1 else np.inf
        else:
            last = burst_duration
        ends = np.append(starts[1:], starts[-1] + last)
        sw_noise = [r for r in noise if r.get("swath") == sw]
        noise_t = np.array([seconds_since(r["noise_sensing_time"], t0) for r in sw_noise], float)
        for r, a, b in zip(mine, starts, ends):
            inside = (az >= a) & (az < b)
            if not inside.any():
                continue
            k = int(np.argmin(np.abs(noise_t - (a + b) / 2))) if noise_t.size else None
            rows.append(
                {
                    "swath": sw,
                    "burst_start_s": float(a),
                    "burst_stop_s": float(b),
                    "ipf_rfi_detected_noise": bool(sw_noise[k]["rfi_detected"]) if k is not None else None,
                    "ipf_in_band_out_band_power_ratio": r.get("in_band_out_band_power_ratio"),
                    "ipf_percentage_affected_lines": r.get("time_domain_rfi_report.percentage_affected_lines"),
                    "ipf_mitigation_applied": ann.mitigation_applied,
                    "lines": int(inside.sum()),
                    "flagged_lines": int(flagged[inside].sum()),
                    "percentage_flagged_lines": 100.0 * float(flagged[inside].mean()),
                }
            )
    return rows


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`ipf_beside_detection` as a markdown table (for a report)."""
    head = (
        "| swath | burst [s] | IPF noise RFI | IPF in/out-band ratio | IPF affected lines [%] | ours: flagged "
        "lines [%] |\n|---|---|---|---|---|---|\n"
    )

    def f(v: Any, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    return head + "".join(
        f"| {r['swath']} | {r['burst_start_s']:.3f}..{r['burst_stop_s']:.3f} | {r['ipf_rfi_detected_noise']} "
        f"| {f(r['ipf_in_band_out_band_power_ratio'], '.3f')} | {f(r['ipf_percentage_affected_lines'], '.2f')} "
        f"| {r['percentage_flagged_lines']:.2f} ({r['flagged_lines']}/{r['lines']}) |\n"
        for r in rows
    )
