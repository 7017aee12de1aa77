"""``--sr F`` around any cleanup method, against the same method at full resolution, in the same run.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/sr_eval.py --methods notch,difnet --pulses 16 --samples 8192

Pulses: :func:`sarpipe.models.difnet_data.make_pulse`, STFT 128 / 32 / hann, ``--samples`` fast-time samples
(8192: 257 frames, 128 on the coarse grid), data seeds 101 (same sensor, MiniSAR-like X) and 103 (cross sensor,
Sentinel-1 IW-like C), as benchmarks/spectral_eval.py uses (no training run used them). For each method and set:

- ``full``: the method on the full grid;
- ``sr``: ``SuperResolvedMethod(method, F)``: the method on the coarse grid, the SR network restores its share;
- ``interpolation``: the same coarse share, plainly interpolated along frames (no SR);
- ``heuristic``: SFSRNet's rule alone (the SR network's prior).

Metrics (means over the set): PSNR [dB] of the cleaned spectrograms (``S - share S``) against the RFI-free ones,
pooled; SDR [dB] of the cleaned pulses against the RFI-free echo, ``10 log10(|s|^2 / |s - s_hat|^2)`` over all
pulses (BSS-eval v4 without projection); PA / IoU of ``share > 0.5`` against the true TF mask. Model time: seconds
per pulse of the method call (``full``) and of the wrapped call (``sr``: method on the coarse grid + features + SR
network), best of ``--repeats`` interleaved runs, ``--threads`` torch threads; the speed-up is their ratio.
``--scenes K`` adds K paper-regime scenes per set from benchmarks/rfi.py (image PSNR, the benchmark's own;
``--scene-sets minisar`` for one set; with ``--pack-gap`` also packed).
``--pack-gap G`` adds, for the learned (tiled) methods, the same method with ``pack_gap=G`` (short pulses packed
side by side, :mod:`sarpipe.models.torch_method`): ``full packed`` and ``sr packed``, timed interleaved with the
others, and a table of packed against unpacked. Where ``--sr`` picked SR weights fine-tuned for the method
(:data:`sarpipe.spectral.sr.TUNED_WEIGHTS`), ``sr generic`` scores the generic SR on the same coarse shares.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

# the same held-out pulses and sensors as benchmarks/spectral_eval.py
from spectral_eval import SETS, _ctx  # noqa: E402  (benchmarks/ is the script's folder on sys.path)

from sarpipe.models.difnet_data import DIFNetDataConfig, make_pulse
from sarpipe.rfi import create_method
from sarpipe.rfi.metrics import iou, pixel_accuracy, true_tf_mask
from sarpipe.rfi.stft import STFTParams, istft, stft
from sarpipe.spectral.sr import SHIPPED_WEIGHTS as SR_WEIGHTS
from sarpipe.spectral.sr import SuperResolvedMethod
from sarpipe.spectral.sr_grid import sr_features, upsample_frames
from sarpipe.spectral.sr_training import spectrogram_psnr


def _timed(times: list, call, *args):
    """``call(*args)``'s result, its wall time [s] appended to ``times``."""
    t0 = time.perf_counter()
    out = call(*args)
    times.append(time.perf_counter() - t0)
    return out


def _share(method, spec, ctx, pulses):
    """The method's RFI share on the full grid."""
    if method.domain == "tf":
        out = method(spec, ctx)
        if out.kind == "mask":
            return np.clip(np.asarray(out.data, np.float32), 0, 1)
        r = np.abs(out.rfi_estimate(spec))
    else:
        r = np.abs(stft(method(pulses, ctx).rfi_estimate(pulses), ctx.stft))
    a = np.abs(spec)
    return np.clip(np.divide(r, a, out=np.zeros_like(r), where=a > 0), 0, 1)


def _sdr(est, ref):
    return 10 * math.log10(float(np.sum(np.abs(ref) ** 2)) / float(np.sum(np.abs(ref - est) ** 2)))


def _scores(share, spec, ref_spec, echo, truth, p):
    cleaned = spec - share * spec
    pred = share > 0.5
    return {
        "psnr": spectrogram_psnr(cleaned, ref_spec),
        "sdr": _sdr(istft(cleaned, echo.shape[1], p), echo),
        "pa": float(np.mean([pixel_accuracy(a, b) for a, b in zip(pred, truth)])),
        "iou": float(np.mean([iou(a, b) for a, b in zip(pred, truth)])),
    }


def _method(name: str, **extra):
    """The method with its defaults (and ``extra``); learned ones on the CPU and with ``strict=False`` (Score-CAM's
    weights are MiniSAR-only: the cross-sensor set is outside them, and the benchmark measures that rather than
    refusing). With ``extra``: None where the method does not take those parameters."""
    from sarpipe.errors import InputError

    for kw in ({"device": "cpu", "strict": False}, {"strict": False}, {}):
        try:
            return create_method(name, **kw, **extra)
        except InputError as exc:
            if "bad parameters" not in str(exc):
                raise
    return None if extra else create_method(name)


