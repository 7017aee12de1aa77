"""Batch mode: one pipeline over many catalog entries.

A pipeline with ``batch: {entries: GLOB_OR_LIST}`` runs its steps once per matching catalog entry, with ``$entry``
in the steps' inputs standing for the entry and outputs under ``OUTPUT_DIR/ENTRY/``. All (entry, step) tasks go to
the same scheduler, so scenes run in parallel (threads, or across a cluster's workers); a failure stops only the
steps downstream of it in the same entry. This module turns the per-step records into per-entry outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .runner import RunSummary


@dataclass
class EntryOutcome:
    entry: str
    status: str  # "done" (all steps done or skipped) | "failed"
    seconds: float
    failed_step: str | None = None
    error: str | None = None


def entry_outcomes(summary: RunSummary) -> list[EntryOutcome]:
    """One outcome per batch entry, in plan order (empty for a pipeline without ``batch:``)."""
    order: list[str] = []
    by_entry: dict[str, list] = {}
    for r in summary.records:
        if r.entry is None:
            continue
        if r.entry not in by_entry:
            order.append(r.entry)
            by_entry[r.entry] = []
        by_entry[r.entry].append(r)
    out = []
    for e in order:
        recs = by_entry[e]
        failed = next((r for r in recs if r.status == "failed"), None)
        seconds = sum(r.seconds for r in recs)
        if failed is not None:
            out.append(EntryOutcome(e, "failed", seconds, failed.step, failed.error))
        elif any(r.status == "not run" for r in recs):
            r = next(r for r in recs if r.status == "not run")
            out.append(EntryOutcome(e, "failed", seconds, r.step, r.error))
        else:
            out.append(EntryOutcome(e, "done", seconds))
    return out


def batch_lines(summary: RunSummary) -> list[str]:
    """The batch part of the final summary: counts, then one line per failed entry naming step and error."""
    outcomes = entry_outcomes(summary)
    if not outcomes:
        return []
    ok = [o for o in outcomes if o.status == "done"]
    bad = [o for o in outcomes if o.status != "done"]
    lines = [f"batch: {len(ok)} of {len(outcomes)} entries finished" + (f", {len(bad)} failed" if bad else "")]
    for o in bad:
        first = (o.error or "").strip().splitlines()[0] if o.error else "unknown error"
        lines.append(f"  FAILED {o.entry} at step {o.failed_step}: {first}")
    return lines
