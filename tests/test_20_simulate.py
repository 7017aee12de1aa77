"""Stripmap simulator: the numba kernel against a plain-numpy echo model, the geometry against theory,
noise at the stated SNR, presets within their physical limits, and configuration errors with their lines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sarpipe.errors import InputError
from sarpipe.model import SPEED_OF_LIGHT, open_raw, validate
from sarpipe.simulate import SENSORS, load_config, point_target_echoes, scene_attrs, simulate
from sarpipe.yamlconf import ConfigError

C = SPEED_OF_LIGHT


def reference_echoes(targets, attrs, shape, azimuth_time0=0.0, pattern="rect"):
    """Plain-numpy evaluation of the echo model of docs/design.md, sample by sample, no recurrences."""
    n_az, n_rg = shape
    lam = C / attrs["carrier_frequency"]
    v, prf, fs = attrs["velocity"], attrs["prf"], attrs["range_sampling_rate"]
    kr, tp, la, f_dc = attrs["chirp_rate"], attrs["pulse_duration"], attrs["antenna_length"], attrs["doppler_centroid"]
    eta = azimuth_time0 + np.arange(n_az) / prf
    tau = 2.0 * (attrs["near_range"] + np.arange(n_rg) * C / (2 * fs)) / C
    out = np.zeros(shape, dtype=np.complex128)
    theta = math.asin(lam * f_dc / (2 * v))
    for t in targets:
        r = np.sqrt(t["slant_range"] ** 2 + v**2 * (eta - t["azimuth_time"]) ** 2)
        sin_phi = -v * (eta - t["azimuth_time"]) / r
        f = 2 * v * sin_phi / lam
        if pattern == "rect":
            w = (np.abs(f - f_dc) <= 0.886 * 2 * v * math.cos(theta) / la / 2).astype(float)
        else:
            u = la * np.sin(np.arcsin(sin_phi) - theta) / lam
            w = np.where(np.abs(u) < 1, np.sinc(u) ** 2, 0.0)
        x = tau[None, :] - 2 * r[:, None] / C
        inside = np.abs(x) <= tp / 2
        ph = -4 * np.pi * r[:, None] / lam + np.pi * kr * x**2
        amp = t["amplitude"] * np.exp(1j * t["phase"])
        out += amp * w[:, None] * inside * np.exp(1j * ph)
    return out


def small_attrs(f_dc=0.0, **over):
    cfg = {
        "sensor": {"preset": "minisar", **over},
        "scene": {"n_azimuth": 700, "n_range": 600},
        "doppler_centroid": f_dc,
    }
    attrs, n_az, n_rg, az0 = scene_attrs(cfg)
    return attrs, (n_az, n_rg)


@pytest.mark.parametrize("pattern", ["rect", "sinc2"])
@pytest.mark.parametrize("f_dc,kr_sign", [(0.0, 1.0), (95.0, -1.0)])
def test_kernel_matches_numpy_reference(pattern, f_dc, kr_sign):
    attrs, shape = small_attrs(f_dc, chirp_rate=kr_sign * 300e6 / 1e-6)
    dr = C / (2 * attrs["range_sampling_rate"])
    targets = [
        {
            "slant_range": attrs["near_range"] + 250.3 * dr,
            "azimuth_time": 400.4 / attrs["prf"],
            "amplitude": 1.0,
            "phase": 0.3,
        },
        {
            "slant_range": attrs["near_range"] + 330.25 * dr,
            "azimuth_time": 380.1 / attrs["prf"],
            "amplitude": 0.5,
            "phase": -1.0,
        },
    ]
    got = point_target_echoes(targets, attrs, shape, 0.0, pattern)
    want = reference_echoes(targets, attrs, shape, 0.0, pattern)
    assert got.dtype == np.complex64
    assert np.count_nonzero(np.abs(want) > 0) > 100_000
    assert np.max(np.abs(got - want)) < 2e-5 * np.max(np.abs(want))
    # same support: the chirp and aperture edges fall on the same samples
    assert np.array_equal(np.abs(got) > 0, np.abs(want) > 0)


def test_kernel_matches_reference_at_spaceborne_ranges():
    """Large R0 (850 km) stresses the phase precision: -4 pi R / lambda is ~2e8 rad."""
    cfg = {
        "sensor": {"preset": "sentinel1_sm", "pulse_duration": 5e-6, "chirp_rate": 87.6e6 / 5e-6},
        "scene": {"n_azimuth": 1400, "n_range": 700},
        "doppler_centroid": 600.0,
    }
    attrs, n_az, n_rg, _ = scene_attrs(cfg)
    dr = C / (2 * attrs["range_sampling_rate"])
    targets = [
        {
            "slant_range": attrs["near_range"] + 350 * dr,
            "azimuth_time": 1100.5 / attrs["prf"],
            "amplitude": 1.0,
            "phase": 0.0,
        }
    ]
    got = point_target_echoes(targets, attrs, (n_az, n_rg))
    want = reference_echoes(targets, attrs, (n_az, n_rg))
    assert np.max(np.abs(got - want)) < 2e-5


def _matched_filter_range(echo, attrs):
    """Independent range compression (numpy correlation with the replica) for the geometry checks."""
    fs, kr, tp = attrs["range_sampling_rate"], attrs["chirp_rate"], attrs["pulse_duration"]
    n = 2 * int(tp * fs / 2) + 1  # odd: the replica's centre falls on a sample
    t = (np.arange(n) - (n - 1) / 2) / fs
    replica = np.exp(1j * np.pi * kr * t**2)
    nfft = echo.shape[1] + n
    spec = np.fft.fft(echo, nfft, axis=1) * np.conj(np.fft.fft(replica, nfft))
    out = np.fft.ifft(spec, axis=1)
    # shift so that index j is the sample whose delay equals the chirp centre
    return np.roll(out, (n - 1) // 2, axis=1)[:, : echo.shape[1]]


@pytest.mark.parametrize("f_dc", [0.0, 0.35 * 300.0])
def test_range_history_and_doppler_band_follow_theory(f_dc):
    """Range-compressed peaks follow R(eta) (hyperbola), the azimuth phase gives the Doppler band f_dc +- B_a/2,
    and the aperture holds B_a / |Ka| seconds with Ka = 2 V^2 cos^3(theta) / (lambda R0)."""
    attrs, shape = small_attrs(f_dc)
    attrs["chirp_rate"], attrs["pulse_duration"] = 300e6 / 0.3e-6, 0.3e-6
    shape = (1000, 300)
    lam, v, prf = C / attrs["carrier_frequency"], attrs["velocity"], attrs["prf"]
    dr = C / (2 * attrs["range_sampling_rate"])
    r0, eta0 = attrs["near_range"] + 150 * dr, 700 / prf
    echo = point_target_echoes([{"slant_range": r0, "azimuth_time": eta0}], attrs, shape)
    rows = np.flatnonzero(np.abs(echo).max(axis=1) > 0)
    rc = _matched_filter_range(echo[rows].astype(np.complex128), attrs)
    eta = rows / prf
    r_eta = np.sqrt(r0**2 + v**2 * (eta - eta0) ** 2)
    peak = np.argmax(np.abs(rc), axis=1)
    assert np.max(np.abs(peak - (r_eta - attrs["near_range"]) / dr)) <= 0.51
    # azimuth phase history at the peak: -4 pi R(eta) / lambda, its derivative the Doppler
    hist = rc[np.arange(rows.size), peak]
    # pulse-to-pulse phase step, taken modulo the PRF around f_dc (the band may straddle +-PRF/2)
    step_phase = np.angle(hist[1:] * np.conj(hist[:-1]) * np.exp(-2j * np.pi * f_dc / prf))
    doppler = f_dc + step_phase * prf / (2 * np.pi)
    theta = math.asin(lam * f_dc / (2 * v))
    ba = 0.886 * 2 * v * math.cos(theta) / attrs["antenna_length"]
    ka = 2 * v**2 * math.cos(theta) ** 3 / (lam * r0)
    step = ka / prf  # Doppler change per pulse
    assert abs(doppler.max() - (f_dc + ba / 2)) < 1.5 * step
    assert abs(doppler.min() - (f_dc - ba / 2)) < 1.5 * step
    assert abs(rows.size - ba / ka * prf) <= 0.01 * rows.size + 2
    # the beam centre crosses the target at eta_c = -R0 tan(theta) / V
    centre = 0.5 * (rows[0] + rows[-1]) / prf - eta0
    assert abs(centre - (-r0 * math.tan(theta) / v)) < 2 / prf


def test_noise_has_the_stated_snr_and_seed():
    cfg = {
        "sensor": {"preset": "minisar"},
        "scene": {"n_azimuth": 600, "n_range": 500},
        "targets": [{"range_index": 250, "azimuth_index": 300}],
        "noise": {"snr_db": 3.0},
        "seed": 7,
    }
    ds = simulate(cfg)
    clean, echo = ds.echo_clean.values, ds.echo.values
    noise = (echo - clean).astype(np.complex128)
    snr = 10 * np.log10(np.mean(np.abs(clean.astype(np.complex128)) ** 2) / np.mean(np.abs(noise) ** 2))
    assert abs(snr - 3.0) < 0.02
    # circular: real and imaginary parts carry half the power each, uncorrelated
    assert abs(np.var(noise.real) / np.var(noise.imag) - 1) < 0.02
    assert abs(np.mean(noise.real * noise.imag)) < 0.01 * np.var(noise.real)
    again = simulate(cfg)
    assert np.array_equal(again.echo.values, echo)
    other = simulate({**cfg, "seed": 8})
    assert not np.array_equal(other.echo.values, echo)
    assert np.array_equal(other.echo_clean.values, clean)


def test_rfi_section_adds_ground_truth_rfi():
    cfg = {
        "sensor": {"preset": "minisar"},
        "scene": {"n_azimuth": 400, "n_range": 400},
        "targets": [{"range_index": 200, "azimuth_index": 200}],
        "noise": {"snr_db": 10.0},
        "seed": 3,
        "rfi": {"preset": "minisar", "pulses": [[100, 150]], "sir_db": -5.0},
    }
    ds = simulate(cfg)
    validate(ds, "raw")
    rfi = ds.rfi.values
    assert np.all(np.abs(rfi[:100]) == 0) and np.all(np.abs(rfi[150:]) == 0) and np.abs(rfi[100:150]).max() > 0
    noise_free = simulate({k: v for k, v in cfg.items() if k != "rfi"})
    assert np.allclose(ds.echo.values, noise_free.echo.values + rfi, atol=1e-5)


def test_presets_are_physically_consistent():
    for name in SENSORS:
        attrs, n_az, n_rg, _ = scene_attrs({"sensor": {"preset": name}})
        lam = C / attrs["carrier_frequency"]
        b = abs(attrs["chirp_rate"]) * attrs["pulse_duration"]
        assert b < attrs["range_sampling_rate"], name
        assert attrs["azimuth_bandwidth"] < attrs["prf"], name
        # the default scene holds a chirp and a synthetic aperture
        aperture = lam * attrs["near_range"] / (attrs["antenna_length"] * attrs["velocity"]) * attrs["prf"]
        assert n_az > aperture and n_rg > attrs["pulse_duration"] * attrs["range_sampling_rate"], name
    mini = SENSORS["minisar"]
    assert abs(mini["chirp_rate"]) * mini["pulse_duration"] >= 200e6
    assert 8e9 <= mini["carrier_frequency"] <= 12e9
    lam = C / mini["carrier_frequency"]
    pulses = 0.886 * lam * mini["near_range"] / (mini["antenna_length"] * mini["velocity"]) * mini["prf"]
    assert 300 <= pulses <= 1000
    assert SENSORS["sentinel1_sm"]["carrier_frequency"] == 5.405e9


def config_error(tmp_path, text, kind=InputError):
    """Write ``text`` as a simulator YAML file and return (its path, the error load_config raises)."""
    path = tmp_path / "sim.yaml"
    path.write_text(text)
    with pytest.raises(kind) as info:
        load_config(path)
    return path, info.value


def test_extended_requires_existing_file(tmp_path):
    path, err = config_error(tmp_path, "sensor:\n  preset: minisar\nextended:\n  file: nothere.npy\n")
    assert f"{path}:4:3" in str(err) and "extended.file" in str(err)


def test_config_errors_name_line_and_key(tmp_path):
    path, err = config_error(
        tmp_path,
        "sensor:\n"
        "  preset: ers2\n"  # line 2: unknown preset
        "scene:\n"
        "  n_azimuth: lots\n"  # line 4: wrong type
        "  n_rangee: 100\n"  # line 5: unknown key
        "targets:\n"
        "  - range_index: 10\n"  # line 7: no azimuth position
        "noise:\n"
        "  snr_db: 10\n",
        ConfigError,
    )
    text = str(err)
    assert f"{path}:2:3: sensor.preset" in text
    assert f"{path}:4:3: scene.n_azimuth" in text
    assert f"{path}:5:3: scene.n_rangee: unknown key" in text
    assert f"{path}:7:5: targets[0]" in text and "azimuth_time or azimuth_index" in text
    assert len(err.problems) == 4


def test_explicit_sensor_needs_every_parameter(tmp_path):
    path, err = config_error(tmp_path, "sensor:\n  carrier_frequency: 5.3e9\n  prf: 1000\n", ConfigError)
    assert f"{path}:1:1: sensor: " in str(err) and "chirp_rate" in str(err)


def test_aliased_chirp_is_refused():
    with pytest.raises(InputError, match="exceeds the range sampling rate"):
        simulate(
            {"sensor": {"preset": "minisar", "range_sampling_rate": 200e6}, "scene": {"n_azimuth": 8, "n_range": 8}}
        )


def test_cli_writes_a_valid_raw_store(tmp_path):
    from sarpipe.cli import main

    cfg = tmp_path / "sim.yaml"
    cfg.write_text(
        "sensor: {preset: minisar}\nscene: {n_azimuth: 300, n_range: 500}\n"
        "targets:\n  - {range_index: 250, azimuth_index: 150}\nnoise: {snr_db: 20}\nseed: 1\n"
    )
    out = tmp_path / "raw.zarr"
    assert main(["simulate", str(cfg), "-o", str(out)]) == 0
    ds = open_raw(out)
    assert ds.attrs["sensor"] and ds.attrs["antenna_length"] == SENSORS["minisar"]["antenna_length"]
    assert ds.attrs["point_targets"][0]["slant_range"] == pytest.approx(ds.slant_range.values[250])
    assert main(["simulate", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "x.zarr")]) == 2
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("f_dc", [0.0, 0.35 * 300.0])
def test_exact_reference_focusing_gives_window_theory(f_dc):
    """Simulator check independent of sarpipe.focus: a matched filter built from the exact 2-D spectrum
    ``exp(-j 4 pi R0 / c sqrt((f0 + f_tau)^2 - (c f_eta / 2V)^2))`` of a target at R0 (numpy, no approximations)
    focuses the simulated echo to the rect-window theory at the configured position."""
    from sarpipe.quality import point_target_analysis, theoretical_response

    n_az, n_rg = 1024, 1024
    attrs, *_ = scene_attrs(
        {"sensor": {"preset": "minisar"}, "scene": {"n_azimuth": n_az, "n_range": n_rg}, "doppler_centroid": f_dc}
    )
    lam, v, prf, fs, f0 = (
        C / attrs["carrier_frequency"],
        attrs["velocity"],
        attrs["prf"],
        attrs["range_sampling_rate"],
        attrs["carrier_frequency"],
    )
    ri = 512.3
    r0 = attrs["near_range"] + ri * C / (2 * fs)
    ai = 512.4 + r0 * math.tan(math.asin(lam * f_dc / (2 * v))) / v * prf / 2
    echo = point_target_echoes([{"slant_range": r0, "azimuth_time": ai / prf}], attrs, (n_az, n_rg)).astype(
        np.complex128
    )
    m = int(attrs["pulse_duration"] * fs / 2)
    t = np.arange(-m, m + 1) / fs
    replica = np.zeros(n_rg, dtype=np.complex128)
    replica[np.arange(-m, m + 1) % n_rg] = np.exp(1j * np.pi * attrs["chirp_rate"] * t * t)
    f_tau = np.fft.fftfreq(n_rg, 1 / fs)[None, :]
    f_eta = np.fft.fftfreq(n_az, 1 / prf)
    f_eta = (f_dc + (f_eta - f_dc + prf / 2) % prf - prf / 2)[:, None]  # unwrapped around the centroid
    phase = 4 * np.pi * r0 / C * np.sqrt((f0 + f_tau) ** 2 - (C * f_eta / (2 * v)) ** 2) - 4 * np.pi * f_tau * r0 / C
    image = np.fft.ifft2(np.fft.fft2(echo) * np.conj(np.fft.fft(replica))[None, :] * np.exp(1j * phase))
    res = point_target_analysis(image, ai, ri)
    th = theoretical_response("rect")
    assert abs(res.azimuth_position - ai) < 0.005 and abs(res.range_position - ri) < 0.005
    b_r = abs(attrs["chirp_rate"]) * attrs["pulse_duration"]
    assert res.range.irw_samples == pytest.approx(th.irw * fs / b_r, rel=0.005)
    assert res.azimuth.irw_samples == pytest.approx(th.irw * prf / attrs["azimuth_bandwidth"], rel=0.005)
    for cut in (res.range, res.azimuth):
        assert cut.pslr_db == pytest.approx(th.pslr_db, abs=0.1)
        assert cut.islr_db == pytest.approx(th.islr_db, abs=0.15)


EXT_BASE = {"sensor": {"preset": "minisar"}, "scene": {"n_azimuth": 1024, "n_range": 1024}, "doppler_centroid": 105.0}


def test_extended_pixels_focus_like_point_targets(tmp_path):
    """The defocus route for extended scenes agrees with the exact point-target kernel: a sparse map of complex
    pixels focuses to the same responses (shape, peak and phase) as point targets of those amplitudes/phases."""
    focus = pytest.importorskip("sarpipe.focus").focus
    rng = np.random.default_rng(0)
    pos = [(560, 300), (600, 512), (640, 700), (520, 620)]
    vals = rng.standard_normal(len(pos)) + 1j * rng.standard_normal(len(pos))
    grid = np.zeros((240, 460), dtype=np.complex128)
    for (a, r), v in zip(pos, vals):
        grid[a - 500, r - 280] = v
    np.save(tmp_path / "sparse.npy", grid)
    ext = simulate(
        {**EXT_BASE, "extended": {"file": str(tmp_path / "sparse.npy"), "azimuth_offset": 500, "range_offset": 280}}
    )
    pts = simulate(
        {
            **EXT_BASE,
            "targets": [
                {"azimuth_index": a, "range_index": r, "amplitude": float(abs(v)), "phase": float(np.angle(v))}
                for (a, r), v in zip(pos, vals)
            ],
        }
    )
    se, sp = focus(ext)["slc"].values, focus(pts)["slc"].values
    for a, r in pos:
        we, wp = se[a - 8 : a + 9, r - 8 : r + 9], sp[a - 8 : a + 9, r - 8 : r + 9]
        assert np.abs(np.vdot(we, wp)) / (np.linalg.norm(we) * np.linalg.norm(wp)) > 0.99
        assert abs(se[a, r]) / abs(sp[a, r]) == pytest.approx(1.0, abs=0.03)
        assert abs(np.angle(se[a, r] / sp[a, r])) < 0.1


def test_extended_image_file_and_speckle(tmp_path):
    """A grey-level PNG becomes a speckled scene: the focused intensity follows the image's amplitude squared."""
    from PIL import Image

    focus = pytest.importorskip("sarpipe.focus").focus
    img = np.zeros((128, 256), dtype=np.uint8)
    img[:, :128] = 40
    img[:, 128:] = 200
    Image.fromarray(img).save(tmp_path / "scene.png")
    cfg = {**EXT_BASE, "seed": 5, "extended": {"file": "scene.png", "azimuth_offset": 448, "range_offset": 384}}
    path = tmp_path / "sim.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    ds = simulate(load_config(path))  # the file is resolved next to the config
    slc = np.abs(focus(ds)["slc"].values) ** 2
    dark, bright = slc[470:550, 400:490].mean(), slc[470:550, 530:620].mean()
    assert bright / dark == pytest.approx((200 / 40) ** 2, rel=0.15)
    # fully developed speckle: intensity contrast std/mean ~ 1
    patch = slc[470:550, 530:620]
    assert patch.std() / patch.mean() == pytest.approx(1.0, abs=0.15)
    again = simulate(load_config(path))
    assert np.array_equal(again.echo.values, ds.echo.values)


