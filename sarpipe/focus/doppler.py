"""Doppler centroid estimation with the correlation (average phase increment) estimator (Madsen 1989).

``f_dc = PRF / (2 pi) * arg( sum_{i,j} x[i+1, j] conj(x[i, j]) )`` over pulses i and range samples j.
The estimate is the centroid of the azimuth power spectrum modulo the PRF: :func:`estimate_doppler_centroid`
returns the baseband solution in ``(-PRF/2, PRF/2]``. The focuser resolves the PRF ambiguity itself
(:mod:`.doppler_ambiguity`: multi-look cross-correlation, or the geometric centroid) when no centroid is given.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..sensor import SensorParams
from . import kernels

_BLOCK_PULSES = 512


def doppler_from_lag_one(lag_one: complex, prf: float) -> float:
    """Centroid [Hz] from the lag-one correlation sum; 0 when the sum is zero (no signal)."""
    if lag_one == 0:
        return 0.0
    return float(prf) * math.atan2(lag_one.imag, lag_one.real) / (2.0 * math.pi)


def lag_one_sum(data: Any) -> complex:
    """``sum x[i+1, j] conj(x[i, j])`` over a 2-D complex array (numpy or Dask), read block by block."""
    total = 0j
    prev = np.empty(0, dtype=np.complex64)
    for a0 in range(0, data.shape[0], _BLOCK_PULSES):
        block = np.ascontiguousarray(np.asarray(data[a0 : a0 + _BLOCK_PULSES]), dtype=np.complex64)
        total += kernels.lag_one_correlation(block, prev)
        prev = block[-1].copy()
    return total


def estimate_doppler_centroid(echo_or_ds: np.ndarray | xr.Dataset, sensor: SensorParams | None = None) -> float:
    """Doppler centroid [Hz] of raw echoes (or of an SLC: same azimuth spectrum centroid), in (-PRF/2, PRF/2].

    ``echo_or_ds``: a raw (``echo``) or SLC (``slc``) dataset, whose attrs give the PRF, or a complex array
    (rows = pulses) with ``sensor`` giving the PRF.
    """
    if isinstance(echo_or_ds, xr.Dataset):
        ds = echo_or_ds
        name = "echo" if "echo" in ds.data_vars else "slc" if "slc" in ds.data_vars else None
        if name is None:
            raise InputError("needs variable 'echo' or 'slc'", where="variable 'echo'")
        data = ds[name].data
        sensor = SensorParams.from_attrs(ds.attrs) if sensor is None else sensor
    else:
        data = echo_or_ds
    if sensor is None:
        raise InputError("the PRF is needed to estimate the Doppler centroid", where="attribute 'prf'")
    if getattr(data, "ndim", 0) != 2 or data.shape[0] < 2:
        raise InputError("needs a 2-D array with at least two pulses", where="variable 'echo'")
    return doppler_from_lag_one(lag_one_sum(data), sensor.prf)
