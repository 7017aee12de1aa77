"""Export images: GeoTIFF (georeferenced by ground control points where the scene allows) and PNG quicklooks.
Every file is written atomically.

Rows are pulses / image lines (azimuth time increasing downwards), columns are slant-range samples (near range on
the left); the GeoTIFF is never resampled. Georeferencing (docs/export.md):

- a SAFE-derived scene (annotation geolocation grid): GCPs interpolated from the grid in (azimuth time, slant range),
  CRS EPSG:4326 (WGS84 lon/lat, height in the GCP's z);
- a scene with orbit state vectors (Level-0, NISAR, ...): GCPs by range-Doppler intersection with the WGS84
  ellipsoid at height 0 (:mod:`sarpipe.georef`), CRS EPSG:4326;
- otherwise (a simulated scene): **not georeferenced**; the affine transform maps pixels to radar coordinates in
  metres (x = slant range, y = along-track distance ``azimuth_time * velocity``) with no CRS, so GIS tools show
  true-scale metres and no ``NotGeoreferencedWarning``; the tags say so.

Tiled 256 x 256, deflate-compressed (float predictor for amplitude/dB), with overviews (averaged; nearest for
masks). Values: ``amplitude`` |x|, ``db`` 10 log10 |x|^2, ``complex`` (CFloat32, uncompressed), or a boolean
variable (e.g. ``rfi_image_mask``) as a 0/1 ``mask`` (uint8).

Quicklooks are multilooked intensity in dB (mean of |x|^2 over blocks), scaled to ``dynamic_range_db`` below a top
value (the 99.9th percentile by default, or a given ``top_db`` so several images share one scale), with block sizes
chosen so that pixels are roughly square on the ground (azimuth spacing ``velocity / prf``, slant-range spacing
``c / (2 fs)``) and the image fits in ``max_size`` pixels. ``STEM.png`` is the bare image (one pixel per block);
``STEM_figure.png`` (:mod:`sarpipe.figures`) has axes in seconds and metres, a dB colour bar naming its reference,
and optionally the RFI mask overlaid.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from .atomic import atomic_path
from .errors import InputError
from .model import azimuth_pixel_spacing, range_pixel_spacing

IMAGE_VARIABLES = ("slc", "echo", "echo_clean", "rfi")


def image_variable(ds: xr.Dataset, variable: str | None = None) -> str:
    """The variable to export: ``variable`` if given, else ``slc``, else ``echo``."""
    if variable is not None:
        if variable not in ds.data_vars:
            raise InputError(f"no variable {variable!r} to export (variables: {sorted(map(str, ds.data_vars))})")
        return variable
    for name in IMAGE_VARIABLES:
        if name in ds.data_vars:
            return name
    raise InputError(f"nothing to export: no 'slc' or 'echo' variable (variables: {sorted(map(str, ds.data_vars))})")


def pixel_spacing(ds: xr.Dataset) -> tuple[float, float]:
    """(azimuth, slant-range) pixel spacing [m]: ``velocity / prf`` and ``c / (2 fs)``."""
    return azimuth_pixel_spacing(ds.attrs), range_pixel_spacing(ds.attrs)


def look_factors(
    n_az: int, n_rg: int, az_spacing: float, rg_spacing: float, max_size: int, square: bool = True
) -> tuple[int, int]:
    """Block sizes (azimuth, range) for a multilooked quicklook at most ``max_size`` pixels on its longer side."""
    la = lr = 1
    if square and az_spacing > 0 and rg_spacing > 0:
        ratio = rg_spacing / az_spacing  # > 1: range pixels are longer, so average more pulses
        if ratio >= 1:
            la = max(1, round(ratio))
        else:
            lr = max(1, round(1 / ratio))
    scale = max(n_az / la / max_size, n_rg / lr / max_size, 1.0)
    k = math.ceil(scale)
    return min(la * k, n_az), min(lr * k, n_rg)


def multilook_db(
    ds: xr.Dataset, variable: str | None = None, *, max_size: int = 1024, square_pixels: bool = True
) -> np.ndarray:
    """Multilooked intensity in dB (float32, rows = azimuth), computed chunk by chunk (bounded memory)."""
    var = image_variable(ds, variable)
    arr = ds[var]
    if arr.ndim != 2:
        raise InputError(f"variable {var!r} must be 2-D (azimuth, range), got dims {arr.dims}")
    n_az, n_rg = arr.shape
    az_sp, rg_sp = pixel_spacing(ds) if {"velocity", "prf", "range_sampling_rate"} <= set(ds.attrs) else (1.0, 1.0)
    la, lr = look_factors(n_az, n_rg, az_sp, rg_sp, max_size, square_pixels)
    power = np.abs(arr) ** 2 if np.iscomplexobj(arr.dtype.type(0)) else arr.astype(np.float64) ** 2
    looked = power.coarsen({arr.dims[0]: la, arr.dims[1]: lr}, boundary="trim").mean()
    values = np.asarray(looked.values, dtype=np.float64)
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(values)
    return db.astype(np.float32)


def top_db(db: np.ndarray, percentile: float = 99.9) -> float:
    finite = db[np.isfinite(db)]
    return float(np.percentile(finite, percentile)) if finite.size else 0.0


def to_uint8(db: np.ndarray, *, top: float | None = None, dynamic_range_db: float = 50.0) -> np.ndarray:
    """Map dB values to 0..255 over ``[top - dynamic_range_db, top]`` (``top`` default: 99.9th percentile)."""
    top = top_db(db) if top is None else top
    lo = top - dynamic_range_db
    scaled = (np.nan_to_num(db, nan=lo, neginf=lo, posinf=top) - lo) / dynamic_range_db
    return np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)


def write_png(image: np.ndarray, path: str | os.PathLike, *, colormap: str = "gray") -> Path:
    """Write a uint8 image (rows = azimuth) as PNG, grey or through a matplotlib colormap; atomic."""
    from PIL import Image

    path = Path(path)
    if colormap == "gray":
        img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))  # 2-D uint8 -> mode L
    else:
        import matplotlib

        try:
            cmap = matplotlib.colormaps[colormap]
        except KeyError as exc:
            raise InputError(f"unknown colormap {colormap!r}") from exc
        rgb = (cmap(image.astype(np.float64) / 255.0)[..., :3] * 255.0 + 0.5).astype(np.uint8)
        img = Image.fromarray(rgb)  # (rows, cols, 3) uint8 -> mode RGB
    from PIL.PngImagePlugin import PngInfo

    from .outputs import PRODUCT_ATTR

    info = PngInfo()
    info.add_text(PRODUCT_ATTR, "quicklook")  # so a rerun may replace its own quicklook (sarpipe.outputs)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", pnginfo=info)
    return path


def write_quicklook(
    ds: xr.Dataset,
    path: str | os.PathLike,
    variable: str | None = None,
    *,
    max_size: int = 1024,
    dynamic_range_db: float = 50.0,
    top: float | None = None,
    square_pixels: bool = True,
    colormap: str = "gray",
) -> tuple[Path, float]:
    """PNG quicklook of ``ds[variable]``; returns the path and the top value [dB] used for scaling."""
    db = multilook_db(ds, variable, max_size=max_size, square_pixels=square_pixels)
    t = top_db(db) if top is None else top
    return write_png(to_uint8(db, top=t, dynamic_range_db=dynamic_range_db), path, colormap=colormap), t


def geotiff_tags(ds: xr.Dataset, variable: str, mode: str, georef: str) -> dict[str, str]:
    a = ds.attrs
    tags = {
        "SARPIPE_GEOMETRY": "radar geometry: rows = azimuth time (increasing down), columns = slant range "
        "(increasing right); "
        + (
            f"georeferenced by GCPs ({georef}), EPSG:4326"
            if georef != "none"
            else "NOT georeferenced (transform: slant range and along-track distance in metres, no CRS)"
        ),
        "SARPIPE_VARIABLE": variable,
        "SARPIPE_VALUES": {
            "amplitude": "|x| (linear amplitude)",
            "db": "10*log10(|x|^2) [dB]",
            "complex": "complex samples",
            "mask": "1 where the mask is set, else 0",
        }[mode],
    }
    if "azimuth_time" in ds.coords and ds.sizes.get("azimuth", 0):
        tags["AZIMUTH_TIME_FIRST_S"] = repr(float(ds["azimuth_time"].values[0]))
    if "slant_range" in ds.coords and ds.sizes.get("range", 0):
        tags["SLANT_RANGE_FIRST_M"] = repr(float(ds["slant_range"].values[0]))
    if "prf" in a:
        tags["AZIMUTH_TIME_SPACING_S"] = repr(1.0 / float(a["prf"]))
    if "range_sampling_rate" in a:
        tags["SLANT_RANGE_SPACING_M"] = repr(range_pixel_spacing(a))
    for key in (
        "carrier_frequency",
        "range_sampling_rate",
        "chirp_rate",
        "pulse_duration",
        "prf",
        "velocity",
        "near_range",
        "doppler_centroid",
        "look_side",
        "sensor",
        "azimuth_time_epoch",
        "polarisation",
        "swath",
        "acquisition_mode",
    ):
        if key in a and a[key] is not None:
            tags[key.upper()] = str(a[key])
    return tags


def radar_transform(ds: xr.Dataset):
    """Affine pixel -> (slant range [m], along-track distance [m]) of a scene that is not georeferenced; pixel
    corners, so the centre of pixel (0, 0) is at ``near_range`` and ``azimuth_time[0] * velocity``."""
    from rasterio.transform import Affine

    a = ds.attrs
    if not {"range_sampling_rate", "prf", "velocity", "near_range"} <= set(a):
        return Affine(1.0, 0.0, -0.5, 0.0, 1.0, -0.5)  # pixel indices at pixel centres
    dr, dx = range_pixel_spacing(a), azimuth_pixel_spacing(a)
    r0 = float(ds["slant_range"].values[0]) if "slant_range" in ds.coords else float(a["near_range"])
    y0 = float(ds["azimuth_time"].values[0]) * float(a["velocity"]) if "azimuth_time" in ds.coords else 0.0
    return Affine(dr, 0.0, r0 - dr / 2, 0.0, dx, y0 - dx / 2)


def ground_control_points(ds: xr.Dataset) -> tuple[list, str] | None:
    """rasterio GCPs (pixel corners convention) over ``ds`` and how they were found, or None (see module doc)."""
    from rasterio.control import GroundControlPoint

    from .georef import gcp_grid

    grid = gcp_grid(ds)
    if grid is None:
        return None
    gcps = [
        GroundControlPoint(row=float(r), col=float(c), x=float(lon), y=float(lat), z=float(h), id=str(k))
        for k, (r, c, lat, lon, h) in enumerate(
            zip(
                grid["row"].ravel(),
                grid["col"].ravel(),
                grid["lat"].ravel(),
                grid["lon"].ravel(),
                grid["height"].ravel(),
            )
        )
    ]
    return gcps, grid["method"]


def overview_factors(n_az: int, n_rg: int, smallest: int = 256) -> list[int]:
    """Powers of two until the overview's longer side is at most ``smallest`` pixels."""
    factors, f = [], 2
    while max(n_az, n_rg) / (f // 2) > smallest:
        factors.append(f)
        f *= 2
    return factors


def write_geotiff(
    ds: xr.Dataset,
    path: str | os.PathLike,
    variable: str | None = None,
    *,
    mode: str = "amplitude",
    block_lines: int = 1024,
    georeference: bool = True,
    overviews: bool = True,
) -> Path:
    """Write ``ds[variable]`` as a single-band tiled, compressed GeoTIFF in radar geometry, georeferenced by GCPs
    where the scene allows (module doc; ``georeference=False`` never). ``mode``: ``amplitude`` (float32 |x|),
    ``db`` (float32 10 log10 |x|^2) or ``complex`` (complex64); a boolean variable is written as a uint8 mask
    whatever ``mode``. Written in blocks of ``block_lines`` rows (bounded memory), then overviews, to a temporary
    name renamed when complete."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.enums import Resampling

    if mode not in ("amplitude", "db", "complex"):
        raise InputError(f"GeoTIFF mode must be amplitude, db or complex, got {mode!r}")
    var = image_variable(ds, variable)
    arr = ds[var]
    if arr.ndim != 2:
        raise InputError(f"variable {var!r} must be 2-D (azimuth, range), got dims {arr.dims}")
    if arr.dtype == bool:
        mode = "mask"
    n_az, n_rg = arr.shape
    dtype = {"complex": "complex64", "mask": "uint8"}.get(mode, "float32")
    path = Path(path)
    profile: dict[str, Any] = dict(
        driver="GTiff",
        width=n_rg,
        height=n_az,
        count=1,
        dtype=dtype,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        BIGTIFF="IF_SAFER",
    )
    if mode != "complex":
        profile["compress"] = "deflate"
        profile["predictor"] = 3 if dtype == "float32" else 2
    gcps = ground_control_points(ds) if georeference else None
    if gcps is None:
        profile["transform"] = radar_transform(ds)
    else:
        profile["gcps"], profile["crs"] = gcps[0], CRS.from_epsg(4326)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.update_tags(**geotiff_tags(ds, var, mode, gcps[1] if gcps is not None else "none"))
            dst.set_band_description(1, f"{var} ({mode})")
            for r0 in range(0, n_az, block_lines):
                r1 = min(n_az, r0 + block_lines)
                block = np.asarray(arr[r0:r1].values)
                if mode == "amplitude":
                    out = np.abs(block).astype(np.float32)
                elif mode == "db":
                    with np.errstate(divide="ignore"):
                        out = (10.0 * np.log10(np.abs(block).astype(np.float64) ** 2)).astype(np.float32)
                elif mode == "mask":
                    out = block.astype(np.uint8)
                else:
                    out = block.astype(np.complex64)
                dst.write(out, 1, window=rasterio.windows.Window(0, r0, n_rg, r1 - r0))
        factors = overview_factors(n_az, n_rg) if overviews and mode != "complex" else []
        if factors:
            with rasterio.open(tmp, "r+") as dst:
                dst.build_overviews(factors, Resampling.nearest if mode == "mask" else Resampling.average)
                dst.update_tags(ns="rio_overview", resampling="nearest" if mode == "mask" else "average")
    return path


# ------------------------------------------------------------------------------------------ the export operation


class ExportParams(BaseModel):
    """What ``sarpipe export`` and the ``export`` stage write: a PNG quicklook, a figure with axes, and/or a GeoTIFF
    (georeferenced by GCPs where the scene has a geolocation grid or an orbit; module doc)."""

    model_config = ConfigDict(extra="forbid")

    variable: str | None = Field(None, description="variable to export (default: slc, else echo)")
    png: bool = Field(True, description="write a PNG quicklook (bare image, one pixel per multilook block)")
    figure: bool = Field(True, description="write STEM_figure.png: the quicklook with time/range axes and dB bar")
    rfi_mask: bool = Field(
        False,
        description="overlay the store's rfi_image_mask on the figure and write it as STEM_rfi_mask.tif "
        "(a cleaned raw store or a detection product holds it)",
    )
    geotiff: Literal["none", "amplitude", "db", "complex"] = Field(
        "amplitude", description="GeoTIFF in radar geometry (GCPs where possible): amplitude, db, complex, or none"
    )
    georeference: bool = Field(True, description="GeoTIFF: GCPs from the geolocation grid or the orbit if present")
    max_size: int = Field(1024, ge=16, description="quicklook: longest side in pixels")
    dynamic_range_db: float = Field(50.0, gt=0, description="quicklook: dB range below the top value shown")
    square_pixels: bool = Field(True, description="quicklook: multilook so pixels are roughly square on the ground")
    colormap: str = Field("gray", description="quicklook: gray or a matplotlib colormap name")
    name: str | None = Field(None, description="file name stem (default: the step name, or the image's name)")


def export_image(
    image: str | os.PathLike,
    out_dir: str | os.PathLike,
    params: ExportParams | None = None,
    *,
    reference: str | os.PathLike | None = None,
    stem: str | None = None,
) -> dict[str, Any]:
    """Export the image store ``image`` into the new folder ``out_dir``: ``STEM.png``, ``STEM_figure.png``,
    ``STEM.tif`` (and ``STEM_rfi_mask.tif``) and ``export.json`` (what was written). ``reference``: a store whose
    quicklook sets the dB scale, so several images share one. ``stem``: file name stem when ``params.name`` is not
    set (default: the image's name)."""
    import json

    from .model import open_dataset

    params = params or ExportParams()
    ds = open_dataset(image)  # a raw or SLC store, validated (NaN/Inf, damaged chunks) before anything is drawn
    var = image_variable(ds, params.variable)
    stem = params.name or stem or Path(image).name.removesuffix(".zarr")
    mask = None
    if params.rfi_mask:
        if "rfi_image_mask" not in ds.data_vars:
            raise InputError(
                "has no rfi_image_mask to overlay (give a cleaned raw store or a detection product)",
                where=f"{os.fspath(image)}: variable 'rfi_image_mask'",
            )
        mask = np.asarray(ds["rfi_image_mask"].values, dtype=bool)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True)
    info: dict[str, Any] = {"variable": var, "geometry": "radar (rows: azimuth, columns: slant range)"}
    top = None
    if reference is not None and (params.png or params.figure):
        ref = open_dataset(reference)
        top = top_db(
            multilook_db(
                ref,
                image_variable(ref, params.variable if params.variable in ref.data_vars else None),
                max_size=params.max_size,
                square_pixels=params.square_pixels,
            )
        )
    if params.png:
        path, used = write_quicklook(
            ds,
            out_dir / f"{stem}.png",
            var,
            max_size=params.max_size,
            dynamic_range_db=params.dynamic_range_db,
            top=top,
            square_pixels=params.square_pixels,
            colormap=params.colormap,
        )
        info["png"] = {"file": path.name, "top_db": used, "dynamic_range_db": params.dynamic_range_db}
    if params.figure:
        from .figures import quicklook_figure

        path, used = quicklook_figure(
            ds,
            out_dir / f"{stem}_figure.png",
            var,
            max_size=params.max_size,
            dynamic_range_db=params.dynamic_range_db,
            top=top,
            reference_name=Path(reference).name if reference is not None else None,
            mask=mask,
            square_pixels=params.square_pixels,
        )
        info["figure"] = {"file": path.name, "top_db": used, "rfi_mask": mask is not None}
    if params.geotiff != "none":
        path = write_geotiff(ds, out_dir / f"{stem}.tif", var, mode=params.geotiff, georeference=params.georeference)
        info["geotiff"] = {"file": path.name, "values": params.geotiff, "georeferencing": _georef_of(path)}
    if mask is not None:
        path = write_geotiff(ds, out_dir / f"{stem}_rfi_mask.tif", "rfi_image_mask", georeference=params.georeference)
        info["rfi_mask_geotiff"] = {"file": path.name, "values": "mask"}
    (out_dir / "export.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def _georef_of(path: Path) -> str:
    import rasterio

    with rasterio.open(path) as src:
        return src.tags().get("SARPIPE_GEOMETRY", "").split("; ", 1)[-1]
