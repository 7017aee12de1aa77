"""Small stages used by the pipeline tests (imported through a pipeline's ``plugins:`` list).

``make_array`` writes a seeded random raw-contract dataset; ``scale`` multiplies the input's image variable by a
factor and can signal that it started (``started_file``) and wait for a file (``gate``) so that a test can kill
the run or a worker at a known point; ``gpu_probe`` asks for the worker resource GPU and records where it ran.
Every execution appends ``STEP PID`` to ``calls_log`` when one is given, so tests can count what ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sarpipe.pipeline.registry import InputSlot, LocalPath, Stage, StageContext, register

ATTRS = {
    "carrier_frequency": 9.6e9,
    "range_sampling_rate": 100.0e6,
    "chirp_rate": 1.0e13,
    "pulse_duration": 2.0e-6,
    "prf": 500.0,
    "velocity": 100.0,
    "near_range": 5000.0,
}


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MakeParams(_P):
    n_azimuth: int = Field(32, gt=0)
    n_range: int = Field(48, gt=0)
    seed: int = 0
    calls_log: LocalPath | None = None


class ScaleParams(_P):
    factor: float = 2.0
    started_file: LocalPath | None = None
    gate: LocalPath | None = Field(None, description="wait until this file exists")
    gate_timeout: float = 120.0
    calls_log: LocalPath | None = None


def _log_call(path: str | None, step: str) -> None:
    if path:
        with open(path, "a") as fh:
            fh.write(f"{step} {os.getpid()}\n")


def make_array(ctx: StageContext) -> None:
    """A seeded random raw dataset (contract attrs, complex64)."""
    from sarpipe.model import sar_dataset, save_dataset

    p = ctx.params
    _log_call(p.calls_log, ctx.step)
    rng = np.random.default_rng(p.seed)
    echo = (rng.standard_normal((p.n_azimuth, p.n_range)) + 1j * rng.standard_normal((p.n_azimuth, p.n_range))).astype(
        np.complex64
    )
    save_dataset(sar_dataset(echo, ATTRS), ctx.output)


def scale(ctx: StageContext) -> None:
    """Multiply the image variable (echo or slc) by a factor; optionally wait on a gate file first."""
    import xarray as xr

    from sarpipe.model import open_dataset, save_dataset

    p = ctx.params
    _log_call(p.calls_log, ctx.step)
    ds = open_dataset(ctx.path("data"))
    name = "echo" if "echo" in ds.data_vars else "slc"
    out = xr.Dataset({name: ds[name] * np.complex64(p.factor)}, coords=ds.coords, attrs=ds.attrs).load()
    save_dataset(out, ctx.output)  # a complete product in the staging folder, not yet renamed into place
    if p.started_file:
        from sarpipe.pipeline.runner import _worker_name

        Path(p.started_file).write_text(f"{os.getpid()} {_worker_name()}\n")
    if p.gate:
        t0 = time.monotonic()
        while not Path(p.gate).exists():
            if time.monotonic() - t0 > p.gate_timeout:
                raise TimeoutError(f"gate {Path(p.gate).name} never opened")
            time.sleep(0.05)


def gpu_probe(ctx: StageContext) -> None:
    """Copy the input, recording the worker that ran it (attrs['ran_on']) and the device it was given."""
    from sarpipe.model import open_dataset, save_dataset
    from sarpipe.pipeline.runner import _worker_name

    ds = open_dataset(ctx.path("data")).load()
    ds.attrs["ran_on"] = _worker_name()
    try:
        from distributed import get_worker

        ds.attrs["worker_name"] = str(get_worker().name)
    except (ImportError, ValueError):
        ds.attrs["worker_name"] = None
    ds.attrs["device"] = ctx.device
    save_dataset(ds, ctx.output)


register(Stage("make_array", make_array, MakeParams, output="raw", origin="tests/plugins/sarpipe_teststages.py"))
register(
    Stage(
        "scale",
        scale,
        ScaleParams,
        inputs=(InputSlot("data", ("raw", "slc")),),
        output="raw",
        origin="tests/plugins/sarpipe_teststages.py",
    )
)
register(
    Stage(
        "gpu_probe",
        gpu_probe,
        _P,
        inputs=(InputSlot("data", ("raw", "slc")),),
        output="raw",
        resources={"GPU": 1},
        origin="tests/plugins/sarpipe_teststages.py",
    )
)
