"""The pipeline commands: `sarpipe stages`, `sarpipe config template`, `sarpipe catalog list|show`, `sarpipe run`
options, exit statuses (0 / 2 for bad input or usage), quiet output, and a `dask:` profile with a LocalCluster."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import REPO, run_here, write  # noqa: E402

from sarpipe.pipeline.registry import REGISTRY, describe_params  # noqa: E402


@pytest.fixture
def cli(capsys, monkeypatch):
    return lambda *args, cwd=REPO: run_here(capsys, monkeypatch, cwd, *args)


def test_stages_lists_every_builtin_with_its_defaults(cli):
    code, out, _ = cli("stages", "--json")
    assert code == 0
    listed = {s["name"]: s for s in json.loads(out)}
    for name in ("simulate", "focus", "detect_rfi", "clean_rfi", "export", "report"):
        assert name in listed
        model = REGISTRY.get(name).params_model()
        assert {p["name"]: p["default"] for p in listed[name]["params"]} == {
            p["name"]: json.loads(json.dumps(p["default"], default=str)) for p in describe_params(model)
        }
    assert listed["focus"]["inputs"] == [{"name": "raw", "kinds": ["raw"], "required": True}]
    code, out, _ = cli("stages", "focus")
    assert code == 0 and re.search(r'range_window +str = "rect"', out) and "doppler_centroid" in out
    assert "azimuth_bandwidth" in out, "the pipeline's focus takes what `sarpipe focus --azimuth-bandwidth` takes"
    code, _, err = cli("stages", "focs")
    assert code == 2 and "unknown stage 'focs'" in err


def test_config_template(cli):
    code, out, _ = cli("config", "template", "clean_rfi", "--name", "clean")
    assert code == 0
    step = yaml.safe_load(out)[0]
    assert step["name"] == "clean" and step["stage"] == "clean_rfi" and step["params"]["method"] == "notch"
    assert "# cleanup method" in out and "raw: STEP_OR_catalog:ENTRY" in out
    code, _, err = cli("config", "template", "nope")
    assert code == 2 and "unknown stage" in err


def test_catalog_list_and_show(cli):
    code, out, _ = cli("catalog", "list")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert (
        rows["quickstart_minisar"] == "simulated"
        and rows["s1_stripmap_level0"] == "remote"
        and rows["quickstart_raw"] == "raw"
    )
    code, out, _ = cli("catalog", "show", "quickstart_minisar")
    assert code == 0
    shown = yaml.safe_load(out)["quickstart_minisar"]
    assert shown["properties"]["sar:instrument_mode"] == "SM" and shown["config"]["sensor"]["preset"] == "minisar"
    assert "catalog:quickstart_minisar" in out
    code, out, _ = cli("catalog", "show", "s1_stripmap_level0")
    assert code == 0 and "sarpipe catalog fetch s1_stripmap_level0" in out
    code, _, err = cli("catalog", "show", "nope")
    assert code == 2 and "no catalog entry 'nope'" in err and "quickstart_minisar" in err
    code, _, err = cli("catalog", "list", "--catalog", "missing.yaml")
    assert code == 2 and "missing.yaml: no such" in err


def test_run_usage_errors(cli, tmp_path):
    code, out, _ = cli("run", "--help")
    assert code == 0
    for opt in ("--set", "--from-step", "--restart", "--scheduler", "--dry-run", "--quiet"):
        assert opt in out
    write(
        tmp_path / "p.yaml",
        "plugins: [sarpipe_teststages]\noutput_dir: out\nsteps:\n  - {name: a, stage: make_array}\n",
    )
    code, _, err = cli("run", "p.yaml", "--from-step", "a", "--restart", cwd=tmp_path)
    assert code == 2 and "exclude each other" in err
    code, _, err = cli("run", "p.yaml", "--scheduler", "nowhere", cwd=tmp_path)
    assert code == 2 and "--scheduler nowhere" in err
    code, _, err = cli("run", "missing.yaml", cwd=tmp_path)
    assert code == 2 and "missing.yaml: no such" in err
    assert not (tmp_path / "out").exists()
    code, out, err = cli("run", "p.yaml", "--quiet", cwd=tmp_path)
    assert code == 0 and out == "" and err == ""
    assert (tmp_path / "out" / "a.zarr.sarpipe.json").exists() and (tmp_path / "out" / "sarpipe-run.log").exists()


def test_dask_profile_local_cluster_and_gpu_check(cli, tmp_path):
    """`dask: {cluster: {kind: local}}` starts a LocalCluster for the run; a step that needs GPU=1 on a cluster whose
    workers offer none is refused before anything runs."""
    write(
        tmp_path / "p.yaml",
        """
        plugins: [sarpipe_teststages]
        output_dir: out
        dask:
          cluster: {kind: local, n_workers: 1, threads_per_worker: 2, options: {processes: false}}
        steps:
          - {name: a, stage: make_array, params: {seed: 2}}
          - {name: b, stage: scale, inputs: a, params: {factor: 2}}
        """,
    )
    code, out, err = cli("run", "p.yaml", cwd=tmp_path)
    assert code == 0, out + err
    assert "on dask local cluster (1 worker)" in out
    marker = json.loads((tmp_path / "out" / "b.zarr.sarpipe.json").read_text())
    assert marker["worker"].startswith(("inproc://", "tcp://"))

    write(
        tmp_path / "g.yaml",
        """
        plugins: [sarpipe_teststages]
        output_dir: gout
        dask:
          cluster: {kind: local, n_workers: 1, options: {processes: false}}
        steps:
          - {name: a, stage: make_array}
          - {name: g, stage: gpu_probe, inputs: a}
        """,
    )
    code, out, err = cli("run", "g.yaml", cwd=tmp_path)
    assert code == 2 and "needs the worker resource GPU but no worker offers it" in err, out + err
    assert not (tmp_path / "gout" / "a.zarr").exists()


def test_missing_cluster_extras_are_validation_errors(cli, tmp_path):
    import importlib.util

    if importlib.util.find_spec("dask_jobqueue") is not None:
        pytest.skip("dask-jobqueue is installed here")
    write(
        tmp_path / "p.yaml",
        """
        output_dir: out
        dask:
          cluster: {kind: slurm, n_workers: 4, options: {queue: normal, cores: 8, memory: 32GB}}
        steps:
          - {name: raw, stage: simulate, params: {config: {sensor: {preset: minisar}}}}
        """,
    )
    code, _, err = cli("run", "p.yaml", cwd=tmp_path)
    assert code == 2 and "p.yaml:3:" in err and "needs dask-jobqueue" in err


class _TTY:
    """A text stream that says it is a terminal."""

    def __init__(self):
        import io

        self.buf = io.StringIO()

    def write(self, s):
        return self.buf.write(s)

    def flush(self):
        pass

    def isatty(self):
        return True


def test_progress_bars_only_on_a_terminal(tmp_path, monkeypatch):
    import io

    from sarpipe.pipeline.progress import NullReporter, RichReporter, make_reporter
    from sarpipe.pipeline.runner import run_pipeline
    from sarpipe.pipeline.schema import load_pipeline

    assert isinstance(make_reporter(False, io.StringIO()), NullReporter), "not a terminal: no bars"
    assert isinstance(make_reporter(True, _TTY()), NullReporter), "--quiet: no bars"
    tty = _TTY()
    reporter = make_reporter(False, tty)
    assert isinstance(reporter, RichReporter)
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "p.yaml",
        "plugins: [sarpipe_teststages]\noutput_dir: out\nsteps:\n"
        "  - {name: first, stage: make_array}\n  - {name: second, stage: scale, inputs: first}\n",
    )
    summary = run_pipeline(load_pipeline("p.yaml"), reporter=reporter)
    assert summary.exit_code == 0
    import re

    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tty.buf.getvalue())  # without colours and cursor moves
    assert "✓ first" in shown and "✓ second" in shown and "running on local threads" in shown
    summary = run_pipeline(load_pipeline("p.yaml"), reporter=make_reporter(False, tty))
    assert "first (make_array) skipped: complete" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tty.buf.getvalue())
