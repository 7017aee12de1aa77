"""Pulse packing (``pack_gap``) in :class:`~sarpipe.models.torch_method.TorchMethod`: short pulses' spectrograms
side by side along frames in one model input. Layout against a plain-numpy construction, exactness where the model
cannot see the neighbouring pulse, long pulses bit-identical, the shipped DIFNet's loss measured and bounded."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sarpipe.errors import InputError  # noqa: E402 - after the torch skip
from sarpipe.models.torch_method import (  # noqa: E402
    TorchMethod,
    pack_pulses,
    pack_slot,
    spectrogram_to_input,
    unpack_pulses,
)
from sarpipe.rfi.chain_io import parse_params  # noqa: E402


class _ConvMethod(TorchMethod):
    """A toy method: one convolution ``(1, 2r + 1)`` along frames then a sigmoid (reach ``r`` frames)."""

    name = "toy_conv"

    def __init__(self, reach: int, seed: int = 0, **kw):
        super().__init__(device="cpu", amp=False, **kw)
        torch.manual_seed(seed)
        conv = torch.nn.Conv2d(1, 1, (1, 2 * reach + 1), padding=(0, reach))
        self.set_model(torch.nn.Sequential(conv, torch.nn.Sigmoid()))


def _inputs(n, h, w, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, h, w)).astype(np.float32)


def test_pack_layout_against_a_plain_construction_and_unpack_inverts_it():
    z = _inputs(7, 4, 5)
    slot, per_row = pack_slot(5, 2, 4), 3
    assert slot == 8  # 5 + 2 rounded up to a multiple of 4
    rows = pack_pulses(z, slot, per_row)
    assert rows.shape == (3, 4, 24)
    for i in range(7):
        r, k = divmod(i, per_row)
        seg = rows[r, :, k * slot : (k + 1) * slot]
        np.testing.assert_array_equal(seg[:, :5], z[i])
        np.testing.assert_array_equal(seg[:, 5:], z[i][:, [3, 2, 1]])  # its own frames reflected into the gap
    np.testing.assert_array_equal(rows[2, :, slot:], 0)  # the empty slots of the last row
    np.testing.assert_array_equal(unpack_pulses(rows, 7, 5, slot, per_row), z)
    with pytest.raises(ValueError, match="cannot hold"):
        pack_pulses(z, 4, 2)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "two"])
def test_a_bad_pack_gap_is_refused_naming_the_parameter(bad):
    with pytest.raises(InputError, match="pack_gap") as err:
        _ConvMethod(1, tile=[16, 32], pack_gap=bad)
    assert err.value.where == "--param pack_gap"


def test_pack_gap_reads_from_the_command_line_as_an_integer():
    assert parse_params(["pack_gap=0"]) == {"pack_gap": 0}


@pytest.mark.parametrize("reach, gap", [(0, 0), (1, 1), (2, 3)])
def test_packed_equals_unpacked_where_the_model_cannot_reach_the_neighbour(reach, gap):
    """Frames within ``reach`` of a pulse's start see the previous slot instead of the tile's zero padding; with
    ``gap >= reach`` the end sees its own reflection exactly as in the unpacked tile. All else is equal."""
    z = _inputs(5, 16, 9)
    plain = _ConvMethod(reach, tile=[16, 32]).predict(z)
    method = _ConvMethod(reach, tile=[16, 32], pack_gap=gap)
    packed = method.predict(z)
    per_row = 32 // pack_slot(9, gap, 1)
    assert method._last_tiles == (-(-5 // per_row), 0)  # fewer model inputs than pulses
    assert per_row >= 2
    np.testing.assert_allclose(packed[..., reach:], plain[..., reach:], rtol=0, atol=1e-6)
    np.testing.assert_allclose(packed[0], plain[0], rtol=0, atol=1e-6)  # the first of a row starts at the edge
    if reach:
        assert np.abs(packed[1:, :, :reach] - plain[1:, :, :reach]).max() > 1e-4  # the reach is real


def test_a_gap_too_small_for_the_reach_leaks_the_next_pulse_into_the_end():
    z = _inputs(4, 16, 9)
    plain = _ConvMethod(2, tile=[16, 32]).predict(z)
    packed = _ConvMethod(2, tile=[16, 32], pack_gap=0).predict(z)
    np.testing.assert_allclose(packed[::3, :, 2:-2], plain[::3, :, 2:-2], rtol=0, atol=1e-6)
    assert np.abs(packed[0, :, -2:] - plain[0, :, -2:]).max() > 1e-4


def test_quiet_pulses_are_left_out_of_the_packing():
    z = _inputs(4, 16, 9)
    ratio = np.ones(z.shape)
    ratio[1:3] = 10.0  # pulses 1 and 2 are loud
    method = _ConvMethod(1, tile=[16, 32], pack_gap=1, skip_quiet=5.0)
    out = method.predict(z, peak_ratio=ratio)
    assert method._last_tiles == (1, 2)
    np.testing.assert_array_equal(out[[0, 3]], 0)
    alone = _ConvMethod(1, tile=[16, 32], pack_gap=1).predict(z[1:3])
    np.testing.assert_array_equal(out[1:3], alone)


@pytest.fixture(scope="module")
def difnet():
    from sarpipe.models.difnet import DIFNetMethod

    return DIFNetMethod(device="cpu", strict=False), DIFNetMethod(device="cpu", strict=False, pack_gap=0)


def test_long_pulses_and_lone_pulses_are_bit_identical_with_packing_on(difnet):
    plain, packed = difnet
    long = _inputs(2, 128, 257)  # three 128-frame tiles: not packed
    np.testing.assert_array_equal(packed.predict(long), plain.predict(long))
    lone = _inputs(1, 128, 65)  # one pulse: nothing to pack it with
    np.testing.assert_array_equal(packed.predict(lone), plain.predict(lone))
    wide = _ConvMethod(1, tile=[16, 32], pack_gap=0)
    z = _inputs(3, 16, 17)  # 17 + 0 frames: one slot per 32-frame row, run as without packing
    np.testing.assert_array_equal(wide.predict(z), _ConvMethod(1, tile=[16, 32]).predict(z))
    full = _inputs(3, 128, 128)  # a pulse as wide as the tile: no padding to save, DIFNet's wide rows unused
    np.testing.assert_array_equal(packed.predict(full), plain.predict(full))
    assert packed._last_tiles == (3, 0)


def test_samsnet_packs_on_its_attention_slices():
    from sarpipe.spectral.samsnet_method import SamsNetMethod

    m = SamsNetMethod(device="cpu", strict=False, pack_gap=0)
    slices = m._model.net.blocks[0].attention.slices
    tw = m.tile[1]
    assert m.pack_align(tw) == -(-tw // slices)  # slot starts on slice boundaries of the tile
    assert m.pack_row_frames(tw) == tw  # rows one tile wide: the trained slice length


def test_shipped_difnet_packed_stays_close_to_unpacked_on_held_out_pulses(difnet):
    """Measured on the benchmark's same-sensor set (docs/models/difnet.md): the packed mask's cleaned-spectrogram
    PSNR within 0.5 dB of the unpacked one, and 1.7x fewer padded frames run (72-frame slots, not 128)."""
    from sarpipe.models.difnet_data import DIFNetDataConfig, make_pulse
    from sarpipe.rfi.stft import STFTParams, stft
    from sarpipe.spectral.sr_training import spectrogram_psnr

    plain, packed = difnet
    p = STFTParams()
    cfg = DIFNetDataConfig(frames=65, seed=101)  # the benchmark's held-out same-sensor seed
    pulses = [make_pulse(cfg, "validation", i) for i in range(8)]
    x = np.stack([e + r for e, r, _b in pulses])
    spec, ref = stft(x, p), stft(np.stack([e for e, _r, _b in pulses]), p)
    z = spectrogram_to_input(spec)
    a, b = plain.predict(z), packed.predict(z)
    assert packed._last_tiles[0] == 1  # eight 72-frame slots in one 576-frame row
    psnr_plain = spectrogram_psnr(spec - a * spec, ref)
    psnr_packed = spectrogram_psnr(spec - b * spec, ref)
    assert abs(psnr_packed - psnr_plain) < 0.5, (psnr_plain, psnr_packed)
