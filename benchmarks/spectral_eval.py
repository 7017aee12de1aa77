"""DAP and Score-CAM beside the notch and DIFNet on held-out simulated pulses (time-frequency masks and the
cleaned spectrogram), with time per pulse.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/spectral_eval.py --pulses 16 --per-pulse 4 --burst 32

Pulses: :func:`sarpipe.models.difnet_data.make_pulse` with the STFT 128 / 32 / hann and 64 frames (2,016-sample
pulses), data seeds 101 (same sensor, MiniSAR-like X) and 103 (cross sensor, Sentinel-1 IW-like C) as
benchmarks/difnet_eval.py uses (no training run used them). Metrics per set (means over the pulses):

- PA / IoU of the method's mask against ``sarpipe.rfi.metrics.true_tf_mask`` (DAP's mask is its detector's);
- PSNR [dB] of the cleaned spectrograms against the RFI-free ones (``STFT(echo)``), pooled over the set's pulses,
  peak = the RFI-free maximum:
  a mask method zeroes its bins, DAP fills them with the prior's output;
- seconds per pulse of the cleanup call (1 torch thread; the machine was shared, so read them as ratios).

Score-CAM runs twice: the paper's form and ``scorecam+refine`` (our CFAR refinement inside its mask,
``refine_pfa`` and threshold as the training tuned them), and ``scorecam-own`` without the class-general maps
(``general=0``, at the paper form's tuned threshold). ``--methods notch,scorecam`` runs a subset of the rows.

DAP runs twice: ``share=stack`` (one prior over a stack of 16 pulses in the channels) on every pulse, and
``share=pulse`` (one fit per pulse, same iterations) on the first ``--per-pulse`` pulses, for the cost of sharing.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from sarpipe.models.difnet_data import DIFNetDataConfig, SensorBand, make_pulse
from sarpipe.rfi import create_method
from sarpipe.rfi.methods import MethodContext
from sarpipe.rfi.metrics import iou, pixel_accuracy, true_tf_mask
from sarpipe.rfi.stft import stft

SETS = {
    "same sensor (MiniSAR-like X)": ({"seed": 101}, SensorBand(preset="minisar")),
    "cross sensor S1 IW-like (C)": (
        {"seed": 103},
        SensorBand(range_sampling_rate=64.35e6, chirp_bandwidth=42.0e6, pulse_duration=52.0e-6),
    ),
}


#: DAP as before the fill gain: random held-out positions, fill not scaled, no frame-phase alignment
DAP_UNGAINED = {"share": "stack", "stack": 16, "gain": "none", "holdout_shape": "random", "align": False}


def _ctx(n, fs, bw, tp, n_samples, p):
    attrs = dict(
        carrier_frequency=5.4e9,
        range_sampling_rate=fs,
        chirp_rate=bw / tp,
        pulse_duration=tp,
        prf=1000.0,
        velocity=7000.0,
        near_range=850e3,
    )
    return MethodContext(attrs=attrs, stft=p, pulse_indices=np.arange(n), n_samples=n_samples)


def _psnr(x, ref):
    mse = float(np.mean(np.abs(x - ref) ** 2))
    return 10 * math.log10(float(np.max(np.abs(ref)) ** 2) / mse) if mse > 0 else math.inf


#: the rows of a set, by the name ``--methods`` selects them with
ROWS = ("notch", "difnet", "scorecam", "scorecam+refine", "scorecam-own", "dap", "dap-pulse", "dap-ungained")


def run(n_pulses: int, per_pulse: int, methods: tuple[str, ...] = ROWS) -> None:
    torch.set_num_threads(1)
    print("| set | method | PA | IoU | PSNR [dB] | s / pulse |")
    print("|---|---|---|---|---|---|")
    for name, (over, band) in SETS.items():
        cfg = DIFNetDataConfig(frames=64, sensors=[band], **over)
        p = cfg.stft_params()
        pulses = [make_pulse(cfg, "validation", i) for i in range(n_pulses)]
        echo = np.stack([e for e, _r, _b in pulses])
        rfi = np.stack([r for _e, r, _b in pulses])
        fs, bw, tp = pulses[0][2]
        x = stft(echo + rfi, p)
        clean = stft(echo, p)
        truth = true_tf_mask(rfi, echo, p)
        ctx = _ctx(n_pulses, fs, bw, tp, cfg.n_samples, p)
        strict = {"strict": False}
        runs = [
            ("interfered", None, {}, n_pulses),
            ("notch", "notch", {}, n_pulses),
            ("difnet", "difnet", {**strict, "device": "cpu"}, n_pulses),
            ("scorecam", "scorecam", {**strict, "device": "cpu", "threads": 1}, n_pulses),
            (
                "scorecam+refine",
                "scorecam",
                {**strict, "device": "cpu", "threads": 1, "refine_pfa": "tuned"},
                n_pulses,
            ),
            (
                "scorecam (own maps only, general=0)",
                "scorecam",
                {**strict, "device": "cpu", "threads": 1, "general": 0.0},
                n_pulses,
            ),
            ("dap (notch mask, stack 16)", "dap", {"share": "stack", "stack": 16, "device": "cpu"}, n_pulses),
            ("dap (notch mask, per pulse)", "dap", {"share": "pulse", "device": "cpu"}, per_pulse),
            ("dap (notch mask, stack 16, ungained fill)", "dap", {**DAP_UNGAINED, "device": "cpu"}, n_pulses),
        ]
        keys = ("interfered",) + ROWS
        for key, (label, method, kw, n) in zip(keys, runs):
            if n == 0 or (key != "interfered" and key not in methods):
                continue
            xs, ts, cs = x[:n], truth[:n], clean[:n]
            c = _ctx(n, fs, bw, tp, cfg.n_samples, p) if n != n_pulses else ctx
            if method is None:
                out, mask, secs = xs, np.zeros(xs.shape, bool), 0.0
            else:
                m = create_method(method, **kw)
                t0 = time.perf_counter()
                res = m(xs, c)
                secs = (time.perf_counter() - t0) / n
                est = res.rfi_estimate(xs)
                out = xs - est
                mask = m.rfi_mask(xs, c) if method == "dap" else np.asarray(res.data) > 0.5
            pa = np.mean([pixel_accuracy(mask[i], ts[i]) for i in range(n)])
            io = np.mean([iou(mask[i], ts[i]) for i in range(n)])
            ps = _psnr(out, cs)  # pooled over the set's pulses
            if method == "dap" and kw["share"] == "stack":
                stacked = out
            if method == "dap" and kw["share"] == "pulse" and "dap" in methods:
                label += f"; stack 16 on the same pulses {_psnr(stacked[:n], cs):.2f} dB"
            print(f"| {name} | {label} ({n} pulses) | {pa:.3f} | {io:.3f} | {ps:.2f} | {secs:.3f} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pulses", type=int, default=16)
    ap.add_argument("--per-pulse", type=int, default=4)
    ap.add_argument("--burst", type=int, default=32, help="consecutive pulses of the burst run (0 = skip)")
    ap.add_argument("--sets", action=argparse.BooleanOptionalAction, default=True, help="run the pulse sets")
    ap.add_argument(
        "--methods", default=",".join(ROWS), help=f"comma-separated rows of the pulse sets, of {', '.join(ROWS)}"
    )
    ap.add_argument("--dap-burst-share", default="stack,warm", help="DAP share modes of the burst run (comma list)")
    args = ap.parse_args(argv)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(methods) - set(ROWS))
    if unknown:
        ap.error(f"unknown --methods {unknown}; choose from {', '.join(ROWS)}")
    if args.sets:
        run(args.pulses, args.per_pulse, methods)
    if args.burst:
        burst(args.burst, tuple(s for s in args.dap_burst_share.split(",") if s))
    return 0


def burst(n_pulses: int = 32, share: tuple[str, ...] = ("stack", "warm")) -> None:
    """DAP over consecutive contaminated pulses of one simulated MiniSAR-like scene (correlated neighbours)
    against the notch: spectrogram PSNR against ``STFT(echo - rfi)`` and seconds per pulse."""
    from sarpipe.rfi import STFTParams
    from sarpipe.simulate.interference import rfi_truth_pulses
    from sarpipe.testing import make_scene

    torch.set_num_threads(1)
    ds = make_scene("minisar", 20240601, n_azimuth=512, n_range=2048)
    on = np.flatnonzero(rfi_truth_pulses(ds))[:n_pulses]
    echo, rfi = ds["echo"].values[on], ds["rfi"].values[on]
    p = STFTParams()
    x, clean = stft(echo, p), stft(echo - rfi, p)
    a = ds.attrs
    ctx = MethodContext(attrs=dict(a), stft=p, pulse_indices=on, n_samples=echo.shape[1])
    print(f"\nburst: {on.size} consecutive RFI pulses of {echo.shape[1]} samples (MiniSAR-like scene, seed 20240601)")
    print("| method | PSNR [dB] | s / pulse |\n|---|---|---|")
    print(f"| interfered | {_psnr(x, clean):.2f} | |")
    for label, name, kw in (
        [("notch", "notch", {})]
        + [(f"dap share={s}", "dap", {"share": s, "device": "cpu"}) for s in share]
        + [("dap share=stack, ungained fill", "dap", {**DAP_UNGAINED, "device": "cpu"})]
    ):
        m = create_method(name, **kw)
        m(x[:1], ctx)  # compile / warm up
        t0 = time.perf_counter()
        out = x - m(x, ctx).rfi_estimate(x)
        secs = (time.perf_counter() - t0) / on.size
        print(f"| {label} | {_psnr(out, clean):.2f} | {secs:.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