def run_pulses(methods, n_pulses, n_samples, factor, repeats, weights, pack_gap=None) -> list[dict]:
    p = STFTParams()
    rows = []
    for set_name, (over, band) in SETS.items():
        cfg = DIFNetDataConfig(frames=n_samples // p.hop + 1, sensors=[band], **over)
        pulses = [make_pulse(cfg, "validation", i) for i in range(n_pulses)]
        echo = np.stack([e for e, _r, _b in pulses])
        rfi = np.stack([r for _e, r, _b in pulses])
        x = echo + rfi
        fs, bw, tp = pulses[0][2]
        spec, ref = stft(x, p), stft(echo, p)
        truth = true_tf_mask(rfi, echo, p)
        ctx = _ctx(n_pulses, fs, bw, tp, x.shape[1], p)
        for m in methods:
            inner = _method(m)
            wrapped = SuperResolvedMethod(inner, factor, weights=weights)
            packed = None if pack_gap is None else _method(m, pack_gap=pack_gap)
            wrapped_packed = None if packed is None else SuperResolvedMethod(packed, factor, weights=weights)
            t_full, t_sr, t_inner, t_net = [], [], [], []
            t_fullp, t_srp = [], []
            for _ in range(repeats):  # interleaved: all see the same load
                full = _timed(t_full, _share, inner, spec, ctx, x)
                sr = _timed(t_sr, wrapped, spec, ctx).data
                t_inner.append(wrapped.last_seconds["method"])
                t_net.append(wrapped.last_seconds["sr"])
                if packed is not None:
                    full_packed = _timed(t_fullp, _share, packed, spec, ctx, x)
                    sr_packed = _timed(t_srp, wrapped_packed, spec, ctx).data
            coarse, cshare = wrapped.coarse_share(spec, ctx)
            interp = upsample_frames(cshare, factor, spec.shape[-1])
            _f, heur = sr_features(spec, coarse, cshare, factor)
            best = {"full": min(t_full), "sr": min(t_sr)}
            variants = [("full", full), ("sr", sr), ("interpolation", interp), ("heuristic", heur)]
            if packed is not None:
                best.update({"full packed": min(t_fullp), "sr packed": min(t_srp)})
                coarse_p, cshare_p = wrapped_packed.coarse_share(spec, ctx)
                variants += [
                    ("full packed", full_packed),
                    ("sr packed", sr_packed),
                    ("interpolation packed", upsample_frames(cshare_p, factor, spec.shape[-1])),
                ]
            for w, c, cs, suffix in ((wrapped, coarse, cshare, ""), (wrapped_packed, None, None, " packed")):
                if w is None or w.last_weights == w.weights:
                    continue  # no method-tuned SR used: "sr" is the generic one
                if c is None:
                    c, cs = coarse_p, cshare_p
                generic = SuperResolvedMethod(w.method, factor, weights=str(SR_WEIGHTS))
                variants.append((f"sr generic{suffix}", generic.restore(spec, c, cs)))
            for variant, share in variants:
                row = {"set": set_name, "method": m, "variant": variant, **_scores(share, spec, ref, echo, truth, p)}
                if variant in best:
                    row["s_per_pulse"] = best[variant] / n_pulses
                if variant == "sr":
                    row["inner_s_per_pulse"] = min(t_inner) / n_pulses
                    row["sr_net_s_per_pulse"] = min(t_net) / n_pulses
                if variant in best and variant != "full":
                    row["speedup"] = best["full"] / best[variant]  # against the unpacked full grid
                rows.append(row)
            print(f"  {set_name} {m}: full {best['full']:.2f} s, sr {best['sr']:.2f} s", file=sys.stderr, flush=True)
    return rows


def run_scenes(methods, n_scenes, factor, weights, pack_gap=None, names=("minisar", "sentinel1")) -> list[dict]:
    """Paper-regime scenes of benchmarks/rfi.py: image PSNR of full vs ``--sr`` cleaning of the true RFI pulses."""
    sys.path.insert(0, str(Path(__file__).parent))
    import rfi as bench  # benchmarks/rfi.py

    from sarpipe.rfi import clean
    from sarpipe.rfi.metrics import psnr
    from sarpipe.simulate.interference import rfi_truth_pulses

    rows = []
    for name in names:
        for k in range(n_scenes):
            seed = bench.BASE_SEED + 1000 + 131 * k
            ds, _t = bench.paper_scene(name, seed, bench.PAPER_SIZES[name])
            truth = rfi_truth_pulses(ds)
            ref = bench._img(ds, ds["echo_clean"].values)
            for m in methods:
                inner = _method(m)
                variants = [("full", inner), ("sr", SuperResolvedMethod(inner, factor, weights=weights))]
                packed = None if pack_gap is None else _method(m, pack_gap=pack_gap)
                if packed is not None:
                    variants += [
                        ("full packed", packed),
                        ("sr packed", SuperResolvedMethod(packed, factor, weights=weights)),
                    ]
                for variant, method in variants:
                    t0 = time.perf_counter()
                    cleaned = clean(ds, method, pulses=truth).raw
                    seconds = time.perf_counter() - t0
                    img = bench._img(cleaned)
                    rows.append(
                        {
                            "set": f"paper {name} seed {seed}",
                            "method": m,
                            "variant": variant,
                            "image_psnr": psnr(img, ref),
                            "clean_s": seconds,
                        }
                    )
                print(f"  scene {name} {seed} {m} done", file=sys.stderr, flush=True)
    return rows


def _fmt(v, spec=".2f"):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="notch,difnet", help="comma-separated cleanup method names (any registered)")
    ap.add_argument("--pulses", type=int, default=16, help="pulses per set (0: scenes only)")
    ap.add_argument("--samples", type=int, default=8192, help="fast-time samples per pulse (a multiple of 32)")
    ap.add_argument("--factor", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weights", default=None, help="SR weights folder (default: the shipped one)")
    ap.add_argument("--scenes", type=int, default=0, help="paper-regime scenes per set (image PSNR)")
    ap.add_argument("--pack-gap", type=int, default=None, help="also run learned methods with pack_gap=G")
    ap.add_argument("--scene-sets", default="minisar,sentinel1", help="which paper-regime scenes (--scenes)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    rows = (
        run_pulses(methods, args.pulses, args.samples, args.factor, args.repeats, args.weights, args.pack_gap)
        if args.pulses
        else []
    )
    if rows:
        print_pulse_tables(rows, args)
    if args.scenes:
        names = [n for n in args.scene_sets.split(",") if n]
        srows = run_scenes(methods, args.scenes, args.factor, args.weights, args.pack_gap, names)
        print("\n| scene | method | variant | image PSNR [dB] | clean time [s] |")
        print("|---|---|---|---|---|")
        for r in srows:
            print(f"| {r['set']} | {r['method']} | {r['variant']} | {r['image_psnr']:.2f} | {r['clean_s']:.1f} |")
    return 0


def print_pulse_tables(rows: list[dict], args) -> None:
    print(f"pulses of {args.samples} samples, {args.pulses} per set, --sr {args.factor}, {args.threads} thread(s)")
    print("| set | method | variant | PSNR [dB] | SDR [dB] | PA | IoU | model s / pulse | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sp = r.get("s_per_pulse")
        extra = ""
        if r["variant"] == "sr":
            extra = f" (method {r['inner_s_per_pulse']:.4f} + SR {r['sr_net_s_per_pulse']:.4f})"
        print(
            f"| {r['set']} | {r['method']} | {r['variant']} | {r['psnr']:.2f} | {r['sdr']:.2f} | {r['pa']:.4f} | "
            f"{r['iou']:.4f} | {_fmt(sp, '.4f')}{extra} | {_fmt(r.get('speedup'))} |"
        )
    print("\n| set | method | speed-up (model time) | PSNR sr - full [dB] | SDR sr - full | PSNR sr - interpolation |")
    print("|---|---|---|---|---|---|")
    by = {(r["set"], r["method"], r["variant"]): r for r in rows}
    for s, m, v in by:
        if v != "sr":
            continue
        sr, full, interp = by[(s, m, "sr")], by[(s, m, "full")], by[(s, m, "interpolation")]
        print(
            f"| {s} | {m} | {sr['speedup']:.2f}x | {sr['psnr'] - full['psnr']:+.2f} | {sr['sdr'] - full['sdr']:+.2f} | "
            f"{sr['psnr'] - interp['psnr']:+.2f} |"
        )
    if not any(v == "full packed" for _s, _m, v in by):
        return
    print(
        f"\n| set | method | packed / unpacked full: speed-up, PSNR, SDR | `--sr` packed / full packed: speed-up, "
        f"PSNR, SDR | `--sr` packed / full unpacked: speed-up, PSNR | PSNR sr packed - interpolation | "
        f"PSNR sr packed - generic SR |  (pack_gap {args.pack_gap})"
    )
    print("|---|---|---|---|---|---|---|")
    for s, m, v in by:
        if v != "full packed":
            continue
        full, fp, sp = by[(s, m, "full")], by[(s, m, "full packed")], by[(s, m, "sr packed")]
        ip, gp = by[(s, m, "interpolation packed")], by.get((s, m, "sr generic packed"))
        print(
            f"| {s} | {m} | {fp['speedup']:.2f}x, {fp['psnr'] - full['psnr']:+.2f}, {fp['sdr'] - full['sdr']:+.2f} | "
            f"{fp['s_per_pulse'] / sp['s_per_pulse']:.2f}x, {sp['psnr'] - fp['psnr']:+.2f}, "
            f"{sp['sdr'] - fp['sdr']:+.2f} | {sp['speedup']:.2f}x, {sp['psnr'] - full['psnr']:+.2f} | "
            f"{sp['psnr'] - ip['psnr']:+.2f} | {'' if gp is None else format(sp['psnr'] - gp['psnr'], '+.2f')} |"
        )


if __name__ == "__main__":
    sys.exit(main())
