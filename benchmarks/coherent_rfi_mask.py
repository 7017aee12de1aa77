"""Where pulse-coherent RFI lands in the image, and how bright: the image mask's rule against a Doppler-aware one.

    PYTHONPATH=$PWD .venv/bin/python -W ignore benchmarks/coherent_rfi_mask.py [--seed 4242] [--removed notch,...]

An exploration for the coherent-RFI limit of docs/rfi.md ("The image mask"), not a method of the chain. Scene:
``sarpipe.testing.make_scene("minisar", SEED, 512 x 1024)``, whose emitters keep their phases from pulse to pulse.
Truth: per line, the focused simulator ``rfi`` over the focused ``echo - rfi`` (the matrix's definition).

- **incoherent** (the chain's rule, ``pulses.line_rfi_to_clutter``, thresholded at 1 by
  ``map_pulses_to_lines``): line ``i`` gets the mean of the estimated per-pulse ratio ``r`` over the pulses
  ``i + shift +- T / 2``.
- **Doppler-aware**: per flagged run, the RFI's slow-time (Doppler) power spectrum is the run's spectrum minus
  that of as many RFI-free pulses on either side (in-band range bins, at most 256 of them, averaged). A Doppler
  ``f`` inside the processed band ``f_dc +- B / 2`` is imaged ``f / Ka`` seconds from the pulse (``Ka = B PRF /
  T``), so line ``L`` gets ``sum_d r(L - d) w(d)``, with ``w(d)`` the RFI's Doppler power fraction mapped to the
  offset of ``d`` lines. Flat RFI gives ``w = B / (PRF T)`` per line (the chain's rule times ``B / PRF``); a pure
  tone gives 1 on one offset.

- **removed** (``--removed METHODS``): each method cleans the flagged pulses; line ``i`` counts where the removed
  RFI, focused (the image before minus the image after: focusing is linear), is at least the image after.

Printed: the largest predicted line ratio, its offset, and the IoU with the truth of the lines at or above 1 (the
mask's rule) and at or above 0.5.
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.fft


def _doppler_power(echo: np.ndarray, rows: np.ndarray, bins: np.ndarray, nf: int) -> np.ndarray:
    """Mean over in-band range bins (at most 256, evenly taken) of the slow-time periodogram of ``echo[rows]``."""
    x = scipy.fft.fftshift(scipy.fft.fft(echo[rows], axis=1), axes=1)[:, bins]  # bins: centred order
    x = x[:, :: max(1, x.shape[1] // 256)]
    return np.mean(np.abs(scipy.fft.fft(x, n=nf, axis=0)) ** 2, axis=1)


def doppler_line_ratio(echo, flags, ratio, prf, f_dc, bandwidth, length_pulses, bins):
    """(The Doppler-aware line ratio of the module docstring (circular scene), per flagged run ``(first pulse,
    stop, the RFI's strongest Doppler [Hz], the line offset it is imaged at)``)."""
    n = flags.size
    ka = bandwidth * prf / length_pulses
    out = np.zeros(n)
    peaks = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        m = b - a
        nf = 1 << int(np.ceil(np.log2(4 * m)))
        run = _doppler_power(echo, np.arange(a, b), bins, nf)
        around = 0.5 * (
            _doppler_power(echo, np.arange(a - m, a) % n, bins, nf)
            + _doppler_power(echo, np.arange(b, b + m) % n, bins, nf)
        )
        excess = np.maximum(run - around, 0.0)
        p = excess / excess.sum()
        f = np.fft.fftfreq(nf, 1 / prf)
        f = f_dc + (f - f_dc + prf / 2) % prf - prf / 2  # the alias inside the band centred on f_dc
        keep = np.abs(f - f_dc) <= bandwidth / 2
        d = np.round(f[keep] / ka * prf).astype(int)
        top = int(np.argmax(p))
        peaks.append((int(a), int(b), float(f[top]), int(round(f[top] / ka * prf))))
        w = np.bincount(d - d.min(), weights=p[keep])
        for j in np.flatnonzero(w):
            out[(np.arange(a, b) + d.min() + j) % n] += ratio[a:b] * w[j]
    return out, peaks


def main(argv=None) -> int:
    from sarpipe.focus import focus
    from sarpipe.rfi.clean import detect
    from sarpipe.rfi.echo_detect import in_band_bins
    from sarpipe.rfi.pulses import line_rfi_to_clutter, processed_bandwidth, pulse_rfi_to_clutter
    from sarpipe.sensor import SensorParams
    from sarpipe.testing import make_scene

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--removed", default="", help="cleanup methods for the removed-RFI rule, comma-separated")
    args = ap.parse_args(argv)
    ds = make_scene("minisar", args.seed, n_azimuth=512, n_range=1024)
    slc = focus(ds)
    det = detect(ds, slc)
    sensor = SensorParams.from_attrs(ds.attrs)
    geom = det.mapping.geometry
    bandwidth = processed_bandwidth({**ds.attrs, **slc.attrs}) or sensor.prf

    def line_power(x):
        part = ds.copy()
        part["echo"] = (ds["echo"].dims, np.asarray(x))
        return np.mean(np.abs(focus(part)["slc"].values) ** 2, axis=1)

    truth_ratio = line_power(ds["rfi"].values) / line_power((ds["echo"] - ds["rfi"]).values)
    truth = truth_ratio >= 1
    echo = np.asarray(ds["echo"].values)
    flags = np.asarray(det.rfi_pulses, bool)
    ratio = pulse_rfi_to_clutter(echo, flags, sensor)
    bins = np.flatnonzero(np.asarray(in_band_bins(echo.shape[1], sensor)))
    if bins.size == 0:
        bins = np.arange(echo.shape[1])
    dopp, peaks = doppler_line_ratio(
        echo, flags, ratio, sensor.prf, sensor.doppler_centroid or 0.0, bandwidth, geom.length_pulses, bins
    )
    incoherent = line_rfi_to_clutter(ratio, geom)

    def iou(mask):
        union = (mask | truth).sum()
        return float((mask & truth).sum() / union) if union else float("nan")

    print(f"scene minisar {args.seed}: {flags.sum()} flagged pulses, T = {geom.length_pulses:.0f} pulses")
    print(f"truth: {truth.sum()} lines with focused RFI over the clutter (largest ratio {truth_ratio.max():.2f})")
    for a, b, f_peak, offset in peaks:
        print(f"flagged run {a}-{b}: the RFI's strongest Doppler {f_peak:+.1f} Hz, imaged {offset:+d} lines away")
    print("| rule | largest line ratio | at line | lines >= 1 | IoU | lines >= 0.5 | IoU |")
    print("|---|---|---|---|---|---|---|")
    for name, lr in (("incoherent (the chain's)", incoherent), ("Doppler-aware", dopp)):
        print(
            f"| {name} | {lr.max():.2f} | {int(lr.argmax())} | {int((lr >= 1).sum())} | {iou(lr >= 1):.2f} "
            f"| {int((lr >= 0.5).sum())} | {iou(lr >= 0.5):.2f} |"
        )
    if args.removed:
        from sarpipe.rfi.clean import clean

        before = slc["slc"].values
        print("| removed by | lines | IoU |")
        print("|---|---|---|")
        for name in filter(None, args.removed.split(",")):
            part = ds.copy()
            part["echo"] = clean(ds, name, detection=det).raw["echo"]
            after = focus(part)["slc"].values
            mask = np.mean(np.abs(before - after) ** 2, axis=1) >= np.mean(np.abs(after) ** 2, axis=1)
            print(f"| {name} | {int(mask.sum())} | {iou(mask):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
