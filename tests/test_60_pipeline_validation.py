"""A malformed pipeline stops before anything runs: exit status 2, every problem listed with its line, column and
dotted key, nothing written. Covers unknown stage, unknown param, wrong type, missing input, bad YAML, duplicate
keys, bad --set overrides, catalog problems, and several problems in one file."""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from sarpipe.cli import main
from sarpipe.pipeline.registry import REGISTRY, describe_params, template
from sarpipe.pipeline.schema import load_pipeline

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "plugins"))
from pipeline_testing import line_of, write  # noqa: E402

GOOD = """
plugins: [sarpipe_teststages]
output_dir: out
steps:
  - name: a
    stage: make_array
    params: {seed: 1, n_azimuth: 8}
  - name: b
    stage: scale
    inputs: {data: a}
    params:
      factor: 3
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fails(capsys, path, *extra) -> list[str]:
    """Run `sarpipe run PATH`, expect exit 2 and nothing written; return the problem lines."""
    code = main(["run", path.name, *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not (path.parent / "out").exists(), "an invalid pipeline must not write anything"
    return [line.strip() for line in err.splitlines() if re.match(r"\s+\S+:\d+:\d+: |\s+--set ", line)]


def _has(problems: list[str], path, line: int, key: str, words: str) -> None:
    want = f"{path.name}:{line}:"
    hits = [p for p in problems if p.startswith(want) and f" {key}: " in p and words in p]
    assert hits, f"no problem at {want} {key} mentioning {words!r} in:\n" + "\n".join(problems)


def test_good_pipeline_validates(here):
    p = load_pipeline(write(here / "p.yaml", GOOD))
    assert [s.name for s in p.steps] == ["a", "b"]
    assert p.step("b").params.factor == 3.0


def test_unknown_stage(here, capsys):
    path = write(here / "p.yaml", GOOD.replace("stage: scale", "stage: scael"))
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "stage: scael"), "steps[1].stage", "unknown stage 'scael' (did you mean 'scale'?)")


def test_unknown_param(here, capsys):
    path = write(here / "p.yaml", GOOD.replace("factor: 3", "factor: 3\n      fcator: 2"))
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "fcator"), "steps[1].params.fcator", "unknown key")


def test_wrong_type(here, capsys):
    path = write(here / "p.yaml", GOOD.replace("factor: 3", "factor: three"))
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "factor: three"), "steps[1].params.factor", "valid number")


def test_missing_input_reference(here, capsys):
    path = write(here / "p.yaml", GOOD.replace("inputs: {data: a}", "inputs: {data: nothing_here}"))
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "nothing_here"), "steps[1].inputs.data", "missing input")


def test_missing_required_input_slot(here, capsys):
    path = write(here / "p.yaml", GOOD.replace("    inputs: {data: a}\n", ""))
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "- name: b"), "steps[1]", "missing input 'data'")


def test_input_from_a_later_step(here, capsys):
    text = GOOD.replace(
        "params: {seed: 1, n_azimuth: 8}", "params: {seed: 1}\n  - name: z\n    stage: scale\n    inputs: b"
    )
    path = write(here / "p.yaml", text)
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "inputs: b"), "steps[1].inputs", "comes later")


def test_bad_yaml(here, capsys):
    path = write(here / "p.yaml", GOOD.replace("params: {seed: 1, n_azimuth: 8}", "params: {seed: 1, n_azimuth: [8}"))
    code = main(["run", path.name])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(rf"{path.name}:{line_of(path, 'n_azimuth: [8')}:\d+: invalid YAML", err), err
    assert not (here / "out").exists()


def test_duplicate_key(here, capsys):
    path = write(here / "p.yaml", GOOD.replace("factor: 3", "factor: 3\n      factor: 4"))
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "factor: 4"), "steps[1].params.factor", "given twice")


def test_several_problems_at_once_each_with_its_line(here, capsys):
    path = write(
        here / "p.yaml",
        """
        plugins: [sarpipe_teststages]
        output_dir: out
        colour: blue
        steps:
          - name: a
            stage: make_arrayz
          - name: b
            stage: scale
            inputs: {data: a, extra: a}
            params: {factor: big, gain: 2}
          - name: c
            stage: scale
            inputs: {data: missing_step}
          - name: b
            stage: scale
            inputs: c
        """,
    )
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "colour"), "colour", "unknown key")
    _has(probs, path, line_of(path, "make_arrayz"), "steps[0].stage", "unknown stage")
    _has(probs, path, line_of(path, "extra: a"), "steps[1].inputs.extra", "has no input 'extra'")
    _has(probs, path, line_of(path, "factor: big"), "steps[1].params.factor", "valid number")
    _has(probs, path, line_of(path, "gain: 2"), "steps[1].params.gain", "unknown key")
    _has(probs, path, line_of(path, "missing_step"), "steps[2].inputs.data", "missing input")
    _has(probs, path, line_of(path, "- name: b", 1), "steps[3].name", "duplicate step name 'b'")
    assert len(probs) == 7, probs
    lines = [int(p.split(":")[1]) for p in probs]
    assert lines == sorted(lines), "problems are listed in file order"


def test_set_override_is_validated_and_named(here, capsys):
    path = write(here / "p.yaml", GOOD)
    probs = _fails(capsys, path, "--set", "steps.b.params.factor=abc", "--set", "steps.nope.params.x=1")
    assert any(
        p.startswith("--set steps.b.params.factor=abc: steps[1].params.factor:") and "valid number" in p for p in probs
    ), probs
    assert any(p.startswith("--set steps.nope.params.x=1:") and "no item 'nope'" in p for p in probs), probs


def test_set_override_applies(here):
    path = write(here / "p.yaml", GOOD)
    p = load_pipeline(path, sets=["steps.b.params.factor=5", "steps.0.params.seed=7", "output_dir=elsewhere"])
    assert p.step("b").params.factor == 5.0 and p.step("a").params.seed == 7
    assert p.output_dir.name == "elsewhere"


def test_dask_section_is_checked(here, capsys):
    path = write(
        here / "p.yaml",
        GOOD.replace("output_dir: out", "output_dir: out\ndask:\n  scheduler: tcp//nowhere\n  workerz: 3"),
    )
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "scheduler:"), "dask.scheduler", "address")
    _has(probs, path, line_of(path, "workerz"), "dask.workerz", "unknown key")


def test_catalog_problems_are_reported_from_the_catalog_file(here, capsys):
    write(
        here / "data_catalog.yaml",
        """
        entries:
          s1:
            kind: remote
            provider: cdse
            query: {collection: SENTINEL-1, "sar:instrument_mode": SM, "sar:polarisation": [VV]}
          sim:
            kind: simulated
            config: {sensor: {preset: minisar}, scene: {n_azimuth: 8, n_rnage: 8}}
        """,
    )
    path = write(
        here / "p.yaml",
        """
        output_dir: out
        steps:
          - name: raw
            stage: simulate
            inputs: {scene: catalog:s1}
        """,
    )
    code = main(["run", path.name])
    err = capsys.readouterr().err
    assert code == 2 and not (here / "out").exists()
    cat = here / "data_catalog.yaml"
    assert f"data_catalog.yaml:{line_of(cat, 'sar:polarisation')}:" in err and "unknown STAC field" in err, err
    assert (
        f"data_catalog.yaml:{line_of(cat, 'n_rnage')}:" in err
        and "entries.sim.config.scene.n_rnage: unknown key" in err
    ), err


def test_remote_entry_not_fetched_says_how_to_fetch_it(here, capsys):
    write(
        here / "data_catalog.yaml",
        """
        entries:
          s1:
            kind: remote
            provider: cdse
            query: {collection: SENTINEL-1, "sar:instrument_mode": SM, "sar:polarizations": [VV, VH]}
        """,
    )
    path = write(
        here / "p.yaml",
        """
        output_dir: out
        steps:
          - name: slc
            stage: focus
            inputs: {raw: catalog:s1}
        """,
    )
    probs = _fails(capsys, path)
    _has(probs, path, line_of(path, "catalog:s1"), "steps[0].inputs.raw", "run `sarpipe catalog fetch s1` first")


def test_template_parses_back_to_the_defaults():
    """`sarpipe config template STAGE` is valid YAML whose params validate to exactly the stage's defaults."""
    for stage in REGISTRY.all():
        text = template(stage, "x")
        step = yaml.safe_load(text)[0]
        assert step["stage"] == stage.name
        model = stage.params_model()
        given = {k: v for k, v in (step.get("params") or {}).items() if v is not None}
        required = {k for k, f in model.model_fields.items() if f.is_required()}
        # a required parameter is left empty in the template and marked so; the others hold their defaults
        assert required.isdisjoint(given), stage.name
        assert all(f"{k}:   # REQUIRED" in text for k in required), stage.name
        filled = {k: "placeholder" for k in required}
        parsed = model.model_validate({**given, **filled})
        assert parsed.model_dump() == model(**filled).model_dump(), stage.name
        assert [p["name"] for p in describe_params(model)] == list((step.get("params") or {}).keys())