def test_extended_map_must_fit_and_be_readable(tmp_path):
    np.save(tmp_path / "big.npy", np.ones((50, 2000)))
    with pytest.raises(InputError, match="does not fit"):
        simulate({**EXT_BASE, "extended": {"file": str(tmp_path / "big.npy")}})
    (tmp_path / "map.txt").write_text("1 2 3")
    with pytest.raises(InputError, match="unsupported reflectivity file type"):
        simulate({**EXT_BASE, "extended": {"file": str(tmp_path / "map.txt")}})
    np.save(tmp_path / "nan.npy", np.full((4, 4), np.nan))
    with pytest.raises(InputError, match="NaN"):
        simulate({**EXT_BASE, "extended": {"file": str(tmp_path / "nan.npy")}})


@pytest.mark.parametrize("name", ["point_targets.yaml", "sentinel1_squint.yaml", "minisar_rfi.yaml"])
def test_example_configs_are_valid(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / name
    cfg = load_config(path)
    attrs, n_az, n_rg, _ = scene_attrs(cfg)
    # every example target lies inside its scene
    dr = C / (2 * attrs["range_sampling_rate"])
    for t in cfg.targets:
        r = t.range_index if t.range_index is not None else (t.slant_range - attrs["near_range"]) / dr
        a = t.azimuth_index if t.azimuth_index is not None else t.azimuth_time * attrs["prf"]
        assert 0 <= r < n_rg and 0 <= a < n_az
