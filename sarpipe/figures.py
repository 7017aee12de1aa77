"""Figures with physical axes: the quicklook with time and range axes and a dB colour bar, and the point-target
figure with the theoretical impulse response beside the measured cuts. matplotlib (Agg, no display), written
atomically.

- quicklook: x = slant range [km], y = azimuth time [s] from ``azimuth_time_epoch`` (or the scene's own zero),
  intensity ``10 log10 |x|^2`` multilooked as :func:`sarpipe.export.multilook_db`; the colour bar says which value
  is its top (the 99.9th percentile of this image or of a reference image) and spans ``dynamic_range_db`` below.
  An RFI mask (bool, image grid) is drawn over it in red where set (blocks with any flagged pixel).
- point targets: per target, the range and azimuth cuts [dB rel. peak] against distance from the peak [m], with
  the window's continuous impulse response ``|h(x)|^2``, ``h(x) = int w(u) exp(j 2 pi u x) du`` over the processed
  band, scaled by the resolution cell ``c / (2 B_r)`` (range) or ``V / B_a`` (azimuth).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .atomic import atomic_path
from .errors import InputError


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    from .outputs import PRODUCT_ATTR

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={PRODUCT_ATTR: "figure"})
    return path


def block_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A boolean image mask reduced to a multilooked grid ``shape``: a block is set if any of its pixels is."""
    mask = np.asarray(mask, dtype=bool)
    la, lr = mask.shape[0] // shape[0], mask.shape[1] // shape[1]
    if la < 1 or lr < 1:
        raise InputError(f"mask {mask.shape} is smaller than the quicklook {shape}", where="rfi_image_mask")
    m = mask[: shape[0] * la, : shape[1] * lr].reshape(shape[0], la, shape[1], lr)
    return m.any(axis=(1, 3))


