"""The deep audio prior (sarpipe.spectral.dap): architecture, the paper's ablation on audio-like harmonics, the
reference-free stop, and the ``dap`` cleanup method."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sarpipe.rfi.methods import MethodContext, create_method, method_names  # noqa: E402
from sarpipe.rfi.stft import STFTParams, stft  # noqa: E402
from sarpipe.spectral.dap import DAPUNet, _reim, fit_prior  # noqa: E402


def _convs(block):
    return [layer[0] for layer in block.layers]


def test_dilation_doubles_to_32_at_the_bottleneck_and_mirrors_back():
    net = DAPUNet(2)
    rates = [c.dilation[0] for b in net.blocks() for c in _convs(b)]
    assert rates == [1, 2, 4, 8, 16, 32, 8, 4, 2, 1]
    assert all(c.padding[0] == c.dilation[0] for b in net.blocks() for c in _convs(b))  # size kept
    flat = DAPUNet(2, dilated=False)
    assert {c.dilation[0] for b in flat.blocks() for c in _convs(b)} == {1}


def test_dense_block_channel_counts():
    net = DAPUNet(2)
    widths = [(35, 70), (70, 140), (140, 140), (140, 70), (70, 35)]
    # block inputs: 2 channels; 70 after pool; 140 after pool; up-sampled 140 + skip 140; 70 + skip 70
    inputs = [2, 70, 140, 280, 140]
    for block, c_in, (w1, w2) in zip(net.blocks(), inputs, widths):
        c1, c2 = _convs(block)
        assert (c1.in_channels, c1.out_channels) == (c_in, w1)
        assert (c2.in_channels, c2.out_channels) == (c_in + w1, w2)  # sees the input and layer 1
        assert (block.transition.in_channels, block.transition.out_channels) == (c_in + w1 + w2, w2)
        assert block.transition.kernel_size == (1, 1)
    plain = DAPUNet(2, dense=False)
    c1, c2 = _convs(plain.down1)
    assert c2.in_channels == 35 and plain.down1.transition.in_channels == 70
    assert net.out.out_channels == 2 and net(torch.zeros(1, 2, 30, 17)).shape == (1, 2, 30, 17)


def _harmonic(seed: int):
    """1 s of a 4-harmonic signal at 1 kHz (fundamental 62.5 Hz) and its STFT planes (32 / 16 / hann)."""
    fs, n = 1000, 1000
    t = np.arange(n) / fs
    rng = np.random.default_rng(seed)
    s = sum(rng.uniform(0.3, 1) * np.cos(2 * np.pi * k * 62.5 * t + rng.uniform(0, 6)) for k in range(1, 5))
    s = s / np.max(np.abs(s))
    p = STFTParams(32, 16, "hann")
    return s, rng, p, fs


def _gap_errors(seed: int, iterations: int):
    s, rng, p, fs = _harmonic(seed)
    ref = _reim(stft(s[None].astype(np.complex64), p))
    g0 = int(rng.uniform(0.3, 0.5) * ref.shape[2])
    gl = int(rng.uniform(0.1, 0.25) * fs / p.hop)  # a 0.1..0.25 s gap (whole frames)
    seen = np.ones(ref.shape, bool)
    seen[:, :, g0 : g0 + gl] = False
    out = {}
    for name, kw in (("dap", {}), ("ablation", {"dilated": False, "dense": False})):
        r = fit_prior(ref, seen, iterations=iterations, stop="fixed", width=0.25, seed=seed, **kw)
        gap = (slice(None), slice(None), slice(g0, g0 + gl))
        out[name] = float(np.mean((r.output - ref)[gap] ** 2) / np.mean(ref[gap] ** 2))
    return out


@pytest.mark.slow  # ~30 s alone, ~75 s on the loaded 2-core machine
def test_inpaints_a_gap_better_than_constant_dilation_without_dense_connections():
    torch.set_num_threads(1)
    e = _gap_errors(0, 300)
    assert e["dap"] < e["ablation"], e
    assert e["dap"] < 1.0  # better than leaving the gap empty


@pytest.mark.slow
def test_inpainting_ablation_on_average_over_seeds():
    # in an exploration with other gap positions (300 iterations, width 0.25) DAP won on 2 of 3 seeds
    # (relative gap error 0.58 / 0.79, 0.52 / 0.41, 0.61 / 0.63), so the mean is what is asserted
    torch.set_num_threads(1)
    e = [_gap_errors(seed, 300) for seed in (0, 1, 2)]
    assert np.mean([v["dap"] for v in e]) < np.mean([v["ablation"] for v in e]), e


@pytest.mark.slow
def test_denoises_harmonics_and_the_holdout_stop_lands_near_the_oracle():
    torch.set_num_threads(1)
    s, rng, p, _fs = _harmonic(0)
    ref = _reim(stft(s[None].astype(np.complex64), p))
    obs = _reim(stft((s + 0.1 * rng.standard_normal(s.size))[None].astype(np.complex64), p))
    base = float(np.mean((obs - ref) ** 2))
    errs = {}
    for name, kw in (("dap", {}), ("ablation", {"dilated": False, "dense": False})):
        r = fit_prior(obs, iterations=400, stop="holdout", width=0.25, seed=0, reference=ref, check_every=25, **kw)
        errs[name] = float(np.mean((r.output - ref) ** 2))
        if name == "dap":
            oracle = min(e[2] for e in r.errors) * float(np.mean(obs**2))
            assert errs[name] < 0.85 * base  # noise removed without the reference
            assert errs[name] < 1.5 * oracle  # the reference-free stop costs at most half the oracle's error
    # the paper's denoising ablation (dilated + dense better) does NOT reproduce at this size: at the oracle stop
    # the ablation was 2-10 % lower on seeds 0..2, so no inequality is asserted for denoising


def _ctx(spec_shape, fs=100e6, bw=80e6):
    attrs = dict(
        carrier_frequency=9.6e9,
        range_sampling_rate=fs,
        chirp_rate=bw / 2e-6,
        pulse_duration=2e-6,
        prf=1000.0,
        velocity=200.0,
        near_range=5000.0,
    )
    return MethodContext(attrs=attrs, stft=STFTParams(), pulse_indices=np.arange(spec_shape[0]), n_samples=512)


def test_dap_method_replaces_only_the_marked_bins():
    assert {"dap", "scorecam"} <= set(method_names())
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 16, 12)) + 1j * rng.standard_normal((3, 16, 12))).astype(np.complex64)
    mask = np.zeros(x.shape, bool)
    mask[0, 5:7, :] = True
    mask[2, 9, 3:8] = True
    ctx = MethodContext(**{**_ctx(x.shape).__dict__, "extra": {"tf_mask": mask}})
    for share in ("stack", "warm"):
        m = create_method(
            "dap",
            detector="given",
            share=share,
            stack=2,
            iterations=15,
            warm_iterations=5,
            stop="fixed",
            width=0.125,
            crop=0,
            device="cpu",
        )
        est = m(x, ctx).rfi_estimate(x)
        assert np.all(est[~mask] == 0)  # unmarked bins are kept exactly
        assert np.all(est[mask] != 0)
    assert np.all(est[1] == 0)  # a pulse without marked bins is not fitted


def test_dap_refuses_bad_parameters():
    from sarpipe.errors import InputError

    with pytest.raises(InputError, match="share"):
        create_method("dap", share="all")
    with pytest.raises(InputError, match="detector"):
        create_method("dap", detector="oracle")


def _given_ctx(mask, p, n_samples):
    return MethodContext(
        attrs={}, stft=p, pulse_indices=np.arange(mask.shape[0]), n_samples=n_samples, extra={"tf_mask": mask}
    )


def _dap(**kw):
    base = dict(detector="given", stack=2, iterations=150, check_every=10, width=0.125, crop=0, device="cpu")
    return create_method("dap", **{**base, **kw})


def test_frame_phase_makes_a_steady_tone_constant_along_frames():
    from sarpipe.spectral.dap import frame_phase

    p = STFTParams(32, 8, "hann")
    n = np.arange(256)
    for k in (3, 16, 29):  # centred bins: frequency (k - 16) / 32 cycles per sample
        x = stft(np.exp(2j * np.pi * (k - 16) / 32 * n)[None].astype(np.complex64), p)[0]
        row = (x * frame_phase(32, x.shape[1], p.hop))[k, 3:-3]  # frames away from the zero-padded ends
        assert np.allclose(row, row[0], atol=1e-3 * abs(row[0]))
        assert not np.allclose(x[k, 3:-3], x[k, 3], atol=1e-3 * abs(row[0])) or (k - 16) * 8 % 32 == 0


def test_gap_shaped_holdout_copies_the_gap_two_widths_away():
    from sarpipe.spectral.dap import gap_shaped_holdout

    m = np.zeros((32, 20), bool)
    m[12:15, :] = True  # a 3-row narrowband mark over every frame: runs are shorter along frequency
    h = gap_shaped_holdout(m)
    assert np.array_equal(np.flatnonzero(h.any(axis=1)), [6, 7, 8, 18, 19, 20])
    assert h[[6, 7, 8, 18, 19, 20]].all() and not (h & m).any()
    assert np.array_equal(np.flatnonzero(gap_shaped_holdout(m, 1).any(axis=1)), [18, 19, 20])
    assert np.array_equal(np.flatnonzero(gap_shaped_holdout(m, -1).any(axis=1)), [6, 7, 8])
    t = np.zeros((32, 20), bool)
    t[:, 9:11] = True  # a pulsed source: 2 whole frames
    assert np.array_equal(np.flatnonzero(gap_shaped_holdout(t).any(axis=0)), [5, 6, 13, 14])


def test_fill_gain_is_the_least_squares_scale_clipped_to_0_1():
    from sarpipe.spectral.dap import fill_gain

    rng = np.random.default_rng(0)
    f = rng.standard_normal(4000) + 1j * rng.standard_normal(4000)
    noise = rng.standard_normal(4000) + 1j * rng.standard_normal(4000)
    held = np.ones(4000, bool)
    ref = np.real(np.vdot(f, 0.6 * f + noise)) / np.sum(np.abs(f) ** 2)  # plain least squares
    assert abs(fill_gain(f, 0.6 * f + noise, held) - ref) < 1e-9 and abs(ref - 0.6) < 0.05
    assert fill_gain(f, 3 * f, held) == 1.0 and fill_gain(f, -f, held) == 0.0
    assert fill_gain(f, f, np.zeros(4000, bool)) == 0.0  # nothing held out: the zero fill


def test_gain_keeps_dap_at_the_zero_fill_on_unpredictable_speckle():
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 32, 32)) + 1j * rng.standard_normal((2, 32, 32))).astype(np.complex64)
    mask = np.zeros(x.shape, bool)
    mask[:, 13:16, :] = True
    ctx = _given_ctx(mask, STFTParams(32, 8, "hann"), 256)
    err = {}
    for gain in ("pulse", "none"):
        m = _dap(gain=gain)
        fill = m(x, ctx).rfi_estimate(x)  # = x - filled; in the marked bins = x - g f(z), the fill's error
        err[gain] = float(np.sum(np.abs(fill[mask]) ** 2) / np.sum(np.abs(x[mask]) ** 2))  # zero fill = 1
        if gain == "pulse":
            assert all(g < 0.35 for _i, g in m.last_gains), m.last_gains
    assert err["pulse"] < 1.01, err  # PSNR at most 0.04 dB below the notch's zero fill
    assert err["none"] > err["pulse"]  # the ungained fill is worse than zeros on speckle


def test_gain_keeps_a_deterministic_fill_and_beats_the_zero_fill():
    # three steady tones (deterministic lines along frames) under a 4-frame gap (a pulsed source's mark)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n = np.arange(256)
    tones = [
        sum(np.exp(2j * np.pi * f / 32 * n + 1j * rng.uniform(0, 6)) for f in (-7.3, 2.6, 9.0))
        + 0.05 * (rng.standard_normal(256) + 1j * rng.standard_normal(256))
        for _ in range(2)
    ]
    p = STFTParams(32, 8, "hann")
    x = stft(np.stack(tones).astype(np.complex64), p)
    mask = np.zeros(x.shape, bool)
    mask[:, :, 14:18] = True
    m = _dap()
    res = m(x, _given_ctx(mask, p, 256)).rfi_estimate(x)
    gap_err = float(np.sum(np.abs(res[mask]) ** 2) / np.sum(np.abs(x[mask]) ** 2))
    assert all(g > 0.5 for _i, g in m.last_gains), m.last_gains
    assert gap_err < 0.9, gap_err  # better than the zero fill (1)


# ------------------------------------------------------------------------------ two-source separation


def _two_sources(h: int = 32, w: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Two audio-like magnitude spectrograms of equal power, ``(h, w)``: a harmonic tone stack (fundamental at bin
    5, 4 harmonics, amplitude 1/k, slow AM) and a chirp train (up-sweeps across the band, two per image)."""
    f, t = np.arange(h)[:, None], np.arange(w)[None, :]
    tones = sum(np.exp(-0.5 * ((f - 5 * k) / 0.7) ** 2) / k for k in range(1, 5)) * (
        0.6 + 0.4 * np.cos(2 * np.pi * t / w)
    )
    period = w // 2
    chirps = np.exp(-0.5 * ((f - ((t % period) / period * (h - 4) + 2)) / 0.8) ** 2)
    return tones / np.sqrt(np.mean(tones**2)), chirps / np.sqrt(np.mean(chirps**2))


