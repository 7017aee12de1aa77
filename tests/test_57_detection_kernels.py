"""The detectors' compiled kernels (sarpipe.rfi.detection_kernels) against plain-numpy versions written from their
definitions: band powers of a whole-pulse periodogram, the Welch line spectrum, the running median over slow time
(and scipy's median filter, the convention it keeps), on random inputs of odd and even sizes."""

import numpy as np
import pytest
import scipy.fft
from scipy.ndimage import median_filter

from sarpipe.rfi.detection_kernels import _band_power, _welch_shape, slow_time_median


def _complex(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def _band_power_numpy(spectrum, edges):
    """Bands of the centred |X|^2 in float64 and the time-domain mean |x|^2 (Parseval's other side)."""
    p = np.fft.fftshift(np.abs(spectrum.astype(np.complex128)) ** 2, axes=1)
    bands = np.add.reduceat(p, edges[:-1], axis=1) / np.diff(edges)[None, :]
    return bands, p.sum(axis=1) / spectrum.shape[1] ** 2


@pytest.mark.parametrize("n, nbands", [(1000, 256), (1001, 256), (777, 7), (64, 64), (5, 3)])
def test_band_power_matches_numpy(n, nbands):
    rng = np.random.default_rng(n)
    x = _complex(rng, (9, n))
    x[3] *= 100.0  # a bright pulse: rows must not leak into each other
    spectrum = scipy.fft.fft(x, axis=1)
    edges = np.linspace(0, n, nbands + 1).round().astype(np.int64)
    bands = np.empty((9, nbands))
    power = np.empty(9)
    _band_power(spectrum, edges, bands, power)
    ref_bands, ref_power = _band_power_numpy(spectrum, edges)
    np.testing.assert_allclose(bands, ref_bands, rtol=1e-12)
    np.testing.assert_allclose(power, ref_power, rtol=1e-12)
    # Parseval: the mean power of the samples themselves (to the float32 FFT's rounding)
    np.testing.assert_allclose(power, np.mean(np.abs(x.astype(np.complex128)) ** 2, axis=1), rtol=1e-5)


def _welch_numpy(segment_spectra):
    p = np.abs(segment_spectra.astype(np.complex128)) ** 2
    p /= np.maximum(p.mean(axis=-1, keepdims=True), 1e-30)
    return np.fft.fftshift(p.mean(axis=1), axes=-1)


@pytest.mark.parametrize("n_seg, nfft", [(8, 256), (3, 255), (1, 7), (5, 2)])
def test_welch_shape_matches_numpy(n_seg, nfft):
    rng = np.random.default_rng(nfft)
    seg = scipy.fft.fft(_complex(rng, (6, n_seg, nfft)), axis=-1)
    seg[2, 0] = 0  # a silent segment: floored, counts as zeros
    seg[4] *= 1e3
    out = np.empty((6, nfft))
    _welch_shape(seg, out)
    np.testing.assert_allclose(out, _welch_numpy(seg), rtol=1e-12, atol=1e-300)
    assert np.all(out[2] >= 0) and np.isfinite(out).all()


def _running_median_numpy(x, window):
    """The middle of the sorted window (np.sort: NaN last), end rows repeated."""
    h = window // 2
    padded = np.concatenate([np.repeat(x[:1], h, axis=0), x, np.repeat(x[-1:], h, axis=0)])
    return np.stack([np.sort(padded[i : i + window], axis=0)[h] for i in range(x.shape[0])])


@pytest.mark.parametrize("n, m, window", [(300, 17, 15), (301, 4, 15), (7, 3, 15), (50, 5, 1), (1, 2, 3), (64, 9, 63)])
def test_slow_time_median_matches_numpy_and_scipy(n, m, window):
    rng = np.random.default_rng(n * m)
    x = rng.exponential(size=(n, m))
    x[n // 2 :, 0] += 30.0  # a burst switching on: a median keeps the edge where it is
    x[:, 1] = np.round(x[:, 1])  # ties
    got = slow_time_median(x, window)
    np.testing.assert_array_equal(got, _running_median_numpy(x, window))
    np.testing.assert_array_equal(got, median_filter(x, size=(window, 1), mode="nearest"))


def test_slow_time_median_sorts_nan_last_and_refuses_even_windows():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 3))
    x[[5, 6, 7, 20], 1] = np.nan
    x[:, 2] = np.nan
    got = slow_time_median(x, 5)
    np.testing.assert_array_equal(got, _running_median_numpy(x, 5))
    assert np.isnan(got[6, 1]) and np.isfinite(got[20, 1]) and np.isnan(got[:, 2]).all()
    np.testing.assert_array_equal(got[:, 0], _running_median_numpy(x, 5)[:, 0])
    for bad in (0, 4, -3):
        with pytest.raises(ValueError, match="odd"):
            slow_time_median(x, bad)
    assert slow_time_median(np.zeros((0, 3)), 15).shape == (0, 3)
