"""The run report: RFI metrics (PSNR, ME, SIR before and after, pulse recall), the point-target analysis, a comparison
figure and a markdown summary, behind ``sarpipe report`` and the ``report`` pipeline stage.

Images: ``interfered`` (focused before cleaning), ``cleaned`` (after), ``compared`` (after a second cleanup
method, optional, shown beside the first), ``reference`` (the simulator's clean echo focused: the truth for PSNR and
ME). Raw stores: ``raw`` (the simulated scene, whose ``rfi`` variable is the truth for SIR and pulse recall),
``cleaned_raw`` and ``compared_raw`` (the cleanups' outputs, with ``rfi_pulses``; their ``rfi_clean`` records name
the methods). Metric keys of the compared method carry ``compared`` where the first's carry ``cleaned``. Strong
targets: the peak of every simulated point target in each image against its peak in the reference [dB].
Metric definitions: :mod:`sarpipe.rfi.metrics`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "IMAGE_ROLES",
    "RAW_ROLES",
    "ReportParams",
    "comparison_figure",
    "report_markdown",
    "method_of",
    "report_metrics",
    "strong_target_peaks",
    "write_report",
]

IMAGE_ROLES = ("interfered", "cleaned", "compared", "reference")
RAW_ROLES = ("raw", "cleaned_raw", "compared_raw")
#: cleaned image role -> its raw store role
_CLEANED = {"cleaned": "cleaned_raw", "compared": "compared_raw"}


class ReportParams(BaseModel):
    """What the report analyses and draws."""

    model_config = ConfigDict(extra="forbid")

    point_targets: list[Literal["interfered", "cleaned", "compared", "reference"]] = Field(
        ["cleaned"],
        description="images whose simulated point targets are analysed (IRW, PSLR, ISLR, position vs. theory)",
    )
    figure: bool = Field(
        True, description="write comparison.png (reference / interfered / cleaned / compared, one dB scale)"
    )
    dynamic_range_db: float = Field(50.0, gt=0, description="figure: dB range shown")
    max_size: int = Field(768, ge=16, description="figure: longest side of each panel in pixels")


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def report_metrics(images: Mapping[str, Any], raws: Mapping[str, Any]) -> dict[str, Any]:
    """PSNR and ME of the interfered and cleaned images against the reference; SIR over the truly contaminated pulses
    before and after; pulse recall and extra fraction of the cleaned pulses. Only what the given data allow."""
    import numpy as np

    from .rfi import metrics as m

    result: dict[str, Any] = {}
    amp = {k: np.asarray(v["slc"].values) for k, v in images.items()}
    if "reference" in amp:
        ref = amp["reference"]
        for k in ("interfered", "cleaned", "compared"):
            if k in amp:
                result[f"psnr_{k}_db"] = _finite(m.psnr(amp[k], ref))
                result[f"me_{k}"] = _finite(m.mean_entropy(amp[k], ref))
        result["me_reference"] = _finite(m.mean_entropy(ref, ref))
        peaks = strong_target_peaks(images)
        if peaks:
            result["strong_targets"] = peaks
    methods = {k: method_of(raws[r]) for k, r in _CLEANED.items() if r in raws}
    if methods:
        result["methods"] = methods
    raw = raws.get("raw")
    if raw is not None and "rfi" in raw.data_vars:
        rfi = np.asarray(raw["rfi"].values)
        echo = np.asarray(raw["echo"].values)
        signal = echo - rfi
        truth = np.any(rfi != 0, axis=1)
        result["contaminated_pulses"] = int(truth.sum())
        if truth.any():
            result["sir_before_db"] = _finite(m.sir_db(signal[truth], rfi[truth]))
        for k, role in _CLEANED.items():
            cleaned = raws.get(role)
            if cleaned is None:
                continue
            suffix = "" if k == "cleaned" else "_compared"
            after = np.asarray(cleaned["echo"].values)
            if truth.any():
                result[f"sir_after{suffix}_db"] = _finite(m.sir_db(signal[truth], after[truth] - signal[truth]))
            if "rfi_pulses" in cleaned.data_vars:
                flagged = np.asarray(cleaned["rfi_pulses"].values, bool)
                result[f"pulse_recall{suffix}"] = _finite(m.pulse_recall(flagged, truth))
                result[f"pulse_extra_fraction{suffix}"] = _finite(m.pulse_extra_fraction(flagged, truth))
                result[f"cleaned_pulses{suffix}"] = int(flagged.sum())
    return result


def method_of(raw: Any) -> str | None:
    """The cleanup method named by a cleaned raw dataset's last ``rfi_clean`` record (None if none)."""
    from .model import last_record

    record = last_record(raw.attrs, "rfi_clean")
    return None if record is None else (record.get("params") or {}).get("method")


