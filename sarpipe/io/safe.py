"""Sentinel-1 SAFE products and bare measurement GeoTIFFs into the contract's SLC form.

- :func:`sniff_safe_slc` / :func:`read_safe_slc`: the ``s1-safe-slc`` ingest format. A SAFE folder (or its
  ``manifest.safe``) holds ``annotation/*.xml`` and ``measurement/*.tiff`` per swath and polarisation. Each part is
  one contract SLC dataset: stripmap (S1..S6) one part per swath/polarisation, key ``s3-vh``; TOPS (IW/EW) one
  part per burst, key ``iw1-hh-burst3`` (1-based), holding the burst's valid lines (the annotation's
  ``firstValidSample != -1``) because each burst has its own azimuth time axis. The samples are read lazily
  (Dask, rasterio windows), so a full product opens in a second.
- GRD products hold detected amplitudes in ground range, not complex samples in slant range: they are refused
  (:class:`InputError`), use xarray-sentinel's ``engine="sentinel-1"`` for them.
- :func:`open_s1_measurement`: a measurement GeoTIFF (or a window of one, e.g. a crop) with its annotation XML,
  without the SAFE around it; ``orbit`` an ``AUX_POEORB``/``AUX_RESORB`` ``.EOF`` file replacing the annotation's
  own (sparser) state vectors.

Every dataset carries: ``slc`` (complex64; CInt16 counts as read), ``azimuth_time`` [s from
``azimuth_time_epoch``], ``slant_range`` [m], ``doppler_centroid_range`` [Hz], ``orbit_*`` (ECEF), the annotation's
geolocation grid (``geolocation_line``/``geolocation_pixel`` in the full-swath numbering, and ``first_line``,
``first_sample`` attrs for this dataset's offset), and the attributes of
:func:`sarpipe.io.s1_annotation.contract_attrs`.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..model import DIMS, SPEED_OF_LIGHT, validate
from .s1_annotation import TOPS_MODES, S1Annotation, contract_attrs, read_annotation, seconds_since

LINES_PER_CHUNK = 1024


def check_defocus_supported(attrs: dict[str, Any], source: str | None = None) -> None:
    """Refuse to defocus a TOPS (IW/EW) SLC: its bursts' azimuth spectra are steered (``azimuth_steering_rate``),
    so the stripmap inverse would make wrong echoes. Burst deramping is not implemented (docs/safe.md)."""
    mode = attrs.get("acquisition_mode")
    if mode in TOPS_MODES:
        raise InputError(
            f"is a TOPS ({mode}) SLC: defocus supports stripmap only (the bursts' azimuth spectra are steered "
            "and burst deramping is not implemented)",
            where=f"{source}: attribute 'acquisition_mode'" if source else "attribute 'acquisition_mode'",
        )


# ------------------------------------------------------------------------------------------------ SAFE folders


def _safe_root(path: Path) -> Path | None:
    p = Path(path)
    if p.is_file() and p.name == "manifest.safe":
        p = p.parent
    if p.is_dir() and (p / "manifest.safe").is_file() and (p / "annotation").is_dir():
        return p
    return None


def sniff_safe_slc(path: Path) -> bool:
    """True for a Sentinel-1 SAFE folder (or its ``manifest.safe``) with annotation XMLs."""
    root = _safe_root(Path(path))
    return root is not None and any((root / "annotation").glob("s1*.xml"))


def _parts_of(root: Path) -> list[tuple[Path, Path]]:
    """(annotation, measurement) pairs of a SAFE folder, in name order."""
    pairs = []
    for ann in sorted((root / "annotation").glob("s1*.xml")):
        pairs.append((ann, root / "measurement" / (ann.stem + ".tiff")))
    return pairs


def read_safe_slc(path: Path, *, on_error: str = "raise") -> dict[str, xr.Dataset]:
    """Every swath/polarisation (stripmap) or burst (TOPS) of a SAFE SLC as a contract SLC dataset (lazy).

    ``on_error="skip"``: a part that cannot be read (a missing measurement, a bad annotation) is left out with a
    warning instead of stopping; if nothing is left, :class:`InputError`."""
    if on_error not in ("raise", "skip"):
        raise InputError(f"on_error must be 'raise' or 'skip', got {on_error!r}", where="--on-error")
    root = _safe_root(Path(path))
    if root is None:
        raise InputError("not a Sentinel-1 SAFE folder (no manifest.safe and annotation/)", where=os.fspath(path))
    parts: dict[str, xr.Dataset] = {}
    for ann_path, tiff in _parts_of(root):
        try:
            ann = read_annotation(ann_path)
            if ann.product_type != "SLC":
                raise InputError(
                    f"is a {ann.product_type} product: detected amplitudes in ground range, not an SLC; "
                    "open it with xarray-sentinel (engine='sentinel-1')",
                    where=os.fspath(ann_path),
                )
            if not tiff.is_file():
                raise InputError("measurement GeoTIFF is missing", where=os.fspath(tiff))
            stem = f"{ann.swath.lower()}-{ann.polarisation.lower()}"
            if ann.is_tops and ann.bursts:
                for b, burst in enumerate(ann.bursts):
                    valid = np.flatnonzero(burst["first_valid_sample"] >= 0)
                    if valid.size == 0:
                        continue
                    l0 = b * ann.lines_per_burst + int(valid[0])
                    nl = int(valid[-1] - valid[0] + 1)
                    parts[f"{stem}-burst{b + 1}"] = _dataset(ann, tiff, (l0, nl, 0, ann.number_of_samples))
            else:
                parts[stem] = _dataset(ann, tiff, (0, ann.number_of_lines, 0, ann.number_of_samples))
        except InputError as exc:
            if on_error == "raise":
                raise
            warnings.warn(f"skipped: {exc}", stacklevel=2)
    if not parts:
        raise InputError("no readable SLC part", where=os.fspath(root))
    return parts


# ------------------------------------------------------------------------------------------------ a bare GeoTIFF

_CROP_NAME = re.compile(r"hight?(\d+)_(\d+)_width(\d+)")


def crop_offset_from_name(name: str) -> tuple[int, int] | None:
    """The (line, sample) 0-based offset of a crop named ``..._hight9800_10400_width11000_...`` (1-based first
    line 9800 and first sample 11000, the convention of the SARProcessing.jl test crop), else None."""
    m = _CROP_NAME.search(name)
    return (int(m.group(1)) - 1, int(m.group(3)) - 1) if m else None


def open_s1_measurement(
    tiff: str | os.PathLike,
    annotation: str | os.PathLike,
    *,
    orbit: str | os.PathLike | None = None,
    window: tuple[tuple[int, int], tuple[int, int]] | None = None,
    offset: tuple[int, int] | None = None,
) -> xr.Dataset:
    """A measurement GeoTIFF and its annotation XML as one contract SLC dataset (lazy).

    ``window``: ``((row0, row1), (col0, col1))`` half-open, in the GeoTIFF's own pixels (default: all).
    ``offset``: (line, sample) of the GeoTIFF's first pixel in the full swath; default (0, 0) when the GeoTIFF has
    the annotation's full size, else taken from a crop's file name (:func:`crop_offset_from_name`); a crop without
    either is refused, since its azimuth times, ranges and geolocation would be wrong. A TOPS window must lie in
    one burst. ``orbit``: an ``.EOF`` file whose state vectors (within 60 s of the window) replace the annotation's.
    """
    import rasterio

    tiff, annotation = Path(tiff), Path(annotation)
    ann = read_annotation(annotation)
    if ann.product_type != "SLC":
        raise InputError(f"is a {ann.product_type} annotation, not an SLC", where=os.fspath(annotation))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(tiff) as src:
                height, width, dtype = src.height, src.width, src.dtypes[0]
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot be read as a GeoTIFF: {exc}", where=os.fspath(tiff)) from exc
    if not dtype.startswith("complex"):
        raise InputError(f"holds {dtype} samples, not complex (an SLC measurement is CInt16)", where=os.fspath(tiff))
    if offset is None:
        if (height, width) == (ann.number_of_lines, ann.number_of_samples):
            offset = (0, 0)
        else:
            offset = crop_offset_from_name(tiff.name)
            if offset is None:
                raise InputError(
                    f"is a {height} x {width} crop of the {ann.number_of_lines} x {ann.number_of_samples} swath "
                    "but its offset is unknown; give offset=(line, sample)",
                    where=os.fspath(tiff),
                )
    (r0, r1), (c0, c1) = window or ((0, height), (0, width))
    if not (0 <= r0 < r1 <= height and 0 <= c0 < c1 <= width):
        raise InputError(f"window {window} is outside the {height} x {width} GeoTIFF", where=os.fspath(tiff))
    first_line, first_sample = offset[0] + r0, offset[1] + c0
    if first_line + (r1 - r0) > ann.number_of_lines or first_sample + (c1 - c0) > ann.number_of_samples:
        raise InputError("window and offset reach beyond the annotated swath", where=os.fspath(tiff))
    if ann.is_tops and ann.lines_per_burst:
        if first_line // ann.lines_per_burst != (first_line + r1 - r0 - 1) // ann.lines_per_burst:
            raise InputError(
                "the window spans two TOPS bursts (each has its own azimuth time axis); open one burst at a time",
                where=os.fspath(tiff),
            )
    ds = _dataset(ann, tiff, (first_line, r1 - r0, first_sample, c1 - c0), tiff_origin=(r0, c0))
    if orbit is not None:
        from .s1_orbit_file import read_orbit_file

        epoch = np.datetime64(ds.attrs["azimuth_time_epoch"].removesuffix("Z"), "ns")
        t_end = epoch + np.timedelta64(int(float(ds["azimuth_time"][-1]) * 1e9), "ns")
        osv = read_orbit_file(orbit).window(epoch, t_end)
        if len(osv.times) < 4:
            raise InputError("does not cover the acquisition (fewer than 4 state vectors)", where=os.fspath(orbit))
        ds = ds.drop_vars(["orbit_position", "orbit_velocity", "orbit_time"])
        ds = ds.assign_coords(orbit_time=("orbit_time", seconds_since(osv.times, epoch)))
        ds["orbit_position"] = (("orbit_time", "xyz"), osv.position)
        ds["orbit_velocity"] = (("orbit_time", "xyz"), osv.velocity)
        ds.attrs["orbit_source"] = Path(orbit).name
    return ds


# ------------------------------------------------------------------------------------------------ shared builder


def _read_block(tiff: str, row0: int, nrows: int, col0: int, ncols: int) -> np.ndarray:
    import rasterio
    from rasterio.windows import Window

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(tiff) as src:
            return src.read(1, window=Window(col0, row0, ncols, nrows)).astype(np.complex64)


def _lazy_samples(tiff: Path, row0: int, nrows: int, col0: int, ncols: int):
    import dask
    import dask.array as da

    blocks = []
    for a in range(0, nrows, LINES_PER_CHUNK):
        n = min(LINES_PER_CHUNK, nrows - a)
        delayed = dask.delayed(_read_block, pure=True)(os.fspath(tiff), row0 + a, n, col0, ncols)
        blocks.append(da.from_delayed(delayed, shape=(n, ncols), dtype=np.complex64))
    return da.concatenate(blocks, axis=0)


def _dataset(
    ann: S1Annotation,
    tiff: Path,
    grid: tuple[int, int, int, int],
    *,
    tiff_origin: tuple[int, int] | None = None,
) -> xr.Dataset:
    """The contract dataset of swath lines ``[l0, l0+nl)`` x samples ``[s0, s0+ns)``; the GeoTIFF pixel of line
    ``l0``/sample ``s0`` is ``tiff_origin`` (a crop) or the same numbers (a full measurement)."""
    l0, nl, s0, ns = grid
    row0, col0 = tiff_origin if tiff_origin is not None else (l0, s0)
    attrs, epoch, dc_range, azimuth_time = contract_attrs(ann, first_line=l0, n_lines=nl, first_sample=s0, n_samples=ns)
    slant_range = attrs["near_range"] + np.arange(ns) * (SPEED_OF_LIGHT / (2 * attrs["range_sampling_rate"]))
    geo = ann.geolocation
    ds = xr.Dataset(
        {
            "slc": (DIMS, _lazy_samples(tiff, row0, nl, col0, ns)),
            "doppler_centroid_range": (("range",), dc_range),
            "orbit_position": (("orbit_time", "xyz"), ann.orbit_position),
            "orbit_velocity": (("orbit_time", "xyz"), ann.orbit_velocity),
            "geolocation_line": (("geolocation_point",), geo["line"]),
            "geolocation_pixel": (("geolocation_point",), geo["pixel"]),
            "geolocation_latitude": (("geolocation_point",), geo["latitude"]),
            "geolocation_longitude": (("geolocation_point",), geo["longitude"]),
            "geolocation_height": (("geolocation_point",), geo["height"]),
            "geolocation_incidence_angle": (("geolocation_point",), geo["incidence_angle"]),
            "geolocation_azimuth_time": (("geolocation_point",), seconds_since(geo["azimuth_time"], epoch)),
            "geolocation_slant_range": (("geolocation_point",), geo["slant_range_time"] * SPEED_OF_LIGHT / 2),
        },
        coords={
            "azimuth_time": ("azimuth", azimuth_time),
            "slant_range": ("range", slant_range),
            "orbit_time": ("orbit_time", seconds_since(ann.orbit_times, epoch)),
        },
        attrs=attrs,
    )
    ds["geolocation_line"].attrs["long_name"] = "full-swath line of the annotation's geolocation grid point"
    ds["geolocation_pixel"].attrs["long_name"] = "full-swath sample of the annotation's geolocation grid point"
    ds.encoding["source"] = os.fspath(tiff)
    return validate(ds, "slc", source=tiff, check_values=False)
