"""Range-Doppler focusing against theory and against an independent plain-numpy reference.

- range compression of one sampled chirp = its discrete autocorrelation (closed form, Dirichlet kernel);
- a point target (own plain-numpy echo generator) focuses at its zero-Doppler time / closest range with the
  theoretical IRW and the phase -4 pi R0 / lambda;
- the Doppler centroid estimate is within a few Hz of the truth (own generator and ``sarpipe.simulate``);
- a straightforward numpy RDA (loops, exact windowed-sinc weights) agrees with ``focus`` and ``focus_zarr``;
- ``focus(defocus(x)) == x`` on a band-limited extended scene.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft

from sarpipe.errors import InputError
from sarpipe.focus import (
    defocus,
    defocus_zarr,
    estimate_doppler_centroid,
    focus,
    focus_zarr,
    parse_window,
    range_compress,
)
from sarpipe.model import last_record, open_raw, open_slc, sar_dataset, save_dataset
from sarpipe.sensor import SensorParams

C = 299_792_458.0

# L-band airborne-like geometry with a large range migration (several samples at the Doppler band edges) and a
# short synthetic aperture (~250 pulses), so small scenes exercise RCMC for real.
ATTRS = {
    "carrier_frequency": 1.25e9,
    "range_sampling_rate": 100e6,
    "chirp_rate": 4e13,  # B = 80 MHz -> band fraction 0.8
    "pulse_duration": 2e-6,
    "prf": 100.0,
    "velocity": 200.0,
    "near_range": 10_000.0,
}
DR = C / (2 * ATTRS["range_sampling_rate"])
LAMBDA = C / ATTRS["carrier_frequency"]


def point_target_echo(attrs, n_az, n_rg, targets, f_dc, bandwidth, eta_start=0.0):
    """Plain-numpy stripmap echo (Cumming & Wong convention, docs/design.md section 2) of point targets
    ``(R0 [m], eta0 [s], amplitude)``. The two-way azimuth pattern is a rect in instantaneous Doppler:
    1 where ``|f(eta) - f_dc| <= bandwidth / 2``."""
    f0, fs, kr, tp, prf, v = (
        attrs[k]
        for k in ("carrier_frequency", "range_sampling_rate", "chirp_rate", "pulse_duration", "prf", "velocity")
    )
    lam = C / f0
    eta = eta_start + np.arange(n_az) / prf
    tau = 2 * (attrs["near_range"] + np.arange(n_rg) * C / (2 * fs)) / C
    echo = np.zeros((n_az, n_rg), np.complex128)
    for r0, eta0, amp in targets:
        r = np.sqrt(r0**2 + v**2 * (eta - eta0) ** 2)
        f_inst = -2 * v**2 * (eta - eta0) / (lam * r)
        w_a = np.abs(f_inst - f_dc) <= bandwidth / 2
        delay = tau[None, :] - 2 * r[:, None] / C
        w_r = np.abs(delay) <= tp / 2
        echo += amp * w_a[:, None] * w_r * np.exp(-4j * np.pi * f0 * r[:, None] / C + 1j * np.pi * kr * delay**2)
    return echo.astype(np.complex64)


# --------------------------------------------------------------------------------------- range compression


def discrete_autocorrelation(m, a, half):
    """Autocorrelation r[m] = sum_n h[n+m] conj(h[n]) of h[n] = exp(j pi a n^2), n = -half..half.

    The product is exp(j pi a (2 n m + m^2)); summed over the overlap (N = 2 half + 1 - |m| terms, centred on
    n = -m/2) the geometric series gives the Dirichlet kernel, and the chirp phases cancel:
    r[m] = sin(pi a m N) / sin(pi a m)  (r[0] = N), 0 for |m| > 2 half.
    """
    m = np.asarray(m, dtype=np.float64)
    n_terms = 2 * half + 1 - np.abs(m)
    x = np.pi * a * m
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(
            np.abs(np.sin(x)) < 1e-15, n_terms * np.cos(x * n_terms) / np.cos(x), np.sin(x * n_terms) / np.sin(x)
        )
    return np.where(n_terms > 0, r, 0.0)


@pytest.mark.parametrize("chirp_rate", [4e13, -2.5e13])
def test_range_compression_of_one_chirp_is_its_discrete_autocorrelation(chirp_rate):
    attrs = {**ATTRS, "chirp_rate": chirp_rate}
    fs, tp = attrs["range_sampling_rate"], attrs["pulse_duration"]
    half = int(math.floor(tp * fs / 2))  # samples n with |n / fs| <= Tp / 2
    n_rg, at = 1024, 517
    n = np.arange(-half, half + 1)
    pulse = np.zeros(n_rg, np.complex64)
    pulse[at + n] = np.exp(1j * np.pi * chirp_rate * (n / fs) ** 2)
    compressed = range_compress(pulse[None, :], SensorParams.from_attrs(attrs))[0]
    expected = discrete_autocorrelation(np.arange(n_rg) - at, chirp_rate / fs**2, half)
    assert np.argmax(np.abs(compressed)) == at  # zero delay on the echo delay
    assert np.linalg.norm(compressed - expected) / np.linalg.norm(expected) < 1e-5
    # loosely, the continuous autocorrelation fs (T - |t|) sinc(K t (T - |t|)) near the main lobe
    t = (np.arange(-20, 21)) / fs
    big_t = (2 * half + 1) / fs
    continuous = fs * (big_t - np.abs(t)) * np.sinc(chirp_rate * t * (big_t - np.abs(t)))
    assert np.allclose(compressed[at - 20 : at + 21].real, continuous, atol=0.02 * continuous.max())


def test_range_compression_of_a_swath_shorter_than_the_chirp_is_the_linear_correlation():
    """When the replica does not fit in the swath the pulses are zero-padded: y[j] = sum_n s[j+n] conj(h[n]) with
    s = 0 outside the swath (no wrap-around)."""
    fs, tp, kr = ATTRS["range_sampling_rate"], ATTRS["pulse_duration"], ATTRS["chirp_rate"]
    half = int(math.floor(tp * fs / 2))
    h = np.exp(1j * np.pi * kr * (np.arange(-half, half + 1) / fs) ** 2)
    rng = np.random.default_rng(4)
    pulses = (rng.standard_normal((3, 150)) + 1j * rng.standard_normal((3, 150))).astype(np.complex64)
    got = range_compress(pulses, SensorParams.from_attrs(ATTRS))
    padded = np.concatenate([np.zeros((3, half)), pulses, np.zeros((3, half))], axis=1)
    expected = np.array([[np.sum(padded[r, j : j + 2 * half + 1] * np.conj(h)) for j in range(150)] for r in range(3)])
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-5


def test_range_compression_with_a_window_weights_the_chirp_band():
    """hamming:ALPHA weights |f| < B/2 by ALPHA + (1 - ALPHA) cos(2 pi f / B) and removes the rest: the compressed
    chirp's spectrum over the replica's spectrum is that window."""
    fs, b = ATTRS["range_sampling_rate"], ATTRS["chirp_rate"] * ATTRS["pulse_duration"]
    half = int(math.floor(ATTRS["pulse_duration"] * fs / 2))
    n = np.arange(-half, half + 1)
    pulse = np.zeros(512, np.complex64)
    pulse[n % 512] = np.exp(1j * np.pi * ATTRS["chirp_rate"] * (n / fs) ** 2)
    # the chirp is placed circularly (it wraps around sample 0): a circular correlation
    out = range_compress(pulse[None, :], SensorParams.from_attrs(ATTRS), "hamming:0.6", correlation="circular")[0]
    f = np.fft.fftfreq(512, 1 / fs)
    spec_in = np.abs(np.fft.fft(pulse)) ** 2
    ratio = np.abs(np.fft.fft(out)) / np.maximum(spec_in, 1e-30)
    inside = np.abs(f) < 0.49 * b
    assert np.allclose(ratio[inside], 0.6 + 0.4 * np.cos(2 * np.pi * f[inside] / b), atol=1e-4)
    spec_out = np.abs(np.fft.fft(out))
    assert np.all(spec_out[np.abs(f) > 0.51 * b] < 1e-5 * spec_out.max())


@pytest.mark.parametrize("spec", ["", "hann", "hamming", "hamming:0.3", "hamming:x", "kaiser:-1", "kaiser:nan", 3])
def test_bad_window_specs_are_input_errors(spec):
    with pytest.raises(InputError):
        parse_window(spec)


# --------------------------------------------------------------------------------------- point target


def _upsampled_peak(image, i, j, centroid_bins, factor=32, half=16):
    """Peak position (fractional pixels) and complex value of the image around (i, j), by FFT zero padding of
    a 2*half chip after moving its azimuth spectrum (carried at the Doppler centroid) to baseband."""
    chip = image[i - half : i + half, j - half : j + half]
    spec = np.roll(np.fft.fft2(chip), -centroid_bins, axis=0)
    n = 2 * half
    big = np.zeros((n * factor, n * factor), complex)
    big[: n // 2, : n // 2] = spec[: n // 2, : n // 2]
    big[: n // 2, -n // 2 :] = spec[: n // 2, -n // 2 :]
    big[-n // 2 :, : n // 2] = spec[-n // 2 :, : n // 2]
    big[-n // 2 :, -n // 2 :] = spec[-n // 2 :, -n // 2 :]
    up = np.fft.ifft2(big)
    a, b = np.unravel_index(np.argmax(np.abs(up)), up.shape)
    return i - half + a / factor, j - half + b / factor, up, a, b


def _irw(power, peak):
    """Width between the half-power points either side of ``peak``, linearly interpolated [samples]."""
    half = power[peak] / 2
    right = peak
    while power[right + 1] >= half:
        right += 1
    left = peak
    while power[left - 1] >= half:
        left -= 1
    r = right + (power[right] - half) / (power[right] - power[right + 1])
    l_ = left - (power[left] - half) / (power[left] - power[left - 1])
    return r - l_


@pytest.mark.parametrize("f_dc", [0.0, 30.0])
def test_point_target_focuses_at_its_position_with_theoretical_irw(f_dc):
    n_az, n_rg, bandwidth = 512, 512, 70.0
    r_idx, az_idx = 256.3, 250.4
    r0, eta0 = ATTRS["near_range"] + r_idx * DR, 0.5 + az_idx / ATTRS["prf"]
    echo = point_target_echo(ATTRS, n_az, n_rg, [(r0, eta0, 1.0)], f_dc, bandwidth, eta_start=0.5)
    raw = sar_dataset(echo, {**ATTRS, "doppler_centroid": f_dc}, azimuth_time0=0.5)
    slc = focus(raw, azimuth_bandwidth=bandwidth)
    image = slc["slc"].values
    i, j = np.unravel_index(np.argmax(np.abs(image)), image.shape)
    bins = int(round(f_dc / ATTRS["prf"] * 32))
    az, rg, up, a, b = _upsampled_peak(image, i, j, bins)
    assert abs(az - az_idx) < 0.05 and abs(rg - r_idx) < 0.05
    # azimuth_time / slant_range of that pixel are the target's zero-Doppler time and closest range
    assert abs(np.interp(az, np.arange(n_az), slc["azimuth_time"].values) - eta0) < 0.05 / ATTRS["prf"]
    assert abs(np.interp(rg, np.arange(n_rg), slc["slant_range"].values) - r0) < 0.05 * DR
    # range IRW (-3 dB width of the cut through the peak) = 0.886 fs / B samples (rect window)
    theory = 0.886 * ATTRS["range_sampling_rate"] / (ATTRS["chirp_rate"] * ATTRS["pulse_duration"])
    assert abs(_irw(np.abs(up[a]) ** 2, b) / 32 / theory - 1) < 0.03
    assert abs(_irw(np.abs(up[:, b]) ** 2, a) / 32 / (0.886 * ATTRS["prf"] / bandwidth) - 1) < 0.03
    if f_dc == 0.0:  # phase preserving: the target keeps exp(-j 4 pi R0 / lambda)
        phase = np.angle(up[a, b] * np.exp(4j * np.pi * r0 / LAMBDA))
        assert abs(phase) < 0.1


# --------------------------------------------------------------------------------------- Doppler centroid


def test_doppler_centroid_estimate_on_point_target_scene():
    rng = np.random.default_rng(3)
    n_az, n_rg, f_dc, bandwidth = 1024, 256, 27.0, 70.0
    targets = [
        (ATTRS["near_range"] + rng.uniform(60, 200) * DR, rng.uniform(300, 700) / ATTRS["prf"], rng.uniform(0.5, 1.5))
        for _ in range(12)
    ]
    echo = point_target_echo(ATTRS, n_az, n_rg, targets, f_dc, bandwidth)
    echo += (0.3 * (rng.standard_normal(echo.shape) + 1j * rng.standard_normal(echo.shape))).astype(np.complex64)
    assert abs(estimate_doppler_centroid(sar_dataset(echo, ATTRS)) - f_dc) < 2.0
    slc = focus(sar_dataset(echo, ATTRS))  # no attr: estimated, recorded
    assert abs(slc.attrs["doppler_centroid"] - f_dc) < 2.0
    assert slc.attrs["processing_history"][-1]["params"]["doppler_centroid_source"] == "estimated"


def test_doppler_centroid_estimate_on_simulated_scene():
    simulate = pytest.importorskip("sarpipe.simulate").simulate
    rng = np.random.default_rng(5)
    truth = 0.2 * 300.0  # minisar PRF 300 Hz
    # whole apertures (~520 pulses, offset by the squint) inside the scene
    targets = [
        {
            "range_index": float(rng.uniform(100, 400)),
            "azimuth_index": float(rng.uniform(700, 1300)),
            "amplitude": float(rng.uniform(0.5, 1.5)),
        }
        for _ in range(20)
    ]
    raw = simulate(
        {
            "sensor": {"preset": "minisar"},
            "scene": {"n_azimuth": 2048, "n_range": 512},
            "targets": targets,
            "antenna": {"pattern": "sinc2"},
            "doppler_centroid": truth,
            "noise": {"snr_db": 0.0},
            "seed": 1,
        }
    )
    assert abs(estimate_doppler_centroid(raw) - truth) < 3.0


# --------------------------------------------------------------------------------------- numpy reference RDA


def _window(spec, u):
    u = np.asarray(u, dtype=float)
    name, _, arg = spec.partition(":")
    if name == "rect":
        w = np.ones_like(u)
    elif name == "hamming":
        w = float(arg) + (1 - float(arg)) * np.cos(2 * np.pi * u)
    else:
        w = np.i0(float(arg) * np.sqrt(np.clip(1 - 4 * u**2, 0, None))) / np.i0(float(arg))
    return np.where(np.abs(u) <= 0.5, w, 0.0)


def reference_rda(
    echo, attrs, f_dc, range_window, azimuth_window, bandwidth, taps, beta, correlation="circular", src=True
):
    """Straightforward range-Doppler algorithm (Cumming & Wong ch. 6) in float64: FFT range compression with the
    sampled centred replica (``circular``: FFT length = swath, periodic RCMC; ``linear``: zero-padded to
    n_rg + 2M, RCMC reading zeros beyond the swath), azimuth FFT, RCMC (output bin R reads R / D(f_eta) through a
    normalised Kaiser-windowed sinc, evaluated exactly), azimuth filter
    W_a exp(j 4 pi f0 R (D - 1) / c) exp(j pi / 4) over the band around f_dc, azimuth IFFT. With ``src`` the
    matched filter also carries the secondary range compression exp(-j pi f^2 / Ksrc),
    Ksrc = 2 V^2 f0^3 D^3 / (c R_mid f_dc^2) (Cumming & Wong eq. 6.22) at the centroid and the mid-swath range."""
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
    n_az, n_rg = echo.shape
    dr = C / (2 * fs)
    half = int(math.floor(tp * fs / 2))
    n = np.arange(-half, half + 1)
    # linear: the next fast FFT length (a tapered window is sampled on that frequency grid)
    n_fft = n_rg if correlation == "circular" else scipy.fft.next_fast_len(n_rg + 2 * half)
    replica = np.zeros(n_fft, complex)
    replica[n % n_fft] = np.exp(1j * np.pi * kr * (n / fs) ** 2)
    matched = np.conj(np.fft.fft(replica))
    if range_window != "rect":
        matched = matched * _window(range_window, np.fft.fftfreq(n_fft, 1 / fs) / (abs(kr) * tp))
    if src and f_dc != 0:
        d_c = np.sqrt(1 - (C / f0 * f_dc / (2 * v)) ** 2)
        r_mid = r_near + 0.5 * (n_rg - 1) * C / (2 * fs)
        ksrc = 2 * v**2 * f0**3 * d_c**3 / (C * r_mid * f_dc**2)
        if abs(kr / ksrc) >= 1e-6:
            matched = matched * np.exp(-1j * np.pi * np.fft.fftfreq(n_fft, 1 / fs) ** 2 / ksrc)
    compressed = np.fft.ifft(np.fft.fft(echo.astype(complex), n=n_fft, axis=1) * matched, axis=1)[:, :n_rg]
    spectrum = np.fft.fft(compressed, axis=0)
    f_k = np.fft.fftfreq(n_az, 1 / prf)
    f_eta = f_dc + np.mod(f_k - f_dc + prf / 2, prf) - prf / 2
    d = np.sqrt(1 - (C / f0 * f_eta / (2 * v)) ** 2)
    ranges = r_near + np.arange(n_rg) * dr
    focused = np.zeros_like(spectrum)
    for k in range(n_az):
        weight = _window(azimuth_window, (f_eta[k] - f_dc) / bandwidth)
        if weight == 0:
            continue
        position = (ranges / d[k] - r_near) / dr
        i0 = np.floor(position).astype(int)
        frac = position - i0
        acc = np.zeros(n_rg, complex)
        total = np.zeros(n_rg)
        for t in range(taps):
            dist = frac + taps // 2 - 1 - t
            w = np.sinc(dist) * np.i0(beta * np.sqrt(np.clip(1 - (dist / (taps / 2)) ** 2, 0, None))) / np.i0(beta)
            tap = i0 - taps // 2 + 1 + t
            inside = (tap >= 0) & (tap < n_rg) if correlation == "linear" else True
            acc += w * np.where(inside, spectrum[k, tap % n_rg], 0)
            total += w
        focused[k] = acc / total * weight * np.exp(4j * np.pi * f0 * ranges * (d[k] - 1) / C) * np.exp(1j * np.pi / 4)
    return np.fft.ifft(focused, axis=0)


# Spaceborne C-band-like geometry, down-chirp: migration that varies slowly along range (the kernels' Taylor path);
# the L-band airborne ATTRS migrate by several samples (their full-polynomial path).
SPACEBORNE = {
    **ATTRS,
    "carrier_frequency": 5.405e9,
    "prf": 1700.0,
    "velocity": 7100.0,
    "near_range": 850_000.0,
    "chirp_rate": -4e13,
}  # down-chirp


@pytest.fixture(scope="module")
def random_raw():
    rng = np.random.default_rng(11)
    echo = (rng.standard_normal((192, 256)) + 1j * rng.standard_normal((192, 256))).astype(np.complex64)
    return sar_dataset(echo, {**ATTRS, "doppler_centroid": 31.0})


CASES = [("rect", "rect", None), ("hamming:0.75", "kaiser:2.5", 80.0)]


@pytest.mark.parametrize("correlation", ["linear", "circular"])
@pytest.mark.parametrize("range_window,azimuth_window,bandwidth", CASES)
def test_focus_agrees_with_numpy_reference(random_raw, range_window, azimuth_window, bandwidth, correlation):
    slc = focus(
        random_raw,
        range_window=range_window,
        azimuth_window=azimuth_window,
        azimuth_bandwidth=bandwidth,
        range_correlation=correlation,
    )
    p = slc.attrs["processing_history"][-1]["params"]
    assert p["range_window"] == range_window and p["azimuth_window"] == azimuth_window
    ref = reference_rda(
        random_raw["echo"].values,
        random_raw.attrs,
        31.0,
        range_window,
        azimuth_window,
        p["azimuth_bandwidth"],
        p["rcmc_taps"],
        p["rcmc_kaiser_beta"],
        correlation,
    )
    assert p["range_correlation"] == correlation
    got = slc["slc"].values
    assert got.dtype == np.complex64
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-4
    # the migration is really corrected here: several samples at the Doppler band edges
    assert p["rcm_margin"] - p["rcmc_taps"] // 2 - 1 >= 4


def test_spaceborne_focus_agrees_with_numpy_reference():
    rng = np.random.default_rng(12)
    echo = (rng.standard_normal((256, 384)) + 1j * rng.standard_normal((256, 384))).astype(np.complex64)
    raw = sar_dataset(echo, SPACEBORNE)
    for correlation in ("linear", "circular"):
        slc = focus(raw, doppler_centroid=-600.0, range_window="kaiser:2.5", range_correlation=correlation)
        p = slc.attrs["processing_history"][-1]["params"]
        ref = reference_rda(
            echo,
            SPACEBORNE,
            -600.0,
            "kaiser:2.5",
            "rect",
            p["azimuth_bandwidth"],
            p["rcmc_taps"],
            p["rcmc_kaiser_beta"],
            correlation,
        )
        assert np.linalg.norm(slc["slc"].values - ref) / np.linalg.norm(ref) < 1e-4
    # the migration here is several samples at the band edges, but varies by < 4e-3 sample over 128 range bins
    f_eta = -600.0 + np.mod(np.fft.fftfreq(256, 1 / 1700.0) + 600.0 + 850.0, 1700.0) - 850.0
    migration = 850_000.0 * (1 / np.sqrt(1 - (C / 5.405e9 * f_eta / (2 * 7100.0)) ** 2) - 1) / DR
    assert np.abs(migration).max() > 3
    assert np.abs(migration).max() / 850_000.0 * DR * 128 < 4e-3


def test_lag_one_kernel_matches_numpy():
    from sarpipe.focus.kernels import lag_one_correlation

    rng = np.random.default_rng(2)
    x = (rng.standard_normal((9, 13)) + 1j * rng.standard_normal((9, 13))).astype(np.complex64)
    prev = (rng.standard_normal(13) + 1j * rng.standard_normal(13)).astype(np.complex64)
    expected = np.sum(x[1:] * np.conj(x[:-1])) + np.sum(x[0] * np.conj(prev))
    assert abs(lag_one_correlation(x, prev) - expected) < 1e-5 * abs(expected)
    assert abs(lag_one_correlation(x, np.empty(0, np.complex64)) - np.sum(x[1:] * np.conj(x[:-1]))) < 1e-4


def test_focus_zarr_with_several_chunks_agrees_with_numpy_reference(random_raw, tmp_path, monkeypatch):
    import sarpipe.focus.dask_focus as streaming

    monkeypatch.setattr(streaming, "RANGE_BLOCK_BYTES", 8 * 256 * 40)  # 40 pulses per range-pass task
    monkeypatch.setattr(streaming, "AZIMUTH_BLOCK_BYTES", 8 * 192 * 80)  # narrow range blocks in the azimuth pass
    monkeypatch.setattr(streaming, "CORNER_TURN_COLUMNS", 16)
    raw = random_raw.copy()
    raw.attrs = {k: v for k, v in random_raw.attrs.items() if k != "doppler_centroid"}
    save_dataset(raw, tmp_path / "raw.zarr", chunks={"azimuth": 40})
    focus_zarr(
        tmp_path / "raw.zarr",
        tmp_path / "slc.zarr",
        range_window="hamming:0.75",
        azimuth_window="kaiser:2.5",
        doppler_centroid=31.0,
        azimuth_bandwidth=80.0,
    )
    slc = open_slc(tmp_path / "slc.zarr")
    assert len(slc["slc"].chunks[1]) > 3  # several range blocks (open_zarr chunks = the stored chunks)
    p = slc.attrs["processing_history"][-1]["params"]
    ref = reference_rda(
        raw["echo"].values,
        raw.attrs,
        31.0,
        "hamming:0.75",
        "kaiser:2.5",
        80.0,
        p["rcmc_taps"],
        p["rcmc_kaiser_beta"],
        "linear",
    )
    assert np.linalg.norm(slc["slc"].values - ref) / np.linalg.norm(ref) < 1e-4
    assert sorted(x.name for x in tmp_path.iterdir()) == ["raw.zarr", "slc.zarr"]  # corner turn removed


# --------------------------------------------------------------------------------------- defocus


def extended_scene(n_az, n_rg, f_dc, az_band, rg_band, margin, seed=0):
    """Filtered complex Gaussian reflectivity, zero-mean, strictly band-limited: a Hann-shaped spectrum
    ``az_band`` [Hz] wide around f_dc and ``rg_band`` [Hz] wide around 0. With ``margin``, the white noise is
    zeroed within ``margin`` samples of both range edges before filtering (the compact filter keeps the scene
    near zero there)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_az, n_rg)) + 1j * rng.standard_normal((n_az, n_rg))
    if margin:
        x[:, :margin] = 0
        x[:, n_rg - margin :] = 0
    fa = np.fft.fftfreq(n_az, 1 / ATTRS["prf"])
    fr = np.fft.fftfreq(n_rg, 1 / ATTRS["range_sampling_rate"])
    ua = (np.mod(fa - f_dc + ATTRS["prf"] / 2, ATTRS["prf"]) - ATTRS["prf"] / 2) / az_band
    ur = fr / rg_band
    hann_a = np.where(np.abs(ua) <= 0.5, np.cos(np.pi * ua) ** 2, 0.0)
    hann_r = np.where(np.abs(ur) <= 0.5, np.cos(np.pi * ur) ** 2, 0.0)
    return np.fft.ifft2(np.fft.fft2(x) * hann_a[:, None] * hann_r[None, :]).astype(np.complex64)


