"""A real Dask cluster on loopback: a `dask scheduler` and two `dask worker` processes (127.0.0.1 only, bounded
lifetime, always stopped). A pipeline run through `--scheduler tcp://127.0.0.1:PORT` gives the same outputs as the
threaded run, its GPU step runs on the worker that offers the GPU resource, and killing the worker that runs a step
mid-run still completes the run with identical outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import BATCH, assert_same_store, env, make_scenes, run_cli, sarpipe_cmd, write  # noqa: E402

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).with_name("dask"))
LIFETIME = "240s"

PIPELINE = """
plugins: [sarpipe_teststages]
output_dir: out
steps:
  - name: raw
    stage: simulate
    params:
      config:
        sensor: {preset: minisar}
        scene: {n_azimuth: 64, n_range: 96}
        targets: [{range_index: 40, azimuth_index: 30}]
        noise: {snr_db: 10}
        seed: 4
  - name: louder
    stage: scale
    inputs: {data: raw}
    params: {factor: 2, started_file: louder.started, gate: gate.open, gate_timeout: 60}
  - name: quieter
    stage: scale
    inputs: {data: raw}
    params: {factor: 0.5}
  - name: gpu
    stage: gpu_probe
    inputs: {data: quieter}
"""
STEPS = ("raw", "louder", "quieter", "gpu")


class Cluster:
    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def start(self) -> Cluster:
        sched_file = self.folder / "scheduler.json"
        e = env()
        self.procs.append(
            subprocess.Popen(
                [
                    DASK,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(sched_file),
                    "--idle-timeout",
                    LIFETIME,
                ],
                cwd=self.folder,
                env=e,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert self.procs[0].poll() is None, "scheduler died"
            assert time.monotonic() < deadline, "scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(sched_file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        for name, extra in (("cpu", []), ("gpu", ["--resources", "GPU=1"])):
            self.procs.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        self.address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--name",
                        name,
                        "--lifetime",
                        LIFETIME,
                        "--death-timeout",
                        "30",
                        *extra,
                    ],
                    cwd=self.folder,
                    env=e,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(self.address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        return self

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def threaded(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("threaded")
    write(d / "p.yaml", PIPELINE)
    (d / "gate.open").touch()
    r = run_cli("run", "p.yaml", cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    return d


def test_cluster_run_matches_threaded_run(cluster, threaded, tmp_path):
    write(tmp_path / "p.yaml", PIPELINE)
    (tmp_path / "gate.open").touch()
    r = run_cli("run", "p.yaml", "--scheduler", cluster.address, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"dask.distributed scheduler {cluster.address} (2 workers, 1 with GPU)" in r.stdout
    for s in STEPS:
        assert_same_store(tmp_path / "out" / f"{s}.zarr", threaded / "out" / f"{s}.zarr") if s != "gpu" else None
    gpu = xr.open_zarr(tmp_path / "out" / "gpu.zarr", consolidated=False)
    assert gpu.attrs["worker_name"] == "gpu", "the GPU step runs on the worker with the GPU resource"
    assert gpu.attrs["device"] == "auto", "stages get the device setting (default auto)"
    workers = {json.loads((tmp_path / "out" / f"{s}.zarr.sarpipe.json").read_text())["worker"] for s in STEPS}
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers), workers


def test_batch_spreads_scenes_over_the_workers(cluster, tmp_path):
    make_scenes(tmp_path, 4, corrupt=3)
    write(tmp_path / "p.yaml", BATCH)
    r = run_cli("run", "p.yaml", "--scheduler", cluster.address, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr  # the one failure is bad input (a truncated chunk)
    assert "batch: 3 of 4 entries finished, 1 failed" in r.stdout and "FAILED scene_3 at step slc" in r.stdout, r.stdout
    workers = {
        json.loads((tmp_path / "out" / f"scene_{k}" / "slc.zarr.sarpipe.json").read_text())["worker"] for k in (1, 2, 4)
    }
    assert len(workers) == 2, f"scenes should run on both workers, ran on {workers}"


def test_killing_a_worker_mid_run_still_completes_identically(cluster, threaded, tmp_path):
    write(
        tmp_path / "p.yaml", PIPELINE.replace("  - name: gpu\n    stage: gpu_probe\n    inputs: {data: quieter}\n", "")
    )
    proc = subprocess.Popen(
        sarpipe_cmd("run", "p.yaml", "--scheduler", cluster.address),
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = tmp_path / "louder.started"
        deadline = time.monotonic() + 120
        while not started.exists() or not started.read_text().strip():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "step 'louder' never started"
            time.sleep(0.05)
        pid = int(started.read_text().split()[0])
        assert pid in [p.pid for p in cluster.procs[1:]], "the step runs in one of our worker processes"
        os.kill(pid, signal.SIGKILL)  # the worker running 'louder' dies with the step half done
        started.unlink()
        (tmp_path / "gate.open").touch()
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert "(2 workers" in out
    for s in STEPS[:3]:
        assert_same_store(tmp_path / "out" / f"{s}.zarr", threaded / "out" / f"{s}.zarr")
    marker = json.loads((tmp_path / "out" / "louder.zarr.sarpipe.json").read_text())
    survivor = [p for p in cluster.procs[1:] if p.pid != pid]
    assert marker["worker"].startswith("tcp://127.0.0.1:") and len(survivor) == 1
