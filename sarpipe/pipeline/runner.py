"""Running a validated pipeline: the plan, fingerprints, atomic step outputs with provenance, skip and resume.

Every step output gets a sidecar ``OUTPUT.sarpipe.json`` written *after* the output has been renamed into place:
it is the completion marker and the provenance record (stage, version, params with defaults, each input's
source and fingerprint, sarpipe version, times, host). A step's fingerprint hashes its stage, stage version,
params and its inputs' fingerprints (an earlier step's fingerprint, or for files and catalog data the names, sizes
and modification times of their files), so fingerprints are known before anything runs.

A step is skipped when its output exists, its marker records the same fingerprint, and the output's files are as
the marker saw them; otherwise it runs. A killed run leaves at most a hidden ``.NAME.tmp-*`` folder (removed by
the next run) and outputs whose marker does not match them (redone).

Before any step runs, every step output is checked (:func:`check_outputs`): none may be, contain or lie inside an
input (a file, a catalog entry's data, the pipeline or catalog file), another step's output or the output folder;
and an existing output is replaced only if a marker shows the pipeline wrote it, unless ``overwrite``. A marker is
never removed before its step's new output is ready, so a failed rerun keeps the earlier complete output and its
marker.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_path, pid_alive, sibling_path
from ..catalog import json_fingerprint, path_fingerprint
from ..errors import InputError, environment_message
from ..outputs import check_output, has_marker, marker_path
from ..yamlconf import ConfigError
from .registry import REGISTRY, StageContext, StageInput
from .schema import Pipeline, StepDef

LOCK_NAME = ".sarpipe.lock"
PIPELINE_OWNER = "a pipeline"  # for messages: only a completion marker beside an output shows a pipeline wrote it
LOG_NAME = "sarpipe-run.log"

log = logging.getLogger("sarpipe.run")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------- the plan


@dataclass
class StepTask:
    """Everything a worker needs to run one step (plain data, so it pickles to a Dask worker)."""

    key: str
    step: str
    entry: str | None
    stage: str
    plugins: list[str]
    params: dict[str, Any]
    inputs: dict[str, dict[str, Any]]  # slot -> {ref, kind, path, entry, fingerprint}
    output: str
    fingerprint: str
    device: str = "auto"
    pipeline: str = ""
    resources: dict[str, float] = field(default_factory=dict)
    inner_scheduler: str = "threads"
    overwrite: bool = False  # may replace an existing output no marker shows the pipeline wrote


@dataclass
class PlannedStep:
    task: StepTask
    deps: list[str]
    action: str  # "run" | "skip"
    reason: str
    index: int


@dataclass
class StepResult:
    key: str
    status: str  # "done" | "failed"
    seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None  # "input" | "internal"
    traceback: str | None = None
    log: list[str] = field(default_factory=list)
    worker: str | None = None


def _output_path(pipeline: Pipeline, step: StepDef, entry: str | None) -> Path:
    base = pipeline.output_dir / entry if entry is not None else pipeline.output_dir
    if step.output:
        rel = step.output.replace("{entry}", entry or "").replace("{name}", pipeline.name).replace("{step}", step.name)
        p = Path(os.path.expandvars(os.path.expanduser(rel)))
        return (p if p.is_absolute() else base / p).absolute()
    return (base / f"{step.name}{step.stage.output_suffix}").absolute()


def output_state(path: Path) -> str:
    return path_fingerprint(path)


def read_marker(output: Path) -> dict[str, Any] | None:
    m = marker_path(output)
    try:
        data = json.loads(m.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("sarpipe_marker") == 1 else None


def completion(output: Path, fingerprint: str) -> tuple[bool, str]:
    """(complete?, why) for a step output expected to have ``fingerprint``."""
    if not output.exists():
        return False, "no output yet"
    marker = read_marker(output)
    if marker is None:
        return False, "output has no completion marker (interrupted run?)"
    if marker.get("state") == "publishing":
        return False, "interrupted while its output was put in place"
    if marker.get("fingerprint") != fingerprint:
        return False, "params or inputs changed"
    if marker.get("output_state") != output_state(output):
        return False, "output changed since it was written"
    return True, "complete"


def plan(
    pipeline: Pipeline,
    *,
    from_step: str | None = None,
    restart: bool = False,
    inner_scheduler: str = "threads",
    overwrite: bool = False,
) -> list[PlannedStep]:
    """The steps to run for each batch entry (or once), in order, each marked run or skip with the reason."""
    names = [s.name for s in pipeline.steps]
    start = 0
    if from_step is not None:
        if from_step not in names:
            import difflib

            close = difflib.get_close_matches(from_step, names, n=1)
            raise InputError(
                f"--from-step {from_step}: no such step"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; steps: {', '.join(names)}"
            )
        start = names.index(from_step)
    device = pipeline.spec.device.kind
    out: list[PlannedStep] = []
    for entry in pipeline.entries if pipeline.entries is not None else [None]:
        by_name: dict[str, PlannedStep] = {}
        for k, step in enumerate(pipeline.steps):
            inputs: dict[str, dict[str, Any]] = {}
            deps: list[str] = []
            for slot, ref in step.inputs.items():
                if ref.kind == "step":
                    up = by_name[ref.target]
                    inputs[slot] = {
                        "ref": str(ref),
                        "kind": pipeline.step(ref.target).stage.output,
                        "path": up.task.output,
                        "entry": None,
                        "fingerprint": up.task.fingerprint,
                    }
                    deps.append(up.task.key)
                elif ref.kind in ("catalog", "entry"):
                    name = entry if ref.kind == "entry" else ref.target
                    cat = pipeline.catalog
                    e = cat.get(name)
                    p = cat.entry_path(name)
                    edict = {"name": name, **e.model_dump(mode="json", by_alias=True, exclude_none=True)}
                    if e.kind == "simulated" and e.config_file:
                        edict["config_file"] = os.fspath(p.absolute())
                    edict["catalog_root"] = os.fspath(cat.root.resolve())
                    inputs[slot] = {
                        "ref": str(ref) if ref.kind == "catalog" else f"catalog:{name}",
                        "kind": e.product,
                        "path": os.fspath(p.absolute()) if (p is not None and e.kind != "simulated") else None,
                        "entry": edict,
                        "fingerprint": cat.fingerprint(name),
                    }
                else:
                    inputs[slot] = {
                        "ref": ref.target,
                        "kind": "any",
                        "path": os.fspath(Path(ref.target).absolute()),
                        "entry": None,
                        "fingerprint": path_fingerprint(ref.target),
                    }
            params = step.params_json
            extra = step.stage.fingerprint_extra(step.params) if step.stage.fingerprint_extra else None
            fp = json_fingerprint(
                {
                    "stage": step.stage.name,
                    "version": step.stage.version,
                    "params": params,
                    "extra": extra,
                    "inputs": {s: v["fingerprint"] for s, v in sorted(inputs.items())},
                }
            )
            output = _output_path(pipeline, step, entry)
            key = f"{entry}/{step.name}" if entry is not None else step.name
            task = StepTask(
                key=key,
                step=step.name,
                entry=entry,
                stage=step.stage.name,
                plugins=list(pipeline.plugins),
                params=params,
                inputs=inputs,
                output=os.fspath(output),
                fingerprint=fp,
                device=device,
                pipeline=pipeline.name,
                resources=dict(step.resources),
                inner_scheduler=inner_scheduler,
                overwrite=overwrite,
            )
            if restart:
                action, reason = "run", "--restart"
            elif k >= start and from_step is not None:
                action, reason = "run", f"--from-step {from_step}"
            else:
                done, reason = completion(output, fp)
                action = "skip" if done else "run"
                if from_step is not None and not done:
                    raise InputError(
                        f"--from-step {from_step}: earlier step {key!r} has no complete output ({reason}); "
                        "run without --from-step first"
                    )
            ps = PlannedStep(task=task, deps=deps, action=action, reason=reason, index=k)
            by_name[step.name] = ps
            out.append(ps)
    return out


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(os.fspath(path))).absolute().resolve()


def _nested(a: Path, b: Path) -> str | None:
    """How ``a`` relates to ``b``: "is", "is inside", "contains", or None."""
    if a == b:
        return "is"
    if b in a.parents:
        return "is inside"
    if a in b.parents:
        return "contains"
    return None


def _clash(out: Path, protected: dict[Path, str], protected_above: dict[Path, str]) -> tuple[str, str] | None:
    """(how, what) when ``out`` is, is inside or contains a protected path (by set look-ups: a batch has many)."""
    if out in protected:
        return "is", protected[out]
    inside = next((protected[p] for p in out.parents if p in protected), None)
    if inside is not None:
        return "is inside", inside
    if out in protected_above:
        return "contains", protected_above[out]
    return None


def check_outputs(pipeline: Pipeline, planned: list[PlannedStep], *, overwrite: bool = False) -> None:
    """Refuse, before any step runs, step outputs that would destroy what the user gave.

    A step output must not be, contain or lie inside an input of any step (a file, a catalog entry's data or
    simulator configuration), the pipeline file, the catalog file, another step's output, or the output folder
    itself; an existing output is replaced only when its marker shows the pipeline wrote it, unless
    ``overwrite``. Raises :class:`ConfigError` listing every problem with the line that set the output.
    """
    protected: dict[Path, str] = {_resolved(pipeline.source): f"the pipeline file {pipeline.source}"}
    if pipeline.catalog.path is not None:
        protected.setdefault(_resolved(pipeline.catalog.path), f"the data catalog {pipeline.catalog.path}")
    outputs = {p.task.output for p in planned}
    seen: set[str] = set()
    for p in planned:
        for d in p.task.inputs.values():
            paths = [d.get("path")] + [(d.get("entry") or {}).get("config_file")]
            for path in paths:
                if path and path not in outputs and path not in seen:
                    seen.add(path)
                    protected.setdefault(_resolved(path), f"input {d['ref']} ({path})")
    protected_above = {}  # every folder above a protected path -> that path's description
    for path, what in reversed(protected.items()):
        protected_above.update(dict.fromkeys(path.parents, what))
    out_dir = _resolved(pipeline.output_dir)
    by_step = {s.name: s for s in pipeline.steps}
    problems: list[str] = []
    resolved_outputs: list[tuple[Path, PlannedStep]] = []
    for p in planned:
        step = by_step[p.task.step]
        where = step.output_where if step.output or not pipeline.output_dir_where else pipeline.output_dir_where
        option = f"{where}: step {p.task.key}: output"
        label = f"{option} {p.task.output}"
        out = _resolved(p.task.output)
        resolved_outputs.append((out, p))
        clash = _clash(out, protected, protected_above)
        if clash is not None:
            problems.append(f"{label}: {clash[0]} {clash[1]}; an output never replaces an input (always refused)")
            continue
        if out == out_dir or out in out_dir.parents:
            problems.append(
                f"{label}: {'is' if out == out_dir else 'contains'} the output folder {pipeline.output_dir} "
                "(its run log and lock); give the step an output inside it"
            )
            continue
        try:
            check_output(p.task.output, overwrite=overwrite, option=option, owned=has_marker, owner=PIPELINE_OWNER)
        except InputError as exc:
            problems.append(str(exc))
    # outputs that are or nest in one another: neighbours in path order
    ordered = sorted(resolved_outputs, key=lambda item: item[0].parts)
    for (a, pa), (b, pb) in itertools.pairwise(ordered):
        how = _nested(b, a)
        if how is not None:
            where = by_step[pb.task.step].output_where
            problems.append(
                f"{where}: step {pb.task.key}: output {pb.task.output}: {how} the output of step "
                f"{pa.task.key}; each step needs its own output"
            )
    if problems:
        raise ConfigError(problems, title=f"{pipeline.source}: unsafe step outputs, nothing was run")


# ------------------------------------------------------------------------------------------ one step


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(output: Path) -> int:
    """Remove ``.NAME.tmp-*`` leftovers of killed writers of ``output``; returns how many."""
    n = 0
    if output.parent.is_dir():
        for p in output.parent.glob(f".{output.name}.tmp-*"):
            _remove(p)
            n += 1
    return n


@contextlib.contextmanager
def staged_output(final: Path, before_publish: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield a path inside a hidden work folder beside ``final``; rename it to ``final`` on success, calling
    ``before_publish`` just before (the earlier output, if any, stays in place until then)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    work = sibling_path(final, "tmp")
    work.mkdir()
    product = work / final.name
    try:
        yield product
        if not product.exists():
            raise RuntimeError("the stage wrote nothing to its output path")
        if before_publish is not None:
            before_publish()
        if final.exists() or final.is_symlink():
            os.replace(final, work / ".replaced")
        os.replace(product, final)
    finally:
        _remove(work)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path, option="marker") as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _mark_publishing(task: StepTask) -> None:
    """Before a first output is renamed into place, leave a marker saying so: a run killed between the rename and
    the completion marker then leaves an output the next run knows as the pipeline's (and redoes)."""
    output = Path(task.output)
    if not has_marker(output):
        _write_json_atomic(
            marker_path(output),
            {
                "sarpipe_marker": 1,
                "state": "publishing",
                "pipeline": task.pipeline,
                "step": task.step,
                "entry": task.entry,
                "output": os.fspath(output),
                "fingerprint": None,
                "started": _now(),
            },
        )


