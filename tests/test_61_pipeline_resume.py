"""Atomic step outputs, completion markers with provenance, skip/resume, --from-step/--restart/--dry-run, and a run
killed with SIGKILL part way that, started again, redoes only the unfinished steps and gives identical outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import assert_same_store, env, run_cli, run_here, sarpipe_cmd, write  # noqa: E402

from sarpipe import __version__  # noqa: E402

PIPELINE = """
plugins: [sarpipe_teststages]
output_dir: out
steps:
  - name: a
    stage: make_array
    params: {seed: 5, n_azimuth: 24, n_range: 40, calls_log: calls.log}
  - name: b
    stage: scale
    inputs: {data: a}
    params: {factor: 3, calls_log: calls.log, started_file: b.started, gate: gate.open}
  - name: c
    stage: scale
    inputs: {data: b}
    params: {factor: -0.5, calls_log: calls.log}
"""


def calls(folder: Path) -> list[str]:
    f = folder / "calls.log"
    return [line.split()[0] for line in f.read_text().splitlines()] if f.exists() else []


def statuses(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("a", "b", "c"):
            out[parts[0]] = parts[2]
    return out


@pytest.fixture
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run (in a separate process, like the interrupted one)."""
    d = tmp_path_factory.mktemp("uninterrupted")
    write(d / "p.yaml", PIPELINE)
    (d / "gate.open").touch()
    r = run_cli("run", "p.yaml", cwd=d)
    assert r.returncode == 0, r.stderr
    assert calls(d) == ["a", "b", "c"]
    return d


class _R:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def cli(capsys, monkeypatch):
    return lambda *args, cwd: _R(*run_here(capsys, monkeypatch, cwd, *args))


