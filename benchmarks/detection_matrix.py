"""The detection matrix: RFI detection (image -> pulses, the chain's ``detect``) measured on scenes that are short,
squinted and strongly textured, for two sensors, with RFI in one burst, on half the scene, on every pulse, or weak
(or faint, on the scene darkened to the noise), and the clean version of every scene.

    PYTHONPATH=. .venv/bin/python benchmarks/detection_matrix.py                 # held-out seeds (the docs table)
    PYTHONPATH=. .venv/bin/python benchmarks/detection_matrix.py --seed 100      # a development seed (tuning)
    PYTHONPATH=. .venv/bin/python benchmarks/detection_matrix.py --only C-1ap    # scenes whose name starts so

Scenes (:func:`matrix_scenes`): sensor ``C`` (Sentinel-1-stripmap-like, 5.405 GHz, 87.6 MHz chirp shortened to
5 us so that a 1024-sample swath holds it) and ``L`` (an airborne L-band sensor, 1.26 GHz, 40 MHz chirp, 100 m/s,
2-3.9 km), squinted by a third of the PRF (``C``: 567 Hz, a beam-centre shift of ~450 pulses; ``L``: 50 Hz, ~0.45 T), scene
lengths of 1 and 2 synthetic apertures (``T``, the 3 dB beam's aperture at far range), and the issue's scene
(``C-issue``: 2048 pulses, a 2048-sample swath with a 10 us chirp, one 300-pulse burst at SIR -12 dB). Clutter:
the test sets' log-normal texture and fields squared (fields 12 dB darker or brighter, texture twice as deep in dB),
SNR 25 dB. RFI kinds (the ``sentinel1`` emitter preset: two narrowband emitters, one or two chirps and one
sinusoidal FM of a few MHz):

- ``burst``: one burst of 0.37 T pulses (the issue's 300 of 815) at SIR -12 dB;
- ``half``: a contiguous half of the scene at SIR -6 dB;
- ``every``: every pulse, SIR -6 dB (no RFI-free pulse or line to learn the background from);
- ``weak``: one burst of 0.37 T at SIR +15 dB: the RFI power per sample is 15 dB below the clutter's and 10 dB
  above the thermal noise;
- ``clean``: the same scene without RFI (must flag nothing);
- ``faint``: the same clutter darkened to the thermal noise's power (SNR 0 dB: calm water, a shadow), with one
  burst of 0.37 T of RFI at the noise's power (SIR +3 dB against clutter plus noise): weak RFI near the noise,
  which over a dark scene is what a user sees in the image;
- ``dark``: that dark scene without RFI (must flag nothing).

Figures per scene: pulses flagged, recall and extra pulses (flagged but RFI-free, in % of the true RFI pulses;
sarpipe.rfi.metrics), and the image mask's line IoU: the lines of ``rfi_image_mask`` (a line with any masked
cell) against the lines where the focused RFI *exceeds the clutter* - the mean over range of ``|focus(rfi)|^2``
is at least that of ``|focus(echo - rfi)|^2`` (clutter plus noise) on that line. ``missed>8dB``: lines where the
focused RFI stands 8 dB or more above the thermal noise's image intensity but the mask is empty. ``image-test
lines``: the lines the image's spectral test flags (what the mask marked before it was built from the flagged
pulses, :func:`sarpipe.rfi.pulses.map_pulses_to_lines`), and their IoU.
``best band dB``: per RFI pulse, the largest in-band ratio of the RFI's power to the clutter's expected power in one band of the echo
detector's whole-pulse spectra (median over the RFI pulses: how far the RFI stands out pulse by pulse);
``peak: RFI / clutter max``: what the detector's self-referenced peak test sees (:func:`smoothed_peak_db`), the
median over the RFI pulses against the largest over every pulse of the same scene's clutter alone (``echo - rfi``):
RFI below the clutter's own largest peak cannot be told from it by that test.
Seeds: the matrix reports ``--seed 0`` (the docs table); the detector was developed on seeds 100 and up.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

from sarpipe.focus import focus
from sarpipe.rfi import DetectionSettings, detect
from sarpipe.rfi.echo_detect import in_band_bins, pulse_band_spectra, system_shape
from sarpipe.rfi.metrics import pulse_extra_fraction, pulse_recall
from sarpipe.rfi.pulses import aperture_geometry
from sarpipe.sensor import SensorParams
from sarpipe.simulate import SENSORS, simulate
from sarpipe.simulate.interference import rfi_truth_pulses
from sarpipe.testing import reflectivity_map

NBANDS = 256  # bands of the echo detector's whole-pulse spectra (detect_echo's default)
SMOOTH_PULSES = 15  # its running median over pulses

#: sensor -> (simulator sensor section, near range [m], range samples)
MATRIX_SENSORS: dict[str, tuple[dict[str, Any], float, int]] = {
    "C": ({"preset": "sentinel1_sm", "pulse_duration": 5e-6, "chirp_rate": 87.6e6 / 5e-6}, 850_000.0, 1024),
    "L": (
        {
            "carrier_frequency": 1.26e9,
            "range_sampling_rate": 80e6,
            "chirp_rate": 40e6 / 4e-6,
            "pulse_duration": 4e-6,
            "prf": 150.0,
            "velocity": 100.0,
            "antenna_length": 1.6,
            "look_side": "left",
            "name": "airborne L-band",
        },
        2_000.0,
        1024,
    ),
}
SNR_DB = 25.0
BURST_FRACTION = 0.37  # of an aperture: the issue's 300 pulses of 815
WEAK_SIR_DB = 15.0  # RFI 15 dB below the clutter, 10 dB above the thermal noise (SNR 25 dB)
DARK_SNR_DB = 0.0  # a dark scene (calm water, shadow): clutter at the thermal noise's power
FAINT_SIR_DB = 3.0  # on it, RFI at the noise's power: 3 dB below clutter plus noise
KINDS = ("burst", "half", "every", "weak", "clean", "faint", "dark")


def sensor_attrs(sensor: dict[str, Any], near: float) -> dict[str, Any]:
    p = dict(SENSORS[sensor["preset"]]) if "preset" in sensor else {}
    p.update({k: v for k, v in sensor.items() if k not in ("preset", "name")})
    return {**p, "near_range": near}


def scene_aperture(sensor: dict[str, Any], near: float, n_rg: int, f_dc: float) -> float:
    """Synthetic aperture [pulses] of the 3 dB beam at far range."""
    attrs = {**sensor_attrs(sensor, near), "doppler_centroid": f_dc}
    sp = SensorParams.from_attrs(attrs)
    far = near + n_rg * sp.range_pixel_spacing
    return aperture_geometry(sp, far).length_pulses


def matrix_scenes(seed: int = 0, n_range: int | None = None) -> list[dict[str, Any]]:
    """Every scene of the matrix: ``name``, ``config`` (simulator mapping without the reflectivity file),
    ``shape``, ``clutter_seed`` (scenes of one sensor and length share their clutter, hence their clean version).
    ``n_range``: a narrower swath than the matrix's (the tests' small scenes)."""
    out = []
    for sname, (sensor, near, n_rg) in MATRIX_SENSORS.items():
        n_rg = n_range or n_rg
        prf = sensor_attrs(sensor, near)["prf"]
        f_dc = prf / 3
        t_ap = scene_aperture(sensor, near, n_rg, f_dc)
        for n_ap in (1, 2):
            n_az = int(math.ceil(n_ap * t_ap))
            for kind in KINDS:
                out.append(_scene(f"{sname}-{n_ap}ap-{kind}", sensor, near, n_rg, n_az, f_dc, t_ap, kind, seed, n_ap))
    sensor, near, _ = MATRIX_SENSORS["C"]
    issue = {**sensor, "pulse_duration": 10e-6, "chirp_rate": 87.6e6 / 10e-6}
    t_ap = scene_aperture(issue, near, 2048, 1700 / 3)
    for kind in ("burst", "clean"):
        s = _scene(f"C-issue-{kind}", issue, near, 2048, 2048, 1700 / 3, t_ap, kind, seed, 3)
        if kind == "burst":
            s["config"]["rfi"]["pulses"] = [[800, 1100]]
        out.append(s)
    return out


def _scene(name, sensor, near, n_rg, n_az, f_dc, t_ap, kind, seed, tag) -> dict[str, Any]:
    clutter_seed = 1000 * seed + 10 * tag + (0 if name.startswith("C") else 5)
    cfg: dict[str, Any] = {
        "sensor": dict(sensor),
        "scene": {"n_azimuth": n_az, "n_range": n_rg, "near_range": near},
        "noise": {"snr_db": DARK_SNR_DB if kind in ("faint", "dark") else SNR_DB},
        "doppler_centroid": f_dc,
        "seed": clutter_seed,
    }
    rng = np.random.default_rng([seed, tag, KINDS.index(kind)])
    burst = int(round(BURST_FRACTION * t_ap))
    if kind in ("burst", "weak", "faint"):
        a = int(rng.integers(0, n_az - burst))
        pulses, sir = [[a, a + burst]], {"burst": -12.0, "weak": WEAK_SIR_DB, "faint": FAINT_SIR_DB}[kind]
    elif kind == "half":
        a = int(rng.integers(0, n_az // 2))
        pulses, sir = [[a, a + n_az // 2]], -6.0
    elif kind == "every":
        pulses, sir = [[0, n_az]], -6.0
    else:
        pulses = None
    if pulses is not None:
        cfg["rfi"] = {"preset": "sentinel1", "sir_db": sir, "pulses": pulses}
    return {"name": name, "config": cfg, "shape": (n_az, n_rg), "clutter_seed": clutter_seed, "aperture": t_ap}


def simulate_scene(scene: dict[str, Any], cache: Path | None = None):
    """Simulate ``scene`` (its strong clutter drawn from ``clutter_seed``), cached as Zarr under ``cache``."""
    from sarpipe.model import load_dataset, save_dataset

    digest = hashlib.sha1(json.dumps(scene["config"], sort_keys=True).encode()).hexdigest()[:10]
    key = f"{scene['name']}-{digest}"
    if cache is not None and (cache / f"{key}.zarr").exists():
        return load_dataset(cache / f"{key}.zarr", "raw").load()
    with tempfile.TemporaryDirectory(prefix="sarpipe-matrix-") as tmp:
        amp = reflectivity_map(scene["shape"], np.random.default_rng([scene["clutter_seed"], 7])) ** 2
        np.save(Path(tmp) / "refl.npy", amp / np.sqrt(np.mean(amp**2)))
        raw = simulate({**scene["config"], "extended": {"file": str(Path(tmp) / "refl.npy")}})
    if cache is not None:
        save_dataset(raw, cache / f"{key}.zarr")
    return raw


def line_truth(raw, slc) -> tuple[np.ndarray, np.ndarray]:
    """Per image line: focused RFI intensity >= focused clutter + noise (mean over range), and focused RFI 8 dB or
    more above the focused thermal noise (``noise_power`` times the image's gain for white noise)."""
    if "rfi" not in raw.data_vars:
        n = raw.sizes["azimuth"]
        return np.zeros(n, bool), np.zeros(n, bool)
    rfi = raw.copy()
    rfi["echo"] = raw["rfi"]
    rest = raw.copy()
    rest["echo"] = raw["echo"] - raw["rfi"]
    i_rfi = np.mean(np.abs(focus(rfi)["slc"].values) ** 2, axis=1)
    i_rest = np.mean(np.abs(focus(rest)["slc"].values) ** 2, axis=1)
    noise = raw.copy()
    p_n = float(raw.attrs["noise_power"])
    rng = np.random.default_rng(0)
    shape = raw["echo"].shape
    noise["echo"] = (
        raw["echo"].dims,
        (np.sqrt(p_n / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))).astype(np.complex64),
    )
    i_noise = float(np.mean(np.abs(focus(noise)["slc"].values) ** 2))
    return i_rfi >= i_rest, i_rfi >= i_noise * 10**0.8


