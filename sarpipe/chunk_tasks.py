"""Where the chunk tasks of one step run: the current local scheduler, or every worker of a ``dask.distributed``
cluster.

A step's inner work (focusing's range and azimuth passes, the clean step's pulse batches) is a list of independent
tasks, each reading its block from Zarr and writing only its own chunks (or rows) of a store on the file system.
:func:`run_chunk_tasks` runs such a list:

- **inside a distributed worker** (a pipeline step on a cluster, or ``client.submit(focus_zarr, ...)``), the tasks
  are submitted to the cluster through :func:`distributed.worker_client`, which takes the step's own task out of
  the worker's thread pool (secede) while it waits and puts it back (rejoin) afterwards: one scene uses every
  worker, and the step does not hold a slot while its chunks run;
- **in a process with a default distributed client** (a script that made a ``Client``), to that client, unless the
  Dask ``scheduler`` setting names a local scheduler;
- **otherwise** on the current local scheduler: ``local="threads"`` computes them as Dask delayed tasks (the
  threaded scheduler by default), ``local="serial"`` runs them in this thread, in order.

The Dask setting ``sarpipe.chunk-tasks`` (``auto``, the default, or ``local``) keeps a step's tasks local even on a
worker (one step, one worker: the behaviour before issue 13).

On a cluster: tasks must be idempotent (a worker that dies mid-task has it rerun elsewhere, and a finished task
whose result died with its worker is recomputed), which holds when each task writes only its own chunks, rows or
files, always with the same bytes; the stores must be on a file system every worker sees. Tasks asking for a
worker resource (``resources={"GPU": 1}``) get it only when some worker offers it (otherwise they run like the
others), and run inside the step's own task when that task already holds the resource (a seceded task keeps its
resources, so its chunks could never get them). On a cluster with such workers, tasks without resources are
steered to the workers without (loosely: they run on the others when none of those is left), so GPU workers stay
free for the work that needs them.

A failing task does not stop the others running beside it: every task runs to its end, then the first failure is
raised (its own exception), so that no task is still writing into a store the caller removes on failure (serial
tasks stop at the first failure: nothing else is running).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask

__all__ = ["CHUNK_TASKS_SETTING", "run_chunk_tasks"]

#: Dask configuration key: ``auto`` (distributed when there is a cluster) or ``local`` (always local).
CHUNK_TASKS_SETTING = "sarpipe.chunk-tasks"
_LOCAL_SCHEDULERS = {"threads", "threading", "sync", "synchronous", "single-threaded", "processes", "multiprocessing"}


def _local_scheduler() -> str | None:
    """The Dask ``scheduler`` setting when it names a local scheduler, else None."""
    value = dask.config.get("scheduler", None)
    return value if isinstance(value, str) and value in _LOCAL_SCHEDULERS else None


def _captured(task: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """Run ``task``; return ``(True, result)`` or ``(False, exception)`` instead of raising (module docstring)."""
    try:
        return True, task(*args)
    except Exception as exc:  # noqa: BLE001 - re-raised by run_chunk_tasks once every task has finished
        return False, exc


def _unwrap(outcomes: Sequence[tuple[bool, Any]]) -> list[Any]:
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]


def _current_task_key() -> str | None:
    """The key of the distributed task this thread runs, or None."""
    try:
        from distributed.worker import thread_state
    except ImportError:
        return None
    return getattr(thread_state, "key", None)


@contextlib.contextmanager
def _cluster_client() -> Iterator[tuple[Any, dict[str, float]]]:
    """``(client, resources the current task holds)`` for chunk tasks, or ``(None, {})`` to run them locally."""
    if str(dask.config.get(CHUNK_TASKS_SETTING, "auto")) == "local":
        yield None, {}
        return
    key = _current_task_key()
    if key is not None:
        from distributed import get_worker, worker_client

        try:
            worker = get_worker()
        except ValueError:
            worker = None
        if worker is not None:
            ts = worker.state.tasks.get(key)
            held = dict(getattr(ts, "resource_restrictions", None) or {})
            with worker_client() as client:  # secedes from the worker's thread pool, rejoins on exit
                yield client, held
            return
    if _local_scheduler() is None:
        try:
            from distributed import Client

            client = Client.current(allow_global=True)
        except (ImportError, ValueError):
            client = None
        if client is not None and not client.asynchronous:
            yield client, {}
            return
    yield None, {}


def _worker_resources(client: Any) -> dict[str, dict[str, float]]:
    """Resources each worker offers, by address."""
    import inspect

    try:
        takes_n = "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        takes_n = False
    info = client.scheduler_info(n_workers=-1) if takes_n else client.scheduler_info()
    return {addr: dict(w.get("resources") or {}) for addr, w in info["workers"].items()}


def _placement(client: Any, resources: dict[str, float] | None) -> dict[str, Any]:
    """``client.submit`` keywords: the resources when a worker offers them; else, on a cluster with workers that
    offer resources, a loose preference for the workers that offer none."""
    workers = _worker_resources(client)
    if resources:
        offered = [a for a, r in workers.items() if all(r.get(k, 0) >= v for k, v in resources.items())]
        if offered:
            return {"resources": dict(resources)}
    plain = [a for a, r in workers.items() if not any(r.values())]
    if plain and len(plain) < len(workers):
        return {"workers": plain, "allow_other_workers": True}
    return {}


def _run_on_cluster(client: Any, task: Callable[..., Any], args: list[tuple], name: str, where: dict) -> list:
    from distributed import wait

    tag = f"{name}-{os.urandom(4).hex()}"
    futures = [client.submit(_captured, task, *a, key=f"{tag}-{i}", pure=False, **where) for i, a in enumerate(args)]
    try:
        wait(futures)  # every task to its end, failed or not
        outcomes = []
        for f in futures:
            if f.status == "error":  # the task itself could not run (e.g. its workers kept dying)
                outcomes.append((False, f.exception()))
            elif f.status == "cancelled":
                outcomes.append((False, RuntimeError(f"chunk task {f.key} was cancelled")))
            else:
                outcomes.append(f.result())
    finally:
        for f in futures:
            f.release()
    return _unwrap(outcomes)


def run_chunk_tasks(
    task: Callable[..., Any],
    args: Sequence[tuple],
    *,
    name: str,
    resources: dict[str, float] | None = None,
    local: str = "threads",
) -> list[Any]:
    """``[task(*a) for a in args]``, run as independent tasks where the module docstring says; results in order.

    ``task``: a module-level function (it is pickled to the workers). ``name``: prefix of the tasks' keys on a
    cluster (``sarpipe-focus-range``, ...: what the task stream shows). ``resources``: worker resources each task
    asks for on a cluster (e.g. ``{"GPU": 1}``). ``local``: ``"threads"`` or ``"serial"`` (module docstring).
    Raises the first task's exception once every task has finished (serially: at once)."""
    args = [tuple(a) for a in args]
    if not args:
        return []
    with _cluster_client() as (client, held):
        if client is not None and not (resources and all(held.get(k, 0) >= v for k, v in resources.items())):
            return _run_on_cluster(client, task, args, name, _placement(client, resources))
    if local == "serial":  # nothing else runs: stop at the first failure
        return [task(*a) for a in args]
    scheduler = _local_scheduler() or "threads"  # never a distributed client behind our back
    delayed = [dask.delayed(_captured, pure=False)(task, *a) for a in args]
    return _unwrap(dask.compute(*delayed, scheduler=scheduler))
