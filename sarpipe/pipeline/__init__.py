"""Pipelines: YAML definitions, the stage registry (entry-point group ``sarpipe.stages``), the runner (plan,
fingerprints, atomic outputs with provenance, resume), Dask execution from local threads to clusters, batch mode
and progress reporting. See ``docs/pipelines.md``.
"""

from .registry import (
    ENTRY_POINT_GROUP,
    InputSlot,
    LocalPath,
    Stage,
    StageContext,
    StageInput,
    get_stage,
    register,
    stage_names,
)
from .schema import Pipeline, load_pipeline, validate_pipeline

__all__ = [
    "ENTRY_POINT_GROUP",
    "InputSlot",
    "LocalPath",
    "Pipeline",
    "Stage",
    "StageContext",
    "StageInput",
    "get_stage",
    "load_pipeline",
    "register",
    "stage_names",
    "validate_pipeline",
]
