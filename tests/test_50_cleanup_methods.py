"""Cleanup methods on arrays: the running-median kernel against numpy, the notch CFAR's false-alarm rate and tone
removal, the pulse-spectrum notch, ESF on rank-one RFI, the method interface and registry."""

import math

import numpy as np
import pytest

from sarpipe.errors import InputError
from sarpipe.rfi.clean import clean_pulses
from sarpipe.rfi.esf import rfi_subspace
from sarpipe.rfi.methods import (
    CleanupMethod,
    MethodContext,
    MethodOutput,
    create_method,
    method_names,
    register_method,
    wrap_sr,
)
from sarpipe.rfi.metrics import sir_db
from sarpipe.rfi.notch import cfar_mask, running_median
from sarpipe.rfi.stft import STFTParams

ATTRS = dict(
    carrier_frequency=9.6e9,
    range_sampling_rate=360e6,
    chirp_rate=300e6 / 1e-6,
    pulse_duration=1e-6,
    prf=300.0,
    velocity=100.0,
    near_range=2000.0,
)


def _noise(shape, seed=0, power=1.0):
    rng = np.random.default_rng(seed)
    return (np.sqrt(power / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))).astype(np.complex64)


def _ctx(n_pulses, n_samples, p=STFTParams()):
    return MethodContext(attrs=ATTRS, stft=p, pulse_indices=np.arange(n_pulses), n_samples=n_samples)


def test_running_median_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.exponential(size=(7, 50)).astype(np.float32)
    x[:, 10] = x[:, 11]  # ties
    segs = [(0, 18), (18, 50)]
    out = running_median(x, 9, segs)
    ref = np.empty_like(x)
    for a, b in segs:
        for c in range(a, b):
            ref[:, c] = np.median(x[:, max(a, c - 4) : min(b, c + 5)], axis=1)
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_cfar_false_alarm_rate_on_exponential_background():
    rng = np.random.default_rng(1)
    power = rng.exponential(size=(400, 1000)).astype(np.float32)
    for pfa in (1e-2, 1e-3):
        rate = cfar_mask(power, pfa, 63).mean()
        # the running median is itself noisy, so the rate is near, not at, the nominal value
        assert pfa / 2 < rate < 2 * pfa


def test_notch_removes_a_tone_and_keeps_the_rest():
    n_p, n_s = 16, 2048
    t = np.arange(n_s) / ATTRS["range_sampling_rate"]
    signal = _noise((n_p, n_s), seed=2)
    tone = (10 * np.exp(2j * np.pi * (47.3e6 * t)))[None, :].astype(np.complex64)
    method = create_method("notch")
    cleaned, mask = clean_pulses(signal + tone, method, _ctx(n_p, n_s), return_mask=True)
    assert sir_db(signal, (signal + tone) - signal) == pytest.approx(-20.0, abs=0.1)
    # the residual is the signal notched away with the tone's bins plus the splatter of the tone switching on
    # and off at the pulse ends (first and last frames): from -20 dB to better than +8 dB
    assert sir_db(signal, cleaned - signal) > 8.0
    assert mask.mean() < 0.08  # a few bins around the tone (plus the edge frames), not the whole plane


def test_notch_on_noise_only_barely_changes_it():
    n_p, n_s = 16, 2048
    signal = _noise((n_p, n_s), seed=3)
    cleaned = clean_pulses(signal, create_method("notch", pfa=1e-3), _ctx(n_p, n_s))
    # false alarms at pfa 1e-3 take the exponential tail above -ln(pfa) = 6.9 times the mean, which holds
    # (6.9 + 1) e^-6.9 = 0.8 % of the energy, about 1.5 % with the one-bin dilation: about -18 dB
    assert sir_db(signal, cleaned - signal) > 16.0


def test_pulse_spectrum_notch_removes_narrowband():
    n_p, n_s = 8, 4096
    t = np.arange(n_s) / ATTRS["range_sampling_rate"]
    signal = _noise((n_p, n_s), seed=4)
    tones = (8 * np.exp(2j * np.pi * 20e6 * t) + 5 * np.exp(2j * np.pi * -71.1e6 * t))[None, :].astype(np.complex64)
    cleaned, mask = clean_pulses(signal + tones, create_method("fnotch"), _ctx(n_p, n_s), return_mask=True)
    assert sir_db(signal, tones - 0 * signal) == pytest.approx(-19.5, abs=0.2)
    # the predicted mask of an estimate (|R| > |S - R| on the chain's STFT) holds the tones' bins in every full
    # frame (20 MHz -> bin 64 + 7, -71.1 MHz -> bin 64 - 25 of 2.8125 MHz) and little else
    assert mask[:, 71, 2:-2].all() and mask[:, 39, 2:-2].all()
    away = np.abs(np.arange(128)[:, None] - np.array([71, 39])[None, :]).min(axis=1) > 2
    assert mask[:, away, 2:-2].mean() < 0.03
    # away from the pulse ends (where the tones switch on and off and splatter) the tones are gone
    assert sir_db(signal[:, 512:-512], (cleaned - signal)[:, 512:-512]) > 13.0
    assert sir_db(signal, cleaned - signal) > 8.0


