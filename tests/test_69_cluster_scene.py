"""One scene over a whole Dask cluster (sarpipe.chunk_tasks): a step running inside a distributed worker submits its
inner work (focusing's range and azimuth passes, the clean step's pulse batches) to the cluster as chunk tasks.

Checked against the threaded run (the same stores, bit for bit), with the scheduler's task stream recording on which
worker every chunk task ran: both workers of a 2 x 1-thread cluster run range, azimuth and clean-batch tasks; the
batches of a learned method (difnet) run on the worker that declares the GPU resource and a CPU method's on the
other; a worker process killed mid-scene (its chunk tasks rerun elsewhere) still gives identical stores."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

distributed = pytest.importorskip("distributed")

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import assert_same_store, write  # noqa: E402

from sarpipe.chunk_tasks import CHUNK_TASKS_SETTING, run_chunk_tasks  # noqa: E402
from sarpipe.focus import focus_zarr  # noqa: E402
from sarpipe.model import last_record, save_dataset, scene_fingerprint  # noqa: E402
from sarpipe.rfi.chain_io import detect_store  # noqa: E402
from sarpipe.rfi.streaming_clean import clean_zarr  # noqa: E402
from sarpipe.testing import make_scene  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHUNK_ROWS = 48  # 16 range-pass tasks for 768 pulses
BATCH = 8  # a dozen clean batches


def _prefix(key) -> str:
    """``sarpipe-focus-range`` for a chunk task's key ``sarpipe-focus-range-TAG-I``, else ``other``."""
    key = str(key)
    return key.rsplit("-", 2)[0] if key.startswith("sarpipe-") else "other"


def _per_worker(stream: list[dict], names: dict[str, str]) -> Counter:
    """(chunk-task kind, worker name) -> tasks run, from the scheduler's task stream."""
    return Counter((_prefix(r["key"]), names.get(r["worker"], r["worker"])) for r in stream)


def _names(client) -> dict[str, str]:
    return {a: str(w["name"]) for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}


def _flagged(detection: Path) -> int:
    return int(np.count_nonzero(xr.open_zarr(detection)["rfi_pulses"].values))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A MiniSAR-like scene with one RFI burst, in 48-line chunks, and its threaded focus, detection and clean."""
    ds = make_scene(
        "minisar",
        11,
        n_azimuth=768,
        n_range=512,
        near_range=1500.0,
        sir_db=-12.0,
        rfi_overrides={"pulses": [[360, 420]]},
    )
    d = tmp_path_factory.mktemp("scene")
    raw = d / "raw.zarr"
    save_dataset(ds, raw, chunks={"azimuth": CHUNK_ROWS})
    with dask.config.set(scheduler="threads"):  # local threads even while a test's client exists
        focus_zarr(raw, d / "slc.zarr")
        detect_store(raw, d / "det.zarr", slc_path=d / "slc.zarr")
        clean_zarr(raw, d / "clean.zarr", d / "det.zarr", method="notch", batch_pulses=BATCH)
    return d


@pytest.fixture(scope="module")
def threads_cluster():
    """A cluster of two 1-thread workers in this process (fast to start; real scheduler, real task placement)."""
    with (
        dask.config.set(scheduler=None),  # the workers' own clients set it too and restore it late: restore it here
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield cluster, client


PIPELINE = """
output_dir: {out}
steps:
  - name: slc
    stage: focus
    inputs: {{raw: {raw}}}
  - name: detection
    stage: detect_rfi
    inputs: {{raw: {raw}, slc: slc}}
  - name: clean
    stage: clean_rfi
    inputs: {{raw: {raw}, detection: detection}}
    params: {{method: notch, batch_pulses: {batch}}}
  - name: slc_clean
    stage: focus
    inputs: {{raw: clean}}
