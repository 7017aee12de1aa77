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
        "preset: c\n"  # line 1: not an allowed value
        "size: many\n"  # line 2: wrong type
        "noise:\n"
        "  snr_db: 10\n"
        "  colour: pink\n"  # line 5: unknown key
        "targets:\n"
        "  - snr_db: 1\n"
        "  - snr_db: loud\n"  # line 8: wrong type in a list item
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


# ------------------------------------------------------------------------------- hostile files (issue 7)


def test_folder_given_as_yaml_says_folder(tmp_path):
    folder = tmp_path / "conf.yaml"
    folder.mkdir()
    with pytest.raises(InputError, match=r"conf\.yaml: is a folder, expected a YAML file"):
        load_yaml(folder)


@pytest.mark.parametrize("payload", [bytes(range(256)) * 4, b"\xff\xfe\xfa binary \x80\x81"])
def test_binary_file_is_one_line_error_naming_it(tmp_path, payload):
    path = tmp_path / "blob.yaml"
    path.write_bytes(payload)
    with pytest.raises(InputError) as info:
        load_yaml(path)
    assert str(info.value).startswith(f"{path}: is ")
    assert "\n" not in str(info.value)


def test_alias_bomb_is_refused_quickly(tmp_path):
    import time

    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")  # 10^10 strings once expanded
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"laughs\.yaml:\d+:\d+: the document expands to more than"):
        load_yaml(path)
    assert time.perf_counter() - start < 30


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("a: &x\n  b: *x\n")
    with pytest.raises(InputError, match=r"loop\.yaml:1:\d+: an alias refers to a node that contains it"):
        load_yaml(path)


def test_unknown_tag_names_its_line(tmp_path):
    path = tmp_path / "tag.yaml"
    path.write_text("size: 3\npreset: !python/object a\n")
    with pytest.raises(InputError, match=r"tag\.yaml:2:9: invalid YAML"):
        load_yaml(path)


def test_merge_keys_are_expanded_and_explicit_keys_win(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {preset: a, size: 1}\nother:\n  <<: *b\n  size: 5\n")
    assert load_yaml(path).data["other"] == {"preset": "a", "size": 5}


def test_duplicate_key_names_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("preset: a\nsize: 3\nsize: 4\n")
    with pytest.raises(ConfigError) as info:
        load_model(Demo, path)
    assert info.value.problems == [
        f"{path}:3:1: size: key given twice (first at line 2); YAML would keep only the last"
    ]
