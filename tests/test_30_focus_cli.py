"""`sarpipe focus` on bad input: exit status 2, a message naming the attribute or variable, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sarpipe.cli import main
from sarpipe.model import REQUIRED_ATTRS, open_slc, sar_dataset, save_dataset

ATTRS = {
    "carrier_frequency": 1.25e9,
    "range_sampling_rate": 100e6,
    "chirp_rate": 4e13,
    "pulse_duration": 2e-6,
    "prf": 100.0,
    "velocity": 200.0,
    "near_range": 10_000.0,
}


def _echo(n_az=32, n_rg=256, dtype=np.complex64):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n_az, n_rg)) + 1j * rng.standard_normal((n_az, n_rg))).astype(dtype)


def _run_focus(tmp_path: Path, ds, *extra: str) -> tuple[int, Path]:
    raw = tmp_path / "raw.zarr"
    save_dataset(ds, raw)
    out = tmp_path / "out" / "slc.zarr"
    code = main(["focus", str(raw), "-o", str(out), *extra])
    return code, out


def _nothing_written(tmp_path: Path) -> bool:
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".") or p.name.startswith("slc")]
    return not leftovers


@pytest.mark.parametrize("attr", sorted(REQUIRED_ATTRS))
def test_missing_attribute(tmp_path, capsys, attr):
    ds = sar_dataset(_echo(), ATTRS)
    del ds.attrs[attr]
    code, out = _run_focus(tmp_path, ds)
    assert code == 2
    assert f"attribute '{attr}'" in capsys.readouterr().err
    assert not out.exists() and _nothing_written(tmp_path)


@pytest.mark.parametrize(
    "case,expected",
    [
        ("wrong_dtype", "variable 'echo'"),
        ("nan", "variable 'echo'"),
        ("inf", "variable 'echo'"),
        ("empty_azimuth", "variable 'echo'"),
        ("empty_range", "variable 'echo'"),
        ("negative_prf", "attribute 'prf'"),
        ("no_echo", "variable 'echo'"),
        ("uneven_azimuth", "coordinate 'azimuth_time'"),
    ],
)
def test_bad_data(tmp_path, capsys, case, expected):
    attrs = dict(ATTRS)
    if case == "wrong_dtype":
        ds = sar_dataset(_echo(dtype=np.complex128), attrs)
    elif case in ("nan", "inf"):
        echo = _echo()
        echo[17, 99] = np.nan if case == "nan" else np.inf  # one bad sample, in the second range-pass block
        ds = sar_dataset(echo, attrs)
    elif case == "empty_azimuth":
        ds = sar_dataset(_echo(n_az=0), attrs)
    elif case == "empty_range":
        ds = sar_dataset(_echo(n_rg=0), attrs)
    elif case == "negative_prf":
        ds = sar_dataset(_echo(), {**attrs, "prf": 100.0})
        ds.attrs["prf"] = -100.0
    elif case == "uneven_azimuth":  # a missing pulse: the azimuth FFT needs steps of exactly 1/prf
        ds = sar_dataset(_echo(), attrs)
        t = ds["azimuth_time"].values.copy()
        t[10:] += 1.0 / attrs["prf"]
        ds = ds.assign_coords(azimuth_time=("azimuth", t))
    else:
        ds = sar_dataset(_echo(), attrs).rename({"echo": "pulses"})
    if case in ("nan", "inf"):
        import sarpipe.focus.dask_focus as streaming

        streaming_rows = streaming.RANGE_BLOCK_BYTES
        streaming.RANGE_BLOCK_BYTES = 8 * 256 * 8  # several range-pass tasks: the scan is really fused
        try:
            code, out = _run_focus(tmp_path, ds)
        finally:
            streaming.RANGE_BLOCK_BYTES = streaming_rows
    else:
        code, out = _run_focus(tmp_path, ds)
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err
    assert not out.exists() and _nothing_written(tmp_path)


def test_bad_window_is_a_usage_error(tmp_path, capsys):
    code, out = _run_focus(tmp_path, sar_dataset(_echo(), ATTRS), "--range-window", "hamming:3")
    assert code == 2
    assert "range window" in capsys.readouterr().err
    assert not out.exists() and _nothing_written(tmp_path)


def test_missing_store(tmp_path, capsys):
    assert main(["focus", str(tmp_path / "nope.zarr"), "-o", str(tmp_path / "slc.zarr")]) == 2
    assert "nope.zarr" in capsys.readouterr().err
    assert not (tmp_path / "slc.zarr").exists()


@pytest.mark.slow
def test_console_script_good_and_bad(tmp_path):
    script = Path(sys.executable).with_name("sarpipe")
    assert script.exists()
    good = tmp_path / "raw.zarr"
    save_dataset(sar_dataset(_echo(), {**ATTRS, "doppler_centroid": 5.0}), good)
    run = subprocess.run(
        [
            str(script),
            "focus",
            str(good),
            "-o",
            str(tmp_path / "slc.zarr"),
            "--azimuth-window",
            "hamming:0.75",
            "--doppler-centroid",
            "-12.5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    slc = open_slc(tmp_path / "slc.zarr")
    record = slc.attrs["processing_history"][-1]["params"]
    assert record["azimuth_window"] == "hamming:0.75"
    assert record["doppler_centroid"] == -12.5 and record["doppler_centroid_source"] == "argument"
    assert slc.attrs["doppler_centroid"] == -12.5
    bad = tmp_path / "bad.zarr"
    ds = sar_dataset(_echo(), ATTRS)
    del ds.attrs["velocity"]
    save_dataset(ds, bad)
    run = subprocess.run(
        [str(script), "focus", str(bad), "-o", str(tmp_path / "bad_slc.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "attribute 'velocity'" in run.stderr
    assert not (tmp_path / "bad_slc.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failure_in_the_azimuth_pass_leaves_nothing(tmp_path, monkeypatch):
    """An internal error after the corner turn exists (mid azimuth pass): exit status 1, no output, no temp."""
    import sarpipe.focus.dask_focus as streaming

    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated crash in the second range block")
        return real(*args, **kwargs)

    real = streaming.azimuth_block
    monkeypatch.setattr(streaming, "azimuth_block", broken)
    monkeypatch.setattr(streaming, "AZIMUTH_BLOCK_BYTES", 8 * 32 * 100)  # several range blocks
    raw = tmp_path / "raw.zarr"
    save_dataset(sar_dataset(_echo(), ATTRS), raw)
    out = tmp_path / "slc.zarr"
    assert main(["focus", str(raw), "-o", str(out)]) == 1
    assert len(calls) >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.zarr"]


def test_truncated_chunk_is_bad_input_naming_the_store(tmp_path, capsys):
    raw = tmp_path / "raw.zarr"
    save_dataset(sar_dataset(_echo(64, 256), ATTRS), raw, chunks={"azimuth": 16, "range": 256})
    chunk = raw / "echo" / "c" / "2" / "0"
    chunk.write_bytes(chunk.read_bytes()[:1000])  # a copy cut short
    out = tmp_path / "out" / "slc.zarr"
    assert main(["focus", str(raw), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "raw.zarr" in err and "truncated" in err
    assert not out.exists() and _nothing_written(tmp_path)
