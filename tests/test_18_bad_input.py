"""Bad input given on the command line is refused with exit status 2 and one message naming what the user wrote
(the option, the file, the key with its line), and nothing is written (issue 7, "finished-looking wrong outputs",
"resource bombs" and "messages")."""

from __future__ import annotations

import pytest

from sarpipe.cli import main

PIPELINE = """\
name: p
output_dir: out
steps:
  - name: raw
    stage: simulate
    params:
      config: {sensor: {preset: minisar}, scene: {n_azimuth: 64, n_range: 64}, targets: [{range_index: 32, azimuth_index: 32}]}
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(capsys) -> str:
    return capsys.readouterr().err


def test_set_of_an_unknown_section_names_the_option(here, capsys):
    (here / "base.yaml").write_text(PIPELINE)
    code = main(["run", "base.yaml", "--set", "foo.bar=1", "--dry-run"])
    err = _error(capsys)
    assert code == 2
    assert "--set foo.bar=1: foo: unknown key" in err
    assert "base.yaml:1:1" not in err
    assert not (here / "out").exists()


def test_folder_given_as_pipeline_says_folder(here, capsys):
    (here / "p.yaml").mkdir()
    assert main(["run", "p.yaml"]) == 2
    assert "p.yaml: is a folder, expected a YAML file" in _error(capsys)


@pytest.mark.parametrize("command", [["simulate", "cfg.yaml", "-o", "raw.zarr"], ["run", "cfg.yaml"],
                                     ["catalog", "list", "--catalog", "cfg.yaml"]])
def test_binary_file_given_as_yaml_is_one_line(here, capsys, command):
    (here / "cfg.yaml").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert main(command) == 2
    err = _error(capsys)
    assert err.startswith("error: cfg.yaml: is ") and err.count("\n") == 1, err
    assert not (here / "raw.zarr").exists()
