"""YAML configuration errors carry file, line, column and dotted key; every problem is reported at once."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from sarpipe.errors import InputError
from sarpipe.yamlconf import ConfigError, load_model, load_yaml


class Noise(BaseModel):
    model_config = ConfigDict(extra="forbid")
    snr_db: float


class Demo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: Literal["a", "b"]
    size: int
    noise: Noise | None = None
    targets: list[Noise] = []


def test_every_problem_has_its_line_and_key(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(
        "preset: c\n"          # line 1: not an allowed value
        "size: many\n"         # line 2: wrong type
        "noise:\n"
        "  snr_db: 10\n"
        "  colour: pink\n"     # line 5: unknown key
        "targets:\n"
        "  - snr_db: 1\n"
        "  - snr_db: loud\n"   # line 8: wrong type in a list item
    )
    with pytest.raises(ConfigError) as info:
        load_model(Demo, path)
    problems = info.value.problems
    assert len(problems) == 4
    text = "\n".join(problems)
    assert f"{path}:1:1: preset:" in text
    assert f"{path}:2:1: size:" in text
    assert f"{path}:5:3: noise.colour: unknown key" in text
    assert f"{path}:8:5: targets[1].snr_db:" in text


def test_syntax_error_names_its_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("preset: a\nsize: [1, 2\nnoise: {}\n")
    with pytest.raises(InputError, match=r"broken\.yaml:\d+:\d+: invalid YAML"):
        load_yaml(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="nothere.yaml: no such file"):
        load_yaml(tmp_path / "nothere.yaml")


def test_valid_file_parses(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("preset: b\nsize: 3\nnoise: {snr_db: 4.5}\n")
    cfg = load_model(Demo, path)
    assert cfg.size == 3 and cfg.noise.snr_db == 4.5


def test_validator_messages_come_without_pydantic_wrappers(tmp_path):
    from pydantic import field_validator

    class Windowed(BaseModel):
        model_config = ConfigDict(extra="forbid")
        window: str

        @field_validator("window")
        @classmethod
        def known(cls, v: str) -> str:
            if v != "rect":
                raise ValueError(f"unknown window {v!r}")
            return v

    path = tmp_path / "w.yaml"
    path.write_text("window: hann\n")
    with pytest.raises(ConfigError) as info:
        load_model(Windowed, path)
    assert info.value.problems == [f"{path}:1:1: window: unknown window 'hann'"]