@pytest.mark.slow
def test_killed_run_resumes_and_matches_uninterrupted(tmp_path, reference):
    write(tmp_path / "p.yaml", PIPELINE)
    proc = subprocess.Popen(
        sarpipe_cmd("run", "p.yaml"), cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "b.started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "step b never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # b has written its product into the staging folder and waits at the gate
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    out = tmp_path / "out"
    assert (out / "a.zarr.sarpipe.json").exists()
    assert not (out / "b.zarr").exists(), "an interrupted step must not leave an output that looks finished"
    assert list(out.glob(".b.zarr.tmp-*")), "the killed step's staging folder is left behind (then cleaned up)"
    assert calls(tmp_path) == ["a", "b"]

    (tmp_path / "gate.open").touch()
    r = run_cli("run", "p.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert statuses(r.stdout) == {"a": "skipped", "b": "done", "c": "done"}, r.stdout
    assert calls(tmp_path) == ["a", "b", "b", "c"], "only the unfinished steps ran again"
    assert not list(out.glob(".*.tmp-*")), "leftovers of the killed run are removed"
    assert not (out / ".sarpipe.lock").exists()
    for name in ("a", "b", "c"):
        assert_same_store(out / f"{name}.zarr", reference / "out" / f"{name}.zarr")
    mine = json.loads((out / "c.zarr.sarpipe.json").read_text())
    assert mine["inputs"]["data"]["fingerprint"] == json.loads((out / "b.zarr.sarpipe.json").read_text())["fingerprint"]


def test_markers_skip_and_rerun_rules(reference, cli):
    d, out = reference, reference / "out"
    marker = json.loads((out / "b.zarr.sarpipe.json").read_text())
    assert marker["stage"] == "scale" and marker["params"]["factor"] == 3.0 and marker["sarpipe_version"] == __version__
    a_marker = json.loads((out / "a.zarr.sarpipe.json").read_text())
    assert marker["inputs"]["data"]["fingerprint"] == a_marker["fingerprint"]
    assert marker["inputs"]["data"]["path"] == str((out / "a.zarr").resolve())

    # unchanged: everything skipped, nothing executes
    r = cli("run", "p.yaml", cwd=d)
    assert r.returncode == 0 and statuses(r.stdout) == {"a": "skipped", "b": "skipped", "c": "skipped"}, r.stdout
    assert calls(d) == ["a", "b", "c"]

    # a changed param reruns that step and what depends on it
    r = cli("run", "p.yaml", "--set", "steps.b.params.factor=4", cwd=d)
    assert statuses(r.stdout) == {"a": "skipped", "b": "done", "c": "done"}, r.stdout
    import xarray as xr

    a = xr.open_zarr(out / "a.zarr", consolidated=False)["echo"].values
    c = xr.open_zarr(out / "c.zarr", consolidated=False)["echo"].values
    assert abs(c - a * 4 * -0.5).max() == 0

    # an output modified after it was written is redone
    chunk = next(p for p in (out / "c.zarr" / "echo").rglob("*") if p.is_file())
    chunk.write_bytes(chunk.read_bytes())
    os.utime(chunk, ns=(time.time_ns(), time.time_ns() + 10**9))
    r = cli("run", "p.yaml", "--set", "steps.b.params.factor=4", "--dry-run", cwd=d)
    assert r.returncode == 0
    plan = {ln.split()[0]: ln.split()[2] for ln in r.stdout.splitlines()[2:5]}
    assert plan == {"a": "skip", "b": "skip", "c": "run"} and "output changed since it was written" in r.stdout, (
        r.stdout
    )

    # --from-step and --restart
    r = cli("run", "p.yaml", "--set", "steps.b.params.factor=4", "--from-step", "b", cwd=d)
    assert statuses(r.stdout) == {"a": "skipped", "b": "done", "c": "done"}, r.stdout
    r = cli("run", "p.yaml", "--set", "steps.b.params.factor=4", "--restart", cwd=d)
    assert statuses(r.stdout) == {"a": "done", "b": "done", "c": "done"}, r.stdout
    log = (out / "sarpipe-run.log").read_text()
    assert "plan a: run (--restart)" in log and "done c in" in log
    r = cli("run", "p.yaml", "--from-step", "bb", cwd=d)
    assert r.returncode == 2 and "did you mean 'b'" in r.stderr


def test_dry_run_writes_nothing(tmp_path, cli):
    write(tmp_path / "p.yaml", PIPELINE)
    r = cli("run", "p.yaml", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "out").exists()
    assert "would run 3 step(s), skip 0" in r.stdout


def test_failed_step_stops_its_dependents_and_leaves_no_output(tmp_path, cli):
    write(tmp_path / "p.yaml", PIPELINE.replace("gate: gate.open", "gate: gate.open, gate_timeout: 0.2"))
    r = cli("run", "p.yaml", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    st = statuses(r.stdout)
    assert st["a"] == "done" and st["b"] == "failed" and st["c"] == "not", r.stdout
    assert "TimeoutError: gate gate.open never opened" in r.stdout
    out = tmp_path / "out"
    assert not (out / "b.zarr").exists() and not (out / "b.zarr.sarpipe.json").exists()
    assert not list(out.glob(".*.tmp-*"))
    assert "Traceback" in (out / "sarpipe-run.log").read_text()


def test_lock_refuses_a_second_live_run(tmp_path, cli):
    write(tmp_path / "p.yaml", PIPELINE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".sarpipe.lock").write_text(
        json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "since": "now"})
    )
    (tmp_path / "gate.open").touch()
    r = cli("run", "p.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "another sarpipe run" in r.stderr


def test_file_input_with_environment_variable_and_home(tmp_path, capsys, monkeypatch):
    """A file input written with $VAR or ~ is expanded the same way for validation, planning and fingerprints."""
    write(
        tmp_path / "make.yaml",
        """
        plugins: [sarpipe_teststages]
        output_dir: made
        steps:
          - name: a
            stage: make_array
            params: {seed: 2, n_azimuth: 8, n_range: 16}
        """,
    )
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "make.yaml", "--quiet")
    assert code == 0, out + err
    monkeypatch.setenv("SARPIPE_TEST_DATA", str(tmp_path / "made"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for ref in ("$SARPIPE_TEST_DATA/a.zarr", "~/made/a.zarr"):
        write(
            tmp_path / "use.yaml",
            f"""
            plugins: [sarpipe_teststages]
            output_dir: used
            steps:
              - name: b
                stage: scale
                inputs: {{data: "{ref}"}}
                params: {{factor: 2}}
            """,
        )
        code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "use.yaml", "--restart", "--quiet")
        assert code == 0, ref + out + err
        marker = json.loads((tmp_path / "used" / "b.zarr.sarpipe.json").read_text())
        assert marker["inputs"]["data"]["path"] == str(tmp_path / "made" / "a.zarr"), marker["inputs"]


def test_failed_rerun_keeps_the_earlier_complete_output_and_its_marker(reference, cli):
    d, out = reference, reference / "out"
    marker = (out / "b.zarr.sarpipe.json").read_text()
    chunks = {p.relative_to(out): p.read_bytes() for p in (out / "b.zarr").rglob("*") if p.is_file()}
    (d / "gate.open").unlink()
    r = cli("run", "p.yaml", "--set", "steps.b.params.factor=4", "--set", "steps.b.params.gate_timeout=0.2", cwd=d)
    assert r.returncode == 1 and statuses(r.stdout)["b"] == "failed", r.stdout + r.stderr
    assert (out / "b.zarr.sarpipe.json").read_text() == marker, "the earlier step's completion marker is kept"
    assert {p.relative_to(out): p.read_bytes() for p in (out / "b.zarr").rglob("*") if p.is_file()} == chunks
    (d / "gate.open").touch()
    r = cli("run", "p.yaml", cwd=d)  # the earlier parameters: b is still complete, nothing reruns
    assert r.returncode == 0 and statuses(r.stdout) == {"a": "skipped", "b": "skipped", "c": "skipped"}, r.stdout


def test_output_renamed_into_place_but_killed_before_its_marker_is_the_pipelines(tmp_path, cli):
    """The state a kill between the rename and the completion marker leaves: the next run redoes the step (the
    output is the pipeline's, by its 'publishing' marker) instead of refusing it as a stranger's."""
    from sarpipe.pipeline.runner import completion, marker_path

    write(tmp_path / "p.yaml", PIPELINE)
    (tmp_path / "gate.open").touch()
    assert cli("run", "p.yaml", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    m = marker_path(out / "c.zarr")
    m.write_text(json.dumps({"sarpipe_marker": 1, "state": "publishing", "fingerprint": None}))
    assert completion(out / "c.zarr", "x") == (False, "interrupted while its output was put in place")
    r = cli("run", "p.yaml", cwd=tmp_path)
    assert r.returncode == 0 and statuses(r.stdout) == {"a": "skipped", "b": "skipped", "c": "done"}, (
        r.stdout + r.stderr
    )
    m.unlink()  # no marker at all: not known as the pipeline's any more
    r = cli("run", "p.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "folder a pipeline did not write" in r.stderr, r.stdout + r.stderr
