"""The simulator's real-emitter behaviours (sarpipe.simulate.interference): a tone that drifts with absolute time,
a pulsed emitter with its own repetition interval and duty cycle, pulse-to-pulse amplitude fluctuation; each
checked against its definition, and off by default."""

from __future__ import annotations

import numpy as np
import pytest

from sarpipe.model import sar_dataset
from sarpipe.simulate.interference import RFIConfig, add_rfi

FS = 360e6
ATTRS = {
    "carrier_frequency": 9.6e9,
    "range_sampling_rate": FS,
    "chirp_rate": 3e14,
    "pulse_duration": 1e-6,
    "prf": 300.0,
    "velocity": 100.0,
    "near_range": 5000.0,
}


def _scene(n_az=256, n_rg=2048):
    rng = np.random.default_rng(0)
    echo = (rng.standard_normal((n_az, n_rg)) + 1j * rng.standard_normal((n_az, n_rg))).astype(np.complex64)
    return sar_dataset(echo, ATTRS)


def _rfi(source: dict, seed=1):
    ds = _scene()
    cfg = RFIConfig(sources=[{"kind": "narrowband", "count": 1, "frequency": 10e6, **source}], pulses=[[0, 256]])
    out = add_rfi(ds, cfg, np.random.default_rng(seed))
    return out, np.asarray(out["rfi"].values, np.complex128)


def test_a_drifting_tone_moves_by_drift_rate_times_the_elapsed_time():
    drift = 2e6  # Hz/s: 1.7 MHz over the 0.85 s of 256 pulses at 300 Hz
    out, r = _rfi({"drift_rate": drift})
    # instantaneous frequency of each pulse from the lag-one phase increment, against f0 + drift * t_abs
    f = np.angle(np.sum(r[:, 1:] * np.conj(r[:, :-1]), axis=1)) * FS / (2 * np.pi)
    t = np.asarray(out["azimuth_time"].values)
    slope = np.polyfit(t, f, 1)[0]
    assert slope == pytest.approx(drift, rel=0.01)
    assert out.attrs["rfi_sources"][0]["drift_rate"] == drift


def test_a_pulsed_emitter_is_on_for_its_duty_cycle_at_a_different_fast_time_on_each_echo():
    period = 1.9317e-6  # 695.4 samples, incommensurate with the 1/300 s PRI
    out, r = _rfi({"pulse_period": period, "pulse_duty": 0.25})
    on = np.abs(r) > 0
    assert on.mean() == pytest.approx(0.25, abs=0.01)
    # the first on-sample moves around the emitter's period from pulse to pulse
    first = np.argmax(on, axis=1)
    assert np.unique(first).size > 50
    # on-runs of 0.25 x 695.4 = 173.9 samples, off-runs of 521.6
    runs = np.diff(np.flatnonzero(np.diff(on[0].astype(np.int8)) != 0))
    assert set(np.unique(runs)) <= {173, 174, 175, 521, 522, 523}


def test_amplitude_fluctuates_from_pulse_to_pulse_with_the_given_spread():
    _out, r = _rfi({"fluctuation_db": 3.0})
    level_db = 20 * np.log10(np.abs(r).mean(axis=1))
    assert level_db.std() == pytest.approx(3.0, rel=0.15)
    _out, steady = _rfi({})
    assert np.ptp(20 * np.log10(np.abs(steady).mean(axis=1))) < 1e-3


def test_the_behaviours_are_off_by_default_and_draw_no_random_numbers():
    _o, plain = _rfi({})
    _o, explicit = _rfi({"drift_rate": None, "pulse_period": None, "fluctuation_db": 0.0})
    assert np.array_equal(plain, explicit)
    _o, other = _rfi({"pulse_period": 1.9317e-6, "pulse_duty": 1.0})  # draws its offset: a later stream, not equal
    assert np.allclose(np.abs(other), np.abs(plain))


@pytest.mark.parametrize(
    "bad", [{"pulse_duty": 0.0}, {"pulse_duty": 1.5}, {"pulse_period": 0.0}, {"fluctuation_db": -1.0}]
)
def test_bad_emitter_behaviours_are_refused(bad):
    with pytest.raises(ValueError):
        RFIConfig(sources=[{"kind": "narrowband", **bad}], pulses=[[0, 4]])
