"""Dataset-level focusing for in-memory (small to medium) scenes: raw dataset -> SLC dataset and back.

For scenes larger than memory use :func:`sarpipe.focus.focus_zarr` (Dask, persisted corner turn).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..model import DIMS, range_pixel_spacing, validate, with_acquisition_items, with_history
from ..segments import check_one_segment
from ..sensor import SensorParams
from .checks import check_focusable, check_stripmap_echoes
from .doppler import estimate_doppler_centroid
from .doppler_ambiguity import centroid_from_variable
from .rda import (
    FocusSettings,
    complete_settings,
    defocus_array,
    focus_array,
    resolve_settings,
    settings_from_history,
    with_secondary_range_compression,
)


def product_attrs(src_attrs: dict, record: dict, settings: FocusSettings, *, focused: bool) -> dict:
    """The product's attrs: the source's, ``doppler_centroid`` [Hz] and ``doppler_centroid_method`` as used, and
    for an SLC ``valid_range_samples`` ``[first, stop)`` (after trimming: the whole grid; ``near_range`` moved)."""
    attrs = {**src_attrs, "doppler_centroid": float(settings.doppler_centroid)}
    attrs["doppler_centroid_method"] = settings.doppler_method
    for key in ("doppler_polynomial", "doppler_reference_range"):
        attrs.pop(key, None)
        if key in record:
            attrs[key] = record[key]
    if focused:
        first, stop = record["valid_range_samples"]
        if settings.range_edges == "trim":
            attrs["near_range"] = float(src_attrs["near_range"]) + first * range_pixel_spacing(src_attrs)
            first, stop = 0, stop - first
        attrs["valid_range_samples"] = [int(first), int(stop)]
    else:
        attrs.pop("valid_range_samples", None)
    return attrs


def _product(
    src: xr.Dataset, name: str, data: np.ndarray, step: str, settings: FocusSettings, geom: SensorParams
) -> xr.Dataset:
    """``data`` as variable ``name`` on the grid of ``src`` (trimmed to the valid range samples when asked), with
    its attrs (:func:`product_attrs`) and a ``step`` history record of ``settings``."""
    record = settings.record(geom, *data.shape)
    attrs = product_attrs(dict(src.attrs), record, settings, focused=step == "focus")
    coords = {c: src.coords[c] for c in ("azimuth_time", "slant_range")}
    if step == "focus" and settings.range_edges == "trim":
        first, stop = record["valid_range_samples"]
        data = data[:, first:stop]
        coords["slant_range"] = coords["slant_range"][first:stop]
    out = with_acquisition_items(xr.Dataset({name: (DIMS, data)}, coords=coords, attrs=attrs), src)
    return with_history(out, step, record, source=src)


def focus_plan(
    raw: xr.Dataset,
    *,
    source: str | None = None,
    doppler_centroid: float | None = None,
    azimuth_bandwidth=None,
    **options,
) -> tuple[SensorParams, FocusSettings]:
    """The checks every focus runs before touching the echoes (one segment, a stripmap echo part, a focusable
    scene; ``source`` names the store in messages) and the resolved settings; ``options``: the rest of
    :func:`focus`'s settings. Shared by :func:`focus` and the streaming ``focus_zarr``."""
    check_one_segment(raw, source)
    check_stripmap_echoes(raw, source)
    geom = SensorParams.from_dataset(raw, source)
    check_focusable(
        geom,
        raw.sizes["azimuth"],
        raw.sizes["range"],
        azimuth_bandwidth=azimuth_bandwidth,
        doppler_centroid=doppler_centroid,
        source=source,
    )
    settings = resolve_settings(
        geom,
        doppler_centroid=doppler_centroid,
        azimuth_bandwidth=azimuth_bandwidth,
        **options,
        **centroid_from_variable(raw, geom, doppler_centroid),
    )
    return geom, settings


