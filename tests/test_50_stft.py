"""Batched STFT/ISTFT: perfect reconstruction, agreement with scipy.signal (an independent implementation),
tone placement, and bad parameters."""

import numpy as np
import pytest
import scipy.signal

from sarpipe.errors import InputError
from sarpipe.rfi.stft import STFTParams, frame_times, frequencies, istft, n_frames, stft


def _pulses(n_pulses, n_samples, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_pulses, n_samples)) + 1j * rng.standard_normal((n_pulses, n_samples))).astype(
        np.complex64
    )


@pytest.mark.parametrize(
    "params, n_samples",
    [
        (STFTParams(), 2048),
        (STFTParams(), 1001),
        (STFTParams(256, 64, "hamming"), 3000),
        (STFTParams(64, 48, "hann"), 777),
    ],
)
def test_round_trip_is_exact(params, n_samples):
    x = _pulses(37, n_samples)
    y = istft(stft(x, params), n_samples, params)
    assert y.dtype == np.complex64 and y.shape == x.shape
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 1e-5


def test_matches_scipy_stft_and_istft():
    """Our spectrogram is scipy's two-sided STFT (zero boundary), fftshifted and scaled by sum(window)."""
    p = STFTParams(128, 32, "hann")
    x = _pulses(3, 1500, seed=1)
    spec = stft(x, p)
    win = scipy.signal.get_window("hann", 128)
    for k in range(3):
        _, _, z = scipy.signal.stft(
            x[k], nperseg=128, noverlap=96, window="hann", return_onesided=False, boundary="zeros", padded=True
        )
        ref = np.fft.fftshift(z, axes=0) * win.sum()
        n = min(ref.shape[1], spec.shape[2])
        np.testing.assert_allclose(spec[k][:, :n], ref[:, :n], atol=2e-4 * np.abs(ref).max())
        # scipy's inverse of our (unshifted, unscaled) spectrogram gives the pulse back too
        _, back = scipy.signal.istft(
            np.fft.ifftshift(spec[k], axes=0) / win.sum(),
            nperseg=128,
            noverlap=96,
            window="hann",
            input_onesided=False,
            boundary=True,
        )
        np.testing.assert_allclose(back[:1500], x[k], atol=1e-4)


def test_tone_lands_in_its_bin_and_frame_grid():
    fs = 100e6
    p = STFTParams(128, 32)
    f0 = frequencies(fs, p)[100]  # a bin centre, 100 - 64 bins above DC
    t = np.arange(4096) / fs
    spec = stft(np.exp(2j * np.pi * f0 * t).astype(np.complex64), p)
    assert spec.shape == (128, n_frames(4096, p))
    mid = spec.shape[1] // 2
    assert int(np.argmax(np.abs(spec[:, mid]))) == 100
    # a full frame of a unit tone reads sum(window) in its bin
    assert abs(np.abs(spec[100, mid]) - np.hanning(129)[:128].sum()) < 1e-2
    assert frame_times(4096, fs, p)[1] == pytest.approx(32 / fs)
    assert frequencies(fs, p)[64] == 0.0


def test_bad_parameters_are_input_errors():
    with pytest.raises(InputError, match="nperseg"):
        STFTParams(nperseg=127)
    with pytest.raises(InputError, match="hop"):
        STFTParams(nperseg=64, hop=65)
    with pytest.raises(InputError, match="NOLA"):
        STFTParams(nperseg=64, hop=64, window="hann")  # hann is zero where the frames meet
    with pytest.raises(InputError, match="window"):
        STFTParams(window="no-such-window")
    with pytest.raises(InputError, match="does not match"):
        istft(np.zeros((2, 128, 5), np.complex64), 4096)
