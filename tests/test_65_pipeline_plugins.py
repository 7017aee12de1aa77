"""Third-party stages through the entry-point group `sarpipe.stages`: a tiny plugin package is installed (pip, into a
temporary target folder on PYTHONPATH), listed by `sarpipe stages`, templated, and run in a pipeline; a plugin that
fails to import is reported without breaking anything else."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import PLUGINS, line_of, run_cli, write  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    src = shutil.copytree(PLUGINS / "sarpipe_demo_plugin", work / "src")  # build in a copy, not in the repository
    target = work / "site"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert list(target.glob("sarpipe_demo_plugin-*.dist-info/entry_points.txt"))
    return target


@pytest.mark.slow
def test_plugin_is_listed_and_templated(site, tmp_path):
    r = run_cli("stages", cwd=tmp_path, extra_path=[site])
    assert r.returncode == 0, r.stderr
    assert "demo_gain  (entry point demo_gain = sarpipe_demo_plugin:GAIN_STAGE (sarpipe-demo-plugin))" in r.stdout
    assert "gain_db   float = 6.0" in r.stdout
    assert "demo_broken" in r.stdout and "sarpipe_demo_plugin_missing_dependency" in r.stdout
    r = run_cli("config", "template", "demo_gain", cwd=tmp_path, extra_path=[site])
    assert r.returncode == 0 and "stage: demo_gain" in r.stdout and "gain_db: 6.0" in r.stdout, r.stdout
    r = run_cli("stages", cwd=tmp_path)  # without the plugin on the path: not listed
    assert "demo_gain" not in r.stdout


@pytest.mark.slow
def test_plugin_runs_in_a_pipeline(site, tmp_path):
    write(
        tmp_path / "p.yaml",
        """
        plugins: [sarpipe_teststages]
        output_dir: out
        steps:
          - name: a
            stage: make_array
            params: {seed: 9}
          - name: louder
            stage: demo_gain
            inputs: a
            params: {gain_db: 20}
        """,
    )
    r = run_cli("run", "p.yaml", cwd=tmp_path, extra_path=[site])
    assert r.returncode == 0, r.stdout + r.stderr
    a = xr.open_zarr(tmp_path / "out" / "a.zarr", consolidated=False)["echo"].values
    b = xr.open_zarr(tmp_path / "out" / "louder.zarr", consolidated=False)["echo"].values
    np.testing.assert_allclose(np.abs(b), 10.0 * np.abs(a), rtol=1e-6)  # +20 dB amplitude = x10
    np.testing.assert_allclose(np.angle(b), np.angle(a), atol=1e-6)


def test_broken_plugin_is_a_validation_error(site, tmp_path):
    write(
        tmp_path / "p.yaml",
        """
        output_dir: out
        steps:
          - name: x
            stage: demo_broken
        """,
    )
    r = run_cli("run", "p.yaml", cwd=tmp_path, extra_path=[site])
    assert r.returncode == 2
    where = (
        f"p.yaml:{line_of(tmp_path / 'p.yaml', 'demo_broken')}:5: steps[0].stage: stage 'demo_broken' failed to load"
    )
    assert where in r.stderr and "ModuleNotFoundError" in r.stderr, r.stderr
    assert r.stderr.startswith("error: "), "no other noise before the error"
    assert not (tmp_path / "out").exists()
