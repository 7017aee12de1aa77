"""The run report: RFI metrics (PSNR, ME, SIR before and after, pulse recall), the point-target analysis, a comparison
figure and a markdown summary, behind ``sarpipe report`` and the ``report`` pipeline stage.

Images: ``interfered`` (focused before cleaning), ``cleaned`` (after), ``reference`` (the simulator's clean echo
focused: the truth for PSNR and ME). Raw stores: ``raw`` (the simulated scene, whose ``rfi`` variable is the truth for
SIR and pulse recall) and ``cleaned_raw`` (the cleanup's output, with ``rfi_pulses``). Metric definitions:
:mod:`sarpipe.rfi.metrics`.
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
    "report_metrics",
    "write_report",
]

IMAGE_ROLES = ("interfered", "cleaned", "reference")
RAW_ROLES = ("raw", "cleaned_raw")


class ReportParams(BaseModel):
    """What the report analyses and draws."""

    model_config = ConfigDict(extra="forbid")

    point_targets: list[Literal["interfered", "cleaned", "reference"]] = Field(
        ["cleaned"],
        description="images whose simulated point targets are analysed (IRW, PSLR, ISLR, position vs. theory)",
    )
    figure: bool = Field(True, description="write comparison.png (reference / interfered / cleaned, one dB scale)")
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
        for k in ("interfered", "cleaned"):
            if k in amp:
                result[f"psnr_{k}_db"] = _finite(m.psnr(amp[k], ref))
                result[f"me_{k}"] = _finite(m.mean_entropy(amp[k], ref))
        result["me_reference"] = _finite(m.mean_entropy(ref, ref))
    raw = raws.get("raw")
    if raw is not None and "rfi" in raw.data_vars:
        rfi = np.asarray(raw["rfi"].values)
        echo = np.asarray(raw["echo"].values)
        signal = echo - rfi
        truth = np.any(rfi != 0, axis=1)
        result["contaminated_pulses"] = int(truth.sum())
        if truth.any():
            result["sir_before_db"] = _finite(m.sir_db(signal[truth], rfi[truth]))
        cleaned = raws.get("cleaned_raw")
        if cleaned is not None:
            after = np.asarray(cleaned["echo"].values)
            if truth.any():
                result["sir_after_db"] = _finite(m.sir_db(signal[truth], after[truth] - signal[truth]))
            if "rfi_pulses" in cleaned.data_vars:
                flagged = np.asarray(cleaned["rfi_pulses"].values, bool)
                result["pulse_recall"] = _finite(m.pulse_recall(flagged, truth))
                result["pulse_extra_fraction"] = _finite(m.pulse_extra_fraction(flagged, truth))
                result["cleaned_pulses"] = int(flagged.sum())
    return result


def comparison_figure(
    images: Mapping[str, Any], path: str | os.PathLike, *, dynamic_range_db: float = 50.0, max_size: int = 768
) -> Path:
    """reference / interfered / cleaned side by side, multilooked intensity on one dB scale (the first panel's)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .export import multilook_db, top_db

    order = [k for k in ("reference", "interfered", "cleaned") if k in images]
    dbs = {k: multilook_db(images[k], "slc", max_size=max_size) for k in order}
    top = top_db(dbs[order[0]])
    fig = Figure(figsize=(4.0 * len(order) + 1.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    titles = {"reference": "clean echo focused (truth)", "interfered": "interfered", "cleaned": "cleaned"}
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
    if "psnr_interfered_db" in r or "psnr_cleaned_db" in r:
        lines += [
            "| metric | interfered | cleaned |",
            "|---|---|---|",
            f"| PSNR [dB] (vs. image of the clean echo) | {f('psnr_interfered_db')} | {f('psnr_cleaned_db')} |",
            f"| ME (lower is better; truth {f('me_reference', '.4g')}) | {f('me_interfered', '.4g')} | {f('me_cleaned', '.4g')} |",
            f"| SIR [dB] over contaminated pulses | {f('sir_before_db')} | {f('sir_after_db')} |",
            "",
        ]
    if "pulse_recall" in r:
        lines += [
            f"Contaminated pulses (truth): {r.get('contaminated_pulses')}; cleaned: {r.get('cleaned_pulses')}; "
            f"recall {f('pulse_recall')}, extra {f('pulse_extra_fraction')} (as a fraction of the contaminated).",
            "",
        ]
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
            images, out_dir / "comparison.png", dynamic_range_db=params.dynamic_range_db, max_size=params.max_size
        )
        result["figure"] = "comparison.png"
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (out_dir / "report.md").write_text(report_markdown(result))
    for key in ("psnr_interfered_db", "psnr_cleaned_db", "sir_before_db", "sir_after_db"):
        if key in result and log is not None:
            log.info("%s = %s", key, result[key])
    return result
