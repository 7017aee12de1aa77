"""Score-CAM (sarpipe.spectral.scorecam): the weighting against a hand computation, batched == one channel at a
time, the planted feature of a toy classifier, the elbow of K-Means++, and the shipped RFI-type classifier."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from sarpipe.spectral.scorecam import (  # noqa: E402
    SHIPPED_WEIGHTS,
    elbow_k,
    kmeans_pp,
    score_cam,
    score_cam_reference,
)


class Toy(nn.Module):
    """features = ReLU(a_k x + b_k) (1x1 conv), pooled by ``pool``; logits = fc(global mean of the features)."""

    def __init__(self, a, b, fc, pool=1):
        super().__init__()
        self.conv = nn.Conv2d(1, len(a), 1)
        self.fc = nn.Linear(len(a), fc.shape[0], bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(a, dtype=torch.float32).reshape(-1, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor(b, dtype=torch.float32))
            self.fc.weight.copy_(torch.tensor(fc, dtype=torch.float32))
        self.pool = pool

    def features(self, x):
        y = torch.relu(self.conv(x))
        return nn.functional.avg_pool2d(y, self.pool) if self.pool > 1 else y

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def test_weighting_matches_a_hand_computation():
    a, b = [1.0, -1.0, 2.0], [0.0, 0.5, -1.0]
    fc = np.array([[1.0, 0.0, 0.5], [-1.0, 2.0, 1.0]])
    net = Toy(a, b, fc)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    cam, w = score_cam(net, torch.from_numpy(x)[None, None], torch.tensor([1]))

    def prob(img):  # the toy's softmax, in numpy
        feats = [np.maximum(ak * img + bk, 0).mean() for ak, bk in zip(a, b)]
        return _softmax(fc @ np.array(feats))[1]

    base = prob(np.zeros_like(x))
    hs, ws = [], []
    for ak, bk in zip(a, b):
        act = np.maximum(ak * x + bk, 0)
        h = (act - act.min()) / (act.max() - act.min()) if act.max() > act.min() else np.zeros_like(act)
        hs.append(h)
        ws.append(prob(x * h) - base)  # the class-score increase over the zero baseline
    want = np.maximum(sum(wk * hk for wk, hk in zip(ws, hs)), 0)
    want = (want - want.min()) / (want.max() - want.min())
    np.testing.assert_allclose(w[0].numpy(), ws, atol=1e-6)
    np.testing.assert_allclose(cam[0].numpy(), want, atol=1e-5)


def test_batched_equals_one_channel_at_a_time():
    from sarpipe.spectral.rfi_classifier import RFIClassifier

    torch.manual_seed(1)
    net = RFIClassifier(channels=3, map_size=(16, 12)).eval()
    x = torch.randn(4, 1, 16, 12)
    target = torch.tensor([0, 1, 2, 3])
    cams, _w = score_cam(net, x, target, batch=5)  # a batch that is not a multiple of the 6 channels
    for i in range(4):
        ref = score_cam_reference(net, x[i : i + 1], int(target[i]))
        np.testing.assert_allclose(cams[i].numpy(), ref.numpy(), atol=1e-5)


def test_highlights_the_planted_feature():
    # class 1 = "a bright square is present": channel 0 responds to the square only, channel 1 to the background
    net = Toy([1.0, -1.0, 1.0], [-0.5, 0.0, 0.0], np.array([[0.0, 0.0, 0.0], [40.0, 0.0, 2.0]]), pool=2)
    rng = np.random.default_rng(2)
    ious = []
    for _ in range(5):
        x = 0.1 * rng.standard_normal((32, 32)).astype(np.float32)
        r, c = rng.integers(2, 24, 2)
        planted = np.zeros((32, 32), bool)
        planted[r : r + 8, c : c + 8] = True
        x[planted] += 1.0
        xt = torch.from_numpy(x)[None, None]
        assert int(net(xt).argmax()) == 1
        cam, _ = score_cam(net, xt)
        hit = cam[0].numpy() > 0.5
        ious.append((hit & planted).sum() / (hit | planted).sum())
    assert min(ious) >= 0.5, ious


def test_kmeans_pp_and_the_elbow_find_three_blobs():
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    x = np.concatenate([c + 0.5 * rng.standard_normal((40, 2)) for c in centres])
    fits = [kmeans_pp(x, k, rng) for k in range(1, 8)]
    assert elbow_k([f[2] for f in fits]) == 3
    found = fits[2][0]
    assert max(np.min(np.linalg.norm(found - c, axis=1)) for c in centres) < 0.5


@pytest.mark.skipif(not (SHIPPED_WEIGHTS / "config.json").is_file(), reason="no shipped Score-CAM weights")
def test_shipped_classifier_names_the_rfi_type_of_new_pulses():
    from sarpipe.models.torch_method import spectrogram_to_input
    from sarpipe.rfi.stft import stft
    from sarpipe.spectral.rfi_classifier import classified_pulse
    from sarpipe.spectral.scorecam import ScoreCAMMethod

    torch.set_num_threads(1)
    m = ScoreCAMMethod(device="cpu")
    from sarpipe.models.difnet_data import DIFNetDataConfig

    cfg = DIFNetDataConfig(frames=64, seed=77)  # a data seed the training never used
    p = cfg.stft_params()
    specs, labels = [], []
    for i in range(48):
        echo, rfi, label = classified_pulse(cfg, "validation", i)
        specs.append(stft((echo + rfi)[None], p)[0])
        labels.append(label)
    with torch.no_grad():
        pred = m._model(torch.from_numpy(spectrogram_to_input(np.stack(specs))[:, None])).argmax(1).numpy()
    assert np.mean(pred == np.array(labels)) >= 0.65  # chance is 0.25; validation (400 pulses) gave 0.82
    masks, cls = m.masks(np.stack(specs))
    assert not masks[cls == 0].any() and masks[cls != 0].any()


@pytest.mark.skipif(not (SHIPPED_WEIGHTS / "config.json").is_file(), reason="no shipped Score-CAM weights")
def test_threads_option_leaves_the_callers_torch_threads_as_they_were():
    """``threads`` applies to the method's own work only: a pipeline worker's torch threads are restored after it."""
    import torch

    from sarpipe.spectral.scorecam import ScoreCAMMethod

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    method = ScoreCAMMethod(threads=wanted)
    spec = np.random.default_rng(0).standard_normal((2, 128, 64)) + 0j
    method.masks(spec.astype(np.complex64))
    assert torch.get_num_threads() == before