class _ThreadCapture(logging.Handler):
    """Collects the log records emitted by one thread (the step's), formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.lines: list[str] = []
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        fmt.formatTime = lambda record, datefmt=None: _dt.datetime.fromtimestamp(  # type: ignore[method-assign]
            record.created, _dt.UTC
        ).isoformat(timespec="milliseconds")
        self.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(self.format(record))


def _worker_name() -> str:
    """The Dask worker's address when running on one, else ``host:pid``."""
    if "distributed" in sys.modules:  # never import distributed just to ask
        try:
            from distributed import get_worker

            return get_worker().address
        except Exception:  # noqa: BLE001 - not inside a worker task
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def execute_step(task: StepTask) -> StepResult:
    """Run one step: stage function into a staged output, rename into place, then write the marker.

    Never raises for a stage failure: the result says ``failed`` with the message (``error_kind`` ``input`` for
    :class:`InputError`, else ``internal`` with a traceback), so one failed scene does not stop a batch.
    """
    t0 = time.perf_counter()
    started = _now()
    capture = _ThreadCapture()
    sar_log = logging.getLogger("sarpipe")
    sar_log.addHandler(capture)
    old_level = sar_log.level
    if sar_log.level == logging.NOTSET or sar_log.level > logging.INFO:
        sar_log.setLevel(logging.INFO)
    worker = _worker_name()
    try:
        import dask

        errors = REGISTRY.import_plugins(task.plugins)
        if errors:
            raise RuntimeError(f"cannot import plugin modules on {worker}: {errors}")
        stage = REGISTRY.get(task.stage)
        params = stage.params_model().model_validate(task.params)
        inputs = {}
        for slot, d in task.inputs.items():
            path = Path(d["path"]) if d.get("path") else None
            if path is not None and not path.exists():
                raise InputError(f"input {slot!r} ({d['ref']}) does not exist", where=os.fspath(path))
            inputs[slot] = StageInput(
                ref=d["ref"], kind=d["kind"], path=path, entry=d.get("entry"), fingerprint=d["fingerprint"]
            )
        output = Path(task.output)
        # asked again here (the plan checked it too): something may have appeared at the output since
        check_output(
            output, overwrite=task.overwrite, option=f"step {task.key}: output", owned=has_marker, owner=PIPELINE_OWNER
        )
        remove_stale_temporaries(output)
        stage_log = logging.getLogger(f"sarpipe.stage.{task.step}")
        # the earlier marker stays until the new output is ready: a failed rerun keeps the earlier complete output
        with (
            staged_output(output, lambda: _mark_publishing(task)) as tmp,
            dask.config.set(scheduler=task.inner_scheduler),
        ):
            ctx = StageContext(
                step=task.step,
                entry=task.entry,
                params=params,
                inputs=inputs,
                output=tmp,
                device=task.device,
                log=stage_log,
            )
            stage.run(ctx)
        seconds = time.perf_counter() - t0
        marker = {
            "sarpipe_marker": 1,
            "pipeline": task.pipeline,
            "step": task.step,
            "entry": task.entry,
            "stage": stage.name,
            "stage_version": stage.version,
            "stage_origin": stage.origin,
            "params": task.params,
            "inputs": {
                s: {k: v for k, v in d.items() if k != "entry"}
                | ({"catalog_entry": d["entry"]["name"]} if d.get("entry") else {})
                for s, d in task.inputs.items()
            },
            "fingerprint": task.fingerprint,
            "sarpipe_version": __version__,
            "started": started,
            "finished": _now(),
            "seconds": round(seconds, 3),
            "worker": worker,
            "output": os.fspath(output),
            "output_state": output_state(output),
        }
        _write_json_atomic(marker_path(output), marker)
        return StepResult(task.key, "done", seconds, log=capture.lines, worker=worker)
    except InputError as exc:
        return StepResult(
            task.key,
            "failed",
            time.perf_counter() - t0,
            error=str(exc),
            error_kind="input",
            log=capture.lines,
            worker=worker,
        )
    except Exception as exc:  # noqa: BLE001 - reported in the summary, with the traceback in the log
        env = environment_message(exc)
        if env is not None:  # a full disk or a read-only folder: the user's to fix (exit 2)
            return StepResult(
                task.key,
                "failed",
                time.perf_counter() - t0,
                error=env,
                error_kind="input",
                log=capture.lines,
                worker=worker,
            )
        return StepResult(
            task.key,
            "failed",
            time.perf_counter() - t0,
            error=f"{type(exc).__name__}: {exc}",
            error_kind="internal",
            traceback=traceback.format_exc(),
            log=capture.lines,
            worker=worker,
        )
    finally:
        sar_log.removeHandler(capture)
        sar_log.setLevel(old_level)


