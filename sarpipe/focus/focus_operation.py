"""The focus operation: one parameter model (:class:`FocusParams`) behind ``sarpipe focus`` and the ``focus`` pipeline
stage, and the store-to-store function both call (:func:`focus_store`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import InputError

__all__ = ["FocusParams", "focus_store"]


class FocusParams(BaseModel):
    """Range-Doppler focusing settings. Windows: ``rect`` | ``hamming:ALPHA`` | ``kaiser:BETA`` (docs/focusing.md)."""

    model_config = ConfigDict(extra="forbid")

    range_window: str = Field("rect", description="rect | hamming:ALPHA | kaiser:BETA")
    azimuth_window: str = Field("rect", description="rect | hamming:ALPHA | kaiser:BETA")
    doppler_centroid: float | None = Field(
        None, allow_inf_nan=False, description="Hz; default: the raw store's attribute, else estimated from the data"
    )
    azimuth_bandwidth: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="processed Doppler band in Hz (default: attribute, else 0.886 * 2V / antenna_length, else PRF)",
    )
    range_correlation: Literal["linear", "circular"] = Field(
        "linear",
        description="linear: zero-padded, nothing wraps between the swath edges (real echoes); circular: FFT at the "
        "swath length, for scenes made circularly (defocus)",
    )
    range_edges: Literal["mark", "trim"] = Field(
        "mark",
        description="mark: attribute valid_range_samples = [first, stop) of fully compressed samples; trim: write "
        "only those samples",
    )
    doppler_ambiguity: Literal["auto", "mlcc", "geometric", "baseband"] = Field(
        "auto",
        description="PRF ambiguity of an estimated centroid: auto (geometric from orbit + attitude when present, "
        "else multi-look cross-correlation), mlcc, geometric, baseband (none)",
    )
    secondary_range_compression: bool = Field(
        True,
        description="remove the range-azimuth coupling of a squinted geometry (SRC at the centroid and mid-swath "
        "range, Cumming & Wong eq. 6.22)",
    )
    variable: Literal["echo", "echo_clean", "rfi"] = Field(
        "echo", description="raw variable to focus: echo, or the simulator's ground truth echo_clean / rfi"
    )

    @field_validator("range_window", "azimuth_window")
    @classmethod
    def _window(cls, v: str, info) -> str:
        from .windows import parse_window

        try:
            parse_window(v, where=info.field_name.replace("_", " "))
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return v


def focus_store(
    raw: str | os.PathLike, output: str | os.PathLike, params: FocusParams | None = None, *, overwrite: bool = False
) -> Path:
    """Focus the raw store ``raw`` into the SLC store ``output``.

    ``variable: echo`` streams Zarr to Zarr (bounded memory, corner turn persisted); a ground-truth component
    (``echo_clean``, ``rfi``) is swapped in as ``echo`` and focused in memory (simulated scenes are small), with
    ``focused_variable`` recording which. Returns ``output``.
    """

    params = params or FocusParams()
    kwargs = dict(
        range_window=params.range_window,
        azimuth_window=params.azimuth_window,
        doppler_centroid=params.doppler_centroid,
        azimuth_bandwidth=params.azimuth_bandwidth,
        range_correlation=params.range_correlation,
        range_edges=params.range_edges,
        doppler_ambiguity=params.doppler_ambiguity,
        secondary_range_compression=params.secondary_range_compression,
    )
    if params.variable == "echo":
        from .dask_focus import focus_zarr

        focus_zarr(raw, output, overwrite=overwrite, **kwargs)
        return Path(output)
    from ..model import open_raw, save_dataset
    from .dataset import focus

    ds = open_raw(raw)
    if params.variable not in ds.data_vars:
        raise InputError(
            f"no variable {params.variable!r} to focus (a simulated scene has echo_clean and, with RFI, rfi)",
            where=str(raw),
        )
    swapped = ds[[params.variable]].rename({params.variable: "echo"}).load()
    slc = focus(swapped, **kwargs)
    slc.attrs["focused_variable"] = params.variable
    save_dataset(slc, output, overwrite=overwrite, inputs=(raw,))
    return Path(output)