def best_band_db(raw, sensor: SensorParams, nbands: int = NBANDS) -> np.ndarray:
    """Per RFI pulse (truth): the largest in-band ratio of the RFI's band power to the clutter-plus-noise's expected
    power in that band (the pulse's clutter power times the median clutter shape over the scene) [dB]."""
    idx = np.flatnonzero(rfi_truth_pulses(raw))
    rfi = pulse_band_spectra(raw["rfi"].values, nbands, rows=idx)
    rest = pulse_band_spectra((raw["echo"] - raw["rfi"]).values, nbands)
    bins = in_band_bins(rfi.spectrum.shape[1], sensor)
    shape = np.median(rest.spectrum[:, bins], axis=0)
    p_rfi = rfi.spectrum[:, bins] * 10 ** (rfi.power_db / 10)[:, None]
    p_rest = shape[None, :] * 10 ** (rest.power_db[idx] / 10)[:, None]
    return 10 * np.log10(np.max(p_rfi / p_rest, axis=1))


def smoothed_peak_db(echo: np.ndarray, sensor: SensorParams, nbands: int = NBANDS) -> np.ndarray:
    """Per pulse, what the echo detector's self-referenced peak test sees [dB]: the running median over
    ``SMOOTH_PULSES`` pulses of the whole-pulse band spectra, over the system shape, its largest band over the row's
    median band."""
    st = pulse_band_spectra(echo, nbands)
    bins = in_band_bins(st.spectrum.shape[1], sensor)
    smoothed = median_filter(st.spectrum[:, bins], size=(SMOOTH_PULSES, 1), mode="nearest")
    ratio = smoothed / system_shape(st.spectrum, bins)[None, :]
    return 10 * np.log10(ratio.max(axis=1) / np.median(ratio, axis=1))


