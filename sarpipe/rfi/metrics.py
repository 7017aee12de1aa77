"""RFI suppression metrics, exactly as docs/design.md section 4 defines them (one implementation for tests,
benchmarks and reports).

- Time-frequency masks: the true mask is where the RFI dominates, ``|STFT(rfi)| > |STFT(echo - rfi)|``
  (``echo - rfi`` = clean echo + noise). A method's predicted mask: its own mask, or, for a method that returns an
  RFI estimate ``R``, the same rule applied to it: ``|R| > |S - R|``.
- PA = (TP + TN) / total; IoU = |A n B| / |A u B| (1.0 when both masks are empty).
- PSNR = 20 log10(max(X) / RMSE(X_hat, X)) on amplitude images; X is the image focused from the clean echo.
  sarpipe uses ``echo_clean`` (noise-free) for X, so a noisy but RFI-free image scores a finite PSNR.
- ME = entropy(X_hat) * mean(X_hat), on the amplitude image normalised by the clean image's maximum, with the
  image entropy ``-sum p ln p`` over pixels, ``p = a / sum(a)`` (natural log). Lower is better.
- SIR [dB] = 10 log10(sum |s|^2 / sum |i|^2), in the echo domain over the contaminated pulses; before cleaning
  ``i`` is the RFI, after cleaning it is the residual ``cleaned - (echo - rfi)`` (RFI left plus signal removed).
"""

from __future__ import annotations

import numpy as np

from .stft import STFTParams, stft

__all__ = [
    "true_tf_mask",
    "estimate_mask",
    "pixel_accuracy",
    "iou",
    "psnr",
    "mean_entropy",
    "sir_db",
    "pulse_recall",
    "pulse_extra_fraction",
]


def true_tf_mask(rfi: np.ndarray, echo_minus_rfi: np.ndarray, p: STFTParams = STFTParams()) -> np.ndarray:
    """True time-frequency mask ``|STFT(rfi)| > |STFT(echo - rfi)|`` for pulses ``(n_pulses, n_samples)``."""
    return np.abs(stft(rfi, p)) > np.abs(stft(echo_minus_rfi, p))


def estimate_mask(spec: np.ndarray, rfi_estimate: np.ndarray) -> np.ndarray:
    """Mask implied by an RFI estimate ``R`` of spectrogram ``S``: ``|R| > |S - R|``."""
    return np.abs(rfi_estimate) > np.abs(spec - rfi_estimate)


def pixel_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """PA = (TP + TN) / total."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if pred.shape != true.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {true.shape}")
    return float(np.count_nonzero(pred == true) / pred.size)


def iou(pred: np.ndarray, true: np.ndarray) -> float:
    """IoU = |A n B| / |A u B|; 1.0 when both are empty."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if pred.shape != true.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {true.shape}")
    union = np.count_nonzero(pred | true)
    return 1.0 if union == 0 else float(np.count_nonzero(pred & true) / union)


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR [dB] of amplitude ``|image|`` against amplitude ``|reference|`` (the clean-echo image)."""
    x = np.abs(np.asarray(reference)).astype(np.float64)
    xh = np.abs(np.asarray(image)).astype(np.float64)
    if x.shape != xh.shape:
        raise ValueError(f"image shapes differ: {xh.shape} vs {x.shape}")
    rmse = np.sqrt(np.mean((xh - x) ** 2))
    return float("inf") if rmse == 0 else float(20 * np.log10(x.max() / rmse))


def mean_entropy(image: np.ndarray, reference: np.ndarray) -> float:
    """ME = entropy * mean of ``|image| / max|reference|``; entropy ``-sum p ln p`` with ``p = a / sum a``."""
    a = np.abs(np.asarray(image)).astype(np.float64) / float(np.abs(np.asarray(reference)).max())
    total = a.sum()
    if total == 0:
        return 0.0
    p = a[a > 0] / total
    return float(-(p * np.log(p)).sum() * a.mean())


def sir_db(signal: np.ndarray, interference: np.ndarray) -> float:
    """10 log10(sum |signal|^2 / sum |interference|^2) [dB]; +inf without interference."""
    ps = float(np.sum(np.abs(np.asarray(signal, dtype=np.complex128)) ** 2))
    pi = float(np.sum(np.abs(np.asarray(interference, dtype=np.complex128)) ** 2))
    return float("inf") if pi == 0 else float(10 * np.log10(ps / pi))


def pulse_recall(flagged: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of the truly contaminated pulses that are flagged (1.0 when none are contaminated)."""
    flagged, truth = np.asarray(flagged, bool), np.asarray(truth, bool)
    n = np.count_nonzero(truth)
    return 1.0 if n == 0 else float(np.count_nonzero(flagged & truth) / n)


def pulse_extra_fraction(flagged: np.ndarray, truth: np.ndarray) -> float:
    """Flagged pulses that are not contaminated, as a fraction of the contaminated ones (inf if none are)."""
    flagged, truth = np.asarray(flagged, bool), np.asarray(truth, bool)
    extra = np.count_nonzero(flagged & ~truth)
    n = np.count_nonzero(truth)
    if n == 0:
        return 0.0 if extra == 0 else float("inf")
    return float(extra / n)
