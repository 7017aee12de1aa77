"""The ``sarpipe`` command line.

Exit status: 0 on success, 2 on bad input or usage (the message names file, variable, key or YAML line) and on a
refusal by the environment (full disk, read-only folder: one line naming the file), 130 when interrupted, 1 on an
internal error. The operation commands (simulate, focus, rfi detect|clean, export, report, train difnet|scorecam|samsnet|sr) are generated from their
operation's parameter model (:mod:`sarpipe.model_cli`), the same model their pipeline stage takes. Heavy modules (Dask, numba kernels, torch) are imported inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import typer

from .errors import InputError, environment_message
from .model_cli import CliParam, CommandSpec, LazyGroup, lazy_specs, register_lazy

try:  # typer >= 0.29 vendors its own click: its usage errors are not click's
    from typer._click.exceptions import ClickException as _TyperClickException
    from typer._click.exceptions import UsageError as _TyperUsageError
except ImportError:  # pragma: no cover - typer on plain click
    _TyperClickException, _TyperUsageError = click.exceptions.ClickException, click.exceptions.UsageError
try:
    from typer.exceptions import Abort as _TyperAbort
except ImportError:  # pragma: no cover
    _TyperAbort = click.exceptions.Abort

app = typer.Typer(
    name="sarpipe",
    help="SAR raw echoes to focused images, with RFI detection and cleanup.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)


def _echo_done(message: str) -> None:
    typer.echo(message, err=True)


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"sarpipe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the sarpipe version and exit."
    ),
) -> None:
    """SAR raw echoes to focused images, with RFI detection and cleanup."""


_OUTPUT_HELP = "Zarr store to write."
_OVERWRITE = CliParam(
    "overwrite",
    bool,
    typer.Option(
        False, "--overwrite", help="Replace an existing output that sarpipe did not write (an input is never replaced)."
    ),
)


def _output(help_text: str, required: bool = True) -> CliParam:
    return CliParam(
        "output",
        Path if required else Path | None,
        typer.Option(... if required else None, "-o", "--output", help=help_text),
    )


def _config_file(help_text: str) -> CliParam:
    """The YAML file argument of a command whose model field is ``config_file``."""
    return CliParam("config", Path, typer.Argument(..., metavar="CONFIG.yaml", help=help_text), field="config_file")


# ------------------------------------------------------------------------------------------ simulate / focus


def _run_simulate(params, *, config: Path, output: Path, overwrite: bool) -> None:
    from .console import announce, kernels_notice
    from .outputs import check_output
    from .simulate import load_config
    from .simulate.simulate_operation import simulate_store

    check_output(output, inputs=(config,), overwrite=overwrite)  # refuse before announcing any work
    cfg = load_config(config)
    announce(f"simulating {config} -> {output}")
    kernels_notice("sarpipe.simulate.kernels")
    ds = simulate_store(cfg, output, seed=params.seed, overwrite=overwrite, inputs=(config,))
    _echo_done(f"wrote {output} ({ds.sizes['azimuth']} pulses x {ds.sizes['range']} samples)")


register_lazy(
    "sarpipe",
    CommandSpec(
        name="simulate",
        stage="simulate",
        model=lambda: _import("sarpipe.simulate.simulate_operation", "SimulateParams"),
        run=_run_simulate,
        help="Simulate stripmap raw echoes (point targets, extended scenes, noise, RFI) into a raw Zarr store.",
        params=(
            _config_file("Simulator configuration (YAML)."),
            _output("Raw-echo Zarr store to write."),
            _OVERWRITE,
        ),
    ),
)


def _run_focus(params, *, raw: Path, output: Path, overwrite: bool) -> None:
    from .console import announce, dask_progress, kernels_notice
    from .focus.focus_operation import focus_store
    from .outputs import check_output

    check_output(output, inputs=(raw,), overwrite=overwrite)  # refuse before announcing any work
    announce(
        f"focusing {raw} -> {output} (range-Doppler{'' if params.variable == 'echo' else ', variable ' + params.variable})"
    )
    kernels_notice("sarpipe.focus.kernels")
    with dask_progress():
        focus_store(raw, output, params, overwrite=overwrite)
    _echo_done(f"wrote {output}")


register_lazy(
    "sarpipe",
    CommandSpec(
        name="focus",
        stage="focus",
        model=lambda: _import("sarpipe.focus.focus_operation", "FocusParams"),
        run=_run_focus,
        help="Focus raw echoes with the range-Doppler algorithm (Dask, persisted corner turn).",
        params=(
            CliParam("raw", Path, typer.Argument(..., metavar="RAW.zarr", help="Raw-echo Zarr store.")),
            _output("SLC Zarr store to write."),
            _OVERWRITE,
        ),
    ),
)


def _run_ingest(params, *, source: Path, output: Path | None, list_parts: bool, overwrite: bool) -> None:
    from .console import announce
    from .ingest import describe_parts, detect_format, ingest_store, read_parts

    if list_parts:
        fmt, parts = read_parts(params)
        typer.echo(f"{params.source}: {fmt.name}, {len(parts)} part(s)")
        for line in describe_parts(parts):
            typer.echo(line)
        return
    if output is None:
        raise InputError("give the store to write (or --list to see the parts)", where="--output")
    if not source.exists():
        raise InputError("no such file or folder", where=str(source))
    fmt = detect_format(Path(params.source), params.format)  # refuse a file of another type before announcing
    announce(f"ingesting {params.source} ({fmt.name}) -> {output}")
    written = ingest_store(output, params, overwrite=overwrite)
    _echo_done("wrote " + ", ".join(f"{p} ({k})" for k, p in written.items()))


register_lazy(
    "sarpipe",
    CommandSpec(
        name="ingest",
        stage="ingest",
        model=lambda: _import("sarpipe.ingest", "IngestParams"),
        run=_run_ingest,
        help="Ingest a real acquisition (Sentinel-1 Level-0, NISAR L0B, Sentinel-1 SLC; format detected) into "
        "contract stores: one part to OUT, several to OUT-<key>.zarr beside it.",
        params=(
            CliParam(
                "source", Path, typer.Argument(..., metavar="SOURCE", help="File or folder to ingest."), field="source"
            ),
            _output("Store to write (several parts: OUT-<key>.zarr beside it).", required=False),
            CliParam("list_parts", bool, typer.Option(False, "--list", help="Print the parts and write nothing.")),
            _OVERWRITE,
        ),
    ),
)


@app.command()
def defocus(
    slc: Path = typer.Argument(..., metavar="SLC.zarr", help="SLC Zarr store."),
    output: Path = typer.Option(..., "-o", "--output", help="Raw-echo Zarr store to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE.info.help),
) -> None:
    """Turn a focused SLC back into raw echoes (the exact inverse of `sarpipe focus`)."""
    from .focus.dask_focus import defocus_zarr

    defocus_zarr(slc, output, overwrite=overwrite)
    _echo_done(f"wrote {output}")


# ------------------------------------------------------------------------------------------ rfi

rfi_app = typer.Typer(
    help="RFI: detect it in the image, map it to the echo pulses, clean them.", no_args_is_help=True, cls=LazyGroup
)
app.add_typer(rfi_app, name="rfi")


def _run_rfi_clean(
    params, *, raw: Path, output: Path, slc: Path | None, detection: Path | None, image: Path | None, overwrite: bool
) -> None:
    from .console import announce, kernels_notice
    from .outputs import check_output
    from .rfi.chain_io import clean_store

    check_output(output, inputs=tuple(p for p in (raw, slc, detection) if p is not None), overwrite=overwrite)
    source = (
        f"detection {detection}" if detection else "detecting in " + (str(slc) if slc else "the image focused here")
    )
    announce(f"cleaning RFI in {raw} with {params.method} ({source}) -> {output}")
    kernels_notice("sarpipe.rfi.notch", "sarpipe.rfi.stft", "sarpipe.focus.kernels")
    summary = clean_store(
        raw, output, params, slc_path=slc, detection_path=detection, image_path=image, overwrite=overwrite
    )
    _echo_done(
        f"wrote {output}: {summary['n_rfi_pulses']} pulses cleaned in {len(summary['rfi_pulses'])} runs ({params.method})"
    )


register_lazy(
    "rfi",
    CommandSpec(
        name="clean",
        stage="clean_rfi",
        model=lambda: _import("sarpipe.rfi.chain_io", "CleanParams"),
        run=_run_rfi_clean,
        help="Detect RFI in the focused image, map it to pulses, clean only those pulses, write the cleaned raw store.",
        params=(
            CliParam("raw", Path, typer.Argument(..., metavar="RAW.zarr", help="Raw-echo Zarr store.")),
            _output("Cleaned raw Zarr store (echo, rfi_pulses, rfi_image_mask)."),
            CliParam(
                "slc", Path | None, typer.Option(None, "--slc", help="Focused image of RAW (default: focus it here).")
            ),
            CliParam(
                "detection",
                Path | None,
                typer.Option(
                    None,
                    "--detection",
                    help="RFI detection store of RAW (from `sarpipe rfi detect -o`); else detected here.",
                ),
            ),
            CliParam(
                "image",
                Path | None,
                typer.Option(None, "--image", help="Also write the re-focused cleaned image here."),
            ),
            _OVERWRITE,
        ),
    ),
)


def _run_rfi_detect(
    params, *, raw: Path, output: Path | None, slc: Path | None, json_out: Path | None, overwrite: bool
) -> None:
    import json

    from .rfi.chain_io import detect_store

    summary = detect_store(raw, output, params, slc_path=slc, json_path=json_out, overwrite=overwrite)
    typer.echo(json.dumps(summary, indent=2))
    if output is not None:
        _echo_done(f"wrote {output}")


register_lazy(
    "rfi",
    CommandSpec(
        name="detect",
        stage="detect_rfi",
        model=lambda: _import("sarpipe.rfi.chain_io", "DetectParams"),
        run=_run_rfi_detect,
        help="Detect RFI: print the flagged image lines and the echo pulses they map to (runs [start, stop)); with -o "
        "also write the detection store `sarpipe rfi clean --detection` reads.",
        params=(
            CliParam("raw", Path, typer.Argument(..., metavar="RAW.zarr", help="Raw-echo Zarr store.")),
            _output("RFI detection Zarr store to write (the detect_rfi stage's product).", required=False),
            CliParam(
                "slc", Path | None, typer.Option(None, "--slc", help="Focused image of RAW (default: focus it here).")
            ),
            CliParam(
                "json_out", Path | None, typer.Option(None, "--json", help="Write the detection summary as JSON here.")
            ),
            _OVERWRITE,
        ),
    ),
)


# ------------------------------------------------------------------------------------------ export, report


def _run_export(params, *, image: Path, output: Path, reference: Path | None, overwrite: bool) -> None:
    from .atomic import atomic_path
    from .export import export_image

    inputs = tuple(p for p in (image, reference) if p is not None)
    with atomic_path(output, overwrite=overwrite, inputs=inputs) as tmp:
        info = export_image(image, tmp, params, reference=reference)
    _echo_done(f"wrote {output}: " + ", ".join(info[k]["file"] for k in ("png", "geotiff") if k in info))


register_lazy(
    "sarpipe",
    CommandSpec(
        name="export",
        stage="export",
        model=lambda: _import("sarpipe.export", "ExportParams"),
        run=_run_export,
        help="Export an image: PNG quicklook (multilooked dB) and GeoTIFF in radar geometry (no georeferencing).",
        params=(
            CliParam("image", Path, typer.Argument(..., metavar="IMAGE.zarr", help="SLC or raw Zarr store.")),
            _output("Folder to write (STEM.png, STEM.tif, export.json)."),
            CliParam(
                "reference",
                Path | None,
                typer.Option(None, "--reference", help="Store whose quicklook sets the dB scale."),
            ),
            _OVERWRITE,
        ),
    ),
)


def _run_report(
    params,
    *,
    output: Path,
    interfered: Path,
    cleaned: Path | None,
    reference: Path | None,
    raw: Path | None,
    cleaned_raw: Path | None,
    overwrite: bool,
) -> None:
    import json

    from .atomic import atomic_path
    from .report import write_report

    stores = {
        k: v
        for k, v in (
            ("interfered", interfered),
            ("cleaned", cleaned),
            ("reference", reference),
            ("raw", raw),
            ("cleaned_raw", cleaned_raw),
        )
        if v is not None
    }
    with atomic_path(output, overwrite=overwrite, inputs=tuple(stores.values())) as tmp:
        result = write_report(tmp, params, stores=stores)
    shown = {k: v for k, v in result.items() if isinstance(v, (int, float)) or v is None}
    typer.echo(json.dumps(shown, indent=1))
    _echo_done(f"wrote {output}")


register_lazy(
    "sarpipe",
    CommandSpec(
        name="report",
        stage="report",
        model=lambda: _import("sarpipe.report", "ReportParams"),
        run=_run_report,
        help="RFI metrics (PSNR, ME, SIR before/after, pulse recall) and point-target analysis, as JSON and markdown.",
        params=(
            _output("Folder to write (metrics.json, report.md, comparison.png, point_targets_*/)."),
            CliParam("interfered", Path, typer.Option(..., "--interfered", help="Image before cleaning (SLC store).")),
            CliParam("cleaned", Path | None, typer.Option(None, "--cleaned", help="Image after cleaning.")),
            CliParam(
                "reference",
                Path | None,
                typer.Option(
                    None,
                    "--reference",
                    help="Image focused from the clean echo (`sarpipe focus --variable echo_clean`).",
                ),
            ),
            CliParam(
                "raw", Path | None, typer.Option(None, "--raw", help="Simulated raw store with the ground truth (rfi).")
            ),
            CliParam(
                "cleaned_raw", Path | None, typer.Option(None, "--cleaned-raw", help="Output of `sarpipe rfi clean`.")
            ),
            _OVERWRITE,
        ),
    ),
)


# ------------------------------------------------------------------------------------------ train

train_app = typer.Typer(help="Train learned cleanup methods (torch).", no_args_is_help=True, cls=LazyGroup)
app.add_typer(train_app, name="train")


def _check_training_folder(config: Path, output: Path) -> None:
    """The input rules only (never into or over the recipe; a writable folder): the training folder is its own
    judge of what it holds (a run of the same recipe is resumed or reused; anything else needs --overwrite)."""
    from .outputs import check_output

    check_output(output, inputs=(config,), overwrite=True)


def _echo_trained(weights: Any, steps: int, score: str, *, reused: bool = False) -> None:
    """The last line of a ``sarpipe train`` run: where the weights are, the steps, the validation ``score``."""
    done = "found the finished run of this recipe:" if reused else "wrote"
    _echo_done(f"{done} {weights} ({steps} steps{score})")


def _train_command(name: str, model: str, run: Any, help: str, *, folder: str) -> None:
    """Register ``sarpipe train NAME`` and its stage ``train_NAME``: a recipe (YAML) in, a training folder out
    (``folder`` says what it holds); ``model``: ``"module:Class"``, the parameter model both are generated from."""
    module, _, cls = model.partition(":")
    register_lazy(
        "train",
        CommandSpec(
            name=name,
            stage=f"train_{name}",
            model=lambda: _import(module, cls),
            run=run,
            help=help,
            params=(_config_file("Training recipe (YAML)."), _output(f"Training folder ({folder})."), _OVERWRITE),
        ),
    )


def _run_train_difnet(params, *, config: Path, output: Path, overwrite: bool) -> None:
    from .console import announce
    from .models.training import load_train_config, train_difnet

    _check_training_folder(config, output)
    cfg = load_train_config(params.config_file)
    announce(f"training DIFNet per {config} -> {output} ({cfg.steps} steps; a rerun on {output} resumes)")
    result = train_difnet(cfg, output, overwrite=overwrite)
    last = result.validation[-1] if result.validation else None
    score = f", validation PA {100 * last['pa']:.2f} % IoU {100 * last['iou']:.2f} %" if last else ""
    _echo_trained(result.weights, result.step, score)


_train_command(
    "difnet",
    "sarpipe.models.training:TrainDIFNetParams",
    _run_train_difnet,
    "Train DIFNet from a recipe (YAML): simulated spectrograms, validation PA/IoU, resumable checkpoints, "
    "log.jsonl; the weights land in OUTPUT/weights (use them with --method difnet --param weights=...).",
    folder="train_config.json, log.jsonl, checkpoints/, weights/",
)


def _run_train_scorecam(params, *, config: Path, output: Path, overwrite: bool) -> None:
    from .console import announce
    from .spectral.rfi_classifier import train_scorecam
    from .spectral.scorecam_training import load_scorecam_config

    _check_training_folder(config, output)
    cfg = load_scorecam_config(params.config_file)
    announce(
        f"training the Score-CAM multi-label RFI-kind classifier per {config} -> {output} "
        f"({cfg.train_samples} pulses, {cfg.steps} steps)"
    )
    result = train_scorecam(cfg, output, overwrite=overwrite)
    acc = result["validation_accuracy"]
    score = f", validation: every kind right on {100 * acc:.1f} % of pulses" if acc is not None else ""
    _echo_trained(result["weights"], cfg.steps, score, reused=result["reused"])


_train_command(
    "scorecam",
    "sarpipe.spectral.scorecam_training:TrainScoreCAMParams",
    _run_train_scorecam,
    "Train the Score-CAM denoiser's multi-label RFI-kind classifier from a recipe (YAML) on simulated pulses, with its "
    "class-general maps; the weights land in OUTPUT/weights (use them with --method scorecam "
    "--param weights=...).",
    folder="train_config.json, weights/",
)


def _run_train_samsnet(params, *, config: Path, output: Path, overwrite: bool) -> None:
    from .console import announce
    from .spectral.samsnet_training import load_samsnet_config, train_samsnet_rfi

    _check_training_folder(config, output)
    cfg = load_samsnet_config(params.config_file)
    announce(f"training Sams-Net (echo / RFI separation) per {config} -> {output} ({cfg.steps} steps)")
    result = train_samsnet_rfi(cfg, output, overwrite=overwrite)
    v = result["validation"]
    score = f", validation echo SDR {v['sdr_db']:.2f} dB, IoU {100 * v['iou']:.2f} %" if v else ""
    _echo_trained(result["weights"], cfg.steps, score, reused=result["reused"])


_train_command(
    "samsnet",
    "sarpipe.spectral.samsnet_training:TrainSamsNetParams",
    _run_train_samsnet,
    "Train Sams-Net to separate the radar echo from RFI, from a recipe (YAML) on simulated pulses; the "
    "weights land in OUTPUT/weights (use them with --method samsnet --param weights=...).",
    folder="train_config.json, log.jsonl, weights/",
)


def _run_train_sr(params, *, config: Path, output: Path, overwrite: bool) -> None:
    from .console import announce
    from .spectral.sr_training import load_sr_config, train_sr

    _check_training_folder(config, output)
    cfg = load_sr_config(params.config_file)
    announce(
        f"training the --sr {cfg.factor} network per {config} -> {output} "
        f"({cfg.train_samples} pulses, {cfg.steps} steps)"
    )
    result = train_sr(cfg, output, overwrite=overwrite)
    v = result["validation"] or {}
    score = (
        f", validation PSNR SR {v['psnr_sr']:.2f} dB vs interpolation {v['psnr_interpolation']:.2f} dB"
        if "psnr_sr" in v
        else ""
    )
    _echo_trained(result["weights"], cfg.steps, score, reused=result["reused"])


_train_command(
    "sr",
    "sarpipe.spectral.sr_training:TrainSRParams",
    _run_train_sr,
    "Train the SFSRNet-style SR network behind `rfi clean --sr F` from a recipe (YAML) on simulated pulses; "
    "the weights land in OUTPUT/weights.",
    folder="train_config.json, weights/",
)


def _import(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(module), name)


#: command path -> (its spec): every command generated from an operation's parameter model.
OPERATIONS = {
    f"{'' if group == 'sarpipe' else group + ' '}{name}": spec
    for group in ("sarpipe", "rfi", "train")
    for name, spec in lazy_specs(group).items()
}


# ------------------------------------------------------------------------------------------ pipelines, catalog


@app.command()
def run(
    pipeline: Path = typer.Argument(
        ..., metavar="PIPELINE.yaml", help="Pipeline file (YAML), e.g. pipelines/quickstart.yaml."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a key: steps.NAME.params.KEY=VALUE (repeatable; value read as YAML)."
    ),
    from_step: str | None = typer.Option(None, "--from-step", help="Rerun this step and every step listed after it."),
    restart: bool = typer.Option(False, "--restart", help="Rerun every step, ignoring complete outputs."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="threads | synchronous | local | tcp://HOST:PORT (overrides dask:)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate and print the plan (what would run or be skipped); write nothing."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars and no summary (errors only)."),
    catalog: Path | None = typer.Option(
        None, "--catalog", help="Data catalog file (default: the pipeline's catalog:, else ./data_catalog.yaml)."
    ),
    summary_json: Path | None = typer.Option(None, "--summary-json", help="Also write the run summary as JSON here."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing step outputs the pipeline did not write."
    ),
) -> None:
    """Run a pipeline: validate it, skip complete steps, run the rest (threads or a Dask cluster), summarise."""
    from .pipeline import cli_impl

    code = cli_impl.run(
        pipeline,
        sets=set_,
        from_step=from_step,
        restart=restart,
        scheduler=scheduler,
        dry_run=dry_run,
        quiet=quiet,
        catalog=catalog,
        summary_json=summary_json,
        overwrite=overwrite,
    )
    if code:
        raise typer.Exit(code)


@app.command()
def stages(
    name: str | None = typer.Argument(None, metavar="STAGE", help="Show only this stage."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List pipeline stages (built-in and plugins) with their inputs, output and parameters with defaults."""
    from .pipeline import cli_impl

    cli_impl.stages(name, as_json)


