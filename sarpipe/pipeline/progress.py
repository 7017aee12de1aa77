"""Progress bars, the run log beside the outputs, and the final summary.

Bars (rich) show one row per step and, in a batch, a row for the scenes; they appear only on a terminal and not
with ``--quiet``. Every run writes ``OUTPUT_DIR/sarpipe-run.log`` (plan, each step's start and end, the stages'
own log lines, errors with tracebacks). The summary lists every step with its status, time and output.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from .batch import batch_lines
from .runner import PlannedStep, RunSummary, StepRecord


class RunLog:
    """Append-only run log (``sarpipe-run.log``) with UTC timestamps."""

    def __init__(self, path: Path):
        self.path = path
        self._fh: TextIO | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        self.raw("-" * 100)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None

    def raw(self, line: str) -> None:
        with self._lock:
            if self._fh:
                self._fh.write(line + "\n")
                self._fh.flush()

    def info(self, msg: str) -> None:
        self.raw(f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='milliseconds')} INFO {msg}")

    def error(self, msg: str) -> None:
        self.raw(f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='milliseconds')} ERROR {msg}")


class NullReporter:
    def start(self, planned: list[PlannedStep], backend: str) -> None: ...
    def started(self, key: str) -> None: ...
    def finished(self, key: str, record: StepRecord) -> None: ...
    def stop(self) -> None: ...


class RichReporter(NullReporter):
    """A bar per step (and one for the batch's scenes) on the terminal."""

    def __init__(self, stream: TextIO | None = None):
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr)
        self.progress = None

    def start(self, planned: list[PlannedStep], backend: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.console.print(f"[dim]running on {backend}[/dim]")
        self._rows: dict[str, Any] = {}
        entries = [p.task.entry for p in planned if p.task.entry is not None]
        self._batch = len(set(entries)) > 0
        self._left: dict[str, int] = {}
        for p in planned:
            if p.task.entry is not None and p.action == "run":
                self._left[p.task.entry] = self._left.get(p.task.entry, 0) + 1
        n_entries = len(dict.fromkeys(entries))
        if self._batch:
            done_entries = n_entries - len(self._left)
            self._scenes = self.progress.add_task("scenes", total=n_entries, completed=done_entries)
        self._stages = {p.task.key: p.task.stage for p in planned}
        for p in planned:
            if self._batch:
                continue  # a batch shows the scenes bar and the running steps only
            if p.action == "skip":
                self.progress.add_task(
                    f"[green]✓[/green] {p.task.key} [dim]({p.task.stage}) skipped: complete[/dim]", total=1, completed=1
                )

    def started(self, key: str) -> None:
        """A row per running step (a pulsing bar: a step reports no fraction done), added when it starts."""
        if self.progress is None:
            return
        self._rows[key] = self.progress.add_task(f"  {key} [dim]({self._stages.get(key, '')})[/dim]", total=None)

    def finished(self, key: str, record: StepRecord) -> None:
        if self.progress is None:
            return
        mark = {"done": "[green]✓[/green]", "failed": "[red]✗[/red]", "not run": "[yellow]-[/yellow]"}.get(
            record.status, " "
        )
        row = self._rows.get(key)
        note = f" {record.seconds:.1f} s" if record.status == "done" else f" [red]{record.status}[/red]"
        if row is None and record.status == "not run" and not self._batch:
            row = self._rows[key] = self.progress.add_task("", total=1)
        if row is not None:
            self.progress.update(
                row,
                total=1,
                completed=1,
                description=f"{mark} {key} [dim]({record.stage})[/dim]{note}",
                visible=not self._batch or record.status != "done",
            )
        if self._batch and record.entry in self._left:
            self._left[record.entry] -= 1  # failed steps' dependents report "not run", so this reaches 0
            if self._left[record.entry] == 0:
                self.progress.advance(self._scenes)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def make_reporter(quiet: bool, stream: TextIO | None = None) -> NullReporter:
    stream = stream or sys.stderr
    if quiet or not getattr(stream, "isatty", lambda: False)():
        return NullReporter()
    return RichReporter(stream)


# ------------------------------------------------------------------------------------------ summaries


def _fmt_seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 120 else f"{s / 60:.1f} min"


def _rel(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("../..") else path


def summary_lines(summary: RunSummary) -> list[str]:
    """Plain-text summary: one line per step (status, time, output), the batch outcome, where things are."""
    batch = any(r.entry is not None for r in summary.records)
    rows = []
    for r in summary.records:
        t = _fmt_seconds(r.seconds) if r.status in ("done", "failed") else "-"
        status = r.status if r.status != "skipped" else "skipped (complete)"
        rows.append([r.key, r.stage, status, t, _rel(r.output)])
    head = ["step", "stage", "status", "time", "output"]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    lines = [f"pipeline {summary.pipeline}: {'plan (dry run)' if summary.dry_run else 'summary'}"]
    lines.append(fmt.format(*head))
    lines += [fmt.format(*row) for row in rows]
    errors = [r for r in summary.records if r.status == "failed"]
    for r in errors:
        first = (r.error or "").strip().splitlines()
        lines.append(
            f"error in {r.key}"
            + (f" (inputs {r.inputs})" if r.inputs else "")
            + f": {first[0] if first else 'unknown'}"
        )
        lines += ["  " + line.strip() for line in first[1:21]]  # the problems a multi-line error lists
    if batch:
        lines += batch_lines(summary)
    n = {s: sum(r.status == s for r in summary.records) for s in ("done", "skipped", "failed", "not run")}
    lines.append(
        f"{n['done']} ran, {n['skipped']} skipped, {n['failed']} failed, {n['not run']} not run"
        f" in {_fmt_seconds(summary.seconds)} on {summary.backend}"
    )
    lines.append(f"outputs: {_rel(summary.output_dir)}/")
    if summary.log_file:
        lines.append(f"log: {_rel(summary.log_file)}")
    return lines


def plan_lines(summary: RunSummary) -> list[str]:
    """The dry-run plan: what would run and what would be skipped, and why."""
    rows = [[r.key, r.stage, r.action, r.reason, _rel(r.output)] for r in summary.records]
    head = ["step", "stage", "action", "why", "output"]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    n_run = sum(r.action == "run" for r in summary.records)
    lines = [f"pipeline {summary.pipeline}: plan (dry run, nothing is written)", fmt.format(*head)]
    lines += [fmt.format(*row) for row in rows]
    lines.append(
        f"would run {n_run} step(s), skip {len(rows) - n_run}, on {summary.backend}; outputs in {_rel(summary.output_dir)}/"
    )
    return lines


def print_summary(summary: RunSummary, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    lines = plan_lines(summary) if summary.dry_run else summary_lines(summary)
    stream.write("\n".join(lines) + "\n")
    stream.flush()