"""


def test_a_pipeline_on_the_cluster_spreads_each_step_over_both_workers_bit_for_bit(scene, threads_cluster, tmp_path):
    from sarpipe.pipeline import load_pipeline
    from sarpipe.pipeline.runner import run_pipeline

    cluster, client = threads_cluster
    steps = ("slc", "detection", "clean", "slc_clean")
    for run in ("threaded", "cluster"):
        write(tmp_path / f"{run}.yaml", PIPELINE.format(out=tmp_path / run, raw=scene / "raw.zarr", batch=BATCH))
    summary = run_pipeline(load_pipeline(tmp_path / "threaded.yaml"))
    assert [r.status for r in summary.records] == ["done"] * 4
    with distributed.get_task_stream(client) as stream:
        summary = run_pipeline(load_pipeline(tmp_path / "cluster.yaml"), scheduler=cluster.scheduler_address)
    assert [r.status for r in summary.records] == ["done"] * 4, [r.error for r in summary.records]
    for step in steps[:3]:
        assert_same_store(tmp_path / "cluster" / f"{step}.zarr", tmp_path / "threaded" / f"{step}.zarr")
    # the re-imaged scene: the same too, but for the fingerprint of its input (whose records carry their times)
    got, ref = (xr.open_zarr(tmp_path / run / "slc_clean.zarr") for run in ("cluster", "threaded"))
    assert got["slc"].values.tobytes() == ref["slc"].values.tobytes()
    assert last_record(got.attrs, "focus")["input_fingerprint"] == scene_fingerprint(
        xr.open_zarr(tmp_path / "cluster" / "clean.zarr")
    )
    counts = _per_worker(stream.data, _names(client))
    workers = set(_names(client).values())
    for kind in ("sarpipe-focus-range", "sarpipe-focus-azimuth", "sarpipe-clean-copy", "sarpipe-clean-batch"):
        busy = {w for w in workers if counts[(kind, w)] > 0}
        assert busy == workers, f"{kind}: ran on {busy} of {workers} ({counts})"
    # two focus steps (range pass: one task per 48-line chunk) and the clean step's batches
    assert sum(counts[("sarpipe-focus-range", w)] for w in workers) == 2 * 768 // CHUNK_ROWS
    assert sum(counts[("sarpipe-clean-batch", w)] for w in workers) == -(-_flagged(scene / "det.zarr") // BATCH)


def test_a_step_submitted_by_hand_spreads_too_unless_told_local(scene, threads_cluster, tmp_path):
    cluster, client = threads_cluster
    with distributed.get_task_stream(client) as stream:
        client.submit(
            clean_zarr, scene / "raw.zarr", tmp_path / "c.zarr", scene / "det.zarr", batch_pulses=BATCH
        ).result()
    assert_same_store(tmp_path / "c.zarr", scene / "clean.zarr")
    assert {w for (k, w), n in _per_worker(stream.data, _names(client)).items() if k == "sarpipe-clean-batch"} == set(
        _names(client).values()
    )
    with dask.config.set({CHUNK_TASKS_SETTING: "local"}), distributed.get_task_stream(client) as stream:
        client.submit(focus_zarr, scene / "raw.zarr", tmp_path / "s.zarr").result()
    assert_same_store(tmp_path / "s.zarr", scene / "slc.zarr")
    assert not [r for r in stream.data if str(r["key"]).startswith("sarpipe-")], "told local: one step, one worker"


def _fails_on_three(i: int, folder: str) -> int:
    if i == 3:
        from sarpipe.errors import InputError

        raise InputError("bad block", where=f"block {i}")
    Path(folder, str(i)).write_text("done")
    return i * i


def test_a_failing_chunk_task_is_raised_after_every_other_task_finished(threads_cluster, tmp_path):
    _, client = threads_cluster
    assert client.submit(run_chunk_tasks, _fails_on_three, [(i, str(tmp_path)) for i in (0, 1, 2)], name="t").result()
    with pytest.raises(ValueError, match="block 3: bad block"):
        client.submit(run_chunk_tasks, _fails_on_three, [(i, str(tmp_path)) for i in range(8)], name="t").result()
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == [0, 1, 2, 4, 5, 6, 7]


def test_without_a_cluster_tasks_run_here_threaded_to_the_end_or_serially_to_the_first_failure(tmp_path):
    (tmp_path / "threads").mkdir()
    (tmp_path / "serial").mkdir()
    with dask.config.set(scheduler="threads"):  # a local scheduler named: a test's client is not used
        args = [(i, str(tmp_path / "threads")) for i in range(8)]
        assert run_chunk_tasks(_fails_on_three, args[:3], name="t") == [0, 1, 4]
        with pytest.raises(ValueError, match="block 3: bad block"):
            run_chunk_tasks(_fails_on_three, args, name="t")
        assert sorted(int(p.name) for p in (tmp_path / "threads").iterdir()) == [0, 1, 2, 4, 5, 6, 7]
        args = [(i, str(tmp_path / "serial")) for i in range(8)]
        with pytest.raises(ValueError, match="block 3: bad block"):
            run_chunk_tasks(_fails_on_three, args, name="t", local="serial")
        assert sorted(int(p.name) for p in (tmp_path / "serial").iterdir()) == [0, 1, 2]


def _detection_of(raw: Path, out: Path, pulses: slice) -> Path:
    """A detection product flagging exactly ``pulses`` (benchmarks/rfi_clean_memory.py's stand-in for the detector)."""
    spec = importlib.util.spec_from_file_location("rfi_clean_memory", ROOT / "benchmarks" / "rfi_clean_memory.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    flags = np.zeros(xr.open_zarr(raw).sizes["azimuth"], bool)
    flags[pulses] = True
    bench.write_detection(out, raw, flags)
    return out


def test_learned_batches_run_on_the_gpu_worker_and_cpu_batches_on_the_others(scene, tmp_path):
    pytest.importorskip("torch")
    from distributed import Scheduler, SpecCluster, Worker

    raw, det = scene / "raw.zarr", scene / "det.zarr"
    few = _detection_of(raw, tmp_path / "few.zarr", slice(380, 388))  # DIFNet on this CPU: ~0.3 s a pulse
    learned = {"method": "difnet", "batch_pulses": 2}
    with dask.config.set(scheduler="threads"):
        clean_zarr(raw, tmp_path / "difnet_threaded.zarr", few, **learned)
    spec = {
        "cpu": {"cls": Worker, "options": {"nthreads": 1, "dashboard": False}},
        "gpu": {"cls": Worker, "options": {"nthreads": 1, "dashboard": False, "resources": {"GPU": 1}}},
    }
    sched = {"cls": Scheduler, "options": {"dashboard": False, "dashboard_address": ":0"}}
    # without work stealing: an idle GPU worker may steal a CPU task (the preference is loose, docs/cluster.md)
    with (
        dask.config.set({"scheduler": None, "distributed.scheduler.work-stealing": False}),
        SpecCluster(workers=spec, scheduler=sched) as cluster,
        distributed.Client(cluster) as client,
    ):
        names = _names(client)
        for method, detection, params in (("difnet", few, learned), ("notch", det, {"batch_pulses": BATCH})):
            with distributed.get_task_stream(client) as stream:
                client.submit(clean_zarr, raw, tmp_path / f"{method}.zarr", detection, pure=False, **params).result()
            ran = Counter(
                w
                for (k, w), n in _per_worker(stream.data, names).items()
                for _ in range(n)
                if k == "sarpipe-clean-batch"
            )
            assert set(ran) == ({"gpu"} if method == "difnet" else {"cpu"}), (method, ran)
            assert sum(ran.values()) == (4 if method == "difnet" else -(-_flagged(det) // BATCH))
        # a step that holds the GPU itself runs its learned batches in its own task (they could never get it)
        with distributed.get_task_stream(client) as stream:
            client.submit(clean_zarr, raw, tmp_path / "held.zarr", few, resources={"GPU": 1}, **learned).result()
        assert not [r for r in stream.data if _prefix(r["key"]) == "sarpipe-clean-batch"]
    assert_same_store(tmp_path / "notch.zarr", scene / "clean.zarr")
    assert_same_store(tmp_path / "difnet.zarr", tmp_path / "difnet_threaded.zarr")
    assert_same_store(tmp_path / "held.zarr", tmp_path / "difnet_threaded.zarr")


def test_learned_batches_on_a_cluster_without_gpu_workers_run_on_the_cpu_workers(scene, threads_cluster, tmp_path):
    pytest.importorskip("torch")
    _, client = threads_cluster
    raw = scene / "raw.zarr"
    few = _detection_of(raw, tmp_path / "few.zarr", slice(380, 388))
    learned = {"method": "difnet", "batch_pulses": 2}
    with dask.config.set(scheduler="threads"):
        clean_zarr(raw, tmp_path / "threaded.zarr", few, **learned)
    with distributed.get_task_stream(client) as stream:
        client.submit(clean_zarr, raw, tmp_path / "cluster.zarr", few, pure=False, **learned).result()
    assert sum(n for (k, _), n in _per_worker(stream.data, _names(client)).items() if k == "sarpipe-clean-batch") == 4
    assert_same_store(tmp_path / "cluster.zarr", tmp_path / "threaded.zarr")


class _KillAfter(distributed.diagnostics.plugin.SchedulerPlugin):
    """Kill (SIGKILL) the process of a worker that does not run the step, as it is handed a chunk task
    of ``kind`` once ``after`` of them have finished; then record the chunk tasks it had to give up (taken off it
    while processing, or results lost with it and computed again)."""

    def __init__(self, scheduler, pids: dict[str, int], kind: str, after: int):
        self.scheduler, self.pids, self.kind, self.after = scheduler, pids, kind, after
        self.done_on: Counter = Counter()
        self.killed: str | None = None
        self.redone: set[str] = set()

    def transition(self, key, start, finish, *args, **kwargs):
        if _prefix(key) != self.kind:
            return
        if self.killed is not None:
            if (start, finish) in (("processing", "released"), ("processing", "waiting"), ("memory", "released")):
                self.redone.add(str(key))
            return
        if finish == "memory" and kwargs.get("worker"):
            self.done_on[kwargs["worker"]] += 1
        if sum(self.done_on.values()) < self.after:
            return
        step_workers = {
            t.processing_on.address
            for t in self.scheduler.tasks.values()
            if str(t.key).startswith(("focus_zarr", "clean_zarr")) and t.processing_on is not None
        }
        # the first worker outside the step that holds a chunk task of this kind (running or queued on it) dies at
        # once: the scheduler may have handed out every task before the first finished, and a short one could
        # finish inside any delay
        for address, ws in self.scheduler.workers.items():
            holds = any(_prefix(t.key) == self.kind for t in ws.processing)
            if holds and address not in step_workers and address in self.pids:
                self.killed = address
                os.kill(self.pids[address], signal.SIGKILL)
                return


@pytest.mark.slow
def test_a_worker_killed_mid_scene_the_scene_still_completes_identically(scene, tmp_path):
    raw, det = scene / "raw.zarr", scene / "det.zarr"
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        scenarios = (
            ("sarpipe-focus-range", focus_zarr, (), {}, "slc.zarr"),
            ("sarpipe-clean-copy", clean_zarr, (det,), {"batch_pulses": BATCH}, "clean.zarr"),
            ("sarpipe-clean-batch", clean_zarr, (det,), {"batch_pulses": BATCH}, "clean2.zarr"),
        )
        for kind, step, more, kw, out in scenarios:
            client.wait_for_workers(2, timeout=120)
            # warm both workers (imports, compiled kernels; a killed one comes back as a fresh process) so that each
            # takes its share of the chunk tasks at once
            client.submit(step, raw, tmp_path / f"warm-{out}", *more, pure=False, **kw).result(timeout=300)
            plugin = _KillAfter(cluster.scheduler, client.run(os.getpid), kind, after=2)
            cluster.scheduler.add_plugin(plugin, name=f"kill-{kind}")
            try:
                client.submit(step, raw, tmp_path / out, *more, pure=False, **kw).result(timeout=300)
            finally:
                cluster.scheduler.remove_plugin(name=f"kill-{kind}")
            assert plugin.killed is not None, f"{kind}: no worker was killed mid-scene ({plugin.done_on})"
            assert plugin.redone, f"{kind}: the killed worker gave up no chunk task"
    assert_same_store(tmp_path / "slc.zarr", scene / "slc.zarr")
    assert_same_store(tmp_path / "clean.zarr", scene / "clean.zarr")
    assert_same_store(tmp_path / "clean2.zarr", scene / "clean.zarr")


def test_a_worker_builds_a_learned_method_once_and_again_when_its_weights_are_rewritten(tmp_path):
    pytest.importorskip("torch")
    import shutil

    from sarpipe.models.difnet import SHIPPED_WEIGHTS
    from sarpipe.rfi.streaming_clean import _built_method

    weights = tmp_path / "weights"
    shutil.copytree(SHIPPED_WEIGHTS, weights)
    spec = ("difnet", {"weights": str(weights), "device": "cpu"}, None)
    first = _built_method(spec)
    assert _built_method(spec) is first, "built once per process, not once per batch"
    st = (weights / "model.safetensors").stat()
    os.utime(weights / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # retrained
    assert _built_method(spec) is not first, "weights rewritten under the same path are loaded again"