def strong_target_peaks(images: Mapping[str, Any], half: int = 8) -> list[dict[str, Any]]:
    """Per simulated point target (the reference image's ``attrs['point_targets']``): its position and the peak
    amplitude change [dB] of every other image against the reference, each peak the largest ``|slc|`` within
    ``half`` pixels of the target's nearest pixel."""
    import numpy as np

    ref = images.get("reference")
    targets = (ref.attrs.get("point_targets") or []) if ref is not None else []
    out = []
    t_az = np.asarray(ref["azimuth_time"].values) if targets else None
    r_sl = np.asarray(ref["slant_range"].values) if targets else None
    for i, t in enumerate(targets):
        a = int(np.argmin(np.abs(t_az - float(t["azimuth_time"]))))
        r = int(np.argmin(np.abs(r_sl - float(t["slant_range"]))))
        win = (slice(max(a - half, 0), a + half + 1), slice(max(r - half, 0), r + half + 1))
        peak = {k: float(np.abs(np.asarray(v["slc"].values[win])).max()) for k, v in images.items()}
        if not peak["reference"] > 0:
            continue
        row: dict[str, Any] = {"target": i, "azimuth_index": a, "range_index": r}
        for k in ("interfered", "cleaned", "compared"):
            if k in peak and peak[k] > 0:
                row[f"peak_change_{k}_db"] = float(20 * np.log10(peak[k] / peak["reference"]))
        out.append(row)
    return out


