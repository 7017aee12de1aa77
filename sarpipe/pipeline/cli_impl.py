"""The bodies of the pipeline commands (``sarpipe run``, ``stages``, ``config template``,
``catalog list|show|search|fetch``);
``sarpipe/cli.py`` declares the options and calls these."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError


def run(
    pipeline_file: Path,
    *,
    sets: list[str],
    from_step: str | None,
    restart: bool,
    scheduler: str | None,
    dry_run: bool,
    quiet: bool,
    catalog: Path | None,
    summary_json: Path | None = None,
    overwrite: bool = False,
) -> int:
    """Validate (every problem at once, nothing written), plan, run; print the summary. Returns the exit status."""
    from .progress import make_reporter, print_summary
    from .runner import run_pipeline
    from .schema import load_pipeline

    if from_step and restart:
        raise InputError("--from-step and --restart exclude each other (--restart reruns every step)")
    from ..atomic import atomic_path
    from ..outputs import PRODUCT_ATTR, check_output

    pipeline = load_pipeline(pipeline_file, sets=sets, catalog_path=os.fspath(catalog) if catalog else None)
    summary_inputs = tuple(p for p in (pipeline_file, catalog) if p is not None)
    if summary_json is not None:
        check_output(summary_json, inputs=summary_inputs, overwrite=overwrite, option="--summary-json")
    reporter = make_reporter(quiet or dry_run)
    summary = run_pipeline(
        pipeline,
        from_step=from_step,
        restart=restart,
        scheduler=scheduler,
        dry_run=dry_run,
        reporter=reporter,
        overwrite=overwrite,
    )
    if summary_json is not None:
        with atomic_path(summary_json, overwrite=overwrite, inputs=summary_inputs, option="--summary-json") as tmp:
            tmp.write_text(json.dumps({PRODUCT_ATTR: "run-summary", **summary.to_json()}, indent=1) + "\n")
    if not quiet or dry_run:
        print_summary(summary)
    elif summary.exit_code:
        from .progress import summary_lines

        lines, keep = [], False
        for line in summary_lines(summary):
            keep = line.startswith(("error", "  FAILED", "batch")) or (keep and line.startswith("  "))
            if keep:
                lines.append(line)
        sys.stderr.write("\n".join(lines) + "\n")
    return summary.exit_code


def _stage(name: str) -> Any:
    """The registered stage ``name``; an unknown one is bad input naming the known stages."""
    from .registry import REGISTRY

    try:
        return REGISTRY.get(name)
    except KeyError as exc:
        raise InputError(str(exc.args[0]) + f"; known stages: {', '.join(REGISTRY.names())}") from None


def _stage_text(stage: Any) -> list[str]:
    from .registry import describe_params

    lines = [f"{stage.name}  ({stage.origin})", f"  {stage.summary()}" if stage.summary() else ""]
    ins = (
        ", ".join(f"{s.name} ({'required' if s.required else 'optional'}: {'|'.join(s.kinds)})" for s in stage.inputs)
        or "none"
    )
    lines.append(f"  inputs: {ins}")
    lines.append(f"  output: {stage.output}" + (f" ({stage.output_suffix})" if stage.output_suffix else " (folder)"))
    if stage.resources:
        lines.append(f"  resources: {dict(stage.resources)}")
    params = describe_params(stage.params_model())
    if params:
        lines.append("  params:")
        w = max(len(p["name"]) for p in params)
        for p in params:
            default = "REQUIRED" if p["required"] else json.dumps(p["default"], default=str)
            if len(default) > 40:
                default = default[:37] + "..."
            lines.append(
                f"    {p['name']:<{w}}  {p['type']} = {default}"
                + (f"  -- {p['description']}" if p["description"] else "")
            )
    else:
        lines.append("  params: none")
    return [ln for ln in lines if ln != ""]


def stages(name: str | None, as_json: bool) -> None:
    """List stages (or one) with inputs, output and parameters with defaults."""
    from .registry import REGISTRY, describe_params

    chosen = [_stage(name)] if name is not None else REGISTRY.all()
    if as_json:
        out = [
            {
                "name": s.name,
                "origin": s.origin,
                "summary": s.summary(),
                "output": s.output,
                "resources": dict(s.resources),
                "inputs": [{"name": i.name, "kinds": list(i.kinds), "required": i.required} for i in s.inputs],
                "params": describe_params(s.params_model()),
            }
            for s in chosen
        ]
        sys.stdout.write(json.dumps(out, indent=1, default=str) + "\n")
        return
    blocks = ["\n".join(_stage_text(s)) for s in chosen]
    broken = REGISTRY.broken
    if broken and name is None:
        blocks.append("plugins that failed to load:\n" + "\n".join(f"  {k}: {v}" for k, v in broken.items()))
    sys.stdout.write("\n\n".join(blocks) + "\n")


def template(stage_name: str, step_name: str | None) -> None:
    import re

    from .registry import template as make
    from .schema import _STEP_NAME

    if step_name is not None and not re.match(_STEP_NAME, step_name):
        raise InputError(
            f"{step_name!r} is not a step name (a letter or '_', then letters, digits, '_', '-')", where="--name"
        )
    sys.stdout.write(make(_stage(stage_name), step_name))


def catalog_list(path: Path | None) -> None:
    from ..catalog import load_catalog

    cat = load_catalog(path)
    rows = []
    for name, e in cat.entries.items():
        pr = e.query if e.kind == "remote" and not e.properties.stac() else e.properties  # a search: what it asks for
        pols = ",".join(pr.polarizations or []) if pr.polarizations else ""
        rows.append([name, e.kind, pr.instrument_mode or "", pr.frequency_band or "", pols, e.location()])
    head = ["name", "kind", "sar:instrument_mode", "sar:frequency_band", "sar:polarizations", "location"]
    if not rows:
        sys.stdout.write(f"{cat.path}: no entries\n")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    sys.stdout.write("\n".join([fmt.format(*head)] + [fmt.format(*r) for r in rows]) + "\n")


def catalog_show(name: str, path: Path | None) -> None:
    from ..catalog import NOT_YET, load_catalog

    cat = load_catalog(path)
    e = cat.get(name)
    dumped = e.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"product"})
    data = {name: {"kind": dumped.pop("kind"), **dumped}}
    props = data[name].get("properties")
    if not props:
        data[name].pop("properties", None)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    notes = []
    p = cat.entry_path(name)
    if p is not None:
        notes.append(f"path: {p.resolve()} ({'exists' if p.exists() else 'MISSING'})")
    if e.kind in NOT_YET:
        notes.append(f"note: {NOT_YET[e.kind]}")
    elif e.kind == "remote":
        folder = cat.download_dir(name)
        try:
            notes.append(f"downloaded: {cat.downloaded_product(name)}")
            notes.append(f"use in a pipeline as: catalog:{name}  (the downloaded product)")
        except InputError:
            notes.append(f"search with: sarpipe catalog search {name}; download with: sarpipe catalog fetch {name}")
            notes.append(f"downloads go to: {folder}")
    else:
        notes.append(f"use in a pipeline as: catalog:{name}  (gives a {e.product} input)")
    sys.stdout.write(text + "\n".join(f"# {n}" for n in notes) + "\n")


def catalog_search(name: str, path: Path | None, limit: int | None, as_json: bool) -> None:
    from ..catalog import load_catalog
    from ..catalog_remote import commands

    records = commands.search(load_catalog(path), name, limit)
    commands.print_search(records, as_json)


def catalog_fetch(
    target: str, path: Path | None, output: Path | None, entry: str | None, limit: int | None, quiet: bool
) -> None:
    from ..catalog import load_catalog
    from ..catalog_remote import commands

    commands.fetch(load_catalog(path), target, output=output, entry=entry, limit=limit, quiet=quiet)
