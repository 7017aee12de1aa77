"""The Doppler-tone test (sarpipe.rfi.doppler_detect): the cell ratio's null against the exponential law and a
tone's ratio against its analytic value, the run-edge search against a brute-force numpy reference, weak RFI 15 dB
under strong textured clutter found on held-out matrix scenes (which the other detectors miss), its limits (an
emitter whose phase does not run on between pulses), lazy input read the same, and its settings checked."""

import sys
from pathlib import Path

import numpy as np
import pytest

from sarpipe.errors import InputError
from sarpipe.focus import focus
from sarpipe.rfi import DetectionSettings, detect
from sarpipe.rfi.chain_io import DetectParams
from sarpipe.rfi.doppler_detect import doppler_tone_pulses, run_edges, tone_ratios
from sarpipe.rfi.metrics import pulse_extra_fraction, pulse_recall
from sarpipe.sensor import SensorParams
from sarpipe.simulate.interference import rfi_truth_pulses

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from matrix_testing import C_BAND_ATTRS, matrix_scene  # noqa: E402


def _noise(shape, seed):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)).astype(np.complex64)


def test_white_clutter_cells_follow_the_exponential_law():
    # per cell |DFT|^2 of complex Gaussian samples is exponential about its mean: the ratio's tail is exp(-t),
    # raised where it is thin by the background's own estimation noise (each column's median from 64 Doppler bins:
    # about 0.2 in log, exp(t^2 0.2^2 / 2) at t)
    r = np.concatenate([tone_ratios(_noise((64, 512), s)).ravel() for s in range(4)])
    assert np.median(r) == pytest.approx(np.log(2), rel=0.03)
    for t in (2.0, 4.0, 6.0):
        assert np.exp(-t) * 0.9 <= np.mean(r > t) <= np.exp(-t) * np.exp(t**2 * 0.2**2 / 2) * 1.15


def test_a_phase_continuous_tone_reaches_its_analytic_ratio():
    # a tone of power a^2 per sample, on a Doppler and a range-frequency bin, in unit white noise: its cell holds
    # |a sum(w)|^2 against the noise's sum(w^2), so its ratio is about 1 + a^2 (sum w)^2 / sum w^2
    n_p, n_f, d0, f0 = 64, 512, 11, 200
    a2 = 0.5
    n = np.arange(n_p)[:, None]
    x = _noise((n_p, n_f), 3)
    x[:, f0] += np.sqrt(a2) * np.exp(2j * np.pi * d0 * n[:, 0] / n_p + 0.7j)
    r = tone_ratios(x)
    w = np.hanning(n_p + 2)[1:-1]
    expected = 1 + a2 * w.sum() ** 2 / (w**2).sum()
    assert 10 * np.log10(r[d0, f0]) == pytest.approx(10 * np.log10(expected), abs=1.0)
    assert np.unravel_index(np.argmax(r), r.shape) == (d0, f0)


def _edges_brute(gain, a, b, half):
    c = (a + b) // 2
    lo, hi = max(0, a - half), min(gain.size, b + half)
    start = max(range(lo, c), key=lambda e: (gain[e:c].sum(), -e)) if c > lo else a
    stop = max(range(c + 1, hi + 1), key=lambda e: (gain[c:e].sum(), -e)) if hi > c else b
    return start, stop


def test_run_edges_match_a_brute_force_search():
    rng = np.random.default_rng(5)
    for trial in range(20):
        gain = rng.normal(-1.0, 1.5, 300)
        on0, on1 = sorted(rng.integers(20, 280, 2))
        gain[on0:on1] += 2.0  # the tone's increments are positive where it is on
        a, b = max(0, on0 - rng.integers(0, 10)), min(300, on1 + rng.integers(0, 10))
        if b - a < 2:
            continue
        got = run_edges(gain, a, b, 8)
        start, stop = _edges_brute(gain, a, b, 8)
        assert (got.start, got.stop) == (start, stop), trial


def test_run_edges_find_a_clean_step():
    gain = np.full(200, -1.0)
    gain[60:140] = 1.0
    s = run_edges(gain, 52, 149, 16)  # a run flagged 8 pulses early and 9 late
    assert (s.start, s.stop) == (60, 140)


@pytest.mark.parametrize("name", ["C-1ap-weak", "C-2ap-weak", "L-2ap-weak"])
def test_weak_rfi_under_strong_clutter_is_found(name):
    # 15 dB below the clutter per sample: pulse by pulse under the clutter's own spectral peaks; over 64 pulses
    # its emitters add up in their range-frequency x Doppler cells
    raw = matrix_scene(name)
    truth = rfi_truth_pulses(raw)
    sensor = SensorParams.from_attrs(raw.attrs)
    alone = doppler_tone_pulses(raw["echo"].values, sensor)
    assert pulse_recall(alone.pulses, truth) >= 0.95
    assert pulse_extra_fraction(alone.pulses, truth) <= 0.20
    slc = focus(raw)
    det = detect(raw, slc)
    assert pulse_recall(det.rfi_pulses, truth) >= 0.95
    assert pulse_extra_fraction(det.rfi_pulses, truth) <= 0.20
    without = detect(raw, slc, DetectionSettings(tone_test=False))
    assert pulse_recall(without.rfi_pulses, truth) < 0.95  # what the other detectors miss


@pytest.mark.parametrize("name", ["C-1ap-clean", "L-2ap-clean", "C-1ap-dark"])
def test_clean_scenes_hold_no_tone(name):
    raw = matrix_scene(name)
    found = doppler_tone_pulses(raw["echo"].values, SensorParams.from_attrs(raw.attrs))
    assert not found.pulses.any()
    assert not found.tones
    assert found.block_peak_db.max() < found.threshold_db