def test_focus_of_defocus_returns_the_extended_scene(tmp_path):
    """Circular range (asked for, as the simulator's extended scenes do): an exact inverse."""
    attrs = {**ATTRS, "doppler_centroid": 30.0}
    x = extended_scene(256, 384, 30.0, 68.0, 78e6, margin=32)
    slc = sar_dataset(x, attrs, name="slc")
    params = {
        "range_window": "hamming:0.75",
        "azimuth_window": "rect",
        "azimuth_bandwidth": 70.0,
        "range_correlation": "circular",
    }
    slc = slc.assign_attrs(history=[{"step": "focus", "params": params}])
    raw = defocus(slc)
    assert raw["echo"].dtype == np.complex64
    back = focus(raw, range_window="hamming:0.75", azimuth_bandwidth=70.0, range_correlation="circular")["slc"].values
    assert np.linalg.norm(back - x) / np.linalg.norm(x) < 1e-3
    # without the taper only the range-migration zone at the swath edges differs (RCM does not wrap exactly)
    y = extended_scene(256, 384, 30.0, 68.0, 78e6, margin=0, seed=1)
    plain = sar_dataset(y, attrs, name="slc")
    back_y = focus(defocus(plain, range_correlation="circular"), range_correlation="circular")
    edge = back_y.attrs["processing_history"][-1]["params"]["rcm_margin"]
    inner = slice(edge, -edge)
    assert np.linalg.norm((back_y["slc"].values - y)[:, inner]) / np.linalg.norm(y[:, inner]) < 1e-3
    # and streaming, store to store
    save_dataset(slc, tmp_path / "slc.zarr")
    defocus_zarr(tmp_path / "slc.zarr", tmp_path / "raw.zarr")
    streamed = open_raw(tmp_path / "raw.zarr")["echo"].values
    assert np.linalg.norm(streamed - raw["echo"].values) / np.linalg.norm(raw["echo"].values) < 1e-5
    focus_zarr(tmp_path / "raw.zarr", tmp_path / "back.zarr", range_window="hamming:0.75", range_correlation="circular")
    again = open_slc(tmp_path / "back.zarr")["slc"].values
    assert np.linalg.norm(again - x) / np.linalg.norm(x) < 1e-3


