"""Focusing speed and memory: prints the figures that docs/benchmarks.md quotes.

    .venv/bin/python benchmarks/focus.py --size 8192 --big 16384      # full run (minutes)
    .venv/bin/python benchmarks/focus.py --size 4096 --big 0 --reference-size 1024 --repeat 1  # quick check (a swath of more than one 4001-sample chirp)

Measured in the same run, on the same machine:
- FFT floor: the four full-array FFT passes (range FFT, range IFFT, azimuth FFT, azimuth IFFT) of the in-memory
  complex64 scene with scipy.fft and the same thread count that focusing uses, at the scene size (what a
  circular RDA needs); also shown, the same with the range FFTs at the linear correlation's length (>= N + M,
  5-smooth: what a linear RDA needs), for reference only: the ratios quoted are against the first;
- in-memory focusing (``sarpipe.focus.rda.focus_array``: range compression, Doppler centroid, RCMC, azimuth
  compression), with its CPU utilisation (process CPU time / wall time, psutil);
- end-to-end Zarr -> Zarr (``focus_zarr``: reads the raw store, persisted corner turn, writes the SLC store);
- a straightforward numpy RDA (numpy.fft, a Python loop over Doppler rows, per-tap vector operations) on a
  smaller scene, scaled to the full size by N^2 log2 N;
- peak memory (RSS sampled every 20 ms, in a fresh process) of ``focus_zarr`` on a ``--big`` scene generated
  chunk-wise straight into Zarr.
Scene: Sentinel-1 stripmap-like parameters (the simulator's ``sentinel1_sm`` preset), complex Gaussian raw data
(the content does not change the work; the processed Doppler band is the preset's 0.886 * 2V / L_a).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import scipy.fft

S1_RAW_RATE = 41.5  # Msamples/s per polarisation (Sentinel-1 real-time raw data rate)

ATTRS = {  # sentinel1_sm preset (sarpipe.simulate.presets), plus its processed Doppler band
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
ATTRS["azimuth_bandwidth"] = 0.886 * 2 * ATTRS["velocity"] / ATTRS["antenna_length"]


def random_scene(n_az: int, n_rg: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n_az, n_rg), np.complex64)
    step = max(1, (16 << 20) // (8 * n_rg))
    for a in range(0, n_az, step):
        b = min(n_az, a + step)
        block = rng.standard_normal((b - a, 2 * n_rg), dtype=np.float32)
        out[a:b] = block.view(np.complex64)
    return out


class CpuMeter:
    """Wall time, process CPU time and their ratio over a ``with`` block."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.cpu0 = sum(self.proc.cpu_times()[:2])
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.cpu = sum(self.proc.cpu_times()[:2]) - self.cpu0
        self.util = self.cpu / self.wall


def fft_floor(data: np.ndarray, workers: int, range_length: int | None = None) -> float:
    """Time of the four full-array FFT passes, in place on ``data`` (its content is destroyed); with
    ``range_length`` the range FFT zero-pads to it and the range IFFT's output is cropped back."""
    t0 = time.perf_counter()
    if range_length is None:
        a = scipy.fft.fft(data, axis=1, workers=workers, overwrite_x=True)
        a = scipy.fft.ifft(a, axis=1, workers=workers, overwrite_x=True)
    else:
        a = scipy.fft.fft(data, n=range_length, axis=1, workers=workers)
        a = scipy.fft.ifft(a, axis=1, workers=workers, overwrite_x=True)[:, : data.shape[1]]
        data[:] = a
        a = data
    a = scipy.fft.fft(a, axis=0, workers=workers, overwrite_x=True)
    scipy.fft.ifft(a, axis=0, workers=workers, overwrite_x=True)
    return time.perf_counter() - t0