def test_a_tone_whose_phase_does_not_run_on_is_not_a_doppler_tone():
    # the same narrowband line with a new random phase on every pulse spreads over all Doppler bins of its range
    # frequency: the background's frequency profile takes it in (the run test and the spectral tests are for it)
    sensor = SensorParams.from_attrs(C_BAND_ATTRS)
    rng = np.random.default_rng(9)
    echo = _noise((256, 1024), 8)
    t = np.arange(1024) / 100e6
    line = np.exp(2j * np.pi * (10e6 * t[None, :] + rng.uniform(0, 1, (256, 1))))
    steady = np.exp(2j * np.pi * (10e6 * (t[None, :] + np.arange(256)[:, None] / 1700.0)))
    flags = {}
    for name, tone in (("line", line), ("steady", steady)):
        x = echo.copy()
        x[64:192] += (np.sqrt(0.05) * tone[64:192]).astype(np.complex64)
        flags[name] = doppler_tone_pulses(x, sensor).pulses
    assert not flags["line"].any()
    assert flags["steady"][64:192].mean() >= 0.95


def test_lazy_input_is_read_to_the_same_flags():
    import dask.array as da

    raw = matrix_scene("L-1ap-weak")
    sensor = SensorParams.from_attrs(raw.attrs)
    x = raw["echo"].values
    eager = doppler_tone_pulses(x, sensor)
    lazy = doppler_tone_pulses(da.from_array(x, chunks=(50, x.shape[1])), sensor)
    assert eager.pulses.any()
    np.testing.assert_array_equal(lazy.pulses, eager.pulses)


def test_settings_are_checked_and_reach_the_chain():
    sensor = SensorParams.from_attrs(C_BAND_ATTRS)
    x = _noise((100, 256), 1)
    with pytest.raises(InputError, match="block"):
        doppler_tone_pulses(x, sensor, block=8)
    with pytest.raises(InputError, match="tone_db"):
        doppler_tone_pulses(x, sensor, tone_db=0)
    s = DetectParams(tone_db=25.0, tone_block=32, tone_test=False).settings()
    assert (s.tone_db, s.tone_block, s.tone_test) == (25.0, 32, False)
    with pytest.raises(ValueError):
        DetectParams(tone_block=8)
    # a scene shorter than a block is tested in one block; shorter than 16 pulses, not at all
    assert not doppler_tone_pulses(x[:10], sensor).pulses.any()


def _plain_tone_ratios(x, sweeps=2):
    """tone_ratios' definition in plain float64 numpy: Hann, |FFT|^2 along slow time, median polish of the log."""
    w = np.hanning(x.shape[0] + 2)[1:-1]
    r = np.log(np.abs(np.fft.fft(x * w[:, None], axis=0)) ** 2)
    step = max(1, r.shape[1] // 512)
    for _ in range(sweeps):
        r -= np.median(r[:, ::step], axis=1, keepdims=True)
        r -= np.median(r, axis=0, keepdims=True)
    return np.exp(r) * np.log(2.0)


def test_fast_paths_equal_their_plain_forms():
    from sarpipe.rfi.doppler_detect import _slices

    # the median polish's buffered, sort-based form against np.median on both axes (odd and even block lengths)
    for n in (16, 63, 64):
        x = _noise((n, 1100), n) * np.linspace(0.5, 2.0, 1100).astype(np.float32)
        np.testing.assert_allclose(np.log(tone_ratios(x)), np.log(_plain_tone_ratios(x)), rtol=0, atol=1e-4)
    # the in-band bins of a centred spectrum, gathered from the FFT's own order by slices
    x = _noise((3, 100), 4)
    f = np.fft.fft(x, axis=1)
    bins = np.arange(20, 85)
    idx = (bins + 50) % 100
    pieces = _slices(idx)
    got = np.empty((3, bins.size), complex)
    for (d0, d1), (s0, s1) in pieces:
        got[:, d0:d1] = f[:, s0:s1]
    np.testing.assert_array_equal(got, np.fft.fftshift(f, axes=1)[:, bins])
    assert _slices(np.array([0, 1, 5, 9])) is None


def test_the_row_screen_finds_the_tones_of_the_full_ratio_plane():
    # the detector's per-block path takes ratios only for the Doppler rows whose log residual clears the
    # threshold: the same tones as tone_cells on the whole plane of ratios
    from sarpipe.rfi.doppler_detect import _log_residual, _PolishWork, _screened_tones, tone_cells

    n_p, n_f = 64, 1200
    n = np.arange(n_p)
    work = _PolishWork(n_p, n_f)
    for seed in range(3):
        x = _noise((n_p, n_f), 10 + seed) * np.linspace(0.5, 2.0, n_f).astype(np.float32)  # a sloped band
        x[:, 300 + seed : 304 + seed] += 0.6 * np.exp(2j * np.pi * (7 + seed) * n / n_p)[:, None]
        want = tone_cells(_plain_tone_ratios(x), 8.0, 128, 1000.0)
        got = _screened_tones(_log_residual(x, work), 8.0, 128, 1000.0)
        assert want and [(t.doppler_bin, t.f_lo, t.f_hi) for t in got] == [
            (t.doppler_bin, t.f_lo, t.f_hi) for t in want
        ]
        assert want[0].doppler_bin == 7 + seed and 300 + seed <= want[0].f_lo <= 303 + seed
