"""The ``train_scorecam`` operation (``sarpipe train scorecam`` and the pipeline stage): its parameter model.

The training itself is :func:`sarpipe.spectral.rfi_classifier.train_scorecam`; this module imports no torch, so
``sarpipe stages`` and the command's ``--help`` stay light.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from ..pipeline.registry import LocalPath

if TYPE_CHECKING:
    from .rfi_classifier import ScoreCAMTrainConfig

__all__ = ["TrainScoreCAMParams", "load_scorecam_config"]


class TrainScoreCAMParams(BaseModel):
    """The ``train_scorecam`` operation: the recipe file."""

    model_config = ConfigDict(extra="forbid")

    config_file: LocalPath = Field(
        ..., description="Score-CAM classifier training recipe (YAML), e.g. sarpipe/spectral/recipes/scorecam_cpu.yaml"
    )


def load_scorecam_config(path: str | os.PathLike) -> ScoreCAMTrainConfig:
    """Read a Score-CAM training recipe from YAML (imports torch); problems name FILE:LINE:COL and the key."""
    from ..yamlconf import load_model
    from .rfi_classifier import ScoreCAMTrainConfig

    return load_model(ScoreCAMTrainConfig, path)