# ------------------------------------------------------------------------------------------ the run


@dataclass
class StepRecord:
    key: str
    entry: str | None
    step: str
    stage: str
    output: str
    action: str
    reason: str
    status: str = "pending"  # skipped | done | failed | not run
    seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    worker: str | None = None
    inputs: str = ""


@dataclass
class RunSummary:
    pipeline: str
    output_dir: str
    log_file: str | None
    backend: str
    records: list[StepRecord]
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def failed(self) -> list[StepRecord]:
        return [r for r in self.records if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        if not self.failed and not any(r.status == "not run" for r in self.records):
            return 0
        return 2 if all(r.error_kind == "input" for r in self.failed) else 1

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "records"},
            "records": [asdict(r) for r in self.records],
        }


class RunLock:
    """``OUTPUT_DIR/.sarpipe.lock``: one run per output folder; a lock left by a dead process is taken over."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK_NAME
        self.held = False

    def __enter__(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    other = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    other = {}
                if other.get("host") == socket.gethostname() and not pid_alive(int(other.get("pid", -1))):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                raise InputError(
                    f"another sarpipe run (pid {other.get('pid')} on {other.get('host')}, since {other.get('since')}) "
                    f"is writing here; if none is, delete {self.path}",
                    where=os.fspath(self.path.parent),
                ) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            return self
        raise InputError("cannot take the run lock", where=os.fspath(self.path))

    def __exit__(self, *exc: Any) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)


def run_pipeline(
    pipeline: Pipeline,
    *,
    from_step: str | None = None,
    restart: bool = False,
    scheduler: str | None = None,
    dry_run: bool = False,
    reporter: Any = None,
    overwrite: bool = False,
) -> RunSummary:
    """Plan and run ``pipeline``; returns the summary (failed steps are in it, not raised).

    The step outputs are checked first (:func:`check_outputs`; ``overwrite`` lets existing outputs the pipeline did
    not write be replaced, never an input): nothing runs, and with ``dry_run`` nothing is printed as planned, when
    one is unsafe."""
    from . import dask as dask_exec
    from .progress import NullReporter, RunLog

    reporter = reporter or NullReporter()
    dask_exec.check_scheduler(scheduler)
    inner = "synchronous" if (scheduler or pipeline.spec.dask.scheduler) == "synchronous" else "threads"
    planned = plan(pipeline, from_step=from_step, restart=restart, inner_scheduler=inner, overwrite=overwrite)
    check_outputs(pipeline, planned, overwrite=overwrite)
    records = {
        p.task.key: StepRecord(
            p.task.key,
            p.task.entry,
            p.task.step,
            p.task.stage,
            p.task.output,
            p.action,
            p.reason,
            status="skipped" if p.action == "skip" else "pending",
            inputs=", ".join(f"{k}={v['ref']}" for k, v in p.task.inputs.items()),
        )
        for p in planned
    }
    out_dir = pipeline.output_dir
    if dry_run:
        return RunSummary(
            pipeline.name,
            os.fspath(out_dir),
            None,
            dask_exec.describe(pipeline.spec.dask, scheduler),
            list(records.values()),
            dry_run=True,
        )

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir), RunLog(out_dir / LOG_NAME) as runlog:
        to_run = [p for p in planned if p.action == "run"]
        runlog.info(f"pipeline {pipeline.name} ({pipeline.source}), sarpipe {__version__}, output {out_dir}")
        for p in planned:
            runlog.info(f"plan {p.task.key}: {p.action} ({p.reason})")
        backend = (
            dask_exec.open_backend(
                pipeline.spec.dask,
                scheduler,
                pipeline.spec.device,
                needs_gpu=any(p.task.resources.get("GPU") for p in to_run),
            )
            if to_run
            else None
        )
        desc = backend.description if backend else dask_exec.describe(pipeline.spec.dask, scheduler)
        runlog.info(f"executing on {desc}")
        reporter.start(planned, desc)
        try:
            _drive(planned, records, backend, reporter, runlog)
        except BaseException:  # e.g. Ctrl-C: do not wait for running steps (their outputs stay unpublished)
            runlog.error("interrupted")
            if backend is not None:
                backend.close(wait=False)
                backend = None
            raise
        finally:
            if backend is not None:
                backend.close()
            reporter.stop()
        summary = RunSummary(
            pipeline.name,
            os.fspath(out_dir),
            os.fspath(runlog.path),
            desc,
            list(records.values()),
            seconds=time.perf_counter() - t0,
        )
        runlog.info(
            f"finished in {summary.seconds:.2f} s: "
            + ", ".join(
                f"{sum(r.status == s for r in summary.records)} {s}" for s in ("done", "skipped", "failed", "not run")
            )
        )
    return summary


def _drive(
    planned: list[PlannedStep], records: dict[str, StepRecord], backend: Any, reporter: Any, runlog: Any
) -> None:
    """Submit steps whose inputs are ready; a failed step marks everything downstream of it 'not run'."""
    waiting = {p.task.key: p for p in planned if p.action == "run"}
    status = {k: r.status for k, r in records.items()}
    running: dict[Any, PlannedStep] = {}
    while waiting or running:
        for key, p in list(waiting.items()):
            dep_status = [status[d] for d in p.deps]
            if any(s in ("failed", "not run") for s in dep_status):
                bad = next(d for d in p.deps if status[d] in ("failed", "not run"))
                status[key] = records[key].status = "not run"
                records[key].error = f"upstream step {bad} did not finish"
                records[key].error_kind = records[bad].error_kind
                runlog.info(f"not run {key}: upstream step {bad} did not finish")
                reporter.finished(key, records[key])
                del waiting[key]
                continue
            if all(s in ("done", "skipped") for s in dep_status) and (
                backend.capacity is None or len(running) < backend.capacity
            ):
                fut = backend.submit(p.task)
                running[fut] = p
                status[key] = "running"
                del waiting[key]
                runlog.info(
                    f"start {key} (stage {p.task.stage}){' resources ' + str(p.task.resources) if p.task.resources else ''}"
                )
                reporter.started(key)
        if not running:
            if waiting:  # nothing can start: should not happen (deps are earlier steps)
                raise RuntimeError(f"pipeline stalled with {sorted(waiting)} waiting")
            break
        for fut in backend.wait_first(list(running)):
            p = running.pop(fut)
            res = backend.result(fut, p.task)
            rec = records[p.task.key]
            rec.status, rec.seconds, rec.error, rec.error_kind, rec.worker = (
                res.status,
                res.seconds,
                res.error,
                res.error_kind,
                res.worker,
            )
            status[p.task.key] = res.status
            for line in res.log:
                runlog.raw(f"    [{p.task.key}] {line}")
            if res.status == "done":
                runlog.info(f"done {p.task.key} in {res.seconds:.2f} s on {res.worker} -> {p.task.output}")
            else:
                runlog.error(f"FAILED {p.task.key} after {res.seconds:.2f} s: {res.error}")
                if res.traceback:
                    runlog.raw(res.traceback.rstrip())
            reporter.finished(p.task.key, rec)
