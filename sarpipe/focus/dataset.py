"""Dataset-level focusing for in-memory (small to medium) scenes: raw dataset -> SLC dataset and back.

For scenes larger than memory use :func:`sarpipe.focus.focus_zarr` (Dask, persisted corner turn).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..model import DIMS, validate, with_acquisition_items, with_history
from ..segments import check_one_segment
from ..sensor import SensorParams
from .checks import check_focusable
from .doppler import estimate_doppler_centroid
from .rda import FocusSettings, complete_settings, defocus_array, focus_array, resolve_settings, settings_from_history


def _product(
    src: xr.Dataset, name: str, data: np.ndarray, step: str, settings: FocusSettings, geom: SensorParams
) -> xr.Dataset:
    """``data`` as variable ``name`` on the grid of ``src``, with its attrs, ``doppler_centroid`` set to the value
    used and a ``step`` history record of ``settings``."""
    attrs = {**src.attrs, "doppler_centroid": float(settings.doppler_centroid)}
    coords = {c: src.coords[c] for c in ("azimuth_time", "slant_range")}
    out = with_acquisition_items(xr.Dataset({name: (DIMS, data)}, coords=coords, attrs=attrs), src)
    return with_history(out, step, settings.record(geom, *data.shape), source=src)


def focus(
    raw: xr.Dataset,
    *,
    range_window: str = "rect",
    azimuth_window: str = "rect",
    doppler_centroid: float | None = None,
    azimuth_bandwidth: float | None = None,
    workers: int | None = None,
) -> xr.Dataset:
    """Focus a raw-echo dataset with the range-Doppler algorithm, in memory.

    Returns an SLC dataset (``slc`` complex64, the same ``azimuth_time``/``slant_range`` grid, the raw attrs with
    ``doppler_centroid`` [Hz] set to the value used, and a ``focus`` history record). ``doppler_centroid`` [Hz]
    overrides the attribute; when both are absent it is estimated (correlation estimator, baseband).
    ``azimuth_bandwidth`` [Hz]: processed Doppler band (default: the ``azimuth_bandwidth`` attribute, else
    ``0.886 * 2V cos(squint) / antenna_length``, else the PRF; the default is capped at the PRF, a value above
    it is refused). Scenes the algorithm cannot focus are refused first (:func:`.checks.check_focusable`).
    Windows: ``rect`` | ``hamming:ALPHA`` | ``kaiser:BETA``. Raises InputError on data outside the contract.
    """
    validate(raw, "raw")
    check_one_segment(raw)
    geom = SensorParams.from_dataset(raw)
    check_focusable(
        geom,
        raw.sizes["azimuth"],
        raw.sizes["range"],
        azimuth_bandwidth=azimuth_bandwidth,
        doppler_centroid=doppler_centroid,
    )
    settings = resolve_settings(
        geom,
        range_window=range_window,
        azimuth_window=azimuth_window,
        doppler_centroid=doppler_centroid,
        azimuth_bandwidth=azimuth_bandwidth,
    )
    echo = np.ascontiguousarray(raw["echo"].values, dtype=np.complex64)
    slc, settings = focus_array(echo, geom, settings, workers=workers)
    return _product(raw, "slc", slc, "focus", settings, geom)


def defocus(
    slc_ds: xr.Dataset,
    *,
    range_window: str | None = None,
    azimuth_window: str | None = None,
    doppler_centroid: float | None = None,
    azimuth_bandwidth: float | None = None,
    workers: int | None = None,
) -> xr.Dataset:
    """Turn an SLC dataset back into raw echoes: the inverse of :func:`focus`, so ``focus(defocus(x)) == x``
    for an image band-limited to the processed bands.

    Windows, Doppler centroid and bandwidth come from the last ``focus`` history record (defaults: rect, the
    ``doppler_centroid`` attribute or an estimate from the SLC, the default bandwidth); arguments override them.
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
    )
    data = np.ascontiguousarray(slc_ds["slc"].values, dtype=np.complex64)
    if settings.doppler_centroid is None:
        settings = complete_settings(settings, geom, estimate_doppler_centroid(data, geom))
    echo = defocus_array(data, geom, settings, workers=workers)
    return _product(slc_ds, "echo", echo, "defocus", settings, geom)
