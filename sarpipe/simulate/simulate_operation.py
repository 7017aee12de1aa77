"""The simulate operation: one parameter model (:class:`SimulateParams`) behind ``sarpipe simulate`` and the
``simulate`` pipeline stage, and the function both call to write the raw store (:func:`simulate_store`)."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..pipeline.registry import LocalPath
from .config import SimulationConfig

__all__ = ["SimulateParams", "simulate_store"]


class SimulateParams(BaseModel):
    """Which scene to simulate: an inline configuration (pipelines only), a simulator YAML file, and a seed."""

    model_config = ConfigDict(extra="forbid")

    config: SimulationConfig | None = Field(
        None,
        description="inline simulator configuration: sensor, scene, targets, noise, rfi, seed, ...",
        json_schema_extra={"cli": False},
    )  # the command line takes the file (CONFIG.yaml) instead
    config_file: LocalPath | None = Field(None, description="simulator YAML file (instead of config or a scene input)")
    seed: int | None = Field(None, description="overrides the configuration's seed")

    @model_validator(mode="after")
    def _absolute_scene_files(self) -> SimulateParams:
        """Relative files inside an inline configuration (extended.file) resolve against the working folder now,
        not on whichever worker runs the step."""
        ext = getattr(self.config, "extended", None) if self.config is not None else None
        if ext is not None and not Path(ext.file).is_absolute():
            ext.file = Path(ext.file).expanduser().absolute()
        return self


def simulate_store(
    config: SimulationConfig,
    output: str | os.PathLike,
    *,
    seed: int | None = None,
    overwrite: bool = False,
    inputs: tuple = (),
) -> xr.Dataset:
    """Simulate ``config`` (its seed replaced by ``seed`` when given) and write the raw store ``output``; returns the
    simulated dataset. ``inputs``: the files the scene came from (an output never replaces them)."""
    from ..model import save_dataset
    from .scene import simulate

    if seed is not None:
        config = config.model_copy(update={"seed": seed})
    ds = simulate(config)
    save_dataset(ds, output, overwrite=overwrite, inputs=inputs)
    return ds
