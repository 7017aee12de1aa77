"""The ``sarpipe`` command line.

Exit status: 0 on success, 2 on bad input or usage (the message names file, variable, key or YAML line),
1 on an internal error. Heavy modules (Dask, numba kernels, torch) are imported inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click
import typer

from .errors import InputError

try:  # typer >= 0.29 vendors its own click: its usage errors are not click's
    from typer._click.exceptions import ClickException as _TyperClickException, UsageError as _TyperUsageError
except ImportError:  # pragma: no cover - typer on plain click
    _TyperClickException, _TyperUsageError = click.exceptions.ClickException, click.exceptions.UsageError

app = typer.Typer(
    name="sarpipe",
    help="SAR raw echoes to focused images, with RFI detection and cleanup.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _echo_done(message: str) -> None:
    typer.echo(message, err=True)


# ------------------------------------------------------------------------------------------ simulate / focus


@app.command()
def simulate(
    config: Path = typer.Argument(..., metavar="CONFIG.yaml", help="Simulator configuration (YAML)."),
    output: Path = typer.Option(..., "-o", "--output", help="Raw-echo Zarr store to write."),
) -> None:
    """Simulate stripmap raw echoes (point targets, extended scenes, noise, RFI) into a raw Zarr store."""
    from .model import save_dataset
    from .simulate import load_config, simulate as run_simulation

    cfg = load_config(config)
    ds = run_simulation(cfg)
    save_dataset(ds, output)
    _echo_done(f"wrote {output} ({ds.sizes['azimuth']} pulses x {ds.sizes['range']} samples)")


@app.command()
def focus(
    raw: Path = typer.Argument(..., metavar="RAW.zarr", help="Raw-echo Zarr store."),
    output: Path = typer.Option(..., "-o", "--output", help="SLC Zarr store to write."),
    range_window: str = typer.Option("rect", help="rect | hamming:ALPHA | kaiser:BETA"),
    azimuth_window: str = typer.Option("rect", help="rect | hamming:ALPHA | kaiser:BETA"),
    doppler_centroid: Optional[float] = typer.Option(
        None, help="Hz; default: the raw store's attribute, else estimated from the data"),
    azimuth_bandwidth: Optional[float] = typer.Option(
        None, help="processed Doppler band in Hz (default: attribute, else 0.886 * 2V / antenna_length, else PRF)"),
) -> None:
    """Focus raw echoes with the range-Doppler algorithm (Dask, persisted corner turn)."""
    from .focus import focus_zarr

    focus_zarr(raw, output, range_window=range_window, azimuth_window=azimuth_window,
               doppler_centroid=doppler_centroid, azimuth_bandwidth=azimuth_bandwidth)
    _echo_done(f"wrote {output}")


@app.command()
def defocus(
    slc: Path = typer.Argument(..., metavar="SLC.zarr", help="SLC Zarr store."),
    output: Path = typer.Option(..., "-o", "--output", help="Raw-echo Zarr store to write."),
) -> None:
    """Turn a focused SLC back into raw echoes (the exact inverse of `sarpipe focus`)."""
    from .focus import defocus_zarr

    defocus_zarr(slc, output)
    _echo_done(f"wrote {output}")


# ------------------------------------------------------------------------------------------ rfi

rfi_app = typer.Typer(help="RFI: detect it in the image, map it to the echo pulses, clean them.", no_args_is_help=True)
app.add_typer(rfi_app, name="rfi")


@rfi_app.command("clean")
def rfi_clean(
    raw: Path = typer.Argument(..., metavar="RAW.zarr", help="Raw-echo Zarr store."),
    output: Path = typer.Option(..., "-o", "--output", help="Cleaned raw Zarr store (echo, rfi_pulses, rfi_image_mask)."),
    method: str = typer.Option("notch", "--method", help="Cleanup method: notch | fnotch | esf | any registered one."),
    sr: Optional[float] = typer.Option(None, "--sr", help="Wrap the method with the registered super-resolution model at this factor."),
    param: list[str] = typer.Option([], "--param", help="Method parameter KEY=VALUE (repeatable), e.g. pfa=1e-4."),
    slc: Optional[Path] = typer.Option(None, "--slc", help="Focused image of RAW (default: focus it here)."),
    image: Optional[Path] = typer.Option(None, "--image", help="Also write the re-focused cleaned image here."),
) -> None:
    """Detect RFI in the focused image, map it to pulses, clean only those pulses, write the cleaned raw store."""
    from .rfi.commands import clean_store, parse_params

    summary = clean_store(raw, output, method=method, params=parse_params(param), sr=sr, slc_path=slc, image_path=image)
    _echo_done(f"wrote {output}: {summary['n_rfi_pulses']} pulses cleaned in {len(summary['rfi_pulses'])} runs ({method})")


@rfi_app.command("detect")
def rfi_detect(
    raw: Path = typer.Argument(..., metavar="RAW.zarr", help="Raw-echo Zarr store."),
    slc: Optional[Path] = typer.Option(None, "--slc", help="Focused image of RAW (default: focus it here)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the detection summary as JSON here."),
) -> None:
    """Detect RFI: print the flagged image lines and the echo pulses they map to (runs [start, stop))."""
    import json

    from .rfi.commands import detect_store

    typer.echo(json.dumps(detect_store(raw, slc, json_out), indent=2))


# ------------------------------------------------------------------------------------------ pipelines, catalog


@app.command()
def run(
    pipeline: Path = typer.Argument(..., metavar="PIPELINE.yaml", help="Pipeline file (YAML), e.g. pipelines/quickstart.yaml."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: steps.NAME.params.KEY=VALUE (repeatable; value read as YAML)."),
    from_step: Optional[str] = typer.Option(None, "--from-step", help="Rerun this step and every step listed after it."),
    restart: bool = typer.Option(False, "--restart", help="Rerun every step, ignoring complete outputs."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="threads | synchronous | local | tcp://HOST:PORT (overrides dask:)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and print the plan (what would run or be skipped); write nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars and no summary (errors only)."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", help="Data catalog file (default: the pipeline's catalog:, else ./data_catalog.yaml)."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the run summary as JSON here."),
) -> None:
    """Run a pipeline: validate it, skip complete steps, run the rest (threads or a Dask cluster), summarise."""
    from .pipeline import commands

    code = commands.run(pipeline, sets=set_, from_step=from_step, restart=restart, scheduler=scheduler, dry_run=dry_run,
                        quiet=quiet, catalog=catalog, summary_json=summary_json)
    if code:
        raise typer.Exit(code)


@app.command()
def stages(
    name: Optional[str] = typer.Argument(None, metavar="STAGE", help="Show only this stage."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List pipeline stages (built-in and plugins) with their inputs, output and parameters with defaults."""
    from .pipeline import commands

    commands.stages(name, as_json)


