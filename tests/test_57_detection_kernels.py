"""The detectors' compiled kernels (sarpipe.rfi.detection_kernels) against plain-numpy versions written from their
definitions: band powers of a whole-pulse periodogram, the Welch line spectrum, the running median over slow time
(and scipy's median filter, the convention it keeps), the long runs of one band, on random inputs of odd and even
sizes."""

import numpy as np
import pytest
import scipy.fft
from scipy.ndimage import median_filter

from sarpipe.rfi.detection_kernels import (
    _band_power,
    _welch_shape,
    long_band_runs,
    quiet_level_fit,
    row_medians,
    slow_time_median,
)


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


def test_pulse_spectra_do_not_depend_on_the_batching_or_the_reading():
    """The transform batches (a few pulses gathered into one buffer) and lazy slabs give the numbers of one pass
    over all pulses, and those are the plain-numpy band spectra of the rows asked for."""
    import dask.array as da

    import sarpipe.rfi.echo_detect as ed

    rng = np.random.default_rng(5)
    x = _complex(rng, (23, 501))
    rows = np.array([0, 1, 2, 5, 6, 7, 8, 13, 21, 22])  # runs and gaps
    whole = ed.pulse_band_spectra(x, 32, rows=rows)
    old = ed.TRANSFORM_BYTES, ed.SLAB_BYTES
    try:
        ed.TRANSFORM_BYTES = 3 * 8 * 501  # three pulses a transform: batches cut across runs and gaps
        ed.SLAB_BYTES = 4 * 8 * 501
        small = ed.pulse_band_spectra(x, 32, rows=rows)
        lazy = ed.pulse_band_spectra(da.from_array(x, chunks=(5, 501)), 32, rows=rows)
    finally:
        ed.TRANSFORM_BYTES, ed.SLAB_BYTES = old
    for st in (small, lazy):
        np.testing.assert_array_equal(st.spectrum, whole.spectrum)
        np.testing.assert_array_equal(st.power_db, whole.power_db)
    edges = np.linspace(0, 501, 33).round().astype(np.int64)
    bands, power = _band_power_numpy(np.fft.fft(x[rows].astype(np.complex128), axis=1), edges)
    np.testing.assert_allclose(whole.spectrum, bands / bands.mean(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(whole.power_db, 10 * np.log10(power), atol=1e-5)


def test_welch_spectra_of_chosen_rows_match_numpy():
    """pulse_statistics reads the Welch segments of the rows asked for straight from the array (no row copies)."""
    import dask.array as da

    from sarpipe.rfi.echo_detect import pulse_statistics

    rng = np.random.default_rng(6)
    x = _complex(rng, (30, 1100))
    rows = np.array([2, 3, 9, 29])
    st = pulse_statistics(x, 128, 6, rows=rows)
    starts = np.linspace(0, 1100 - 128, 6).round().astype(int)
    win = np.hanning(129)[:128]
    seg = np.stack([[x[r, a : a + 128] * win for a in starts] for r in rows])
    np.testing.assert_allclose(st.spectrum, _welch_numpy(np.fft.fft(seg, axis=-1)), rtol=1e-4)
    np.testing.assert_allclose(
        st.power_db,
        [10 * np.log10(np.mean(np.abs(x[r, np.add.outer(starts, np.arange(128))]) ** 2)) for r in rows],
        atol=1e-4,
    )
    lazy = pulse_statistics(da.from_array(x, chunks=(4, 1100)), 128, 6, rows=rows)
    np.testing.assert_array_equal(lazy.spectrum, st.spectrum)


def _quiet_level_numpy(log_m, quiet, half):
    """One np.polynomial fit per bin through the quiet bins near it (all of them when under 8 are near): degree 2
    with at least 4 on each side, else 1; its value at the bin, clipped to the fitted values' range."""
    k_all = np.arange(log_m.size)
    out = np.empty_like(log_m)
    for k in range(log_m.size):
        near = quiet & (np.abs(k_all - k) <= half)
        if np.count_nonzero(near) < 8:
            near = quiet
        x, y = (k_all[near] - k) / half, log_m[near]
        deg = 2 if np.count_nonzero(x < 0) >= 4 and np.count_nonzero(x > 0) >= 4 else 1
        out[k] = np.clip(np.polynomial.polynomial.polyfit(x, y, deg)[0], y.min(), y.max())
    return out


@pytest.mark.parametrize("n, share", [(243, 0.5), (64, 0.3), (31, 1.0), (200, 0.1)])
def test_quiet_level_fit_matches_numpy_polyfit(n, share):
    rng = np.random.default_rng(n)
    f = np.linspace(-1, 1, n)
    log_m = 0.3 - 0.8 * f**2 + 0.05 * rng.standard_normal(n)
    quiet = rng.random(n) < share
    quiet[: n // 3] &= n != 200  # a wide raised band on one flank: the fits there are lines, one-sided
    quiet[[0, -1]] = True
    half = max(4, n // 4)
    np.testing.assert_allclose(quiet_level_fit(log_m, quiet, half), _quiet_level_numpy(log_m, quiet, half), atol=1e-9)
    with pytest.raises(ValueError, match="quiet"):
        quiet_level_fit(log_m, np.zeros(n, bool), half)


@pytest.mark.parametrize("shape", [(7, 243), (300, 8), (5, 1), (1, 6)])
def test_row_medians_match_numpy(shape):
    rng = np.random.default_rng(shape[1])
    x = rng.exponential(size=shape)
    x[0, : shape[1] // 2] = 1.0  # ties
    for axis in (0, 1):
        np.testing.assert_array_equal(row_medians(x, axis), np.median(x, axis=axis))
    with pytest.raises(ValueError, match="2-D"):
        row_medians(x[0])


def _long_band_runs_numpy(elevated, min_run, tolerance):
    """Widen each row's True values by ``tolerance`` bands, then mark every run of ``min_run`` rows in a band."""
    n, m = elevated.shape
    wide = np.zeros_like(elevated)
    for d in range(-tolerance, tolerance + 1):
        lo, hi = max(0, d), min(m, m + d)
        wide[:, lo - d : hi - d] |= elevated[:, lo:hi]
    out = np.zeros(n, bool)
    for b in range(m):
        col = np.concatenate([[False], wide[:, b], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(col))
        for a, c in zip(edges[::2], edges[1::2]):
            if c - a >= min_run:
                out[a:c] = True
    return out


@pytest.mark.parametrize("tolerance, min_run, p", [(0, 3, 0.5), (2, 5, 0.3), (1, 1, 0.05), (3, 40, 0.6)])
def test_long_band_runs_matches_numpy(tolerance, min_run, p):
    rng = np.random.default_rng(min_run)
    elevated = rng.random((300, 37)) < p
    np.testing.assert_array_equal(
        long_band_runs(elevated, min_run, tolerance), _long_band_runs_numpy(elevated, min_run, tolerance)
    )


def test_long_band_runs_follows_a_wandering_band_and_ends_at_the_last_row():
    e = np.zeros((30, 10), bool)
    e[5:25, 4] = True
    e[14, 4], e[14, 5] = False, True  # one row off by a band: one run of 20 with tolerance 1, 9 and 10 without
    e[26:, 8] = True  # a run that reaches the last row
    assert long_band_runs(e, 11, 1)[5:25].all() and not long_band_runs(e, 11, 1)[:5].any()
    assert not long_band_runs(e, 11, 0)[5:25].any()
    assert long_band_runs(e, 4, 0)[26:].all()
