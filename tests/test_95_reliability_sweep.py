"""A representative slice of the bad-input sweep (benchmarks/reliability_sweep.py), one case per problem class
of issue 7 section 2, each a real `python -m sarpipe.cli` subprocess judged on exit status, traceback, message,
leftovers and untouched inputs. The whole sweep (about 250 cases) is run by hand; see docs/reliability.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "benchmarks" / "reliability_sweep.py"

#: Fast cases (seconds each once refused), one per class.
CASES = [
    "focus_out_eq_input",  # output == input (user data destroyed)
    "focus_out_user_file",  # output an existing user file
    "run_set_unknown_top",  # --set foo.bar=1 names --set, not base.yaml:1:1
    "sim_dup_top_key",  # duplicate keys in simulator YAML
    "sim_folder_as_config",  # a folder given as the config
    "sim_binary_config",  # a binary file given as YAML
    "sim_empty_config",  # empty simulator YAML
    "focus_zarr2",  # a Zarr v2 store
    "focus_deleted_chunk",  # a chunk read as zeros
    "focus_out_under_file",  # output path under a file (environment)
    "clean_param_pfa_text",  # --param pfa=abc names --param
    "focus_missing_prf",  # contract: missing attribute
]


@pytest.mark.slow
def test_representative_bad_inputs_are_refused_cleanly(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.run(
        [sys.executable, str(SWEEP), "--only", ",".join(CASES), "--out", str(tmp_path / "sweep"), "--jobs", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    results_file = tmp_path / "sweep" / "results.json"
    assert results_file.is_file(), f"the sweep did not finish (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    results = {r["id"]: r for r in json.loads(results_file.read_text())}
    assert sorted(results) == sorted(CASES)
    failed = {k: r["reasons"] for k, r in results.items() if r["verdict"] != "PASS"}
    assert not failed, "bad inputs not refused cleanly:\n" + "\n".join(
        f"  {k}: {'; '.join(v)}" for k, v in failed.items()
    )
    assert proc.returncode == 0