def numpy_rda(echo: np.ndarray, attrs: dict, taps: int, beta: float) -> np.ndarray:
    """A straightforward range-Doppler algorithm in numpy (complex64 data, float64 filters)."""
    c = 299_792_458.0
    f0, fs, kr, tp, prf, v, r_near = (
        attrs[k]
        for k in (
            "carrier_frequency",
            "range_sampling_rate",
            "chirp_rate",
            "pulse_duration",
            "prf",
            "velocity",
            "near_range",
        )
    )
    f_dc, band = attrs["doppler_centroid"], attrs["azimuth_bandwidth"]
    n_az, n_rg = echo.shape
    dr = c / (2 * fs)
    half = int(tp * fs / 2)
    n = np.arange(-half, half + 1)
    replica = np.zeros(n_rg, complex)
    replica[n % n_rg] = np.exp(1j * np.pi * kr * (n / fs) ** 2)
    matched = np.conj(np.fft.fft(replica)).astype(np.complex64)
    data = np.fft.ifft(np.fft.fft(echo, axis=1) * matched, axis=1).astype(np.complex64)
    data = np.fft.fft(data, axis=0).astype(np.complex64)
    f_k = np.fft.fftfreq(n_az, 1 / prf)
    f_eta = f_dc + np.mod(f_k - f_dc + prf / 2, prf) - prf / 2
    d = np.sqrt(1 - (c / f0 * f_eta / (2 * v)) ** 2)
    ranges = r_near + np.arange(n_rg) * dr
    for k in range(n_az):
        if abs(f_eta[k] - f_dc) > band / 2:
            data[k] = 0
            continue
        position = (ranges / d[k] - r_near) / dr
        i0 = np.floor(position).astype(int)
        frac = position - i0
        acc = np.zeros(n_rg, np.complex64)
        total = np.zeros(n_rg)
        for t in range(taps):
            dist = frac + taps // 2 - 1 - t
            w = np.sinc(dist) * np.i0(beta * np.sqrt(np.clip(1 - (dist / (taps / 2)) ** 2, 0, None))) / np.i0(beta)
            acc += (w * data[k, (i0 - taps // 2 + 1 + t) % n_rg]).astype(np.complex64)
            total += w
        data[k] = acc / total * np.exp(4j * np.pi * f0 * ranges * (d[k] - 1) / c + 1j * np.pi / 4)
    return np.fft.ifft(data, axis=0).astype(np.complex64)


def write_raw_store(path: Path, n_az: int, n_rg: int, rows: int) -> None:
    """A raw store written chunk by chunk (never the whole scene in memory)."""
    import dask.array as da

    from sarpipe.model import sar_dataset

    template = sar_dataset(da.zeros((n_az, n_rg), dtype=np.complex64, chunks=(rows, n_rg)), ATTRS)
    template.to_zarr(
        path,
        mode="w-",
        zarr_format=3,
        consolidated=False,
        compute=False,
        encoding={"echo": {"chunks": (rows, n_rg), "compressors": None}},
    )
    import zarr

    arr = zarr.open_array(store=str(path), path="echo", mode="r+")
    for a in range(0, n_az, rows):
        b = min(n_az, a + rows)
        arr[a:b] = random_scene(b - a, n_rg, seed=a)


def memory_run(raw: str, out: str) -> None:
    """Child process: focus_zarr with RSS sampled every 20 ms; prints a JSON line."""
    from sarpipe.focus import focus_zarr

    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    base = proc.memory_info().rss
    with CpuMeter() as m:
        focus_zarr(raw, out)
    stop.set()
    th.join()
    print(json.dumps({"wall": m.wall, "cpu_util": m.util, "peak_rss": peak[0], "baseline_rss": base}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8192, help="N for the N x N speed scene")
    ap.add_argument("--big", type=int, default=16384, help="N for the memory scene (0: skip)")
    ap.add_argument("--reference-size", type=int, default=2048, help="N for the numpy RDA (scaled to --size)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (the minimum is reported)")
    ap.add_argument("--workdir", default=None, help="folder for the Zarr stores (default: a temp dir)")
    ap.add_argument("--memory-run", nargs=2, metavar=("RAW", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_run:
        memory_run(*args.memory_run)
        return

    from sarpipe.focus.range_compression import default_workers, range_fft_length
    from sarpipe.focus.rda import focus_array, resolve_settings
    from sarpipe.model import sar_dataset, save_dataset
    from sarpipe.sensor import SensorParams

    n = args.size
    workers = default_workers()
    print(f"machine: {psutil.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; FFT threads {workers}")
    print(
        f"scene {n} x {n} complex64 ({n * n * 8 / 2**30:.2f} GiB), S1 stripmap-like, processed Doppler band "
        f"{ATTRS['azimuth_bandwidth']:.0f} of {ATTRS['prf']:.0f} Hz"
    )
    echo = random_scene(n, n)
    geom = SensorParams.from_attrs(ATTRS)
    settings = resolve_settings(geom)
    focus_array(echo[:256, :512].copy(), geom, settings)  # compile / warm

    linear_length = range_fft_length(geom, n, "linear", replica_only=True)
    hamming = resolve_settings(geom, range_window="hamming:0.75")
    focus_array(echo[:256, :512].copy(), geom, hamming)
    floors, floor_utils, computes, utils, linear_floors, tapered = [], [], [], [], [], []
    scratch = np.empty_like(echo)
    for _ in range(args.repeat):
        np.copyto(scratch, echo)
        with CpuMeter() as m:
            floors.append(fft_floor(scratch, workers))
        floor_utils.append(m.util)
        with CpuMeter() as m:
            slc, used = focus_array(echo, geom, settings)
        computes.append(m.wall)
        utils.append(m.util)
        del slc
        np.copyto(scratch, echo)
        linear_floors.append(fft_floor(scratch, workers, linear_length))
        t0 = time.perf_counter()
        slc, _ = focus_array(echo, geom, hamming)
        tapered.append(time.perf_counter() - t0)
        del slc
    del scratch
    floor, compute = min(floors), min(computes)
    rate = n * n / compute / 1e6
    print(
        f"FFT floor (4 passes)          {floor:8.3f} s   CPU utilisation {max(floor_utils):.2f} "
        f"(all: {', '.join(f'{x:.3f}' for x in floors)})"
    )
    print(
        f"focus in memory               {compute:8.3f} s   = {compute / floor:.2f} x floor; CPU utilisation "
        f"{max(utils):.2f} of {psutil.cpu_count()} (all: {', '.join(f'{x:.3f}' for x in computes)})"
    )
    print(
        f"FFT floor, linear range length {linear_length}: {min(linear_floors):.3f} s (for reference: "
        f"{min(linear_floors) / floor:.2f} x floor; focus = {compute / min(linear_floors):.2f} x it)"
    )
    print(
        f"focus, hamming:0.75 range      {min(tapered):8.3f} s   = {min(tapered) / floor:.2f} x floor (a tapered window "
        f"keeps the full correlation length {range_fft_length(geom, n, 'linear')})"
    )
    print(
        f"  throughput {rate:.1f} Msamples/s = {rate / S1_RAW_RATE:.2f} x Sentinel-1 real-time raw rate "
        f"({S1_RAW_RATE} Msamples/s per polarisation)"
    )

    # straightforward numpy RDA on a smaller scene, scaled by N^2 log N
    from sarpipe.focus.rcmc import kernel_design

    m_ref = min(args.reference_size, n)
    taps, beta, _ = kernel_design(min(1.0, geom.chirp_bandwidth / geom.range_sampling_rate))
    small = echo[:m_ref, :m_ref].copy()
    # same chirp band, pulse shortened to fit the small swath (the work does not depend on the pulse length)
    tp = min(ATTRS["pulse_duration"], 0.45 * m_ref / ATTRS["range_sampling_rate"])
    small_attrs = {**ATTRS, "pulse_duration": tp, "chirp_rate": ATTRS["chirp_rate"] * ATTRS["pulse_duration"] / tp}
    t0 = time.perf_counter()
    numpy_rda(small, small_attrs, taps, beta)
    t_ref = time.perf_counter() - t0
    scale = (n * n * math.log2(n)) / (m_ref * m_ref * math.log2(m_ref))
    small_geom = SensorParams.from_attrs(small_attrs)
    small_settings = resolve_settings(small_geom)
    focus_array(small[:64].copy(), small_geom, small_settings)
    t0 = time.perf_counter()
    focus_array(small, small_geom, small_settings)
    t_small = time.perf_counter() - t0
    print(
        f"numpy RDA {m_ref}x{m_ref}            {t_ref:8.3f} s   (sarpipe on the same: {t_small:.3f} s, "
        f"{t_ref / t_small:.1f} x faster); scaled to {n}x{n} by N^2 log N: {t_ref * scale:.1f} s = "
        f"{t_ref * scale / compute:.1f} x sarpipe in memory"
    )

    # end to end, Zarr -> Zarr
    work = Path(args.workdir or tempfile.mkdtemp(prefix="sarpipe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        raw_path = work / "raw.zarr"
        save_dataset(sar_dataset(echo, ATTRS), raw_path, chunks={"azimuth": max(1, (32 << 20) // (8 * n))})
        del echo
        from sarpipe.focus import focus_zarr

        e2e = []
        for i in range(max(1, args.repeat - 1)):
            with CpuMeter() as m:
                focus_zarr(raw_path, work / f"slc{i}.zarr")
            e2e.append((m.wall, m.util))
            shutil.rmtree(work / f"slc{i}.zarr")
        wall, util = min(e2e)
        print(
            f"focus_zarr Zarr -> Zarr       {wall:8.3f} s   = {wall / floor:.2f} x floor; CPU utilisation "
            f"{util:.2f}; {n * n / wall / 1e6:.1f} Msamples/s = {n * n / wall / 1e6 / S1_RAW_RATE:.2f} x S1 raw rate"
        )
        shutil.rmtree(raw_path)

        if args.big:
            big = args.big
            rows = max(1, (32 << 20) // (8 * big))
            raw_big = work / "raw_big.zarr"
            t0 = time.perf_counter()
            write_raw_store(raw_big, big, big, rows)
            print(
                f"big scene {big} x {big} ({big * big * 8 / 2**30:.2f} GiB) written chunk-wise in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            child = subprocess.run(
                [sys.executable, __file__, "--memory-run", str(raw_big), str(work / "slc_big.zarr")],
                capture_output=True,
                text=True,
                check=True,
            )
            res = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"focus_zarr {big}x{big}: {res['wall']:.1f} s, CPU utilisation {res['cpu_util']:.2f}, peak RSS "
                f"{res['peak_rss'] / 2**30:.2f} GiB (process baseline before focusing "
                f"{res['baseline_rss'] / 2**30:.2f} GiB); {big * big / res['wall'] / 1e6:.1f} Msamples/s"
            )
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
