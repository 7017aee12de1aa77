"""Peak memory and time of the streaming RFI clean step against focusing the same scene, each in a fresh process.

    .venv/bin/python benchmarks/rfi_clean_memory.py --size 16384                 # the issue-13 scene (2 GiB)
    .venv/bin/python benchmarks/rfi_clean_memory.py --size 4096 --in-memory      # quick, with the in-memory chain

The raw scene (complex Gaussian noise of unit power per component, plus two narrowband RFI bursts of amplitude 3,
about -10 dB SIR against the noise) is generated chunk by chunk straight into Zarr (1024-line chunks, the
simulator's layout), never held in memory. The detection product is written from the bursts' true pulses (the
detector itself needs the focused image in memory: issue 13's streamed detection is not done), so what is measured
is the clean step alone: ``sarpipe rfi clean RAW --detection DET -o OUT --method notch``. In the same run
``sarpipe focus RAW -o SLC`` (which streams) is measured the same way, and with ``--in-memory`` the in-memory chain
(``sarpipe.rfi.clean.clean`` on the loaded scene, then ``save_dataset``) as well. Peak memory is the
``ru_maxrss`` of the measured command's process tree (``resource.getrusage(RUSAGE_CHILDREN)`` in a wrapper process
that runs nothing else), so children are included. Prints one JSON line per measurement and a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ATTRS = {  # sentinel1_sm-like stripmap parameters (as benchmarks/focus.py)
    "carrier_frequency": 5.405e9,
    "range_sampling_rate": 100.0e6,
    "chirp_rate": 87.6e6 / 40.0e-6,
    "pulse_duration": 40.0e-6,
    "prf": 1700.0,
    "velocity": 7100.0,
    "near_range": 850_000.0,
    "antenna_length": 12.3,
    "doppler_centroid": 120.0,
}
RFI_AMPLITUDE = 3.0
#: two bursts, as fractions of the scene's pulses, each a tone at this fraction of the sampling rate
BURSTS = ((0.20, 0.235, 0.11), (0.62, 0.65, -0.27))


def burst_pulses(n_az: int) -> list[tuple[int, int, float]]:
    """``(first, stop, tone frequency / fs)`` of each RFI burst of an ``n_az``-pulse scene."""
    return [(int(a * n_az), int(b * n_az), f) for a, b, f in BURSTS]


def write_scene(path: Path, n_az: int, n_rg: int, *, rows: int = 1024, seed: int = 0) -> np.ndarray:
    """Write the raw store (see the module docstring) one chunk of ``rows`` pulses at a time; returns the true RFI
    pulses (bool per pulse)."""
    import dask.array as da

    from sarpipe.focus.chunkio import ChunkedArray
    from sarpipe.model import sar_dataset, save_dataset

    rows = min(rows, n_az)
    template = sar_dataset(da.zeros((n_az, n_rg), dtype=np.complex64, chunks=(rows, n_rg)), ATTRS)
    save_dataset(template, path, compute=False)
    echo = ChunkedArray(path / "echo")
    assert echo.fast and echo.chunks == (rows, n_rg)
    rng = np.random.default_rng(seed)
    flags = np.zeros(n_az, bool)
    samples = np.arange(n_rg)
    for a0 in range(0, n_az, rows):
        a1 = min(n_az, a0 + rows)
        block = rng.standard_normal((a1 - a0, 2 * n_rg), dtype=np.float32).view(np.complex64)
        for b0, b1, f in burst_pulses(n_az):
            lo, hi = max(a0, b0), min(a1, b1)
            if lo < hi:
                tone = (RFI_AMPLITUDE * np.exp(2j * np.pi * f * samples)).astype(np.complex64)
                block[lo - a0 : hi - a0] += tone
                flags[lo:hi] = True
        echo.write(a0, 0, block)
    return flags


def write_detection(path: Path, raw_path: Path, flags: np.ndarray) -> None:
    """A detection product (:mod:`sarpipe.rfi.detection`) that flags the pulses ``flags`` and, in the image mask,
    the same lines over the whole swath (a stand-in for the detector, which needs the focused image in memory)."""
    from sarpipe.model import open_raw
    from sarpipe.rfi.clean import RFIDetection
    from sarpipe.rfi.detect import ImageDetection
    from sarpipe.rfi.detection import save_detection
    from sarpipe.rfi.pulses import PulseMapping, aperture_geometry, processed_bandwidth
    from sarpipe.sensor import SensorParams

    raw = open_raw(raw_path, check_values=False)
    n_az, n_rg = raw["echo"].shape
    mask = np.zeros((n_az, n_rg), bool)
    mask[flags] = True
    nan = np.full(n_az, np.nan, np.float32)
    image = ImageDetection(
        lines=flags, mask=mask, z=nan, z_floor=nan, z_spectrum=nan, threshold=float("inf"), params={"truth": True}
    )
    geom = aperture_geometry(
        SensorParams.from_attrs(raw.attrs), float(raw["slant_range"].values[-1]), processed_bandwidth(raw.attrs)
    )
    mapping = PulseMapping(
        pulses=flags, candidates=flags, samples=np.ones(n_rg, bool), geometry=geom, params={"truth": True}
    )
    save_detection(
        RFIDetection(image, mapping, None),
        path,
        attrs=raw.attrs,
        coords=raw.coords,
        params={"truth": True},
        inputs=(raw_path,),
    )


def measure(cmd: list[str]) -> dict:
    """Run ``cmd`` in a wrapper process: wall time, CPU time and peak RSS of its process tree."""
    wrapper = [sys.executable, __file__, "--measure-child", "--", *cmd]
    res = subprocess.run(wrapper, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _measure_child(cmd: list[str]) -> None:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        sys.exit(res.returncode)
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = use.ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"wall_s": wall, "cpu_s": use.ru_utime + use.ru_stime, "peak_rss_bytes": peak}))


IN_MEMORY = """
import sys
from sarpipe.model import load_dataset, save_dataset
from sarpipe.rfi.clean import clean
from sarpipe.rfi.detection import open_detection
raw = load_dataset(sys.argv[1], "raw")
save_dataset(clean(raw, "notch", detection=open_detection(sys.argv[2])).raw, sys.argv[3])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=16384, help="pulses = range samples of the square scene")
    ap.add_argument("--in-memory", action="store_true", help="also measure the in-memory chain (needs ~3x the scene)")
    ap.add_argument("--batch-pulses", type=int, default=256, help="the clean step's batch (CleanParams.batch_pulses)")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    n = args.size
    work = Path(tempfile.mkdtemp(prefix="rfi_clean_mem_", dir=args.workdir))
    env_py = [sys.executable, "-m", "sarpipe.cli"]
    try:
        raw, det = work / "raw.zarr", work / "det.zarr"
        t0 = time.perf_counter()
        flags = write_scene(raw, n, n)
        write_detection(det, raw, flags)
        scene = n * n * 8
        print(
            f"scene {n} x {n} complex64 = {scene / 2**30:.2f} GiB, {flags.sum()} RFI pulses in "
            f"{len(BURSTS)} bursts; generated in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        runs = {
            "rfi clean --method notch": [
                *env_py,
                "rfi",
                "clean",
                str(raw),
                "--detection",
                str(det),
                "-o",
                str(work / "clean.zarr"),
                "--method",
                "notch",
                "--batch-pulses",
                str(args.batch_pulses),
            ],
            "focus": [*env_py, "focus", str(raw), "-o", str(work / "slc.zarr")],
        }
        if args.in_memory:
            runs["in-memory clean() + save_dataset"] = [
                sys.executable,
                "-c",
                IN_MEMORY,
                str(raw),
                str(det),
                str(work / "clean_mem.zarr"),
            ]
        results = {}
        for name, cmd in runs.items():
            r = measure(cmd)
            results[name] = r
            print(json.dumps({"step": name, "size": n, **r}), flush=True)
        if args.in_memory:
            import xarray as xr

            a = xr.open_zarr(work / "clean.zarr")["echo"]
            b = xr.open_zarr(work / "clean_mem.zarr")["echo"]
            same = all(
                np.array_equal(a[i : i + 1024].values.view(np.uint64), b[i : i + 1024].values.view(np.uint64))
                for i in range(0, n, 1024)
            )
            print(f"streamed echo identical to the in-memory chain's: {same}")
        focus = results["focus"]
        for name, r in results.items():
            print(
                f"{name:36s} {r['wall_s']:8.1f} s ({r['wall_s'] / focus['wall_s']:.2f} x focus)  "
                f"peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB ({r['peak_rss_bytes'] / scene:.2f} x scene)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--measure-child" and sys.argv[2] == "--":
        _measure_child(sys.argv[3:])
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        main()