def _sdr(s: np.ndarray, est: np.ndarray) -> float:
    """Plain signal-to-distortion ratio [dB]: ``10 log10(||s||^2 / ||s - est||^2)`` (no BSS-eval projection)."""
    return float(10 * np.log10(np.sum(s**2) / np.sum((s - est) ** 2)))


def _pair_sdr(s1, s2, a, b) -> float:
    """Mean SDR of the two sources under the better of the two pairings of the estimates."""
    return max((_sdr(s1, a) + _sdr(s2, b)) / 2, (_sdr(s1, b) + _sdr(s2, a)) / 2)


@pytest.fixture(scope="module")
def separated():
    from sarpipe.spectral.dap import separate_two

    torch.set_num_threads(1)
    s1, s2 = _two_sources()
    a, b = separate_two((s1 + s2)[None].astype(np.float32), iterations=300, width=0.25, seed=0)
    return s1, s2, a[0], b[0]


def test_sdr_baselines_half_the_mixture_3_db_the_mixture_0_db():
    # ||s1 - (s1 + s2)/2||^2 = ||s1 - s2||^2 / 4 = 2P / 4 for uncorrelated sources of power P: 10 log10(2) = 3 dB
    rng = np.random.default_rng(0)
    s1, s2 = rng.standard_normal((2, 64, 64))
    s2 -= s1 * np.sum(s1 * s2) / np.sum(s1**2)
    s2 *= np.linalg.norm(s1) / np.linalg.norm(s2)
    half = (s1 + s2) / 2
    assert _pair_sdr(s1, s2, half, half) == pytest.approx(10 * np.log10(2), abs=1e-9)
    # the mixture itself: the error is the other source, of the same power: 0 dB
    assert _pair_sdr(s1, s2, s1 + s2, s1 + s2) == pytest.approx(0.0, abs=1e-9)
    # the pairing is free: swapped estimates score the same
    assert _pair_sdr(s1, s2, s2 + 0.1 * s1, s1 + 0.2 * s2) == pytest.approx(
        _pair_sdr(s1, s2, s1 + 0.2 * s2, s2 + 0.1 * s1)
    )


