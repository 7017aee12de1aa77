"""The RFI detection product: a Zarr store written by ``sarpipe rfi detect -o`` and the ``detect_rfi`` stage, read by
``sarpipe rfi clean --detection`` and the ``clean_rfi`` stage.

Layout version 1 (root attribute ``rfi_detection_layout_version = 1``); dims ``azimuth`` (pulses / image lines) and
``range`` (fast-time samples / slant-range bins), coordinates ``azimuth_time`` [s] and ``slant_range`` [m]:

=========================  ==================  =======================================================================
variable                   dims, dtype         meaning
=========================  ==================  =======================================================================
``rfi_image_mask``         azimuth, range; b1  image pixels where the flagged pulses' focused RFI exceeds the clutter
``rfi_pulses``             azimuth; bool       echo pulses to clean (after the echo-domain refinement)
``rfi_candidate_pulses``   azimuth; bool       pulses the flagged lines map to by geometry alone
``rfi_image_lines``        azimuth; bool       image lines flagged
``rfi_line_z``             azimuth; float32    per-line score (robust sigmas; NaN on lines not tested)
``rfi_line_z_floor``       azimuth; float32    its power-floor part
``rfi_line_z_spectrum``    azimuth; float32    its spectral-peak part
``rfi_range_samples``      range; bool         fast-time samples the flagged range bins map to
=========================  ==================  =======================================================================

Attributes: the raw store's (sensor, history with an ``rfi_detect`` record), ``rfi_line_threshold`` (the score a line
had to exceed), ``rfi_image_params`` and ``rfi_mapping_params`` (the detector settings), ``rfi_aperture`` (the
aperture geometry: ``r0`` [m], ``length_pulses``, ``shift_pulses``, ``chirp_samples``, ``migration_samples``,
``source``). A change of layout raises the version; a store of another version is refused with a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from .clean import RFIDetection
from .detect import ImageDetection
from .pulses import ApertureGeometry, PulseMapping

__all__ = [
    "DETECTION_LAYOUT_VERSION",
    "detection_dataset",
    "detection_from_dataset",
    "open_detection",
    "open_detection_lazily",
    "save_detection",
]

DETECTION_LAYOUT_VERSION = 1
_VERSION_ATTR = "rfi_detection_layout_version"
_APERTURE_FIELDS = ("r0", "length_pulses", "shift_pulses", "chirp_samples", "migration_samples", "source")
_AZIMUTH_VARS = {  # variable -> (object, field)
    "rfi_pulses": ("mapping", "pulses"),
    "rfi_candidate_pulses": ("mapping", "candidates"),
    "rfi_image_lines": ("image", "lines"),
    "rfi_line_z": ("image", "z"),
    "rfi_line_z_floor": ("image", "z_floor"),
    "rfi_line_z_spectrum": ("image", "z_spectrum"),
}


def detection_dataset(
    det: RFIDetection, attrs: Mapping[str, Any], coords: Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> xr.Dataset:
    """The detection product as a dataset: ``attrs`` are the raw store's, ``coords`` its ``azimuth_time`` and
    ``slant_range``; ``params`` go into the ``rfi_detect`` history record."""
    from ..model import DIMS, with_history

    g = det.mapping.geometry
    mask = det.rfi_image_mask
    data = {"rfi_image_mask": (DIMS, mask.data if isinstance(mask, xr.DataArray) else np.asarray(mask, bool))}
    for name, (obj, fname) in _AZIMUTH_VARS.items():
        value = getattr(det.image if obj == "image" else det.mapping, fname)
        data[name] = (("azimuth",), np.asarray(value))
    data["rfi_range_samples"] = (("range",), np.asarray(det.mapping.samples, bool))
    ds = xr.Dataset(
        data,
        coords={k: coords[k] for k in ("azimuth_time", "slant_range")},
        attrs={
            **attrs,
            _VERSION_ATTR: DETECTION_LAYOUT_VERSION,
            "rfi_line_threshold": float(det.image.threshold),
            "rfi_image_params": dict(det.image.params),
            "rfi_mapping_params": dict(det.mapping.params),
            "rfi_aperture": {k: getattr(g, k) for k in _APERTURE_FIELDS},
        },
    )
    return with_history(ds, "rfi_detect", dict(params or {}))


def save_detection(
    det: RFIDetection,
    path: str | os.PathLike,
    *,
    attrs: Mapping[str, Any],
    coords: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    inputs: tuple = (),
) -> Path:
    """Write the detection product (layout above) to the Zarr store ``path``, atomically."""
    from ..model import save_dataset

    save_dataset(detection_dataset(det, attrs, coords, params), path, overwrite=overwrite, inputs=inputs)
    return Path(path)


def detection_from_dataset(ds: xr.Dataset, where: str = "detection") -> RFIDetection:
    """Rebuild the :class:`~sarpipe.rfi.clean.RFIDetection` from a loaded detection dataset (layout above)."""
    version = ds.attrs.get(_VERSION_ATTR)
    if version is None:
        raise InputError(
            f"not an RFI detection store (no attribute {_VERSION_ATTR!r}); write one with "
            "`sarpipe rfi detect RAW -o DET.zarr` or a detect_rfi pipeline step",
            where=where,
        )
    if version != DETECTION_LAYOUT_VERSION:
        raise InputError(
            f"detection layout version {version!r} is not one this sarpipe reads (it reads version "
            f"{DETECTION_LAYOUT_VERSION}); write the detection again with this sarpipe",
            where=where,
        )
    needed = ["rfi_image_mask", *_AZIMUTH_VARS, "rfi_range_samples"]
    missing = [v for v in needed if v not in ds.data_vars]
    missing += [
        a for a in ("rfi_line_threshold", "rfi_image_params", "rfi_mapping_params", "rfi_aperture") if a not in ds.attrs
    ]
    if missing:
        raise InputError(f"incomplete detection store: no {', '.join(map(repr, missing))}", where=where)
    aperture = ds.attrs["rfi_aperture"]
    if not isinstance(aperture, Mapping) or any(k not in aperture for k in _APERTURE_FIELDS):
        raise InputError(f"attribute 'rfi_aperture' must hold {', '.join(_APERTURE_FIELDS)}", where=where)
    values = {name: np.asarray(ds[name].values) for name in _AZIMUTH_VARS}
    image = ImageDetection(
        lines=values["rfi_image_lines"].astype(bool),
        mask=np.asarray(ds["rfi_image_mask"].values, bool),
        z=values["rfi_line_z"],
        z_floor=values["rfi_line_z_floor"],
        z_spectrum=values["rfi_line_z_spectrum"],
        threshold=float(ds.attrs["rfi_line_threshold"]),
        params=dict(ds.attrs["rfi_image_params"]),
    )
    geometry = ApertureGeometry(**{k: aperture[k] for k in _APERTURE_FIELDS})
    mapping = PulseMapping(
        pulses=values["rfi_pulses"].astype(bool),
        candidates=values["rfi_candidate_pulses"].astype(bool),
        samples=np.asarray(ds["rfi_range_samples"].values, bool),
        geometry=geometry,
        params=dict(ds.attrs["rfi_mapping_params"]),
    )
    return RFIDetection(image, mapping, None)


def _open_store(path: str | os.PathLike) -> xr.Dataset:
    """The detection store at ``path``, lazily (InputError naming it when it is missing or not Zarr)."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such detection store", where=os.fspath(path))
    try:
        return xr.open_zarr(p, consolidated=False)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read as a Zarr store ({type(exc).__name__}: {exc})", where=os.fspath(path)) from None


