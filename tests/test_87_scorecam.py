"""Score-CAM (sarpipe.spectral.scorecam): the weighting against a hand computation, batched == one channel at a
time (one class and every present class), the planted features of toy classifiers (one class, two classes), the
full-resolution Score-CAM layer, the CFAR refinement against plain numpy, the elbow of K-Means++, the simulator's
labels, and the shipped multi-label RFI-kind classifier."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from sarpipe.spectral.scorecam import (  # noqa: E402
    SHIPPED_WEIGHTS,
    elbow_k,
    kmeans_pp,
    refine_mask,
    score_cam,
    score_cam_all_classes,
    score_cam_reference,
)


class Toy(nn.Module):
    """features = ReLU(a_k x + b_k) (1x1 conv), pooled by ``pool``; logits = fc(global mean of the features)."""

    def __init__(self, a, b, fc, pool=1, activation="softmax"):
        super().__init__()
        self.score_activation = activation
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
    # float64: the sum of K small score increases, min-max normalised, magnifies float32 rounding differences
    # between a batch of masked inputs and one at a time
    net = RFIClassifier(channels=3, map_size=(16, 12)).double().eval()
    x = torch.randn(4, 1, 16, 12, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3])
    cams, _w = score_cam(net, x, target, batch=5)  # a batch that is not a multiple of the 6 channels
    for i in range(4):
        ref = score_cam_reference(net, x[i : i + 1], int(target[i]))
        np.testing.assert_allclose(cams[i].numpy(), ref.numpy(), atol=1e-5)


def test_a_dead_channel_is_skipped_exactly():
    # channel 1 never fires (ReLU of x - 100): its normalised map is 0, its masked input the baseline, weight 0
    net = Toy([1.0, 1.0, -1.0], [0.0, -100.0, 0.2], np.array([[1.0, 3.0, 0.5], [-1.0, 2.0, 1.0]])).double()
    x = torch.randn(3, 1, 6, 5, dtype=torch.float64)
    cams, w = score_cam(net, x, torch.tensor([1, 0, 1]), batch=2)
    assert (w[:, 1] == 0).all() and (w[:, [0, 2]] != 0).all()
    for i, c in enumerate([1, 0, 1]):
        np.testing.assert_allclose(cams[i].numpy(), score_cam_reference(net, x[i : i + 1], c).numpy(), atol=1e-10)


def test_all_classes_equals_the_maximum_of_one_class_at_a_time():
    from sarpipe.spectral.rfi_classifier import RFIClassifier

    torch.manual_seed(3)
    net = RFIClassifier(channels=2, map_size=(16, 12)).double().eval()
    x = torch.randn(3, 1, 16, 12, dtype=torch.float64)
    present = torch.tensor([[False, True, True, False], [False, False, False, True], [False, False, False, False]])
    combined, cams = score_cam_all_classes(net, x, present, batch=7)
    for i in range(3):
        refs = [score_cam_reference(net, x[i : i + 1], c).numpy() for c in range(4)]
        for c in range(4):
            np.testing.assert_allclose(cams[i, c].numpy(), refs[c], atol=1e-5)
        want = np.max([refs[c] for c in range(4) if present[i, c]], axis=0) if present[i].any() else 0 * refs[0]
        np.testing.assert_allclose(combined[i].numpy(), want, atol=1e-5)


def test_the_score_cam_layer_is_at_full_resolution_and_the_scores_are_sigmoids():
    from sarpipe.spectral.rfi_classifier import RFIClassifier

    net = RFIClassifier(channels=3, map_size=(32, 16)).eval()
    x = torch.randn(2, 1, 32, 16)
    assert net.features(x).shape == (2, 6, 32, 16)
    assert net.score_activation == "sigmoid"
    np.testing.assert_allclose(net.scores(x).detach().numpy(), 1 / (1 + np.exp(-net(x).detach().numpy())), atol=1e-6)


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


def test_every_present_class_gets_its_planted_feature():
    # a multi-label toy: class 1 = "a bright square", class 2 = "a dark square"; a sample may hold both
    fc = np.array([[0.0, 0.0, 0.0], [40.0, 0.0, 0.0], [0.0, 40.0, 0.0]])
    net = Toy([1.0, -1.0, 1.0], [-0.5, -0.5, 0.0], fc, pool=2, activation="sigmoid")
    rng = np.random.default_rng(5)
    ious = []
    for _ in range(5):
        x = 0.1 * rng.standard_normal((32, 32)).astype(np.float32)
        bright, dark = np.zeros((32, 32), bool), np.zeros((32, 32), bool)
        r, c = rng.integers(2, 8, 2)
        bright[r : r + 8, c : c + 8] = True
        r, c = rng.integers(18, 24, 2)
        dark[r : r + 8, c : c + 8] = True
        x[bright] += 1.0
        x[dark] -= 1.0
        xt = torch.from_numpy(x)[None, None]
        present = torch.sigmoid(net(xt)) > 0.5
        assert present[0].tolist() == [False, True, True]
        combined, cams = score_cam_all_classes(net, xt, present)
        for c, planted in ((1, bright), (2, dark)):
            hit = cams[0, c].numpy() > 0.5
            ious.append((hit & planted).sum() / (hit | planted).sum())
        hit = combined[0].numpy() > 0.5
        both = bright | dark
        ious.append((hit & both).sum() / (hit | both).sum())
    assert min(ious) >= 0.5, ious


def _refine_reference(mask, spec, pfa, segments, window, dilate):
    """Plain numpy: per frame, |S|^2 against -ln(pfa)/ln 2 x the median of the window truncated at the run ends."""
    power = np.abs(spec.astype(np.complex128)) ** 2
    n_f, n_t = power.shape
    hit = np.zeros(power.shape, bool)
    half = window // 2
    for a, b in segments:
        for f in range(a, b):
            lo, hi = max(a, f - half), min(b, f + half + 1)
            med = np.median(power[lo:hi], axis=0)
            hit[f] = power[f] > -np.log(pfa) / np.log(2) * med
    grown = hit.copy()
    for k in range(1, dilate + 1):
        grown[k:] |= hit[:-k]
        grown[:-k] |= hit[k:]
    return mask & grown


def test_refinement_keeps_the_cfar_cells_inside_the_mask_as_plain_numpy_does():
    rng = np.random.default_rng(6)
    spec = (rng.standard_normal((40, 9)) + 1j * rng.standard_normal((40, 9))).astype(np.complex64)
    spec[12, :] *= 30  # a tone
    spec[25:27, 3] *= 20
    mask = np.zeros(spec.shape, bool)
    mask[5:30, 2:8] = True
    segs = [(0, 8), (8, 33), (33, 40)]
    got = refine_mask(mask, spec, 1e-2, segs, window_bins=7, dilate_bins=1)
    want = _refine_reference(mask, spec, 1e-2, segs, 7, 1)
    np.testing.assert_array_equal(got, want)
    assert got[12, 2:8].all() and not got[:, :2].any() and got.sum() < mask.sum() / 3


def test_labelled_pulse_labels_are_the_transmitting_emitters_kinds():
    from sarpipe.models.difnet_data import DIFNetDataConfig
    from sarpipe.spectral.rfi_classifier import labelled_pulse

    cfg = DIFNetDataConfig(frames=32)
    kinds = np.zeros(4)
    for i in range(40):
        echo, rfi, labels = labelled_pulse(cfg, "train", i, rfi_free_every=8)
        assert set(np.unique(labels)) <= {0.0, 1.0}
        # "none" exactly when no RFI reaches the pulse, and then no other kind
        assert (labels[0] == 1) == (not np.any(rfi)) and (labels[0] == 1) == (labels[1:].sum() == 0)
        if i % 8 == 0:
            assert labels[0] == 1
        kinds += labels
    assert (kinds[1:] >= 5).all() and (kinds[1:] > 0).sum() == 3  # mixed kinds, several per pulse on average
    assert kinds[1:].sum() > 1.3 * (40 - kinds[0])


def test_kmeans_pp_and_the_elbow_find_three_blobs():
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    x = np.concatenate([c + 0.5 * rng.standard_normal((40, 2)) for c in centres])
    fits = [kmeans_pp(x, k, rng) for k in range(1, 8)]
    assert elbow_k([f[2] for f in fits]) == 3
    found = fits[2][0]
    assert max(np.min(np.linalg.norm(found - c, axis=1)) for c in centres) < 0.5


@pytest.mark.skipif(not (SHIPPED_WEIGHTS / "config.json").is_file(), reason="no shipped Score-CAM weights")
def test_shipped_classifier_names_the_rfi_kinds_of_new_pulses():
    from sarpipe.models.difnet_data import DIFNetDataConfig
    from sarpipe.models.torch_method import spectrogram_to_input
    from sarpipe.rfi.stft import stft
    from sarpipe.spectral.rfi_classifier import labelled_pulse
    from sarpipe.spectral.scorecam import ScoreCAMMethod

    torch.set_num_threads(1)
    m = ScoreCAMMethod(device="cpu")
    cfg = DIFNetDataConfig(frames=64, seed=77)  # a data seed the training never used
    p = cfg.stft_params()
    specs, labels = [], []
    for i in range(48):
        echo, rfi, lab = labelled_pulse(cfg, "validation", i)
        specs.append(stft((echo + rfi)[None], p)[0])
        labels.append(lab > 0.5)
    labels = np.array(labels)
    with torch.no_grad():
        prob = m._model.scores(torch.from_numpy(spectrogram_to_input(np.stack(specs))[:, None])).numpy()
    per_kind = np.mean((prob > 0.5) == labels, axis=0)
    # always answering "absent" (or always "present") scores the share of the rarer answer, at most 0.5 here
    baseline = np.maximum(labels.mean(0), 1 - labels.mean(0))
    # validation (400 pulses) gave 78-100 % per kind (sensor-family weights); 48 pulses scatter by ~6 %
    assert (per_kind >= 0.7).all() and (per_kind > baseline).all(), (per_kind, baseline)
    masks, present = m.masks(np.stack(specs))
    assert not present[:, 0].any()
    assert not masks[~present.any(1)].any() and masks[present.any(1)].any()


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


@pytest.mark.skipif(not (SHIPPED_WEIGHTS / "config.json").is_file(), reason="no shipped Score-CAM weights")
def test_bf16_masked_scores_keep_the_float32_mask():
    """``amp`` (on by default) runs the masked inputs in bfloat16 where the CPU has it: the mask of new pulses
    stays the float32 one on all but a few edge bins, and the kinds found are the same."""
    from sarpipe.models.difnet_data import DIFNetDataConfig
    from sarpipe.models.torch_method import cpu_has_native_bf16
    from sarpipe.rfi.stft import stft
    from sarpipe.spectral.rfi_classifier import labelled_pulse
    from sarpipe.spectral.scorecam import ScoreCAMMethod, rfi_saliency

    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bfloat16: amp keeps float32 here, nothing to compare")
    cfg = DIFNetDataConfig(frames=128, seed=78)  # a data seed the training never used
    p = cfg.stft_params()
    spec = np.stack([stft(sum(labelled_pulse(cfg, "validation", i)[:2])[None], p)[0] for i in range(16)])
    m = ScoreCAMMethod(device="cpu")
    assert m.amp
    fast_sal, fast_kinds = rfi_saliency(m._model, spec, amp=True)
    ref_sal, ref_kinds = rfi_saliency(m._model, spec, amp=False)
    assert np.array_equal(fast_kinds, ref_kinds)  # presence is decided in float32 either way
    assert not np.array_equal(fast_sal, ref_sal)  # bf16 did run
    assert np.abs(fast_sal - ref_sal).max() < 0.03  # measured 0.0036-0.0048 on three data seeds
    fast, ref = fast_sal > m.threshold, ref_sal > m.threshold
    assert ref.mean() > 0.05  # there is a mask to compare
    assert np.mean(fast == ref) > 0.999, np.mean(fast == ref)  # measured 0.9998
