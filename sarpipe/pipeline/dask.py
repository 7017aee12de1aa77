"""Where steps run: the local threaded scheduler (default), or a ``dask.distributed`` cluster.

On the threaded default, up to ``dask.max_parallel`` steps (or batch scenes) run at once in this process, and the
chunk tasks inside a step (focusing's range and azimuth passes, the clean step's copies and pulse batches) use the
local thread pool. On a cluster (``--scheduler ADDRESS``, ``dask: {scheduler: ADDRESS}``, ``dask: {scheduler:
local}`` or ``dask: {cluster: ...}``), every step is submitted to the scheduler as its own task when its inputs
are ready, so independent steps and batch scenes spread over the workers; and a step's chunk tasks are submitted
from its worker to the whole cluster (:mod:`sarpipe.chunk_tasks`: the step's task secedes from its worker's thread
pool while they run), so a single scene uses every worker. Steps that need a GPU ask for the worker resource
``GPU`` (start such workers with ``dask worker ADDRESS --resources GPU=1``); so do the pulse batches of a learned
cleanup method when some worker offers it, while the other chunk tasks prefer the workers without. If a worker
dies, the scheduler gives its tasks to another worker: a chunk task writes only its own chunks or rows of a store,
always the same bytes, and outputs are renamed into place only when complete, so a step interrupted on a dead
worker leaves nothing that looks finished. ``docs/cluster.md`` has the measured figures.

Outputs, corner turns and chunk tasks' stores are written by the workers, so on a multi-machine cluster the
output folder must be on a shared filesystem.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from typing import Any

from ..errors import InputError
from .runner import StepResult, StepTask, execute_step
from .schema import DaskSpec, DeviceSpec, is_scheduler


def describe(spec: DaskSpec, scheduler: str | None) -> str:
    sched = scheduler or spec.scheduler
    if spec.cluster is not None and scheduler is None:
        return f"dask {spec.cluster.kind} cluster"
    if sched == "threads":
        return f"local threads ({_max_parallel(spec)} steps at once)"
    if sched == "synchronous":
        return "local, one step at a time (synchronous)"
    if sched == "local":
        return "dask.distributed LocalCluster"
    return f"dask.distributed scheduler {sched}"


def _max_parallel(spec: DaskSpec) -> int:
    return spec.max_parallel or max(1, min(4, os.cpu_count() or 1))


def _result(fut: Any, task: StepTask) -> StepResult:
    """The step's result; a future that itself failed (the pool, or KilledWorker after too many worker deaths: stage
    errors are caught by execute_step) becomes a failed step."""
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001
        return StepResult(task.key, "failed", error=f"{type(exc).__name__}: {exc}", error_kind="internal")


class ThreadBackend:
    """Steps on a thread pool in this process; GPU steps one (or ``device.gpus``) at a time."""

    def __init__(self, max_parallel: int, gpus: int = 1, description: str = ""):
        self.capacity = max_parallel
        self._pool = cf.ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="sarpipe-step")
        self._gpu = threading.BoundedSemaphore(gpus)
        self.description = description

    def _run(self, task: StepTask) -> StepResult:
        if task.resources.get("GPU"):
            with self._gpu:
                return execute_step(task)
        return execute_step(task)

    def submit(self, task: StepTask) -> cf.Future:
        return self._pool.submit(self._run, task)

    def wait_first(self, futures: list[cf.Future]) -> set[cf.Future]:
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return done

    def result(self, fut: cf.Future, task: StepTask) -> StepResult:
        return _result(fut, task)

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


class DistributedBackend:
    """Steps as tasks on a ``dask.distributed`` scheduler (an address, or a cluster started for this run)."""

    capacity = None

    def __init__(self, client: Any, cluster: Any = None, description: str = ""):
        self.client = client
        self.cluster = cluster
        self.description = description

    def submit(self, task: StepTask) -> Any:
        return self.client.submit(
            execute_step,
            task,
            key=f"sarpipe-step-{task.key}-{task.fingerprint}-{os.urandom(3).hex()}",
            pure=False,
            resources=dict(task.resources) or None,
        )

    def wait_first(self, futures: list[Any]) -> set[Any]:
        from distributed import wait

        done, _ = wait(futures, return_when="FIRST_COMPLETED")
        return set(done)

    def result(self, fut: Any, task: StepTask) -> StepResult:
        return _result(fut, task)

    def close(self, wait: bool = True) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def _start_cluster(spec: DaskSpec) -> Any:
    c = spec.cluster
    assert c is not None
    opts = dict(c.options)
    if c.kind == "local":
        from distributed import LocalCluster

        opts.setdefault("dashboard_address", None)
        if c.n_workers is not None:
            opts.setdefault("n_workers", c.n_workers)
        if c.threads_per_worker is not None:
            opts.setdefault("threads_per_worker", c.threads_per_worker)
        cluster = LocalCluster(**opts)
    elif c.kind in ("slurm", "pbs"):
        import dask_jobqueue  # validated as installed

        cls = dask_jobqueue.SLURMCluster if c.kind == "slurm" else dask_jobqueue.PBSCluster
        cluster = cls(**opts)
    else:  # kubernetes
        from dask_kubernetes.operator import KubeCluster

        cluster = KubeCluster(**opts)
    if c.adapt is not None:
        cluster.adapt(minimum=c.adapt.minimum, maximum=c.adapt.maximum)
    elif c.n_workers is not None and c.kind != "local":
        cluster.scale(jobs=c.n_workers) if c.kind in ("slurm", "pbs") else cluster.scale(c.n_workers)
    return cluster


def check_scheduler(scheduler: str | None) -> None:
    """Reject a malformed ``--scheduler`` value (before anything is written)."""
    if scheduler is not None and not is_scheduler(scheduler):
        raise InputError(
            f"--scheduler {scheduler}: expected threads, synchronous, local or an address such as tcp://HOST:PORT"
        )


def open_backend(spec: DaskSpec, scheduler: str | None, device: DeviceSpec, *, needs_gpu: bool = False) -> Any:
    """The backend for a run: ``scheduler`` (the ``--scheduler`` option) wins over the ``dask:`` section."""
    check_scheduler(scheduler)
    sched = scheduler or spec.scheduler
    use_cluster = spec.cluster is not None and scheduler is None
    if not use_cluster and sched in ("threads", "synchronous"):
        n = 1 if sched == "synchronous" else _max_parallel(spec)
        return ThreadBackend(n, device.gpus, describe(spec, scheduler))

    from distributed import Client

    cluster = None
    try:
        if use_cluster:
            cluster = _start_cluster(spec)
            client = Client(cluster, timeout=spec.connect_timeout)
        elif sched == "local":
            from distributed import LocalCluster

            cluster = LocalCluster(dashboard_address=None)
            client = Client(cluster, timeout=spec.connect_timeout)
        else:
            client = Client(sched, timeout=spec.connect_timeout)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise InputError(f"cannot reach the Dask scheduler: {exc}", where=sched) from exc
    backend = DistributedBackend(client, cluster, describe(spec, scheduler))
    try:
        workers = (
            client.scheduler_info(n_workers=-1)["workers"]
            if _accepts_n_workers(client)
            else client.scheduler_info()["workers"]
        )
        n = len(workers)
        gpus = sum(1 for w in workers.values() if (w.get("resources") or {}).get("GPU"))
        backend.description += f" ({n} worker{'s' if n != 1 else ''}" + (f", {gpus} with GPU" if gpus else "") + ")"
        if needs_gpu and gpus == 0 and not (use_cluster and spec.cluster.kind != "local"):
            raise InputError(
                "a step needs the worker resource GPU but no worker offers it "
                "(start workers with: dask worker ADDRESS --resources GPU=1)",
                where=sched,
            )
    except BaseException:
        backend.close()
        raise
    return backend


def _accepts_n_workers(client: Any) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False
