"""The DIFNet weights shipped in the package: they load by default, carry their card, are valid for the chain's
default STFT and the MiniSAR-like sensor, read with the `safetensors` package too, and on held-out pulses
(data seed 101, never used in training) their mask beats the notch's."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sarpipe.models.difnet import SHIPPED_WEIGHTS, DIFNetMethod  # noqa: E402 - after the torch skip
from sarpipe.models.difnet_data import DIFNetDataConfig, SensorBand, make_pulse  # noqa: E402
from sarpipe.rfi import create_method  # noqa: E402
from sarpipe.rfi.methods import MethodContext  # noqa: E402
from sarpipe.rfi.metrics import iou, pixel_accuracy, true_tf_mask  # noqa: E402
from sarpipe.rfi.stft import STFTParams, stft  # noqa: E402


def test_shipped_weights_are_the_default_and_valid_for_the_chain():
    m = DIFNetMethod(device="cpu")
    assert m.weights == str(SHIPPED_WEIGHTS)
    cfg = json.loads((SHIPPED_WEIGHTS / "config.json").read_text())
    assert cfg["valid_for"]["stft"] == STFTParams().as_dict()  # the chain's default STFT, 128 / 32 / hann
    assert m._bundle.valid_for.problems(STFTParams().as_dict(), 360e6, 300e6) == []  # MiniSAR-like
    card = (SHIPPED_WEIGHTS / "README.md").read_text()
    assert f"{cfg['training']['steps']} steps" in card
    size = (SHIPPED_WEIGHTS / "model.safetensors").stat().st_size
    assert size < 20 << 20


def test_the_safetensors_package_reads_the_shipped_file():
    st = pytest.importorskip("safetensors.numpy")
    from sarpipe.models.weights import read_tensors

    ours, _meta = read_tensors(SHIPPED_WEIGHTS / "model.safetensors")
    theirs = st.load_file(str(SHIPPED_WEIGHTS / "model.safetensors"))
    assert sorted(ours) == sorted(theirs)
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)


def test_shipped_weights_beat_the_notch_on_held_out_pulses():
    p = STFTParams()
    cfg = DIFNetDataConfig(sensors=[SensorBand(preset="minisar")], seed=101, frames=128)
    difnet, notch = DIFNetMethod(device="cpu"), create_method("notch")
    pred_d, pred_n, truth = [], [], []
    attrs = {
        "carrier_frequency": 9.6e9,
        "range_sampling_rate": 360e6,
        "chirp_rate": 3e14,
        "pulse_duration": 1e-6,
        "prf": 300.0,
        "velocity": 100.0,
        "near_range": 5000.0,
    }
    for i in range(6):
        echo, rfi, _band = make_pulse(cfg, "validation", i)
        spec = stft((echo + rfi)[None], p)
        ctx = MethodContext(attrs=attrs, stft=p, pulse_indices=np.array([i]), n_samples=echo.size)
        pred_d.append(difnet(spec, ctx).data[0] > 0.5)
        pred_n.append(np.asarray(notch(spec, ctx).data[0]) > 0.5)
        truth.append(true_tf_mask(rfi[None], echo[None], p)[0])
    pred_d, pred_n, truth = np.stack(pred_d), np.stack(pred_n), np.stack(truth)
    assert truth.any()
    assert iou(pred_d, truth) > iou(pred_n, truth) + 0.03
    assert pixel_accuracy(pred_d, truth) > pixel_accuracy(pred_n, truth)
