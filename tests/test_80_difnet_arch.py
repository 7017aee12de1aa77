"""DIFNet's architecture, the TorchMethod machinery (tiling, batching, device) and the weights folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sarpipe.errors import InputError
from sarpipe.models import difnet as D
from sarpipe.models.torch_method import (
    TorchMethod,
    blend_window,
    resolve_device,
    spectrogram_to_input,
    tile_starts,
)
from sarpipe.models.weights import (
    ValidFor,
    load_weights,
    read_tensors,
    save_weights,
    write_tensors,
)
from sarpipe.rfi.methods import MethodContext, create_method, method_names
from sarpipe.rfi.stft import STFTParams

MINI = {"channels": 4, "levels": 1, "window": 4, "heads": 2}
# a whole MiniSAR-like sensor: MethodContext validates the attributes (sarpipe.sensor.SensorParams)
ATTRS = {
    "carrier_frequency": 9.6e9,
    "range_sampling_rate": 360e6,
    "chirp_rate": 300e6 / 1e-6,
    "pulse_duration": 1e-6,
    "prf": 300.0,
    "velocity": 100.0,
    "near_range": 5000.0,
}


# --------------------------------------------------------------------------------------------- architecture


def test_window_partition_merge_round_trip_and_layout():
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float32).reshape(2, 8, 12, 3)
    w = D.window_partition(x, 4)
    assert w.shape == (2 * 2 * 3, 16, 3)
    # window 1 of image 0 is rows 0..3, columns 4..7, row-major inside
    assert torch.equal(w[1].reshape(4, 4, 3), x[0, 0:4, 4:8])
    assert torch.equal(D.window_merge(w, 4, 8, 12), x)


def test_relative_position_index_shape_range_symmetry_and_sharing():
    m = 5
    idx = D.relative_position_index(m)
    assert idx.shape == (m * m, m * m)
    assert int(idx.min()) == 0 and int(idx.max()) == (2 * m - 1) ** 2 - 1
    assert len(torch.unique(idx)) == (2 * m - 1) ** 2  # every offset is used
    centre = (m - 1) * (2 * m - 1) + (m - 1)
    assert torch.all(torch.diagonal(idx) == centre)  # zero offset
    assert torch.all(idx + idx.T == 2 * centre)  # offset (dy, dx) and (-dy, -dx) mirror about the centre
    # positions (yi, xi), (yj, xj) with the same offset share an entry
    p = lambda y, x: y * m + x
    assert idx[p(0, 0), p(1, 2)] == idx[p(3, 1), p(4, 3)]
    assert idx[p(0, 0), p(1, 2)] != idx[p(0, 0), p(2, 1)]
    attn = D.LocalWindowAttention(8, 2, m)
    assert attn.bias_table.shape == ((2 * m - 1) ** 2, 2)
    with torch.no_grad():
        attn.bias_table.copy_(torch.arange(attn.bias_table.numel(), dtype=torch.float32).reshape(-1, 2))
    b = attn.bias()
    assert b.shape == (2, m * m, m * m)
    assert torch.equal(b[1], attn.bias_table[idx, 1])
    assert "bias_index" not in attn.state_dict()  # derived from M, not a weight


@pytest.mark.parametrize("shape", [(40, 24), (37, 53), (8, 200), (3, 5)])
def test_output_shape_non_square_and_not_window_multiple(shape):
    net = D.DIFNet(channels=4, levels=2, window=4, heads=1).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 1, *shape))
    assert y.shape == (2, 1, *shape)
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_attention_is_local_to_windows():
    torch.manual_seed(0)
    net = D.DIFNetBlock(4, 1, 4).eval()
    x = torch.randn(1, 4, 8, 8)
    x2 = x.clone()
    x2[..., 0:4, 0:4] += 1.0  # change only window (0, 0)
    with torch.no_grad():
        a, b = (
            net.attn(D.window_partition(x.permute(0, 2, 3, 1), 4)),
            net.attn(D.window_partition(x2.permute(0, 2, 3, 1), 4)),
        )
    assert not torch.allclose(a[0], b[0])
    assert torch.equal(a[1:], b[1:])


def test_paper_configuration_parameter_count(capsys):
    n = D.count_parameters(D.DIFNet(**D.PAPER_ARCHITECTURE))
    small = D.count_parameters(D.DIFNet(channels=16, levels=3, window=8, heads=1))
    with capsys.disabled():
        print(f"\nDIFNet parameters: paper configuration (C16, L4, M8) {n:,}; shipped-size (C16, L3, M8) {small:,}")
    assert 5.5e6 < n < 7.5e6  # the paper reports ~6.3 M
    assert small < n / 3


def test_bad_architecture_is_refused():
    with pytest.raises(ValueError):
        D.DIFNet(channels=6, heads=4)


# --------------------------------------------------------------------------------------------- TorchMethod


class _Pointwise(torch.nn.Module):
    """A per-pixel function (so tiling cannot change it): sigmoid(2 x - 1)."""

    def forward(self, x):
        return torch.sigmoid(2 * x - 1)


class _Method(TorchMethod):
    name = "test-pointwise"

    def __init__(self, limit=None, **kw):
        super().__init__(**kw)
        self.set_model(_Pointwise())
        self._limit = limit
        self._sizes = []

    def _run_batch(self, batch):
        self._sizes.append(batch.shape[0])
        if self._limit is not None and batch.shape[0] > self._limit:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB")
        return super()._run_batch(batch)


def _ctx(n=3, stft=None):
    return MethodContext(attrs=ATTRS, stft=stft or STFTParams(), pulse_indices=np.arange(n), n_samples=4000)


def test_tiled_equals_untiled_for_a_pointwise_model():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3, 50, 77)).astype(np.float32)
    whole = _Method().predict(z)
    for tile, overlap in [((16, 16), (4, 4)), ((32, 20), (8, 3)), ((64, 100), None), ((50, 77), (0, 0))]:
        tiled = _Method(tile=list(tile), overlap=None if overlap is None else list(overlap)).predict(z)
        np.testing.assert_allclose(tiled, whole, atol=1e-6, rtol=0)


def test_tiling_blend_weights_are_positive_and_cover():
    assert tile_starts(77, 20, 3) == [0, 17, 34, 51, 57]
    assert tile_starts(10, 20, 3) == [0]
    w = blend_window(20, 4, first=False, last=False)
    assert w.min() > 0 and w.max() == 1 and np.allclose(w, w[::-1])
    assert blend_window(20, 4, first=True, last=True).min() == 1


def test_tiling_uses_the_model_on_tiles_and_blends_smoothly():
    class Ramp(torch.nn.Module):  # output depends on the position inside the tile: blending must hide seams
        def forward(self, x):
            w = x.shape[-1]
            return torch.linspace(0, 1, w).expand_as(x).contiguous()

    m = _Method(tile=[8, 16], overlap=[0, 8])
    m.set_model(Ramp())
    out = m.predict(np.zeros((1, 8, 40), np.float32))
    assert out.shape == (1, 8, 40)
    assert np.abs(np.diff(out[0, 0])).max() < 0.2  # no jump back from 1 to 0 at a tile seam


def test_call_returns_a_mask_of_the_input_shape():
    rng = np.random.default_rng(0)
    spec = (rng.standard_normal((3, 128, 40)) + 1j * rng.standard_normal((3, 128, 40))).astype(np.complex64)
    out = _Method(tile=[64, 32])(spec, _ctx())
    assert out.kind == "mask" and out.data.shape == spec.shape and out.data.dtype == np.float32
    np.testing.assert_allclose(out.data, 1 / (1 + np.exp(-(2 * spectrogram_to_input(spec) - 1))), atol=1e-6)


def test_input_transform_is_gain_invariant_and_standardised():
    rng = np.random.default_rng(0)
    spec = (rng.standard_normal((2, 64, 30)) + 1j * rng.standard_normal((2, 64, 30))).astype(np.complex64)
    z = spectrogram_to_input(spec)
    np.testing.assert_allclose(spectrogram_to_input(1000 * spec), z, atol=1e-4)
    np.testing.assert_allclose(z.reshape(2, -1).mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(2, -1).std(1), 1, atol=1e-4)
    assert np.isfinite(spectrogram_to_input(np.zeros((1, 8, 8), np.complex64))).all()


def test_a_batch_too_large_for_memory_is_split_not_fatal():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((10, 16, 16)).astype(np.float32)
    ref = _Method(batch_size=10).predict(z)
    m = _Method(batch_size=10, limit=3)
    np.testing.assert_allclose(m.predict(z), ref, atol=1e-7)
    assert m._last_batch <= 3 and max(m._sizes) == 10
    with pytest.raises(InputError, match="does not fit"):
        _Method(batch_size=4, limit=0).predict(z)


def test_device_cuda_without_gpu_is_an_input_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(InputError) as err:
        resolve_device("cuda")
    assert err.value.where == "--param device"
    with pytest.raises(InputError, match="device"):
        _Method(device="cuda")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_device("auto").type == "cpu"


def test_bad_tile_and_batch_parameters():
    with pytest.raises(InputError, match="tile"):
        _Method(tile=[0, 8])
    with pytest.raises(InputError, match="batch_size"):
        _Method(batch_size=0)


# --------------------------------------------------------------------------------------------- weights


def _save(folder, arch=MINI, stft=None, model="difnet", **kw):
    stft = stft or STFTParams()
    torch.manual_seed(0)
    net = D.DIFNet(**arch)
    vf = ValidFor(stft=stft.as_dict(), range_sampling_rate=(300e6, 400e6), chirp_bandwidth=(200e6, 300e6))
    from sarpipe.models.torch_method import INPUT_TRANSFORM

    save_weights(
        folder,
        model=model,
        architecture=arch,
        state_dict=net.state_dict(),
        valid_for=vf,
        input_transform=INPUT_TRANSFORM,
        card="# test weights\n",
        tile=[128, 64],
        **kw,
    )
    return net


def test_tensor_file_round_trip_and_layout(tmp_path):
    t = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([1, -2], np.int64),
        "c": np.zeros((0, 4), np.float32),
    }
    write_tensors(tmp_path / "x.safetensors", t, {"k": "v"})
    back, meta = read_tensors(tmp_path / "x.safetensors")
    assert meta == {"k": "v"} and set(back) == set(t)
    for k, v in t.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)
    raw = (tmp_path / "x.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    lo, hi = header["a"]["data_offsets"]
    assert header["a"]["dtype"] == "F32" and header["a"]["shape"] == [2, 3] and hi - lo == 24
    assert header["__metadata__"] == {"k": "v"}
    # the bytes of "a" are its little-endian float32 values (the layout, read without any library)
    assert np.array_equal(np.frombuffer(raw[8 + n + lo : 8 + n + hi], "<f4").reshape(2, 3), t["a"])
    from safetensors.numpy import load_file

    assert np.array_equal(load_file(str(tmp_path / "x.safetensors"))["a"], t["a"])


def test_difnet_method_loads_weights_and_predicts(tmp_path):
    net = _save(tmp_path / "w")
    m = create_method("difnet", weights=str(tmp_path / "w"), device="cpu")
    assert m.tile == [128, 64] and m.weights == str(tmp_path / "w")
    assert create_method("difnet", weights=str(tmp_path / "w"), tile="whole").tile == "whole"
    rng = np.random.default_rng(0)
    spec = (rng.standard_normal((2, 128, 70)) + 1j * rng.standard_normal((2, 128, 70))).astype(np.complex64)
    out = m(spec, _ctx(2))
    assert out.kind == "mask" and out.data.shape == spec.shape
    with torch.no_grad():
        direct = net.eval()(torch.from_numpy(spectrogram_to_input(spec)[:, None]))[:, 0].numpy()
    # tiling over the frames of a spectrogram changes little for a random network
    assert np.mean(np.abs(out.data - direct)) < 0.05
    json.dumps(m.params())  # the history record must be JSON
    assert "difnet" in method_names()


def test_no_shipped_weights_is_a_clear_error():
    if D.SHIPPED_WEIGHTS.exists():
        pytest.skip("weights are shipped")
    with pytest.raises(InputError, match="no shipped DIFNet weights yet"):
        D.DIFNetMethod()


def test_missing_weights(tmp_path):
    with pytest.raises(InputError, match="no weights folder"):
        D.DIFNetMethod(weights=str(tmp_path / "nothing"))
    _save(tmp_path / "w")
    (tmp_path / "w" / "model.safetensors").unlink()
    with pytest.raises(InputError, match="lacks model.safetensors"):
        D.DIFNetMethod(weights=str(tmp_path / "w"))


@pytest.mark.parametrize("keep", [4, 100, -1000])
def test_truncated_weights(tmp_path, keep):
    _save(tmp_path / "w")
    f = tmp_path / "w" / "model.safetensors"
    raw = f.read_bytes()
    f.write_bytes(raw[:keep])
    with pytest.raises(InputError, match="truncated|not a") as err:
        D.DIFNetMethod(weights=str(tmp_path / "w"))
    assert "model.safetensors" in str(err.value)


def test_changed_weights_fail_the_hash(tmp_path):
    _save(tmp_path / "w")
    f = tmp_path / "w" / "model.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="does not match the hash"):
        D.DIFNetMethod(weights=str(tmp_path / "w"))


def test_weights_of_another_model_or_architecture(tmp_path):
    _save(tmp_path / "other", model="unet")
    with pytest.raises(InputError, match="model 'unet', not 'difnet'"):
        D.DIFNetMethod(weights=str(tmp_path / "other"))
    # tensors of a larger network under this architecture's config: key and shape mismatch
    _save(tmp_path / "w")
    big = D.DIFNet(channels=8, levels=2, window=4, heads=2)
    write_tensors(tmp_path / "w" / "model.safetensors", big.state_dict())
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    cfg.pop("weights_sha256")
    (tmp_path / "w" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="does not fit the difnet architecture"):
        D.DIFNetMethod(weights=str(tmp_path / "w"))


def test_weights_made_for_another_stft_or_sampling_rate(tmp_path):
    _save(tmp_path / "w", stft=STFTParams(256, 64))
    m = D.DIFNetMethod(weights=str(tmp_path / "w"))
    spec = np.ones((1, 128, 20), np.complex64)
    with pytest.raises(InputError, match="made for the STFT") as err:
        m(spec, _ctx(1))
    assert err.value.where == "--param weights"
    _save(tmp_path / "v")
    m = D.DIFNetMethod(weights=str(tmp_path / "v"))
    low = MethodContext(
        attrs={**ATTRS, "range_sampling_rate": 100e6}, stft=STFTParams(), pulse_indices=np.arange(1), n_samples=4000
    )
    with pytest.raises(InputError, match="sampling rate 100 MHz lies outside"):
        m(spec, low)
    m(spec, _ctx(1))  # inside: fine
    lax = D.DIFNetMethod(weights=str(tmp_path / "v"), strict=False)
    with pytest.warns(RuntimeWarning, match="outside"):
        lax(spec, low)


def test_weights_folder_is_not_replaced_silently(tmp_path):
    _save(tmp_path / "w")
    with pytest.raises(InputError, match="exists"):
        _save(tmp_path / "w")
    _save(tmp_path / "w", overwrite=True)
    assert load_weights(tmp_path / "w", model="difnet", input_transform="log1p-median-std/1").tile == [128, 64]


def test_difnet_in_the_rfi_chain(tmp_path):
    from sarpipe.rfi.clean import clean
    from sarpipe.simulate import simulate
    from sarpipe.simulate.interference import rfi_truth_pulses

    raw = simulate(
        {
            "sensor": {"preset": "minisar"},
            "scene": {"n_azimuth": 16, "n_range": 600},
            "targets": [{"range_index": 300, "azimuth_index": 8, "amplitude": 1.0}],
            "noise": {"snr_db": 10},
            "rfi": {"preset": "minisar", "pulses": [[4, 12]]},
            "seed": 3,
        }
    )
    torch.manual_seed(0)
    net = D.DIFNet(**MINI)
    from sarpipe.models.torch_method import INPUT_TRANSFORM

    vf = ValidFor(stft=STFTParams().as_dict(), range_sampling_rate=(360e6, 360e6), chirp_bandwidth=(300e6, 300e6))
    save_weights(
        tmp_path / "w",
        model="difnet",
        architecture=MINI,
        state_dict=net.state_dict(),
        valid_for=vf,
        input_transform=INPUT_TRANSFORM,
        card="# test\n",
        tile=[128, 16],
    )
    flags = rfi_truth_pulses(raw)
    res = clean(raw, "difnet", params={"weights": str(tmp_path / "w")}, pulses=flags, return_masks=True)
    echo, before = np.asarray(res.raw["echo"].values), np.asarray(raw["echo"].values)
    assert np.array_equal(echo[~flags], before[~flags])  # pulses not flagged pass bit for bit
    assert not np.array_equal(echo[flags], before[flags])
    assert sorted(res.masks) == list(np.flatnonzero(flags))
    assert res.raw.attrs["processing_history"][-1]["params"]["params"]["weights"] == str(tmp_path / "w")


def test_a_failing_compiled_model_falls_back_to_eager():
    m = _Method(compile=True)
    z = np.random.default_rng(0).standard_normal((2, 8, 8)).astype(np.float32)
    ref = _Method().predict(z)

    def broken(_x):
        raise RuntimeError("inductor: no C compiler")

    m._runner = broken  # as torch.compile's wrapper does when compiling fails on the first call
    with pytest.warns(RuntimeWarning, match="running eagerly"):
        out = m.predict(z)
    np.testing.assert_allclose(out, ref, atol=1e-7)


def test_cli_difnet_errors_exit_2(tmp_path, capsys):
    from sarpipe.cli import main
    from sarpipe.model import sar_dataset, save_dataset

    rng = np.random.default_rng(0)
    echo = (rng.standard_normal((16, 256)) + 1j * rng.standard_normal((16, 256))).astype(np.complex64)
    attrs = {
        "carrier_frequency": 9.6e9,
        "range_sampling_rate": 360e6,
        "chirp_rate": 3e14,
        "pulse_duration": 1e-7,
        "prf": 300.0,
        "velocity": 100.0,
        "near_range": 5000.0,
    }
    raw = tmp_path / "raw.zarr"
    save_dataset(sar_dataset(echo, attrs), raw)
    base = ["rfi", "clean", str(raw), "-o", str(tmp_path / "out.zarr"), "--method", "difnet"]
    cases = [
        ([], "no shipped DIFNet weights yet" if not D.SHIPPED_WEIGHTS.exists() else None),
        (["--param", f"weights={tmp_path / 'none'}"], "no weights folder"),
        (["--param", "device=cuda"] if not torch.cuda.is_available() else None, "no CUDA GPU"),
    ]
    for extra, text in cases:
        if extra is None or text is None:
            continue
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert text in err and "Traceback" not in err
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_with_and_without_autocast_matches_cpu(tmp_path):
    _save(tmp_path / "w")
    rng = np.random.default_rng(0)
    spec = (rng.standard_normal((3, 128, 90)) + 1j * rng.standard_normal((3, 128, 90))).astype(np.complex64)
    cpu = D.DIFNetMethod(weights=str(tmp_path / "w"), device="cpu")(spec, _ctx()).data
    fp32 = D.DIFNetMethod(weights=str(tmp_path / "w"), device="cuda", amp=False)(spec, _ctx()).data
    amp = D.DIFNetMethod(weights=str(tmp_path / "w"), device="cuda")(spec, _ctx()).data
    assert np.abs(fp32 - cpu).max() < 1e-3
    assert np.abs(amp - cpu).max() < 5e-2