config_app = typer.Typer(help="Configuration helpers.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("template")
def config_template(
    stage: str = typer.Argument(..., metavar="STAGE", help="Stage name (see `sarpipe stages`)."),
    name: Optional[str] = typer.Option(None, "--name", help="Step name to use in the template."),
) -> None:
    """Print a commented pipeline step for STAGE: every parameter with its default and meaning."""
    from .pipeline import commands

    commands.template(stage, name)


catalog_app = typer.Typer(help="The data catalog (data_catalog.yaml).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("list")
def catalog_list(
    catalog: Optional[Path] = typer.Option(None, "--catalog", help="Catalog file (default ./data_catalog.yaml)."),
) -> None:
    """List catalog entries with kind, STAC metadata and location."""
    from .pipeline import commands

    commands.catalog_list(catalog)


@catalog_app.command("show")
def catalog_show(
    name: str = typer.Argument(..., metavar="NAME", help="Entry name."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", help="Catalog file (default ./data_catalog.yaml)."),
) -> None:
    """Show one catalog entry, where its data are, and how to use it in a pipeline."""
    from .pipeline import commands

    commands.catalog_show(name, catalog)


# ------------------------------------------------------------------------------------------ entry point


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) 0, 1 or 2."""
    try:
        result = app(args=argv, prog_name="sarpipe", standalone_mode=False)
        code = result if isinstance(result, int) else 0  # click returns typer.Exit's code here instead of raising
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 2
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except (click.exceptions.ClickException, _TyperClickException) as exc:  # usage errors (click's or typer's own click)
        exc.show()
        code = 2 if isinstance(exc, (click.exceptions.UsageError, _TyperUsageError)) else exc.exit_code
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        typer.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        code = 1
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
