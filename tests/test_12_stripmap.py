"""Stripmap geometry helpers (sarpipe.stripmap) against the exact hyperbolic range history (independent of the closed forms)."""

from __future__ import annotations

import numpy as np
import pytest

from sarpipe.errors import InputError
from sarpipe.stripmap import antenna_doppler_bandwidth, azimuth_fm_rate, beam_centre_offset, squint_angle

LAM, V, R0 = 0.0555, 7100.0, 850e3


def doppler(eta: np.ndarray) -> np.ndarray:
    """Instantaneous Doppler [Hz] of a target with zero-Doppler time 0: -(2/lambda) dR/deta, R = sqrt(R0^2 + V^2 eta^2)."""
    return -2.0 * V**2 * eta / (LAM * np.sqrt(R0**2 + V**2 * eta**2))


@pytest.mark.parametrize("f_dc", [0.0, 520.0, -1300.0])
def test_beam_centre_is_where_the_doppler_equals_the_centroid(f_dc):
    eta_c = beam_centre_offset(R0, f_dc, LAM, V)
    assert doppler(np.array([eta_c]))[0] == pytest.approx(f_dc, abs=1e-6)


@pytest.mark.parametrize("f_dc", [0.0, 520.0, -1300.0])
def test_fm_rate_is_the_slope_of_the_doppler_history_at_beam_centre(f_dc):
    eta_c = beam_centre_offset(R0, f_dc, LAM, V)
    h = 1e-4
    slope = (doppler(np.array([eta_c + h]))[0] - doppler(np.array([eta_c - h]))[0]) / (2 * h)
    assert azimuth_fm_rate(R0, f_dc, LAM, V) == pytest.approx(-slope, rel=1e-6)


def test_antenna_band_shrinks_with_cos_squint_and_squint_limit():
    la = 12.3
    b0 = antenna_doppler_bandwidth(la, V, 0.0, LAM)
    assert b0 == pytest.approx(0.886 * 2 * V / la)
    f_dc = 0.5 * 2 * V / LAM  # 30 degrees
    assert squint_angle(f_dc, LAM, V) == pytest.approx(np.pi / 6)
    assert antenna_doppler_bandwidth(la, V, f_dc, LAM) == pytest.approx(b0 * np.cos(np.pi / 6))
    with pytest.raises(InputError, match="doppler_centroid"):
        squint_angle(2 * V / LAM, LAM, V)
