"""One scene over a Dask cluster: time of the focus and clean steps on 1 and 2 workers, against local threads.

    PYTHONPATH=. .venv/bin/python benchmarks/cluster_scaling.py                 # 8192 x 8192 (512 MiB), issue 13
    PYTHONPATH=. .venv/bin/python benchmarks/cluster_scaling.py --size 4096     # quick

The scene and its detection product are benchmarks/rfi_clean_memory.py's (complex Gaussian noise, two narrowband
RFI bursts, 1024-line chunks; the detection flags the bursts' true pulses). Each step runs as one task on a
``LocalCluster`` of N worker processes x 1 thread (``client.submit(focus_zarr, ...)``, as a pipeline step does on
a cluster), so its chunk tasks (focus range and azimuth passes, clean batches) spread over the workers
(:mod:`sarpipe.chunk_tasks`); the same steps also run on local threads (the default scheduler, one thread per
core). Before timing, every worker runs the steps once on a small scene (imports, compiled kernels).

Recorded per run: wall time of each step; from the scheduler's task stream, per worker, the chunk tasks of each
kind and their compute seconds; and each worker process's CPU time over the step. Every output is compared with
the threaded one chunk file by chunk file (the data, bit for bit; the metadata differs only in time stamps).
Prints one JSON line per measurement and a summary table. Timings are only comparable within one run (the ratio
of 1 to 2 workers), and say nothing of a quiet machine if other jobs share it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]


def _scene_module():
    spec = importlib.util.spec_from_file_location("rfi_clean_memory", ROOT / "benchmarks" / "rfi_clean_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_scene(folder: Path, n_az: int, n_rg: int) -> tuple[Path, Path]:
    bench = _scene_module()
    raw, det = folder / "raw.zarr", folder / "det.zarr"
    flags = bench.write_scene(raw, n_az, n_rg)
    bench.write_detection(det, raw, flags)
    return raw, det


def data_digest(store: Path) -> dict[str, str]:
    """sha256 of each variable's chunk files (``VAR/c/...``), by variable."""
    out = {}
    for var in sorted(p for p in store.iterdir() if (p / "zarr.json").is_file()):
        h = hashlib.sha256()
        chunks = var / "c"
        for f in sorted(chunks.rglob("*")) if chunks.is_dir() else []:
            if f.is_file():
                h.update(str(f.relative_to(var)).encode())
                with open(f, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 24), b""):
                        h.update(block)
        out[var.name] = h.hexdigest()
    return out


def _kind(key) -> str:
    key = str(key)
    return key.rsplit("-", 2)[0].removeprefix("sarpipe-") if key.startswith("sarpipe-") else "other"


def as_step(fn, *args, **kw):
    """Run ``fn`` as a pipeline step runs its stage: Dask work of its own (xarray's) on local threads; its chunk
    tasks go where :mod:`sarpipe.chunk_tasks` sends them."""
    import dask

    with dask.config.set(scheduler="threads"):
        return fn(*args, **kw)


