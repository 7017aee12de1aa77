"""The reduced-resolution grid of ``--sr F`` and the SFSRNet heuristic on it (numpy only, no torch).

Reduced resolution is a coarser STFT, not a decimated pulse: range samples are only ~1.1-1.3x oversampled (the
chirp fills 75-90 % of the sampling rate), so halving the fast-time rate either aliases the band onto itself or
throws away its outer part, where RFI lives as often as anywhere. The coarse grid keeps the window and ``nperseg``
(the same frequency bins and the same time and frequency resolution, the whole band) and takes ``F`` times the hop:
coarse frame ``k`` is full frame ``F k`` exactly (same centre, same window, same padding), so the method sees
``1/F`` of the frames. The full grid has ``n`` frames; the coarse one keeps ``ceil((n - 1) / F)`` of them
(:func:`coarse_frame_count`). For a pulse of ``2^k`` hops that is ``2^(k-1)`` instead of ``2^(k-1) + 1``: the
dropped last frame is centred on the pulse's end sample, half of its window is padding, and keeping it would cost a
whole extra, almost empty, model tile. Full frames after the last coarse one hold its value.

SFSRNet's heuristic (Rixen & Renz 2022) splits the spectrum into the band the low-resolution separation saw (low)
and the band it did not (high); per time step, each estimate's share of the mixture's low-band sum scales the
mixture's high band into that estimate. Here the part the method saw is the coarse frames and the part it did not
is the frames between them, so the rule runs along the frame axis, per frequency bin, with the sums taken over the
two coarse frames that bracket a missing frame, weighted as linear interpolation weights them
(:func:`share_correction`): ``corrected = interp(E) * |S| / interp(|S_coarse|)``. At a coarse frame it is the
estimate itself; the corrected estimates of sources that add up to the mixture add up to the mixture.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SR_INPUT_TRANSFORM",
    "coarse_frame_count",
    "upsample_frames",
    "share_correction",
    "sr_features",
]

#: Name of the SR input transform (the channels of :func:`sr_features`); SR weights record it and refuse another.
SR_INPUT_TRANSFORM = "sr-log1p-median/1"


def coarse_frame_count(n_frames: int, factor: int) -> int:
    """Coarse frames kept from a full grid of ``n_frames`` at ``factor``: ``ceil((n_frames - 1) / factor)``, >= 1."""
    return max(1, -(-(int(n_frames) - 1) // int(factor)))


def upsample_frames(coarse: np.ndarray, factor: int, n_frames: int) -> np.ndarray:
    """``(..., n_freq, n_coarse)`` -> ``(..., n_freq, n_frames)``: linear interpolation along frames, coarse frame
    ``k`` on full frame ``factor * k``, the last coarse frame held to the end (the plain interpolation)."""
    c = np.asarray(coarse)
    f, nc = int(factor), c.shape[-1]
    out = np.empty((*c.shape[:-1], int(n_frames)), np.result_type(c.dtype, np.float32))
    for r in range(f):  # full frames r, r + f, ... lie at the fraction w = r / f between coarse frames k and k + 1
        m = len(range(r, int(n_frames), f))
        kk = min(m, nc - 1)
        w = r / f
        if kk:
            out[..., r : r + f * kk : f] = c[..., :kk] * (1 - w) + c[..., 1 : kk + 1] * w
        out[..., r + f * kk :: f] = c[..., nc - 1 : nc]  # the last coarse frame and after: held
    return out


def share_correction(
    mixture: np.ndarray, coarse_mixture: np.ndarray, coarse_estimates: np.ndarray, factor: int
) -> np.ndarray:
    """SFSRNet's high-band rule on the frame axis (module docstring).

    ``mixture``: ``(..., n_freq, n_frames)`` full-grid magnitude ``|S|``; ``coarse_mixture``: ``(..., n_freq,
    n_coarse)`` its coarse-grid magnitude; ``coarse_estimates``: ``(..., C, n_freq, n_coarse)`` magnitudes of the
    ``C`` estimates on the coarse grid. Returns ``(..., C, n_freq, n_frames)``:
    ``upsample(E) * |S| / upsample(|S_coarse|)`` (0 where the interpolated mixture is 0).
    """
    mix = np.asarray(mixture, np.float64)
    n = mix.shape[-1]
    num = upsample_frames(np.asarray(coarse_estimates, np.float64), factor, n)
    den = upsample_frames(np.asarray(coarse_mixture, np.float64), factor, n)[..., None, :, :]
    mix = np.broadcast_to(mix[..., None, :, :], den.shape)
    scale = np.divide(mix, den, out=np.zeros(den.shape), where=den > 0)
    return num * scale


def _floor(a: np.ndarray) -> np.ndarray:
    """Per-spectrogram median magnitude over every 7th bin (the mean where it is 0, 1 where both are): ``(n,)``."""
    flat = a.reshape(a.shape[0], -1)
    m = np.median(flat[:, ::7], axis=1)  # every 7th bin: a normaliser, not an estimate (7x cheaper)
    mean = flat.mean(axis=1)
    return np.where(m > 0, m, np.where(mean > 0, mean, 1.0))


def sr_features(mixture: np.ndarray, coarse_mixture: np.ndarray, coarse_share: np.ndarray, factor: int):
    """The SR network's input channels and the heuristic RFI share, for ``n`` spectrograms.

    ``mixture``: ``(n, n_freq, n_frames)`` full-grid ``|S|`` (or complex ``S``); ``coarse_mixture``: ``(n, n_freq,
    n_coarse)``; ``coarse_share``: ``(n, n_freq, n_coarse)`` in ``[0, 1]``, the method's RFI share of each coarse
    bin (its mask, or ``|R| / |S|``). Estimates: RFI ``share |S_c|`` and echo ``(1 - share) |S_c|``.

    Returns ``(features (n, 5, n_freq, n_frames) float32, heuristic share (n, n_freq, n_frames) float32)``;
    channels ``ln(1 + a / m)`` with ``m`` the mixture's median magnitude, for ``a`` = the mixture, the two
    up-sampled estimates (RFI, echo) and the two corrected ones (:func:`share_correction`). The heuristic share is
    the corrected RFI over the mixture (= ``upsample(R) / upsample(|S_c|)``).
    """
    mix = np.abs(np.asarray(mixture)).astype(np.float32, copy=False)
    cmix = np.abs(np.asarray(coarse_mixture)).astype(np.float32, copy=False)
    share = np.clip(np.asarray(coarse_share, np.float32), 0.0, 1.0)
    est = np.stack([share * cmix, (1.0 - share) * cmix], axis=1)  # (n, 2, F, Tc): RFI, echo
    up = upsample_frames(est, factor, mix.shape[-1])
    den = up[:, 0] + up[:, 1]  # = upsample(|S_c|): the estimates add up to the coarse mixture
    scale = np.divide(mix, den, out=np.zeros_like(den), where=den > 0)
    inv_m = (1.0 / _floor(mix)).astype(np.float32)[:, None, None, None]
    feats = np.empty((mix.shape[0], 5, *mix.shape[1:]), np.float32)
    feats[:, 0] = mix
    feats[:, 1:3] = up
    np.multiply(up, scale[:, None], out=feats[:, 3:5])  # share_correction, with its denominator shared
    feats *= inv_m
    np.log1p(feats, out=feats)
    heuristic = np.divide(up[:, 0], den, out=np.zeros_like(den), where=den > 0)
    return feats, heuristic