def open_detection(path: str | os.PathLike) -> RFIDetection:
    """Read a detection store (any layout version other than :data:`DETECTION_LAYOUT_VERSION` is refused)."""
    lazy = _open_store(path)
    try:
        ds = lazy.load()
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read as a Zarr store ({type(exc).__name__}: {exc})", where=os.fspath(path)) from None
    return detection_from_dataset(ds, where=os.fspath(path))


def open_detection_lazily(path: str | os.PathLike) -> tuple[RFIDetection, xr.DataArray]:
    """A detection product with its per-pulse and per-line items loaded and its ``rfi_image_mask`` left on disk:
    ``(detection, lazy_mask)``. ``detection.rfi_image_mask`` is a zero-strided placeholder of the right shape (all
    False); use ``lazy_mask`` for the values (the streaming clean step, :mod:`.streaming_clean`)."""
    lazy = _open_store(path)
    if "rfi_image_mask" not in lazy.data_vars:
        detection_from_dataset(lazy, where=os.fspath(path))  # refuses it (version, missing items), reading nothing
    mask = lazy["rfi_image_mask"]
    small = lazy.drop_vars("rfi_image_mask").load()
    small["rfi_image_mask"] = (mask.dims, np.broadcast_to(np.zeros((), bool), mask.shape))
    return detection_from_dataset(small, where=os.fspath(path)), mask