config_app = typer.Typer(help="Configuration helpers.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("template")
def config_template(
    stage: str = typer.Argument(..., metavar="STAGE", help="Stage name (see `sarpipe stages`)."),
    name: str | None = typer.Option(None, "--name", help="Step name to use in the template."),
) -> None:
    """Print a commented pipeline step for STAGE: every parameter with its default and meaning."""
    from .pipeline import cli_impl

    cli_impl.template(stage, name)


catalog_app = typer.Typer(help="The data catalog (data_catalog.yaml).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("list")
def catalog_list(
    catalog: Path | None = typer.Option(None, "--catalog", help="Catalog file (default ./data_catalog.yaml)."),
) -> None:
    """List catalog entries with kind, STAC metadata and location."""
    from .pipeline import cli_impl

    cli_impl.catalog_list(catalog)


@catalog_app.command("show")
def catalog_show(
    name: str = typer.Argument(..., metavar="NAME", help="Entry name."),
    catalog: Path | None = typer.Option(None, "--catalog", help="Catalog file (default ./data_catalog.yaml)."),
) -> None:
    """Show one catalog entry, where its data are, and how to use it in a pipeline."""
    from .pipeline import cli_impl

    cli_impl.catalog_show(name, catalog)


@catalog_app.command("search")
def catalog_search(
    name: str = typer.Argument(..., metavar="NAME", help="A remote entry (kind: remote)."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Most products to list (default: the query's limit, else 20)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a STAC FeatureCollection instead of the table."),
    catalog: Path | None = typer.Option(None, "--catalog", help="Catalog file (default ./data_catalog.yaml)."),
) -> None:
    """Run a remote entry's search: id, time, mode, polarisations, orbit, size, footprint of each product."""
    from .pipeline import cli_impl

    cli_impl.catalog_search(name, catalog, limit, as_json)


@catalog_app.command("fetch")
def catalog_fetch(
    target: str = typer.Argument(..., metavar="NAME|ID", help="A remote entry (all its search finds) or a product id."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Download folder (default: the entry's download_dir)."
    ),
    entry: str | None = typer.Option(None, "--entry", help="For a product ID: the remote entry whose provider to ask."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Most products to download (default: the query's limit)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    catalog: Path | None = typer.Option(None, "--catalog", help="Catalog file (default ./data_catalog.yaml)."),
) -> None:
    """Download products, verified (checksum, size), resuming partial downloads; credentials from the environment
    or ~/.netrc (see docs/catalog.md)."""
    from .pipeline import cli_impl

    cli_impl.catalog_fetch(target, catalog, output, entry, limit, quiet)


# ------------------------------------------------------------------------------------------ entry point


def _interrupted(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) 0, 1, 2 or 130 (interrupted)."""
    try:
        result = app(args=argv, prog_name="sarpipe", standalone_mode=False)
        code = result if isinstance(result, int) else 0  # click returns typer.Exit's code here instead of raising
        if code == 130:  # typer turns Ctrl-C into Exit(130)
            typer.echo("interrupted", err=True)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 2
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except (
        click.exceptions.ClickException,
        _TyperClickException,
    ) as exc:  # usage errors (click's or typer's own click)
        exc.show()
        code = 2 if isinstance(exc, (click.exceptions.UsageError, _TyperUsageError)) else exc.exit_code
    except (click.exceptions.Abort, _TyperAbort) as exc:
        if _interrupted(exc):
            typer.echo("interrupted", err=True)
            code = 130
        else:
            typer.echo("aborted", err=True)
            code = 1
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    except OSError as exc:
        message = environment_message(exc)
        if message is None:
            code = _internal_error(exc)
        else:
            typer.echo(f"error: {message}", err=True)
            code = 2
    except Exception as exc:  # noqa: BLE001
        code = _internal_error(exc)
    if argv is None:
        sys.exit(code)
    return code


def _internal_error(exc: BaseException) -> int:
    import traceback

    traceback.print_exc()
    typer.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
    return 1


if __name__ == "__main__":  # pragma: no cover
    main()
