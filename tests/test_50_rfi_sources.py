"""RFI sources of the simulator: SIR, on-intervals, spectral occupancy of the three source models, configuration."""

import numpy as np
import pytest
from pydantic import ValidationError

from sarpipe.errors import InputError
from sarpipe.model import sar_dataset
from sarpipe.simulate.interference import RFIConfig, add_rfi, rfi_truth_pulses

ATTRS = dict(
    carrier_frequency=9.6e9,
    range_sampling_rate=360e6,
    chirp_rate=300e6 / 1e-6,
    pulse_duration=1e-6,
    prf=300.0,
    velocity=100.0,
    near_range=2000.0,
)


def _noise_scene(n_az=256, n_rg=2048, seed=0):
    rng = np.random.default_rng(seed)
    e = ((rng.standard_normal((n_az, n_rg)) + 1j * rng.standard_normal((n_az, n_rg))) / np.sqrt(2)).astype(np.complex64)
    return sar_dataset(e, ATTRS)


def test_sir_and_intervals_are_as_configured():
    ds = _noise_scene()
    cfg = RFIConfig(preset="minisar", sir_db=-7.5, pulses=[(10, 40), (100, 101), (200, 256)])
    out = add_rfi(ds, cfg, np.random.default_rng(1))
    on = np.zeros(256, bool)
    on[10:40] = on[100] = on[200:256] = True
    np.testing.assert_array_equal(rfi_truth_pulses(out), on)
    assert out.attrs["rfi_intervals"] == [[10, 40], [100, 101], [200, 256]]
    rfi = out["rfi"].values
    assert rfi.dtype == np.complex64 and not rfi[~on].any()
    np.testing.assert_array_equal(out["echo"].values, (ds["echo"].values + rfi).astype(np.complex64))
    # SIR = mean |echo|^2 over the scene / mean |rfi|^2 over the on-pulses
    sir = 10 * np.log10(np.mean(np.abs(ds["echo"].values) ** 2) / np.mean(np.abs(rfi[on]) ** 2))
    assert sir == pytest.approx(-7.5, abs=0.01)
    assert out.attrs["rfi_sir_db"] == -7.5


def _band_fraction(x, fs, lo, hi):
    win = np.hanning(x.shape[-1])  # keeps the leakage of an off-bin tone inside a few bins
    spec = np.abs(np.fft.fftshift(np.fft.fft(x * win, axis=-1), axes=-1)) ** 2
    f = np.fft.fftshift(np.fft.fftfreq(x.shape[-1], 1 / fs))
    return spec[..., (f >= lo) & (f <= hi)].sum() / spec.sum()


@pytest.mark.parametrize(
    "source, lo, hi",
    [
        ({"kind": "narrowband", "frequency": 40e6, "bandwidth": 0.0}, 39e6, 41e6),
        ({"kind": "narrowband", "frequency": -25e6, "bandwidth": 4e6}, -28e6, -22e6),
        ({"kind": "chirp", "frequency": 10e6, "bandwidth": 80e6, "sweep_time": 3e-6}, -31e6, 51e6),
        # sinusoidal FM: Carson's rule, bandwidth + 2 f_m, holds 98 % of the power
        ({"kind": "sinfm", "frequency": -50e6, "bandwidth": 60e6, "modulation_frequency": 0.5e6}, -81e6, -19e6),
    ],
)
def test_source_occupies_its_band(source, lo, hi):
    ds = _noise_scene(n_az=8)
    out = add_rfi(ds, RFIConfig(sources=[source], sir_db=0.0, pulses=[(0, 8)]), np.random.default_rng(2))
    assert _band_fraction(out["rfi"].values, ATTRS["range_sampling_rate"], lo, hi) > 0.98


def test_narrowband_tone_runs_on_between_pulses():
    """A stable emitter is phase-continuous: pulse-to-pulse phase steps by 2 pi f / PRF at fixed fast time."""
    ds = _noise_scene(n_az=16)
    f = 12.345e6
    out = add_rfi(
        ds,
        RFIConfig(sources=[{"kind": "narrowband", "frequency": f}], sir_db=0.0, pulses=[(0, 16)]),
        np.random.default_rng(3),
    )
    r = out["rfi"].values[:, 100]
    step = np.angle(r[1:] * np.conj(r[:-1]))
    expected = np.angle(np.exp(2j * np.pi * f / ATTRS["prf"]))
    np.testing.assert_allclose(step, expected, atol=1e-3)


def test_bursts_respect_count_length_and_margin():
    ds = _noise_scene(n_az=1000, n_rg=64)
    for seed in range(10):
        cfg = RFIConfig(preset="sentinel1", bursts={"count": 2, "length": [20, 50], "margin": 300})
        out = add_rfi(ds, cfg, np.random.default_rng(seed))
        runs = out.attrs["rfi_intervals"]
        assert 1 <= len(runs) <= 2  # two bursts, which may touch and merge
        for a, b in runs:
            assert 300 <= a and b <= 700
        total = sum(b - a for a, b in runs)
        assert 20 <= total <= 100


def test_same_seed_same_rfi_and_presets_differ():
    ds = _noise_scene(n_az=32)
    a = add_rfi(ds, RFIConfig(preset="minisar"), np.random.default_rng(5))
    b = add_rfi(ds, RFIConfig(preset="minisar"), np.random.default_rng(5))
    np.testing.assert_array_equal(a["rfi"].values, b["rfi"].values)
    kinds = [e["kind"] for e in a.attrs["rfi_sources"]]
    assert kinds.count("narrowband") == 2 and 3 <= len(kinds) - 2 <= 5  # the paper's MiniSAR setting
    assert all(30e6 <= e["bandwidth"] <= 150e6 for e in a.attrs["rfi_sources"] if e["kind"] != "narrowband")


def test_config_errors():
    with pytest.raises(ValidationError, match="bogus"):
        RFIConfig.model_validate({"preset": "minisar", "bogus": 1})
    with pytest.raises(ValidationError, match="not both"):
        RFIConfig.model_validate({"preset": "minisar", "pulses": [[0, 4]], "bursts": {"count": 1}})
    with pytest.raises(ValidationError, match="preset"):
        RFIConfig.model_validate({})
    with pytest.raises(ValidationError, match="start < stop"):
        RFIConfig.model_validate({"preset": "minisar", "pulses": [[5, 5]]})
    with pytest.raises(InputError, match="beyond"):
        add_rfi(_noise_scene(n_az=8), RFIConfig(preset="minisar", pulses=[(20, 30)]), np.random.default_rng(0))


def test_simulator_yaml_names_the_bad_rfi_key(tmp_path):
    from sarpipe.simulate import load_config

    path = tmp_path / "sim.yaml"
    path.write_text(
        "sensor: {preset: minisar}\nscene: {n_azimuth: 64, n_range: 512}\nrfi:\n  preset: minisar\n  sirr_db: -5\n"
    )
    with pytest.raises(InputError) as err:
        load_config(path)
    assert "sim.yaml:5" in str(err.value) and "sirr_db" in str(err.value)
