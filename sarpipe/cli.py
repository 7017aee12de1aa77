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
    config: Path = typer.Argument(..., help="Simulator configuration (YAML)."),
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
    raw: Path = typer.Argument(..., help="Raw-echo Zarr store."),
    output: Path = typer.Option(..., "-o", "--output", help="SLC Zarr store to write."),
    range_window: str = typer.Option("rect", help="rect | hamming:ALPHA | kaiser:BETA"),
    azimuth_window: str = typer.Option("rect", help="rect | hamming:ALPHA | kaiser:BETA"),
) -> None:
    """Focus raw echoes with the range-Doppler algorithm (Dask, persisted corner turn)."""
    from .focus import focus_zarr

    focus_zarr(raw, output, range_window=range_window, azimuth_window=azimuth_window)
    _echo_done(f"wrote {output}")


@app.command()
def defocus(
    slc: Path = typer.Argument(..., help="SLC Zarr store."),
    output: Path = typer.Option(..., "-o", "--output", help="Raw-echo Zarr store to write."),
) -> None:
    """Turn a focused SLC back into raw echoes (the exact inverse of `sarpipe focus`)."""
    from .focus import defocus_zarr

    defocus_zarr(slc, output)
    _echo_done(f"wrote {output}")


# ------------------------------------------------------------------------------------------ entry point


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) 0, 1 or 2."""
    try:
        app(args=argv, prog_name="sarpipe", standalone_mode=False)
        code = 0
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 2
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.ClickException as exc:  # usage errors
        exc.show()
        code = 2 if isinstance(exc, click.exceptions.UsageError) else exc.exit_code
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