def run_steps(raw: Path, det: Path, out: Path, submit, batch_pulses: int = 256) -> dict[str, float]:
    """Focus then clean through ``submit(fn, *args, **kw) -> result``; wall seconds of each."""
    from sarpipe.focus import focus_zarr
    from sarpipe.rfi.streaming_clean import clean_zarr

    times = {}
    t0 = time.perf_counter()
    submit(focus_zarr, raw, out / "slc.zarr")
    times["focus"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    submit(clean_zarr, raw, out / "clean.zarr", det, method="notch", batch_pulses=batch_pulses)
    times["clean"] = time.perf_counter() - t0
    return times


def on_cluster(n_workers: int, raw: Path, det: Path, out: Path, warm: tuple[Path, Path], batch_pulses: int) -> dict:
    from distributed import Client, LocalCluster, get_task_stream

    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        names = {a: f"worker{i}" for i, a in enumerate(sorted(client.scheduler_info(n_workers=-1)["workers"]))}

        def submit(fn, *args, **kw):
            return client.submit(as_step, fn, *args, pure=False, **kw).result()

        run_steps(*warm, warm[0].parent / f"warm-{n_workers}", submit)
        result: dict = {"workers": n_workers, "steps": {}}
        for step in ("focus", "clean"):
            cpu0 = client.run(time.process_time)
            with get_task_stream(client) as stream:
                t0 = time.perf_counter()
                if step == "focus":
                    from sarpipe.focus import focus_zarr

                    submit(focus_zarr, raw, out / "slc.zarr")
                else:
                    from sarpipe.rfi.streaming_clean import clean_zarr

                    submit(clean_zarr, raw, out / "clean.zarr", det, method="notch", batch_pulses=batch_pulses)
                wall = time.perf_counter() - t0
            cpu1 = client.run(time.process_time)
            tasks: dict = defaultdict(lambda: defaultdict(lambda: {"tasks": 0, "compute_s": 0.0}))
            for rec in stream.data:
                w = names.get(rec["worker"], rec["worker"])
                entry = tasks[w][_kind(rec["key"])]
                entry["tasks"] += 1
                entry["compute_s"] += sum(s["stop"] - s["start"] for s in rec["startstops"] if s["action"] == "compute")
            result["steps"][step] = {
                "wall_s": wall,
                "cpu_s": {names.get(a, a): cpu1[a] - cpu0[a] for a in cpu1 if a in cpu0},
                "tasks": {w: {k: dict(v) for k, v in per.items()} for w, per in tasks.items()},
            }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8192, help="pulses = range samples of the scene")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-pulses", type=int, default=256, help="the clean step's batch (its default: 256)")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sarpipe-cluster-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        (work / "warm").mkdir()
        warm = make_scene(work / "warm", 1024, 4608)  # the smallest this sensor focuses: a chirp, an aperture
        raw, det = make_scene(work, args.size, args.size)
        print(json.dumps({"scene": [args.size, args.size], "written_s": round(time.perf_counter() - t0, 1)}))
        (work / "threads").mkdir()
        run_steps(*warm, work / "warm" / "threads", lambda fn, *a, **kw: fn(*a, **kw))
        threads = run_steps(raw, det, work / "threads", lambda fn, *a, **kw: fn(*a, **kw), args.batch_pulses)
        print(json.dumps({"run": f"local threads ({os.cpu_count()})", **{k: round(v, 2) for k, v in threads.items()}}))
        reference = {s: data_digest(work / "threads" / f"{s}.zarr") for s in ("slc", "clean")}
        rows = [("local threads", threads["focus"], threads["clean"], "", "reference")]
        for n in args.workers:
            out = work / f"cluster{n}"
            out.mkdir()
            res = on_cluster(n, raw, det, out, warm, args.batch_pulses)
            same = all(data_digest(out / f"{s}.zarr") == reference[s] for s in ("slc", "clean"))
            res["identical_to_threads"] = same
            print(json.dumps(res))
            busy = "; ".join(
                f"{step}: "
                + ", ".join(
                    f"{w} {sum(v['tasks'] for k, v in per.items() if k != 'other')} tasks "
                    f"{res['steps'][step]['cpu_s'].get(w, 0):.1f} s CPU"
                    for w, per in sorted(res["steps"][step]["tasks"].items())
                )
                for step in ("focus", "clean")
            )
            rows.append(
                (f"{n} worker{'s' if n > 1 else ''} x 1 thread", res["steps"]["focus"]["wall_s"],
                 res["steps"]["clean"]["wall_s"], busy, "bit for bit" if same else "DIFFERENT")
            )  # fmt: skip
            shutil.rmtree(out)
        flagged = int(np.count_nonzero(xr.open_zarr(det)["rfi_pulses"].values))
        print(
            f"\n{args.size} x {args.size} scene, focus and `rfi clean --method notch --batch-pulses {args.batch_pulses}`"
            f" ({flagged} flagged pulses, detection given)"
        )
        print("| run | focus [s] | clean [s] | chunk tasks and CPU per worker | output vs threads |")
        print("|---|---|---|---|---|")
        for name, f, c, busy, same in rows:
            print(f"| {name} | {f:.1f} | {c:.1f} | {busy} | {same} |")
        base = {r[0]: r for r in rows}
        one, two = base.get("1 worker x 1 thread"), base.get("2 workers x 1 thread")
        if one and two:
            print(f"\n1 -> 2 workers: focus {one[1] / two[1]:.2f}x, clean {one[2] / two[2]:.2f}x faster")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
