"""Time of the cleanup step (STFT -> method -> ISTFT of the flagged pulses) for the notch and DIFNet with its shipped
weights: 500 contaminated pulses of an 8192-sample scene, the size issue 8 asks to clean in under 2 minutes.

All rows come from one run, so their ratios hold on a loaded machine. Rows: the notch; DIFNet float32 (``amp=false``,
the reference path); DIFNet default (bfloat16 autocast where the CPU has native bf16, channels-last); the same
with quiet tiles skipped; the whole chain (focus + detect + clean) with DIFNet; then the network alone in tiles
per second, eager and ``torch.compile``d (``--compile``). Run: `.venv/bin/python benchmarks/difnet_clean_time.py`.
"""

import argparse
import os
import time
import warnings

import numpy as np

from sarpipe.model import sar_dataset
from sarpipe.rfi.clean import clean


def scene(n_az: int = 600, n_rg: int = 8192, n_rfi: int = 500, seed: int = 0, first: int = 0):
    """White clutter with a 40 MHz tone (30x the clutter amplitude) on ``n_rfi`` pulses from ``first``, and a
    pulsed emitter (period 4 us, duty 25 %) on top of it on the first half of them."""
    attrs = {
        "carrier_frequency": 9.6e9,
        "range_sampling_rate": 360e6,
        "chirp_rate": 300e6 / 2e-6,
        "pulse_duration": 2e-6,
        "prf": 1000.0,
        "velocity": 100.0,
        "near_range": 5000.0,
    }
    rng = np.random.default_rng(seed)
    echo = (rng.standard_normal((n_az, n_rg)) + 1j * rng.standard_normal((n_az, n_rg))).astype(np.complex64)
    t = np.arange(n_rg) / 360e6
    echo[first : first + n_rfi] += (30 * np.exp(2j * np.pi * 40e6 * t)).astype(np.complex64)
    gate = np.mod(t, 4e-6) < 1e-6
    echo[first : first + n_rfi // 2] += (20 * gate * np.exp(-2j * np.pi * 100e6 * t)).astype(np.complex64)
    pulses = np.zeros(n_az, bool)
    pulses[first : first + n_rfi] = True
    return sar_dataset(echo, attrs), pulses


def tiles_per_second(compile_: bool, amp: bool, n: int = 64) -> float:
    from sarpipe.models.difnet import DIFNetMethod

    m = DIFNetMethod(device="cpu", compile=compile_, amp=amp)
    x = np.random.default_rng(1).standard_normal((n, 128, 128)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m._run_all(x)  # warm-up at the timed batch shape (compiles when asked; a new shape would recompile)
    if compile_ and m._runner is m._model:
        raise RuntimeError("; ".join(str(w.message) for w in caught) or "fell back to eager")
    t0 = time.perf_counter()
    m._run_all(x)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (about a minute to compile)")
    ap.add_argument("--chain", action="store_true", help="also time the whole chain on a 2048-pulse scene")
    ap.add_argument("--skip-quiet", action="store_true", help="also time skip_quiet=5 (no tile is quiet here)")
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}")
    ds, pulses = scene()
    rows = [
        ("notch", "notch", {}),
        ("difnet fp32 (amp=false, reference)", "difnet", {"amp": False}),
        ("difnet (default: bf16 where native, channels-last)", "difnet", {}),
    ]
    if args.skip_quiet:
        rows.append(("difnet + skip_quiet=5", "difnet", {"skip_quiet": 5.0}))
    ref = None
    for label, m, params in rows:
        t0 = time.perf_counter()
        res = clean(ds, m, params=params, pulses=pulses)
        dt = time.perf_counter() - t0
        echo = np.asarray(res.raw["echo"].values)
        extra = ""
        if m == "difnet" and ref is None:
            ref = echo
        elif m == "difnet":
            d = np.abs(echo[pulses] - ref[pulses]).max() / np.abs(ds["echo"].values[pulses]).max()
            extra = f", max |echo - fp32 echo| / max |echo| = {d:.1e}"
        print(f"{label}: {dt:.1f} s for {pulses.sum()} pulses x {ds.sizes['range']} samples{extra}", flush=True)
    if args.chain:
        big, _ = scene(n_az=2048, first=774)
        for m in ("notch", "difnet"):
            t0 = time.perf_counter()
            res = clean(big, m)
            print(
                f"whole chain on 2048 x 8192 (focus + detect + clean), {m}: {time.perf_counter() - t0:.1f} s, "
                f"{res.raw['rfi_pulses'].values.sum()} pulses flagged and cleaned",
                flush=True,
            )
    for amp in (False, True):
        print(f"network alone, eager, amp={amp}: {tiles_per_second(False, amp):.1f} tiles/s (128 x 128)", flush=True)
        if args.compile:
            try:
                t0 = time.perf_counter()
                rate = tiles_per_second(True, amp)
                print(
                    f"network alone, compiled, amp={amp}: {rate:.1f} tiles/s ({time.perf_counter() - t0:.0f} s "
                    f"including compilation)",
                    flush=True,
                )
            except Exception as exc:  # noqa: BLE001 - report, do not hide, a compile failure
                print(f"torch.compile failed: {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()