def comparison_figure(
    images: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    dynamic_range_db: float = 50.0,
    max_size: int = 768,
    methods: Mapping[str, str | None] | None = None,
) -> Path:
    """reference / interfered / cleaned / compared side by side, multilooked intensity on one dB scale (the first
    panel's); ``methods`` names the cleanup method of the cleaned images in their titles."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .export import multilook_db, top_db

    order = [k for k in ("reference", "interfered", "cleaned", "compared") if k in images]
    dbs = {k: multilook_db(images[k], "slc", max_size=max_size) for k in order}
    top = top_db(dbs[order[0]])
    fig = Figure(figsize=(4.0 * len(order) + 1.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    titles = {"reference": "clean echo focused (truth)", "interfered": "interfered"}
    for k in ("cleaned", "compared"):
        name = (methods or {}).get(k)
        titles[k] = f"cleaned: {name}" if name else ("cleaned" if k == "cleaned" else "compared")
    axes = fig.subplots(1, len(order), sharex=True, sharey=True, squeeze=False)[0]
    for ax, k in zip(axes, order):
        ds = images[k]
        rg = ds["slant_range"].values / 1e3
        az = ds["azimuth_time"].values
        im = ax.imshow(
            dbs[k],
            cmap="gray",
            vmin=top - dynamic_range_db,
            vmax=top,
            aspect="auto",
            interpolation="nearest",
            extent=(rg[0], rg[-1], az[-1], az[0]),
        )
        ax.set_title(titles[k])
        ax.set_xlabel("slant range [km]")
    axes[0].set_ylabel("azimuth time [s]")
    fig.colorbar(im, ax=list(axes), label="intensity [dB], one scale for all", shrink=0.9)
    fig.savefig(path, dpi=100, format="png")
    return Path(path)


def report_markdown(r: Mapping[str, Any]) -> str:
    """The report as markdown: the metrics table, pulse counts, point-target lines, the figure."""

    def f(key: str, spec: str = ".2f") -> str:
        v = r.get(key)
        return "n/a" if v is None else format(v, spec)

    lines = ["# sarpipe run report", ""]
    names = dict(r.get("methods") or {})
    cols = ["interfered", "cleaned"] + (["compared"] if "psnr_compared_db" in r or "sir_after_compared_db" in r else [])
    heads = {"interfered": "interfered", "cleaned": f"cleaned ({names.get('cleaned') or 'method'})"}
    heads["compared"] = f"cleaned ({names.get('compared') or 'compared method'})"
    if "psnr_interfered_db" in r or "psnr_cleaned_db" in r:
        sir = {"interfered": "sir_before_db", "cleaned": "sir_after_db", "compared": "sir_after_compared_db"}
        lines += [
            "| metric | " + " | ".join(heads[c] for c in cols) + " |",
            "|---|" + "---|" * len(cols),
            "| PSNR [dB] (vs. image of the clean echo) | " + " | ".join(f(f"psnr_{c}_db") for c in cols) + " |",
            f"| ME (lower is better; truth {f('me_reference', '.4g')}) | "
            + " | ".join(f(f"me_{c}", ".4g") for c in cols)
            + " |",
            "| SIR [dB] over contaminated pulses | " + " | ".join(f(sir[c]) for c in cols) + " |",
            "",
        ]
    if "pulse_recall" in r:
        lines += [
            f"Contaminated pulses (truth): {r.get('contaminated_pulses')}; cleaned: {r.get('cleaned_pulses')}; "
            f"recall {f('pulse_recall')}, extra {f('pulse_extra_fraction')} (as a fraction of the contaminated).",
            "",
        ]
    if r.get("strong_targets"):
        lines += [
            "## Strong targets: peak change against the image of the clean echo [dB]",
            "",
            "| target | azimuth, range [px] | " + " | ".join(heads[c] for c in cols) + " |",
            "|---|---|" + "---|" * len(cols),
        ]
        for row in r["strong_targets"]:
            vals = [row.get(f"peak_change_{c}_db") for c in cols]
            lines.append(
                f"| {row['target']} | {row['azimuth_index']}, {row['range_index']} | "
                + " | ".join("n/a" if v is None else f"{v:+.2f}" for v in vals)
                + " |"
            )
        lines.append("")
    for k, rows in (r.get("point_targets") or {}).items():
        lines += [
            f"## Point targets, {k} image",
            "",
            f"See point_targets_{k}/point_targets.md (measured / theory).",
            "",
        ]
        for row in rows:
            lines.append(
                f"- target {row['target']}: range IRW {row['range_irw_m']:.3f} m (theory {row['range_irw_theory_m']:.3f}), "
                f"PSLR {row['range_pslr_db']:.2f} dB; azimuth IRW {row['azimuth_irw_m']:.3f} m (theory "
                f"{row['azimuth_irw_theory_m']:.3f}), PSLR {row['azimuth_pslr_db']:.2f} dB"
            )
        lines.append("")
    if r.get("figure"):
        lines += ["![comparison](comparison.png)", ""]
    return "\n".join(lines)


def write_report(
    out_dir: str | os.PathLike,
    params: ReportParams | None = None,
    *,
    stores: Mapping[str, str | os.PathLike],
    refs: Mapping[str, str] | None = None,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Write ``metrics.json``, ``report.md``, ``comparison.png`` and ``point_targets_ROLE/`` into the new folder
    ``out_dir``. ``stores``: role (:data:`IMAGE_ROLES`, :data:`RAW_ROLES`) -> Zarr store; ``refs``: how each input
    is named in ``metrics.json`` (default: its path). Returns the metrics."""

    params = params or ReportParams()
    out_dir = Path(out_dir)
    from .model import load_dataset

    images = {k: load_dataset(stores[k], "slc") for k in IMAGE_ROLES if k in stores}
    raws = {k: load_dataset(stores[k], "raw") for k in RAW_ROLES if k in stores}
    refs = dict(refs) if refs is not None else {k: os.fspath(v) for k, v in stores.items()}
    result: dict[str, Any] = {"inputs": refs}
    result.update(report_metrics(images, raws))
    out_dir.mkdir(parents=True)
    chosen = [k for k in params.point_targets if k in images and images[k].attrs.get("point_targets")]
    if chosen:
        from .quality import point_target_report

        result["point_targets"] = {
            k: point_target_report(images[k], out_dir=out_dir / f"point_targets_{k}") for k in chosen
        }
    if params.figure and images:
        comparison_figure(
            images,
            out_dir / "comparison.png",
            dynamic_range_db=params.dynamic_range_db,
            max_size=params.max_size,
            methods=result.get("methods"),
        )
        result["figure"] = "comparison.png"
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (out_dir / "report.md").write_text(report_markdown(result))
    for key in ("psnr_interfered_db", "psnr_cleaned_db", "psnr_compared_db", "sir_before_db", "sir_after_db"):
        if key in result and log is not None:
            log.info("%s = %s", key, result[key])
    return result
