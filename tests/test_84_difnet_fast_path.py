"""DIFNet's fast inference path against its reference: quiet tiles skipped, bfloat16 on CPUs that have it,
channels-last layout. Each fast path's output is compared with the full float32 tiling."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sarpipe.errors import InputError  # noqa: E402 - after the torch skip
from sarpipe.models.difnet import DIFNetMethod  # noqa: E402
from sarpipe.models.torch_method import cpu_has_native_bf16, quiet_tiles  # noqa: E402
from sarpipe.rfi.methods import MethodContext  # noqa: E402
from sarpipe.rfi.stft import STFTParams, stft  # noqa: E402

ATTRS = {
    "carrier_frequency": 9.6e9,
    "range_sampling_rate": 360e6,
    "chirp_rate": 3e14,
    "pulse_duration": 1e-6,
    "prf": 300.0,
    "velocity": 100.0,
    "near_range": 5000.0,
}


def _ctx(n):
    return MethodContext(attrs=ATTRS, stft=STFTParams(), pulse_indices=np.arange(n), n_samples=12_000)


def _pulses(n=2, n_samples=12_000, seed=3):
    """White noise everywhere, a chirp burst and a tone only in the first third of fast time."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, n_samples)) + 1j * rng.standard_normal((n, n_samples))).astype(np.complex64)
    t = np.arange(n_samples // 3) / 360e6
    x[:, : t.size] += 8 * np.exp(2j * np.pi * (30e6 * t + 0.5 * 2e13 * t**2))
    x[:, : t.size] += 5 * np.exp(-2j * np.pi * 90e6 * t)
    return x


def test_noise_alone_is_quiet_at_the_rayleigh_threshold():
    # |complex Gaussian| / its median exceeds q with probability exp(-ln2 q^2): at q = 5, 3e-8 per bin, so a
    # 128 x 128 tile of noise is loud with probability 5e-4; at q = 3, 2e-3 per bin, so almost surely loud
    rng = np.random.default_rng(0)
    a = np.abs(rng.standard_normal((40, 128, 128)) + 1j * rng.standard_normal((40, 128, 128)))
    ratio = a / np.median(a.reshape(40, -1), axis=1)[:, None, None]
    peaks = ratio.reshape(40, -1).max(axis=1)
    assert quiet_tiles(peaks, 5.0).all()
    assert not quiet_tiles(peaks, 3.0).any()
    assert not quiet_tiles(peaks, None).any()


def test_skipping_quiet_tiles_is_bounded_by_what_the_network_predicts_there():
    x = _pulses()
    spec = stft(x, STFTParams())  # 128 x 377 frames: 4 tiles per pulse, 1 holds the RFI
    full_m = DIFNetMethod(device="cpu", amp=False)
    full = full_m(spec, _ctx(2)).data
    fast_m = DIFNetMethod(device="cpu", amp=False, skip_quiet=5.0)
    fast = fast_m(spec, _ctx(2)).data
    run, skipped = fast_m._last_tiles
    assert skipped >= 2 and run >= 2  # the RFI tiles ran, noise-only tiles did not
    # outside the RFI third the full path's prediction is the bound; inside, the RFI tile ran in both paths
    frames_rfi = (spec.shape[2] // 3) + 4
    bound = full[:, :, frames_rfi:].max()
    assert np.abs(fast - full).max() <= bound + 1e-6
    assert bound < 0.5  # so the thresholded masks agree everywhere
    assert np.array_equal(fast > 0.5, full > 0.5)
    assert (full[:, :, :frames_rfi] > 0.5).mean() > 0.02  # and there is RFI to find


def test_bf16_on_cpu_stays_close_to_float32():
    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bfloat16: amp keeps float32 here, nothing to compare")
    spec = stft(_pulses(n=1), STFTParams())
    ref = DIFNetMethod(device="cpu", amp=False)(spec, _ctx(1)).data
    fast = DIFNetMethod(device="cpu")(spec, _ctx(1)).data
    assert not np.array_equal(fast, ref)  # bf16 did run
    assert np.abs(fast - ref).max() < 3e-2
    assert np.mean((fast > 0.5) == (ref > 0.5)) > 0.999


def test_channels_last_changes_nothing_in_float32():
    m = DIFNetMethod(device="cpu", amp=False)
    z = np.random.default_rng(2).standard_normal((2, 128, 128)).astype(np.float32)
    fast = m._run_all(z)
    plain = m._model.to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        ref = plain(torch.from_numpy(z[:, None]))[:, 0].numpy()
    np.testing.assert_allclose(fast, ref, atol=2e-5, rtol=0)


@pytest.mark.parametrize("bad", [0, -1.0, True, "x"])
def test_bad_skip_quiet_is_refused(bad):
    with pytest.raises(InputError, match="skip_quiet"):
        DIFNetMethod(device="cpu", skip_quiet=bad)