@pytest.mark.slow  # ~10 s per fit alone, ~30 s on the loaded 2-core machine
def test_separate_two_gives_the_steady_prior_the_tones(separated):
    """The prior whose input is constant along the frames takes the tone stack, the other the chirps, each far
    better than half the mixture (3.7 dB here); measured 26.8-29.6 dB on seeds 0..4 (docs/models/dap.md). The
    mask read-out splits the mixture, so the two estimates sum to it."""
    s1, s2, a, b = separated
    assert _sdr(s1, a) > 15 and _sdr(s2, b) > 15, (_sdr(s1, a), _sdr(s2, b))
    np.testing.assert_allclose(a + b, s1 + s2, atol=1e-5)


@pytest.mark.slow
def test_separate_two_separates_because_of_the_steady_input(separated):
    """The ablation: with both inputs random (two identical priors) the same fit does not tell tones from chirps
    (measured 2.7-7.8 dB on seeds 0..4, one estimate holding 61-72 % of the energy)."""
    from sarpipe.spectral.dap import separate_two

    s1, s2, a, b = separated
    a0, b0 = separate_two((s1 + s2)[None].astype(np.float32), iterations=300, width=0.25, seed=0, steady_axis=None)
    assert _pair_sdr(s1, s2, a, b) > _pair_sdr(s1, s2, a0[0], b0[0]) + 10


@pytest.mark.slow
def test_separate_two_steady_along_the_first_axis():
    """``steady_axis=-2`` on the transposed mixture (frames along H): the steady prior still takes the tones."""
    from sarpipe.spectral.dap import separate_two

    torch.set_num_threads(1)
    s1, s2 = _two_sources()
    a, b = separate_two((s1 + s2).T[None].astype(np.float32), iterations=300, width=0.25, seed=0, steady_axis=-2)
    assert _sdr(s1.T, a[0]) > 15 and _sdr(s2.T, b[0]) > 15


def test_separate_two_refuses_a_bad_shape_or_axis():
    from sarpipe.spectral.dap import separate_two

    with pytest.raises(ValueError, match="C, H, W"):
        separate_two(np.zeros((8, 8), np.float32), iterations=1)
    with pytest.raises(ValueError, match="steady_axis"):
        separate_two(np.zeros((1, 8, 8), np.float32), iterations=1, steady_axis=0)
