"""Example sarpipe stage plugin: ``demo_gain`` scales the image variable of a raw or SLC store by a gain in dB."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sarpipe.pipeline import InputSlot, Stage, StageContext


class GainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gain_db: float = Field(
        6.0, ge=-60, le=60, description="amplitude gain [dB]: samples are multiplied by 10**(gain_db/20)"
    )
    variable: str = Field("echo", description="variable to scale")


def run_gain(ctx: StageContext) -> None:
    """Scale one variable by a gain given in dB (amplitude)."""
    import numpy as np
    import xarray as xr

    from sarpipe.model import save_dataset

    p = ctx.params
    ds = xr.open_zarr(ctx.path("data"), consolidated=False).load()
    ds[p.variable] = ds[p.variable] * np.complex64(10.0 ** (p.gain_db / 20.0))
    ds.attrs["demo_gain_db"] = p.gain_db
    save_dataset(ds, ctx.output)


GAIN_STAGE = Stage(
    "demo_gain",
    run_gain,
    GainParams,
    inputs=(InputSlot("data", ("raw", "slc")),),
    output="raw",
    help=run_gain.__doc__ or "",
)