def quicklook_figure(
    ds: xr.Dataset,
    path: str | os.PathLike,
    variable: str | None = None,
    *,
    max_size: int = 1024,
    dynamic_range_db: float = 50.0,
    top: float | None = None,
    reference_name: str | None = None,
    mask: np.ndarray | None = None,
    square_pixels: bool = True,
    title: str | None = None,
) -> tuple[Path, float]:
    """The quicklook with axes (module doc). ``top`` [dB] the colour bar's top (default: this image's 99.9th
    percentile); ``reference_name`` names the image it came from. Returns the path and the top used."""
    from .export import image_variable, multilook_db, top_db

    var = image_variable(ds, variable)
    db = multilook_db(ds, var, max_size=max_size, square_pixels=square_pixels)
    t = top_db(db) if top is None else float(top)
    n_az, n_rg = ds.sizes["azimuth"], ds.sizes["range"]
    az = np.asarray(ds["azimuth_time"].values, float) if "azimuth_time" in ds.coords else np.arange(n_az, dtype=float)
    rg = np.asarray(ds["slant_range"].values, float) if "slant_range" in ds.coords else np.arange(n_rg, dtype=float)
    la, lr = n_az // db.shape[0], n_rg // db.shape[1]
    extent = (
        rg[0] / 1e3,
        rg[min(n_rg - 1, db.shape[1] * lr - 1)] / 1e3,
        az[min(n_az - 1, db.shape[0] * la - 1)],
        az[0],
    )
    fig = _figure(8.0, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(
        db, cmap="gray", vmin=t - dynamic_range_db, vmax=t, aspect="auto", extent=extent, interpolation="nearest"
    )
    if mask is not None:
        m = block_mask(mask, db.shape)
        overlay = np.zeros(db.shape + (4,))
        overlay[m] = (1.0, 0.0, 0.0, 0.45)
        ax.imshow(overlay, aspect="auto", extent=extent, interpolation="nearest")
        ax.plot([], [], "s", color=(1, 0, 0, 0.45), label=f"RFI mask ({100 * float(np.mean(mask)):.2f} % of pixels)")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("slant range [km]")
    epoch = ds.attrs.get("azimuth_time_epoch")
    ax.set_ylabel(f"azimuth time [s] from {epoch}" if epoch else "azimuth time [s]")
    ax.set_title(title or f"{var}: intensity, {la} x {lr} looks (azimuth x range)", fontsize=10)
    cb = fig.colorbar(im, ax=ax)
    ref = f"99.9th percentile of {reference_name}" if reference_name else "99.9th percentile of this image"
    if top is not None and not reference_name:
        ref = "given top value"
    cb.set_label(f"10 log10 |x|^2 [dB]; top {t:.1f} dB = {ref}")
    fig.tight_layout()
    return _save(fig, path), t


# ------------------------------------------------------------------------------------------------ point targets


def window_response_db(window: str, x_cells: np.ndarray, n: int = 2048) -> np.ndarray:
    """``|h(x)|^2`` [dB rel. peak] of the processor's window ``window`` at ``x_cells`` (units of 1/B)."""
    from .focus.windows import parse_window

    u = (np.arange(n) + 0.5) / n - 0.5
    wu = parse_window(window)(u)
    h = np.cos(2 * np.pi * np.outer(np.asarray(x_cells, float), u)) @ wu / n  # real, even window: h is real
    p = h * h
    with np.errstate(divide="ignore"):
        return 10 * np.log10(p / (float(np.sum(wu) / n) ** 2))


def point_target_figure(
    results: Sequence[Any],
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    range_window: str,
    azimuth_window: str,
    range_spacing_m: float,
    azimuth_spacing_m: float,
    range_cell_m: float,
    azimuth_cell_m: float,
    oversampling: int,
) -> Path:
    """Per target: the oversampled chip [dB] on metre axes, and the range / azimuth cuts [dB rel. peak] against
    distance from the peak [m] with the theoretical response of the window over the processed band (resolution
    cell ``range_cell_m = c / (2 B_r)``, ``azimuth_cell_m = V / B_a``). ``results``/``rows``: as
    :func:`sarpipe.quality.point_target_report` makes them (``chip_power_db``, ``range_cut_db``,
    ``azimuth_cut_db`` kept)."""
    n = max(1, len(results))
    fig = _figure(13.0, 3.6 * n)
    for k, (res, row) in enumerate(zip(results, rows)):
        ax = fig.add_subplot(n, 3, 3 * k + 1)
        a0, r0 = res.chip_origin
        size = res.chip_power_db.shape[0] / oversampling
        ax.imshow(
            np.maximum(res.chip_power_db, -40),
            cmap="viridis",
            aspect="auto",
            origin="lower",
            extent=(0, size * range_spacing_m, 0, size * azimuth_spacing_m),
        )
        ax.set_title(f"target {row['target']}: chip [dB rel. peak], {oversampling}x oversampled", fontsize=9)
        ax.set_xlabel(f"slant range from sample {r0} [m]")
        ax.set_ylabel(f"along track from line {a0} [m]")
        for j, (name, cut, window, spacing, cell) in enumerate(
            (
                ("range", res.range_cut_db, range_window, range_spacing_m, range_cell_m),
                ("azimuth", res.azimuth_cut_db, azimuth_window, azimuth_spacing_m, azimuth_cell_m),
            )
        ):
            ax = fig.add_subplot(n, 3, 3 * k + 2 + j)
            x = (np.arange(cut.size) - np.argmax(cut)) / oversampling * spacing
            ax.plot(x, np.maximum(cut, -60), lw=0.9, label="measured")
            ax.plot(x, np.maximum(window_response_db(window, x / cell), -60), "--", lw=0.9, label=f"theory ({window})")
            m = getattr(res, name)
            irw_th = row.get(f"{name}_irw_theory_m")
            ax.set_title(
                f"{name}: IRW {m.irw_m:.3f} m (theory {irw_th:.3f}), PSLR {m.pslr_db:.2f} dB "
                f"(theory {row.get(f'{name}_pslr_theory_db'):.2f})",
                fontsize=8,
            )
            ax.set_xlabel("distance from peak [m]")
            ax.set_ylabel("dB rel. peak")
            ax.set_ylim(-60, 3)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _save(fig, path, dpi=90)


def point_target_figure_for(slc_ds: xr.Dataset, path: str | os.PathLike, targets: Sequence[Mapping] | None = None):
    """Analyse the point targets of ``slc_ds`` (:mod:`sarpipe.quality`) and draw :func:`point_target_figure`."""
    from .model import SPEED_OF_LIGHT
    from .quality import OVERSAMPLING, _focus_windows, point_target_analysis, point_target_report, processed_bandwidths
    from .sensor import SensorParams

    rows = point_target_report(slc_ds, targets)
    sensor = SensorParams.from_attrs(dict(slc_ds.attrs))
    rw, aw = _focus_windows(dict(slc_ds.attrs))
    b_r, b_a = processed_bandwidths(sensor)
    image = slc_ds["slc"].values
    results = [
        point_target_analysis(
            image,
            r["azimuth_index"],
            r["range_index"],
            range_spacing=sensor.range_pixel_spacing,
            azimuth_spacing=sensor.azimuth_pixel_spacing,
            keep_arrays=True,
        )
        for r in rows
    ]
    return point_target_figure(
        results,
        rows,
        path,
        range_window=rw,
        azimuth_window=aw,
        range_spacing_m=sensor.range_pixel_spacing,
        azimuth_spacing_m=sensor.azimuth_pixel_spacing,
        range_cell_m=SPEED_OF_LIGHT / (2 * b_r),
        azimuth_cell_m=sensor.velocity / b_a,
        oversampling=OVERSAMPLING,
    )
