"""Helpers shared by the pipeline tests: run the CLI in a subprocess, write pipelines, compare Zarr stores."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

PLUGINS = Path(__file__).resolve().parent
REPO = PLUGINS.parents[1]


def env(extra_path: list[str | os.PathLike] | None = None) -> dict[str, str]:
    e = dict(os.environ)
    parts = [os.fspath(p) for p in (extra_path or [])] + [os.fspath(PLUGINS)]
    if e.get("PYTHONPATH"):
        parts.append(e["PYTHONPATH"])
    e["PYTHONPATH"] = os.pathsep.join(parts)
    e.setdefault("NUMBA_CACHE_DIR", os.fspath(REPO / ".numba_cache"))
    return e


def sarpipe_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sarpipe.cli", *map(str, args)]


def run_cli(*args: str, cwd: os.PathLike, timeout: float = 300, extra_path=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        sarpipe_cmd(*args), cwd=cwd, env=env(extra_path), capture_output=True, text=True, timeout=timeout
    )


def run_here(capsys, monkeypatch, folder: os.PathLike, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (fast: no new interpreter) from ``folder``; returns (status, stdout, stderr)."""
    from sarpipe.cli import main

    monkeypatch.chdir(folder)
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def line_of(path: Path, needle: str, nth: int = 0) -> int:
    """1-based line number of the nth line containing ``needle``."""
    hits = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if needle in line]
    return hits[nth]


def assert_same_store(a: os.PathLike, b: os.PathLike) -> None:
    """Same variables with bit-identical values, same coords, same attrs apart from history time stamps."""
    import xarray as xr

    da, db = xr.open_zarr(a, consolidated=False), xr.open_zarr(b, consolidated=False)
    assert sorted(da.variables) == sorted(db.variables)
    for name in da.variables:
        x, y = np.asarray(da[name].values), np.asarray(db[name].values)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=f"{a} vs {b}: {name}")

    def strip(attrs):
        from sarpipe.model import RECORDS_ATTR, processing_records

        out = dict(attrs)
        out[RECORDS_ATTR] = [{k: v for k, v in rec.items() if k != "time"} for rec in processing_records(attrs)]
        return out

    assert strip(da.attrs) == strip(db.attrs)


SCENE = {
    "sensor": {"preset": "minisar"},
    "scene": {"n_azimuth": 256, "n_range": 384, "near_range": 1000.0},  # a swath of more than one chirp (360 samples)
    "noise": {"snr_db": 10},
}


def make_scenes(folder: Path, n: int = 4, corrupt: int | None = 2) -> list[str]:
    """Simulate ``n`` small raw scenes (one point target each, different seeds) as Zarr stores plus a
    ``data_catalog.yaml`` listing them as ``scene_1..n``; scene number ``corrupt`` gets a damaged echo chunk."""
    from sarpipe.model import save_dataset
    from sarpipe.simulate import simulate

    names = []
    lines = ["entries:"]
    for k in range(1, n + 1):
        cfg = dict(SCENE, targets=[{"azimuth_index": 100 + 10 * k, "range_index": 60 + 20 * k}], seed=k)
        path = folder / "scenes" / f"scene_{k}.zarr"
        save_dataset(simulate(cfg), path, chunks={"azimuth": 64})
        if k == corrupt:
            chunk = sorted(p for p in (path / "echo").rglob("*") if p.is_file() and p.name != "zarr.json")[1]
            chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 3])  # truncated, as by a failed copy
        names.append(f"scene_{k}")
        lines += [
            f"  scene_{k}:",
            "    kind: raw",
            f"    path: scenes/scene_{k}.zarr",
            "    properties: {sar:instrument_mode: SM, sar:frequency_band: X, sar:polarizations: [HH]}",
        ]
    (folder / "data_catalog.yaml").write_text("\n".join(lines) + "\n")
    return names


BATCH = """
output_dir: out
batch:
  entries: scene_*
steps:
  - name: slc
    stage: focus
    inputs: {raw: $entry}
  - name: quicklook
    stage: export
    inputs: {image: slc}
    params: {geotiff: none, max_size: 128}
"""
