"""DAP on RFI bursts: strong point targets under a burst (peak change [dB] in the re-focused image after each
mask method and after DAP inpainting, against the RFI-free image ``echo - rfi``), and DAP's time on a long burst.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/dap_burst.py --seeds 2 --burst 48
    PYTHONPATH=$PWD .venv/bin/python benchmarks/dap_burst.py --speed 128 --stacks 16,32,64
    PYTHONPATH=$PWD .venv/bin/python benchmarks/dap_burst.py --sets 16

Scene: MiniSAR-like (``sarpipe.testing.make_scene("minisar", ...)``, 512 x 2048, the preset's RFI at SIR -10 dB),
three point targets 30 dB above the clutter at azimuth 256 and ranges 512 / 1024 / 1536, the RFI on the ``burst``
pulses centred on them (the targets' apertures hold the whole burst). Every method cleans the truly contaminated
pulses (the detector is not benchmarked here). Seconds: the cleanup call per scene (1 torch thread).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sarpipe.focus import focus
from sarpipe.rfi import clean, create_method, method_names
from sarpipe.simulate.interference import rfi_truth_pulses
from sarpipe.testing import make_scene, point_target_amplitude

N_AZ, N_RG, AZ = 512, 2048, 256
RANGES = (512, 1024, 1536)


def _img(ds, echo=None):
    if echo is not None:
        ds = ds.assign(echo=(("azimuth", "range"), np.asarray(echo, dtype=np.complex64)))
    return focus(ds).slc.values


def _peak(img, a, r, half=8):
    return float(np.abs(img[a - half : a + half + 1, r - half : r + half + 1]).max())


def run(seeds: int, burst: int, methods: list[tuple[str, dict]]) -> None:
    torch.set_num_threads(1)
    losses: dict[str, list[float]] = {label: [] for label, _ in methods}
    secs: dict[str, list[float]] = {label: [] for label, _ in methods}
    for k in range(seeds):
        seed = 20240601 + 77 + k
        tgts = [
            {"azimuth_index": float(AZ), "range_index": float(r), "amplitude": point_target_amplitude(30.0)}
            for r in RANGES
        ]
        ds = make_scene(
            "minisar",
            seed,
            n_azimuth=N_AZ,
            n_range=N_RG,
            targets=tgts,
            sir_db=-10.0,
            rfi_overrides={"pulses": [[AZ - burst // 2, AZ + burst // 2]]},
        )
        truth = rfi_truth_pulses(ds)
        free = _img(ds, ds["echo"].values - ds["rfi"].values)
        inter = _img(ds)
        line = [
            f"seed {seed}: {int(truth.sum())} RFI pulses; interfered "
            + " ".join(f"{20 * np.log10(_peak(inter, AZ, r) / _peak(free, AZ, r)):+.2f}" for r in RANGES)
        ]
        for label, (name, kw) in methods:
            m = create_method(name, **kw)
            t0 = time.perf_counter()
            img = _img(clean(ds, m, pulses=truth).raw)
            secs[label].append(time.perf_counter() - t0)
            d = [20 * np.log10(_peak(img, AZ, r) / _peak(free, AZ, r)) for r in RANGES]
            losses[label].extend(d)
            line.append(f"{label} " + " ".join(f"{v:+.2f}" for v in d))
        print(" | ".join(line), flush=True)
    print(f"\n{seeds} scenes x {len(RANGES)} targets, burst {burst} pulses")
    print("| method | mean peak change [dB] | worst [dB] | within 0.5 dB | cleanup s / scene |\n|---|---|---|---|---|")
    for label, v in losses.items():
        a = np.asarray(v)
        print(
            f"| {label} | {a.mean():+.2f} | {a[np.argmax(np.abs(a))]:+.2f} | {int(np.sum(np.abs(a) <= 0.5))}/{a.size} "
            f"| {np.mean(secs[label]):.1f} |"
        )


def speed(n_pulses: int, stacks: list[int], threads: int = 1, **dap: object) -> None:
    from sarpipe.rfi import STFTParams, stft
    from sarpipe.rfi.methods import MethodContext

    torch.set_num_threads(threads)
    n_az = max(n_pulses, 512)  # an extended scene needs a whole synthetic aperture (261 pulses at mid range)
    ds = make_scene("minisar", 20240601, n_azimuth=n_az, n_range=N_RG, rfi_overrides={"pulses": [[0, n_az]]})
    on = np.flatnonzero(rfi_truth_pulses(ds))[:n_pulses]
    echo, rfi = ds["echo"].values[on], ds["rfi"].values[on]
    p = STFTParams()
    x, ref = stft(echo, p), stft(echo - rfi, p)
    ctx = MethodContext(attrs=dict(ds.attrs), stft=p, pulse_indices=on, n_samples=echo.shape[1])

    def psnr(y):
        return 10 * np.log10(np.max(np.abs(ref)) ** 2 / np.mean(np.abs(y - ref) ** 2))

    print(f"\nspeed: {on.size} RFI pulses of {echo.shape[1]} samples, {threads} torch thread(s)")
    print(
        "| method | PSNR [dB] | s / pulse | 500 pulses [min] | fits (pulses, stop iteration, s) |\n|---|---|---|---|---|"
    )
    notch = create_method("notch")
    notch(x[:1], ctx)
    t0 = time.perf_counter()
    y = x - notch(x, ctx).rfi_estimate(x)
    print(f"| notch | {psnr(y):.3f} | {(time.perf_counter() - t0) / on.size:.3f} | | |", flush=True)
    for s in stacks:
        m = create_method("dap", stack=s, device="cpu", **dap)
        t0 = time.perf_counter()
        y = x - m(x, ctx).rfi_estimate(x)
        sec = (time.perf_counter() - t0) / on.size
        fits = ", ".join(f"({a}, {b}, {c:.0f})" for a, b, c in m.last_fits[:4])
        print(
            f"| dap stack {s} {dap or ''} | {psnr(y):.3f} | {sec:.2f} | {500 * sec / 60:.1f} | {fits} ... |", flush=True
        )


def sets(n_pulses: int) -> None:
    """Notch against DAP (default and ungained) on ``spectral_eval``'s held-out pulse sets, PSNR to 3 decimals."""
    sys.path.insert(0, str(Path(__file__).parent))
    import spectral_eval as se

    from sarpipe.models.difnet_data import DIFNetDataConfig, make_pulse
    from sarpipe.rfi import stft

    torch.set_num_threads(1)
    print("| set | notch [dB] | dap [dB] | dap ungained [dB] | dap gains (min, median, max) |\n|---|---|---|---|---|")
    for name, (over, band) in se.SETS.items():
        cfg = DIFNetDataConfig(frames=64, sensors=[band], **over)
        p = cfg.stft_params()
        pulses = [make_pulse(cfg, "validation", i) for i in range(n_pulses)]
        echo = np.stack([e for e, _r, _b in pulses])
        rfi = np.stack([r for _e, r, _b in pulses])
        x, ref = stft(echo + rfi, p), stft(echo, p)
        ctx = se._ctx(n_pulses, *pulses[0][2], cfg.n_samples, p)
        row = []
        for m in (
            create_method("notch"),
            create_method("dap", device="cpu"),
            create_method("dap", **se.DAP_UNGAINED, device="cpu"),
        ):
            row.append(f"{se._psnr(x - m(x, ctx).rfi_estimate(x), ref):.3f}")
            if m.name == "dap" and m.gain == "pulse":
                g = np.array([v for _i, v in m.last_gains])
                gains = f"{g.min():.2f}, {np.median(g):.2f}, {g.max():.2f}"
        print(f"| {name} | {' | '.join(row)} | {gains} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--burst", type=int, default=48)
    ap.add_argument("--methods", default="notch,fnotch,esf,dap", help="comma list (dap: the default DAP)")
    ap.add_argument("--speed", type=int, default=0, help="time DAP on this many burst pulses instead (0 = no)")
    ap.add_argument("--stacks", default="16,32,64", help="DAP stack sizes of the speed run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the speed run")
    ap.add_argument("--dap", default="", help="extra DAP parameters of the speed run, key=value,...")
    ap.add_argument("--sets", type=int, default=0, help="compare on spectral_eval's held-out sets (N pulses) instead")
    args = ap.parse_args(argv)
    if args.sets:
        sets(args.sets)
        return 0
    if args.speed:
        extra = dict(kv.split("=") for kv in args.dap.split(",") if kv)
        kw = {k: (int(v) if v.isdigit() else v) for k, v in extra.items()}
        speed(args.speed, [int(s) for s in args.stacks.split(",")], args.threads, **kw)
        return 0
    names = method_names()
    methods = [(m, (m, {"device": "cpu"} if m == "dap" else {})) for m in args.methods.split(",") if m in names]
    if "dap" in args.methods.split(","):
        methods.append(
            ("dap ungained", ("dap", {"device": "cpu", "gain": "none", "holdout_shape": "random", "align": False}))
        )
    run(args.seeds, args.burst, methods)
    return 0


if __name__ == "__main__":
    sys.exit(main())
