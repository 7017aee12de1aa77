"""RFI metrics against hand-computed values (docs/design.md section 4)."""

import math

import numpy as np
import pytest

from sarpipe.rfi.metrics import (
    estimate_mask,
    iou,
    mean_entropy,
    pixel_accuracy,
    psnr,
    pulse_extra_fraction,
    pulse_recall,
    sir_db,
    true_tf_mask,
)
from sarpipe.rfi.stft import STFTParams


def test_pa_and_iou_count_cells():
    true = np.zeros((4, 5), bool)
    true[0, :4] = True  # 4 cells
    pred = np.zeros((4, 5), bool)
    pred[0, 2:5] = True  # 3 cells, 2 of them right
    # TP 2, FP 1, FN 2, TN 15
    assert pixel_accuracy(pred, true) == pytest.approx(17 / 20)
    assert iou(pred, true) == pytest.approx(2 / 5)
    assert iou(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    with pytest.raises(ValueError):
        iou(pred, true[:2])


def test_psnr_on_amplitudes():
    rng = np.random.default_rng(0)
    ref = (rng.standard_normal((32, 32)) + 1j * rng.standard_normal((32, 32))).astype(np.complex64)
    amp = np.abs(ref)
    # a phase change does not count, an amplitude error of 0.1 everywhere gives 20 log10(max / 0.1)
    img = (amp + 0.1) * np.exp(1j * rng.uniform(0, 2 * np.pi, amp.shape))
    assert psnr(img, ref) == pytest.approx(20 * math.log10(amp.max() / 0.1), rel=1e-4)
    assert psnr(ref, ref) == math.inf


def test_mean_entropy():
    ref = np.full((10, 10), 4.0)
    # uniform image at half the reference maximum: p = 1/100 everywhere, entropy ln 100, mean 0.5
    assert mean_entropy(np.full((10, 10), 2.0), ref) == pytest.approx(math.log(100) * 0.5)
    # a single bright pixel: entropy 0
    one = np.zeros((10, 10))
    one[3, 3] = 4.0
    assert mean_entropy(one, ref) == pytest.approx(0.0)
    assert mean_entropy(np.zeros((2, 2)), ref) == 0.0


def test_sir_and_pulse_scores():
    s = np.ones(100, np.complex64)
    assert sir_db(s, 0.1 * s) == pytest.approx(20.0)
    assert sir_db(s, np.zeros(100)) == math.inf
    truth = np.zeros(50, bool)
    truth[10:30] = True
    flagged = np.zeros(50, bool)
    flagged[12:35] = True  # 18 of 20 found, 5 extra
    assert pulse_recall(flagged, truth) == pytest.approx(0.9)
    assert pulse_extra_fraction(flagged, truth) == pytest.approx(0.25)
    assert pulse_recall(flagged, np.zeros(50, bool)) == 1.0
    assert pulse_extra_fraction(np.zeros(50, bool), np.zeros(50, bool)) == 0.0


def test_true_mask_is_where_rfi_dominates():
    p = STFTParams(64, 16)
    rng = np.random.default_rng(1)
    clean = (rng.standard_normal((2, 512)) + 1j * rng.standard_normal((2, 512))).astype(np.complex64)
    t = np.arange(512)
    tone = (30 * np.exp(2j * np.pi * 0.25 * t)).astype(np.complex64)[None].repeat(2, 0)  # bin 16 + 32 = 48
    m = true_tf_mask(tone, clean, p)
    assert m.shape == (2, 64, 33)
    assert m[:, 48, 2:-2].all()  # the tone's bin, full frames
    # inside the pulse (full frames) the tone and its Hann main lobe only; the first and last frames see the
    # tone switch on/off and spread
    assert not m[:, :44, 2:-2].any() and not m[:, 53:, 2:-2].any()
    assert not true_tf_mask(np.zeros_like(clean), clean, p).any()
    # an estimate equal to the spectrogram's RFI part gives back the same rule
    s = np.array([[1.0, 2.0]], np.complex64)
    np.testing.assert_array_equal(estimate_mask(s, np.array([[0.9, 0.5]], np.complex64)), [[True, False]])