def focus(
    raw: xr.Dataset,
    *,
    range_window: str = "rect",
    azimuth_window: str = "rect",
    doppler_centroid: float | None = None,
    azimuth_bandwidth: float | None = None,
    range_correlation: str = "linear",
    range_edges: str = "mark",
    doppler_ambiguity: str = "auto",
    secondary_range_compression: bool = True,
    workers: int | None = None,
) -> xr.Dataset:
    """Focus a raw-echo dataset with the range-Doppler algorithm, in memory.

    Returns an SLC dataset (``slc`` complex64, the same ``azimuth_time``/``slant_range`` grid, the raw attrs with
    ``doppler_centroid`` [Hz] set to the value used, and a ``focus`` history record). ``doppler_centroid`` [Hz]
    overrides the attribute (a ``doppler_centroid_range`` variable, Hz over range, gives a range-varying one); when
    none is there it is estimated from the data, its PRF ambiguity resolved by ``doppler_ambiguity`` (auto: the
    geometric centroid when orbit and attitude are there, else multi-look cross-correlation), range-varying
    (:mod:`.doppler_ambiguity`). ``range_correlation``: ``linear`` (zero-padded, no wrap between the swath edges)
    or ``circular``; ``range_edges``: ``mark`` (attr ``valid_range_samples`` = [first, stop)) or ``trim``;
    ``secondary_range_compression``: the range-azimuth coupling of a squinted geometry removed at the centroid
    and mid-swath range (Cumming & Wong 6.22; recorded as ``secondary_range_compression_rate``, None when
    negligible).
    ``azimuth_bandwidth`` [Hz]: processed Doppler band (default: the ``azimuth_bandwidth`` attribute, else
    ``0.886 * 2V cos(squint) / antenna_length``, else the PRF; the default is capped at the PRF, a value above
    it is refused). Scenes the algorithm cannot focus are refused first (:func:`.checks.check_focusable`).
    Windows: ``rect`` | ``hamming:ALPHA`` | ``kaiser:BETA``. Raises InputError on data outside the contract.
    """
    validate(raw, "raw")
    geom, settings = focus_plan(
        raw,
        range_window=range_window,
        azimuth_window=azimuth_window,
        doppler_centroid=doppler_centroid,
        azimuth_bandwidth=azimuth_bandwidth,
        range_correlation=range_correlation,
        range_edges=range_edges,
        doppler_ambiguity=doppler_ambiguity,
        secondary_range_compression=secondary_range_compression,
    )
    echo = np.ascontiguousarray(raw["echo"].values, dtype=np.complex64)
    slc, settings = focus_array(echo, geom, settings, workers=workers, dataset=raw)
    return _product(raw, "slc", slc, "focus", settings, geom)


def defocus(
    slc_ds: xr.Dataset,
    *,
    range_window: str | None = None,
    azimuth_window: str | None = None,
    doppler_centroid: float | None = None,
    azimuth_bandwidth: float | None = None,
    range_correlation: str | None = None,
    secondary_range_compression: bool | None = None,
    workers: int | None = None,
) -> xr.Dataset:
    """Turn an SLC dataset back into raw echoes: the inverse of :func:`focus`, so ``focus(defocus(x)) == x``
    for an image band-limited to the processed bands.

    Windows, Doppler centroid and bandwidth come from the last ``focus`` history record (defaults: rect, the
    ``doppler_centroid`` attribute or an estimate from the SLC, the default bandwidth, linear range); arguments
    override them (``secondary_range_compression`` None: the record's Ksrc, else as focus would choose it).
    After a linear focus the range decompression is a deconvolution of the recorded swath only: it
    is exact on ``valid_range_samples`` and approximate within about one replica of the edges.
    Returns a raw dataset (``echo``) with the SLC's attrs and a ``defocus`` history record.
    """
    validate(slc_ds, "slc")
    from ..io.safe import check_defocus_supported  # a TOPS (IW/EW) SLC cannot be defocused (issue 12)

    check_defocus_supported(slc_ds.attrs, slc_ds.encoding.get("source"))
    geom = SensorParams.from_dataset(slc_ds)
    settings = settings_from_history(
        slc_ds.attrs,
        geom,
        range_window=range_window,
        azimuth_window=azimuth_window,
        doppler_centroid=doppler_centroid,
        azimuth_bandwidth=azimuth_bandwidth,
        range_correlation=range_correlation,
        secondary_range_compression=secondary_range_compression,
    )
    data = np.ascontiguousarray(slc_ds["slc"].values, dtype=np.complex64)
    if settings.doppler_centroid is None:
        settings = complete_settings(settings, geom, estimate_doppler_centroid(data, geom))
    settings = with_secondary_range_compression(settings, geom, data.shape[1])
    echo = defocus_array(data, geom, settings, workers=workers)
    return _product(slc_ds, "echo", echo, "defocus", settings, geom)
