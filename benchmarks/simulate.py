"""Benchmark: point-target raw-echo simulation (numba kernel) on a large scene.

Prints the kernel time, the echo samples written per second, and two ratios measured in the same run:
- ``vs numpy``: the plain-numpy evaluation of the same echo model (vectorised per target, as in the tests),
  timed on a few targets and scaled to the same number of echo samples;
- ``vs floor``: the time of one numpy pass ``out[rows, cols] += 1`` streaming the same number of complex64
  samples through memory (the least any kernel that writes those samples must spend).

Usage: ``python benchmarks/simulate.py [--preset sentinel1_sm] [--size 4096] [--targets 300] [--threads N]``
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numba
import numpy as np

from sarpipe.model import SPEED_OF_LIGHT
from sarpipe.simulate import point_target_echoes, scene_attrs
from sarpipe.stripmap import beam_centre_offset


def reference_echoes(targets, attrs, shape):
    """Plain-numpy echo model (same as tests/test_20_simulate.py), rect pattern."""
    n_az, n_rg = shape
    lam = SPEED_OF_LIGHT / attrs["carrier_frequency"]
    v, prf, fs = attrs["velocity"], attrs["prf"], attrs["range_sampling_rate"]
    kr, tp, f_dc, ba = (
        attrs["chirp_rate"],
        attrs["pulse_duration"],
        attrs["doppler_centroid"],
        attrs["azimuth_bandwidth"],
    )
    eta = np.arange(n_az) / prf
    tau = 2.0 * (attrs["near_range"] + np.arange(n_rg) * SPEED_OF_LIGHT / (2 * fs)) / SPEED_OF_LIGHT
    out = np.zeros(shape, dtype=np.complex64)
    for t in targets:
        r = np.sqrt(t["slant_range"] ** 2 + v**2 * (eta - t["azimuth_time"]) ** 2)
        f = -2 * v**2 * (eta - t["azimuth_time"]) / (lam * r)
        rows = np.flatnonzero(np.abs(f - f_dc) <= ba / 2)
        x = tau[None, :] - 2 * r[rows, None] / SPEED_OF_LIGHT
        inside = np.abs(x) <= tp / 2
        ph = -4 * np.pi * r[rows, None] / lam + np.pi * kr * x**2
        amp = t["amplitude"] * np.exp(1j * t["phase"])
        out[rows] += (amp * inside * np.exp(1j * ph)).astype(np.complex64)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="sentinel1_sm")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--targets", type=int, default=300)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)

    n = args.size
    cfg = {"sensor": {"preset": args.preset}, "scene": {"n_azimuth": n, "n_range": n}, "doppler_centroid": 0.0}
    attrs, *_ = scene_attrs(cfg)
    prf, fs = attrs["prf"], attrs["range_sampling_rate"]
    dr = SPEED_OF_LIGHT / (2 * fs)
    rng = np.random.default_rng(0)
    lam = SPEED_OF_LIGHT / attrs["carrier_frequency"]
    targets = []
    for _ in range(args.targets):
        r0 = attrs["near_range"] + rng.uniform(0.1, 0.9) * n * dr
        az = rng.uniform(0.2, 0.8) * n - beam_centre_offset(r0, 0.0, lam, attrs["velocity"]) * prf
        targets.append(
            {"slant_range": r0, "azimuth_time": az / prf, "amplitude": 1.0, "phase": float(rng.uniform(0, 2 * np.pi))}
        )

    point_target_echoes(targets[:1], attrs, (64, 64))  # compile (or load the cache) outside the timing
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        out = point_target_echoes(targets, attrs, (n, n))
        best = min(best, time.perf_counter() - t0)

    # samples written: chirp samples x illuminated pulses, summed over targets (inside the scene)
    n_chirp = min(n, int(attrs["pulse_duration"] * fs) + 1)
    aperture = (
        attrs["azimuth_bandwidth"]
        * lam
        * np.array([t["slant_range"] for t in targets])
        / (2 * attrs["velocity"] ** 2)
        * prf
    )
    samples = float(np.sum(np.minimum(aperture, n)) * n_chirp)

    k = 3
    t0 = time.perf_counter()
    ref = reference_echoes(targets[:k], attrs, (n, n))
    t_ref = (time.perf_counter() - t0) * args.targets / k
    check = point_target_echoes(targets[:k], attrs, (n, n))
    err = float(np.max(np.abs(check - ref)))

    rows = np.arange(n)
    flat = np.zeros((n, n), dtype=np.complex64)
    passes = samples / flat.size
    t0 = time.perf_counter()
    full, frac = int(passes), passes - int(passes)
    for _ in range(full):
        flat += np.complex64(1)
    flat[rows[: int(frac * n)]] += np.complex64(1)
    t_floor = time.perf_counter() - t0

    print(
        f"preset {args.preset}, scene {n} x {n}, {args.targets} targets, {numba.get_num_threads()} threads, "
        f"chirp {n_chirp} samples, aperture ~{aperture.mean():.0f} pulses"
    )
    print(
        f"kernel: {best:.3f} s for {samples / 1e9:.3f} G echo samples ({samples / best / 1e6:.0f} M samples/s), "
        f"output peak |echo| {np.abs(out).max():.1f}"
    )
    print(
        f"numpy reference (scaled from {k} targets): {t_ref:.2f} s  -> kernel is {t_ref / best:.1f}x faster "
        f"(max |kernel - numpy| on {k} targets: {err:.2e})"
    )
    print(
        f"memory floor (one complex64 add pass over the same samples): {t_floor:.3f} s -> kernel / floor = {best / t_floor:.1f}"
    )
    print(f"cpu count {os.cpu_count()}")


if __name__ == "__main__":
    main()