def test_linear_focus_of_defocus_is_exact_away_from_the_swath_edges():
    """Linear range (the default): defocus deconvolves the recorded swath only, so the round trip is exact on the
    valid range samples (half a replica, plus the migration at far range, inside the edges; 8 samples more for
    the compressed response's own extent) and not at the edges (the echo that would lie beyond the swath is not
    there)."""
    attrs = {**ATTRS, "doppler_centroid": 30.0}
    y = extended_scene(256, 384, 30.0, 68.0, 78e6, margin=0, seed=1)
    back = focus(defocus(sar_dataset(y, attrs, name="slc")))
    p = last_record(back.attrs, "focus")["params"]
    assert p["range_correlation"] == "linear"
    first, stop = back.attrs["valid_range_samples"]
    migration = p["rcm_margin"] - p["rcmc_taps"] // 2 - 1
    assert (first, stop) == (p["valid_range_margin"], 384 - p["valid_range_margin"] - migration)
    err = back["slc"].values - y
    inner = slice(first + 8, stop - 8)
    assert np.linalg.norm(err[:, inner]) / np.linalg.norm(y[:, inner]) < 1e-3
    assert np.linalg.norm(err[:, : first - 8]) / np.linalg.norm(y[:, : first - 8]) > 1e-2  # the edges differ