def test_esf_finds_rank_one_rfi():
    n_p, n_s = 64, 1024
    rng = np.random.default_rng(5)
    signal = _noise((n_p, n_s), seed=5)
    waveform = _noise((1, n_s), seed=6)[0] * 10  # any fast-time waveform ...
    phases = np.exp(1j * rng.uniform(0, 2 * np.pi, n_p))  # ... repeated pulse to pulse: rank one in slow time
    rfi = (phases[:, None] * waveform[None, :]).astype(np.complex64)
    u, w = rfi_subspace(signal + rfi, threshold_db=10.0)
    assert u.shape[1] == 1
    np.testing.assert_allclose(abs(np.vdot(u[:, 0], phases / np.linalg.norm(phases))), 1.0, atol=1e-3)
    cleaned = clean_pulses(signal + rfi, create_method("esf"), _ctx(n_p, n_s))
    assert sir_db(signal, rfi) == pytest.approx(-20.0, abs=0.3)
    assert sir_db(signal, cleaned - signal) > 15.0
    # noise alone has no dominant slow-time component
    assert rfi_subspace(signal, threshold_db=10.0)[0].shape[1] == 0


def test_bool_and_int_parameters_are_read_as_the_configs_read_them(monkeypatch):
    """``bool("false")`` is True and ``int(31.5)`` is 31: the registry validates such values first (as pydantic
    reads the run configs) and names the parameter of one it cannot read."""
    from sarpipe.rfi import methods

    monkeypatch.setattr(methods, "_METHODS", dict(methods._METHODS))

    @register_method("test-flags")
    class Flags(CleanupMethod):
        def __init__(self, flag: bool = True, count: int | None = None, label: str = "x"):
            self.flag, self.count, self.label = flag, count, label

        def __call__(self, x, ctx):
            return MethodOutput("estimate", np.zeros_like(x))

    m = create_method("test-flags", flag="false", count="7", label=3)
    assert m.flag is False and m.count == 7 and m.label == 3  # an unchecked type passes as given
    assert create_method("test-flags", flag=0, count=None).flag is False
    with pytest.raises(InputError, match="flag='maybe'") as exc:
        create_method("test-flags", flag="maybe")
    assert exc.value.where == "--param flag"
    with pytest.raises(InputError, match="count=31.5"):
        create_method("test-flags", count=31.5)


def test_registry_and_interface(monkeypatch):
    from sarpipe.rfi import methods

    assert {"notch", "fnotch", "esf"} <= set(method_names())
    monkeypatch.setattr(methods, "_METHODS", dict(methods._METHODS))  # the test method does not outlive the test
    with pytest.raises(InputError, match="unknown cleanup method"):
        create_method("no-such-method")
    with pytest.raises(InputError, match="bad parameters"):
        create_method("notch", bogus=1)
    monkeypatch.setattr(methods, "_builtin_sr", lambda: None)  # as before any SR model is registered
    monkeypatch.setattr(methods, "_LAZY_SR", {})
    monkeypatch.setattr(methods, "_SR", {})
    with pytest.raises(InputError, match="no super-resolution model"):
        wrap_sr(create_method("notch"), 2.0)

    @register_method("test-half")
    class Half(CleanupMethod):
        """Calls half of every cell RFI: a soft mask of 0.5."""

        name = "test-half"

        def __call__(self, x, ctx):
            assert x.shape[1:] == (ctx.stft.nperseg, len(ctx.frame_times))
            return MethodOutput("mask", np.full(x.shape, 0.5, np.float32))

    x = _noise((3, 1000), seed=7)
    cleaned = clean_pulses(x, create_method("test-half"), _ctx(3, 1000))
    np.testing.assert_allclose(cleaned, 0.5 * x, atol=1e-5)  # linear: STFT, halve, ISTFT
    assert "test-half" in method_names()
    with pytest.raises(ValueError, match="differs"):
        MethodOutput("estimate", np.zeros((2, 2))).rfi_estimate(np.zeros((3, 3)))
    assert math.isclose(_ctx(1, 100).radar_band, 300e6)
