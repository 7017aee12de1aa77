"""Shared fixtures: small contract datasets."""

from __future__ import annotations

import numpy as np
import pytest

# A generic C-band stripmap-like parameter set, SI units, for contract-level tests.
BASE_ATTRS = {
    "carrier_frequency": 5.405e9,
    "range_sampling_rate": 64.0e6,
    "chirp_rate": 1.0e12,
    "pulse_duration": 20.0e-6,
    "prf": 1700.0,
    "velocity": 7100.0,
    "near_range": 850_000.0,
}


@pytest.fixture
def base_attrs() -> dict:
    return dict(BASE_ATTRS)


@pytest.fixture
def small_raw(base_attrs):
    from sarpipe.model import sar_dataset

    rng = np.random.default_rng(0)
    echo = (rng.standard_normal((16, 32)) + 1j * rng.standard_normal((16, 32))).astype(np.complex64)
    return sar_dataset(echo, base_attrs)