def line_iou(lines: np.ndarray, truth: np.ndarray) -> float | None:
    """Intersection over union of two line sets (None when both are empty)."""
    union = np.count_nonzero(lines | truth)
    return np.count_nonzero(lines & truth) / union if union else None


def quickstart_scene() -> dict[str, Any]:
    """The quickstart's scene (``data_catalog.yaml``'s ``quickstart_minisar``: point targets on thermal noise, two
    RFI bursts), as a matrix scene whose raw data is simulated from the catalog's config."""
    import yaml

    entry = yaml.safe_load((Path(__file__).resolve().parents[1] / "data_catalog.yaml").read_text())
    config = entry["entries"]["quickstart_minisar"]["config"]
    raw = simulate(config)
    sp = SensorParams.from_attrs(raw.attrs)
    far = float(raw["slant_range"].values[-1])
    return {"name": "quickstart", "raw": raw, "aperture": aperture_geometry(sp, far).length_pulses}


def measure(scene: dict[str, Any], settings: DetectionSettings, cache: Path | None) -> dict[str, Any]:
    raw = scene["raw"] if "raw" in scene else simulate_scene(scene, cache)
    slc = focus(raw)
    t0 = time.perf_counter()
    det = detect(raw, slc, settings)
    t_det = time.perf_counter() - t0
    truth = rfi_truth_pulses(raw) if "rfi" in raw.data_vars else np.zeros(raw.sizes["azimuth"], bool)
    flags = det.rfi_pulses
    over_clutter, over_noise = line_truth(raw, slc)
    mask_lines = np.asarray(det.rfi_image_mask).any(axis=1)
    image_lines = det.image.lines  # the lines the image's spectral test flags (the mask before issue 13)
    row = {
        "scene": scene["name"],
        "pulses": int(raw.sizes["azimuth"]),
        "aperture": round(scene["aperture"], 1),
        "rfi_pulses": int(truth.sum()),
        "flagged": int(flags.sum()),
        "recall": pulse_recall(flags, truth) if truth.any() else None,
        "extra_pct": 100 * pulse_extra_fraction(flags, truth) if truth.any() else None,
        "lines_over_clutter": int(over_clutter.sum()),
        "mask_lines": int(mask_lines.sum()),
        "mask_iou": line_iou(mask_lines, over_clutter),
        "image_lines": int(image_lines.sum()),
        "image_lines_iou": line_iou(image_lines, over_clutter),
        "missed_over_8db": int(np.count_nonzero(over_noise & ~mask_lines)),
        "lines_over_8db": int(over_noise.sum()),
        "detect_s": round(t_det, 2),
    }
    if truth.any():
        sensor = SensorParams.from_attrs(raw.attrs)
        row["best_band_db"] = round(float(np.median(best_band_db(raw, sensor))), 1)
        seen = smoothed_peak_db(raw["echo"].values, sensor)
        row["peak_rfi_db"] = round(float(np.median(seen[truth])), 1)
        row["peak_clutter_max_db"] = round(float(smoothed_peak_db((raw["echo"] - raw["rfi"]).values, sensor).max()), 1)
    return row


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="scene seed (0: the held-out matrix; 100+: development)")
    ap.add_argument("--only", default="", help="only scenes whose names start with this")
    ap.add_argument("--cache", type=Path, default=None, help="keep simulated scenes here (Zarr) between runs")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--quickstart", action="store_true", help="the quickstart's scene instead of the matrix")
    args = ap.parse_args(argv)
    rows = []
    print(
        "| scene | pulses | T | RFI pulses | flagged | recall | extra % | lines RFI>clutter | mask lines | IoU | "
        "missed >8 dB | image-test lines | IoU | best band dB | peak: RFI / clutter max dB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for scene in [quickstart_scene()] if args.quickstart else matrix_scenes(args.seed):
        if not scene["name"].startswith(args.only):
            continue
        r = measure(scene, DetectionSettings(), args.cache)
        rows.append(r)
        print(
            f"| {r['scene']} | {r['pulses']} | {r['aperture']:.0f} | {r['rfi_pulses']} | {r['flagged']} | "
            f"{_fmt(r['recall'], '.3f')} | {_fmt(r['extra_pct'], '.1f')} | {r['lines_over_clutter']} | "
            f"{r['mask_lines']} | {_fmt(r['mask_iou'], '.2f')} | {r['missed_over_8db']} / {r['lines_over_8db']} | "
            f"{r['image_lines']} | {_fmt(r['image_lines_iou'], '.2f')} | "
            f"{_fmt(r.get('best_band_db'), '.1f')} | {_fmt(r.get('peak_rfi_db'), '.1f')} / "
            f"{_fmt(r.get('peak_clutter_max_db'), '.1f')} |",
            flush=True,
        )
    fails = [
        r["scene"]
        for r in rows
        if (r["rfi_pulses"] and (r["recall"] < 0.95 or r["extra_pct"] > 20)) or (not r["rfi_pulses"] and r["flagged"])
    ]
    print(f"\ntarget (recall >= 0.95, extra <= 20 %, clean scenes 0 flagged) missed on: {', '.join(fails) or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
