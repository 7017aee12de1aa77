"""The deep audio prior (DAP; Narayanaswamy, Thiagarajan, Spanias, Interspeech 2021): an untrained U-Net
``f_theta`` fitted to one observation from a fixed random input ``z``; the network's structure is the prior.

Network (:class:`DAPUNet`), tensors ``(B, channels, H, W)``, real and imaginary parts as 2 channels in and out:

- down path: two dense blocks of two 3x3 convolutions, ``{35, 70}`` and ``{70, 140}`` filters, each followed by
  2x2 max-pooling; bottleneck: a dense block ``{140, 140}``;
- up path: bilinear up-sampling (x2), the down block's output concatenated (skip), a dense block, ``{140, 70}``
  then ``{70, 35}``; a final 1x1 convolution to 2 channels (linear);
- dense block: layer ``j`` sees the concatenation of the block input and every earlier layer's output; a 1x1
  transition convolution over that whole concatenation closes the block (output = the last layer's width);
  each 3x3 layer is conv -> BatchNorm -> LeakyReLU(0.2), zero padding = dilation (size kept);
- dilation: doubling layer by layer, 1, 2, 4, 8 down, 16, 32 at the bottleneck, 8, 4, 2, 1 up (mirrored).
  ``dilated=False`` / ``dense=False`` give the paper's ablations (rate 1 everywhere; each layer sees only the
  previous one and the transition only the last layer).

Fitting (:func:`fit_prior`): Adam (lr 1e-3) on ``||m * (f(z) - x)||^2`` (``m`` = 1 on the observed bins: all of
them for denoising, the unmasked ones for inpainting); ``x`` is scaled by its RMS over the observed bins first.
Stopping without the clean reference: ``stop="holdout"`` keeps a random ``holdout`` fraction of the observed bins
out of the loss and returns the output at the iteration where their error was lowest (checked every
``check_every`` iterations, stopping after ``patience`` checks without improvement); ``stop="discrepancy"`` stops
when the training residual falls to the noise variance (given, or estimated from the observation); ``"fixed"``
runs all iterations. Two-source separation: :func:`separate_two` (two priors, their sum fitted to the mixture;
the first one's input is constant along time, so it takes the steady source).

SAR: the cleanup method ``dap`` (:class:`DAPMethod`) inpaints the time-frequency bins a detector marks as RFI
(default: the ``notch``'s CFAR mask) from the rest of the spectrogram, so target energy under the RFI is restored
instead of zeroed. A burst is fitted affordably by sharing the prior (``share``): ``"stack"`` puts ``stack``
neighbouring pulses into the channels of one image (2 x stack in and out, one fit for all of them), ``"warm"``
fits pulse after pulse with the previous pulse's weights as the start (``warm_iterations`` after the first),
``"pulse"`` fits each pulse from scratch (the paper's per-observation fit, the reference for quality).
The fill is scaled per pulse by a least-squares gain in [0, 1] measured on held-out observed bins shaped like the
marked ones (a fill that cannot predict speckle costs up to twice a zeroed bin, so a gain ~0 falls back to the
notch's zeros there).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..models.torch_method import torch_threads
from ..rfi.methods import CleanupMethod, MethodContext, MethodOutput

__all__ = [
    "DAP_WIDTHS",
    "DAPMethod",
    "DAPUNet",
    "DenseBlock",
    "FitResult",
    "dilation_schedule",
    "fill_gain",
    "fit_prior",
    "frame_phase",
    "gap_shaped_holdout",
    "separate_two",
]

#: filters of the two convolutions of each dense block: down 1, down 2, bottleneck, up 1, up 2 (the paper's)
DAP_WIDTHS: tuple[tuple[int, int], ...] = ((35, 70), (70, 140), (140, 140), (140, 70), (70, 35))


def dilation_schedule(dilated: bool = True) -> list[tuple[int, int]]:
    """Dilation rate of each 3x3 layer, per block (down 1, down 2, bottleneck, up 1, up 2)."""
    if not dilated:
        return [(1, 1)] * 5
    return [(1, 2), (4, 8), (16, 32), (8, 4), (2, 1)]


class DenseBlock(nn.Module):
    """Two dilated 3x3 conv-BN-LeakyReLU layers; layer ``j`` sees the concatenation of the input and all earlier
    outputs (``dense``) or only the previous output; a 1x1 transition convolution closes the block."""

    def __init__(self, c_in: int, widths: tuple[int, int], dilations: tuple[int, int], dense: bool = True):
        super().__init__()
        self.dense = dense
        layers = []
        seen = c_in
        prev = c_in
        for w, d in zip(widths, dilations):
            src = seen if dense else prev
            layers.append(
                nn.Sequential(
                    nn.Conv2d(src, w, 3, padding=d, dilation=d), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, inplace=True)
                )
            )
            seen += w
            prev = w
        self.layers = nn.ModuleList(layers)
        self.transition = nn.Conv2d(seen if dense else prev, widths[-1], 1)
        #: input channels of each 3x3 layer and of the transition (for the architecture tests)
        self.in_channels = [layer[0].in_channels for layer in layers] + [self.transition.in_channels]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1) if self.dense else feats[-1]))
        return self.transition(torch.cat(feats, 1) if self.dense else feats[-1])


class DAPUNet(nn.Module):
    """The DAP U-Net of the module docstring; ``width`` scales every filter count (1 = the paper's)."""

    def __init__(self, channels: int = 2, *, dilated: bool = True, dense: bool = True, width: float = 1.0):
        super().__init__()
        if channels < 1 or width <= 0:
            raise ValueError(f"bad DAP size channels={channels}, width={width}")
        self.channels, self.dilated, self.dense, self.width = channels, dilated, dense, float(width)
        ws = [tuple(max(1, round(c * width)) for c in pair) for pair in DAP_WIDTHS]
        ds = dilation_schedule(dilated)
        self.down1 = DenseBlock(channels, ws[0], ds[0], dense)
        self.down2 = DenseBlock(ws[0][1], ws[1], ds[1], dense)
        self.bottleneck = DenseBlock(ws[1][1], ws[2], ds[2], dense)
        self.up1 = DenseBlock(ws[2][1] + ws[1][1], ws[3], ds[3], dense)
        self.up2 = DenseBlock(ws[3][1] + ws[0][1], ws[4], ds[4], dense)
        self.out = nn.Conv2d(ws[4][1], channels, 1)

    def blocks(self) -> list[DenseBlock]:
        return [self.down1, self.down2, self.bottleneck, self.up1, self.up2]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            z = F.pad(z, (0, pw, 0, ph), mode="replicate")
        s1 = self.down1(z)
        s2 = self.down2(F.max_pool2d(s1, 2))
        y = self.bottleneck(F.max_pool2d(s2, 2))
        y = F.interpolate(y, size=s2.shape[-2:], mode="bilinear", align_corners=False)
        y = self.up1(torch.cat([y, s2], 1))
        y = F.interpolate(y, size=s1.shape[-2:], mode="bilinear", align_corners=False)
        y = self.up2(torch.cat([y, s1], 1))
        return self.out(y)[..., :h, :w]


@dataclass
class FitResult:
    """``output``: the prior's output at the chosen iteration (same shape and scale as the observation);
    ``iteration``: that iteration; ``oracle_iteration`` / ``oracle_error``: the iteration with the lowest error
    against ``reference`` (None without one) and ``errors``: ``(iteration, holdout MSE, reference MSE)``
    per check; ``seconds``: fitting time; ``net``: the fitted network (for warm starts); ``holdout``: bool
    ``(C, H, W)`` (or ``(H, W)``), the observed bins kept out of the loss."""

    output: np.ndarray
    iteration: int
    oracle_iteration: int | None = None
    errors: list[tuple[int, float, float]] = field(default_factory=list)
    seconds: float = 0.0
    net: Any = None
    holdout: np.ndarray | None = None


def _noise_variance(x: np.ndarray) -> float:
    """Robust white-noise variance of real 2-D planes ``(C, H, W)`` from first differences along the last axis
    (median absolute deviation; ``diff`` doubles the variance)."""
    d = np.diff(x, axis=-1).ravel()
    return float((np.median(np.abs(d - np.median(d))) / 0.6745) ** 2 / 2)


def fit_prior(
    observation: np.ndarray,
    observed: np.ndarray | None = None,
    *,
    iterations: int = 2000,
    lr: float = 1e-3,
    stop: Literal["holdout", "discrepancy", "fixed"] = "holdout",
    holdout: float = 0.1,
    check_every: int = 25,
    patience: int = 8,
    noise_variance: float | None = None,
    reference: np.ndarray | None = None,
    dilated: bool = True,
    dense: bool = True,
    width: float = 1.0,
    input_noise: float = 0.0,
    seed: int = 0,
    net: Any = None,
    device: Any = "cpu",
    holdout_mask: np.ndarray | None = None,
) -> FitResult:
    """Fit the prior to ``observation`` (real ``(C, H, W)``: e.g. re/im of a spectrogram, or ``(H, W)``).

    ``observed``: bool, True on the bins the loss sees (None = all: denoising). ``reference``: the clean signal,
    only to report the oracle stop (never used to choose). ``net``: a fitted :class:`DAPUNet` to start from
    (warm start; its ``channels`` must match). ``input_noise``: std of a perturbation of ``z`` at every step
    (the DIP's regulariser, 0 = none). ``holdout_mask``: bool ``(H, W)`` or ``(C, H, W)``, the held-out bins
    (kept out of the loss whatever ``stop`` is; the holdout stop checks them) instead of a random ``holdout``
    fraction of the positions.
    """
    t0 = time.perf_counter()
    x = np.asarray(observation, dtype=np.float32)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[None]
    m = np.ones(x.shape, bool) if observed is None else np.broadcast_to(np.asarray(observed, bool), x.shape)
    if not m.any():
        raise ValueError("no observed bins to fit")
    scale = float(np.sqrt(np.mean(x[m] ** 2))) or 1.0
    gen = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng(seed)
    train_m, hold_m = m.copy(), np.zeros_like(m)
    if holdout_mask is not None:
        hold_m = m & np.broadcast_to(np.asarray(holdout_mask, bool), x.shape)
        train_m = m & ~hold_m
        if not train_m.any():
            raise ValueError("the held-out bins leave nothing to fit")
    elif stop == "holdout":
        # hold out whole (H, W) positions (all channels), so the check sees bins the loss never did
        pos = m.all(axis=0) & (rng.random(m.shape[1:]) < holdout)
        hold_m = m & pos[None]
        train_m = m & ~pos[None]
    if noise_variance is None and stop == "discrepancy":
        noise_variance = _noise_variance(x) / scale**2
    elif noise_variance is not None:
        noise_variance = float(noise_variance) / scale**2
    c = x.shape[0]
    if net is None:
        torch.manual_seed(int(seed))
        net = DAPUNet(c, dilated=dilated, dense=dense, width=width)
    net = net.to(device).train()
    z = (0.1 * torch.rand((1, c, *x.shape[1:]), generator=gen)).to(device)
    xt = torch.from_numpy(x / scale)[None].to(device)
    tm = torch.from_numpy(train_m.astype(np.float32))[None].to(device)
    hm = torch.from_numpy(hold_m.astype(np.float32))[None].to(device)
    n_train, n_hold = float(tm.sum()), float(hm.sum())
    ref = None if reference is None else torch.from_numpy(np.asarray(reference, np.float32).reshape(x.shape) / scale)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    best = (math.inf, 0, None)
    oracle = (math.inf, None)
    errors: list[tuple[int, float, float]] = []
    since = 0
    out = None
    for it in range(1, iterations + 1):
        zin = z + input_noise * torch.randn_like(z) if input_noise else z
        out = net(zin)
        loss = ((out - xt) ** 2 * tm).sum() / n_train
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % check_every and it != iterations:
            continue
        with torch.no_grad():
            y = out.detach()
            h_err = float(((y - xt) ** 2 * hm).sum() / n_hold) if n_hold else math.nan
            r_err = float(((y[0].cpu() - ref) ** 2).mean()) if ref is not None else math.nan
        errors.append((it, h_err, r_err))
        if ref is not None and r_err < oracle[0]:
            oracle = (r_err, it)
        if stop == "holdout":
            if h_err < best[0]:
                best, since = (h_err, it, y.clone()), 0
            else:
                since += 1
                if since >= patience:
                    break
        elif stop == "discrepancy" and float(loss) <= noise_variance:
            best = (float(loss), it, y.clone())
            break
    if best[2] is None:  # fixed, or the discrepancy never reached: the last output
        best = (math.nan, it, out.detach())
    y = best[2][0].cpu().numpy() * scale
    return FitResult(
        output=y[0] if squeeze else y,
        iteration=int(best[1]),
        oracle_iteration=oracle[1],
        errors=errors,
        seconds=time.perf_counter() - t0,
        net=net,
        holdout=hold_m[0] if squeeze else hold_m,
    )


def separate_two(
    mixture: np.ndarray,
    *,
    iterations: int = 300,
    lr: float = 1e-3,
    seed: int = 0,
    steady_axis: int | None = -1,
    exclusion: float = 0.01,
    nonnegative: bool | None = None,
    **kw: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-source separation of ``mixture`` (real ``(C, H, W)``: a magnitude spectrogram ``(1, freq, frames)`` or
    re / im planes) into a source that is steady along ``steady_axis`` and one that is not.

    Two priors ``f1(z1)``, ``f2(z2)`` are fitted so that ``f1 + f2`` reproduces the mixture, with the exclusion
    term ``exclusion * mean(|f1| |f2|)``. What tells them apart is their inputs: ``z1`` is constant along
    ``steady_axis`` (-1: the frames, so ``f1`` most easily makes what does not change in time: tones, hum, a
    narrowband emitter), ``z2`` is random everywhere (the temporally consistent input of Tian et al.'s Deep Audio
    Prior). ``steady_axis=None`` gives both random inputs: two identical priors, which do not separate (one of
    them takes 61-72 % of the energy, 2.7-7.8 dB; docs/models/dap.md). ``nonnegative`` (default: the mixture has no negative
    value) puts a softplus on both outputs. Read-out as soft masks: ``m = |f1| / (|f1| + |f2|)`` per (H, W) bin
    (``|.|`` over the channels), the estimates ``m x`` and ``(1 - m) x``, which sum to the mixture exactly.
    Returns ``(steady, other)``, scaled like the mixture. ``kw``: :class:`DAPUNet`'s ``dilated`` / ``dense`` /
    ``width``."""
    x = np.asarray(mixture, np.float32)
    if x.ndim != 3:
        raise ValueError(f"mixture must be (C, H, W), got shape {x.shape}")
    if steady_axis is not None and steady_axis not in (-1, -2, 1, 2):
        raise ValueError(f"steady_axis must be an axis of (H, W) (-1, -2) or None, got {steady_axis}")
    positive = bool(np.min(x) >= 0) if nonnegative is None else bool(nonnegative)
    scale = float(np.sqrt(np.mean(x**2))) or 1.0
    c, h, w = x.shape
    torch.manual_seed(seed)
    nets = [DAPUNet(c, **kw), DAPUNet(c, **kw)]
    gen = torch.Generator().manual_seed(seed)
    if steady_axis is None:
        z1 = 0.1 * torch.rand((1, c, h, w), generator=gen)
    else:
        size = (1, c, h, 1) if steady_axis in (-1, 2) else (1, c, 1, w)
        z1 = (0.1 * torch.rand(size, generator=gen)).expand(1, c, h, w).contiguous()
    z2 = 0.1 * torch.rand((1, c, h, w), generator=gen)
    xt = torch.from_numpy(x / scale)[None]
    opt = torch.optim.Adam([p for n in nets for p in n.parameters()], lr=lr)

    def outputs() -> tuple[torch.Tensor, torch.Tensor]:
        a, b = nets[0](z1), nets[1](z2)
        return (F.softplus(a), F.softplus(b)) if positive else (a, b)

    for _ in range(iterations):
        a, b = outputs()
        loss = ((a + b - xt) ** 2).mean() + exclusion * (a.abs() * b.abs()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        a, b = (t[0].numpy() for t in outputs())
    ma, mb = np.sqrt(np.sum(a**2, axis=0)), np.sqrt(np.sum(b**2, axis=0))
    total = ma + mb
    m = np.divide(ma, total, out=np.full_like(total, 0.5), where=total > 0)
    return m[None] * x, (1 - m)[None] * x


def _shift(m: np.ndarray, s: int, axis: int) -> np.ndarray:
    """``m`` moved by ``s`` bins along ``axis``, zero-filled (no wrap)."""
    out = np.zeros_like(m)
    n = m.shape[axis]
    if abs(s) >= n:
        return out
    src = [slice(None)] * m.ndim
    dst = [slice(None)] * m.ndim
    src[axis], dst[axis] = (slice(0, n - s), slice(s, n)) if s >= 0 else (slice(-s, n), slice(0, n + s))
    out[tuple(dst)] = m[tuple(src)]
    return out


def _longest_run(m: np.ndarray, axis: int) -> int:
    """Longest run of True along ``axis`` of a 2-D bool array (0 if none)."""
    acc, run = m.copy(), 0
    while acc.any():
        run += 1
        acc &= _shift(m, run, axis)
    return run


def gap_shaped_holdout(mask: np.ndarray, side: int = 0) -> np.ndarray:
    """Held-out bins shaped like the marked ones: the ``(H, W)`` bool ``mask`` (frequency x frames) moved by twice
    its longest run to both sides along the axis where its runs are shorter (frequency for a narrowband tone's
    rows, frames for a pulsed source's columns), minus the marked bins and their first neighbours. Each held-out
    run is then surrounded by observed bins as the gap is, so the holdout error is that of filling a gap like the
    detector's, not of single scattered bins next to the fitted ones. ``side``: +1 / -1 only the copy moved up /
    down (to higher / lower indices), 0 both."""
    mask = np.asarray(mask, bool)
    runs = [_longest_run(mask, a) for a in (0, 1)]
    if not max(runs):
        return np.zeros_like(mask)
    axis = int(np.argmin(runs))
    s = 2 * runs[axis]  # one run's width of observed bins between the gap and its copy, as around the gap
    moved = _shift(mask, s, axis) if side > 0 else _shift(mask, -s, axis) if side < 0 else None
    if moved is None:
        moved = _shift(mask, s, axis) | _shift(mask, -s, axis)
    return moved & ~(mask | _shift(mask, s // 2, axis) | _shift(mask, -s // 2, axis))


def fill_gain(fill: np.ndarray, observed: np.ndarray, held: np.ndarray) -> float:
    """Least-squares gain ``g`` in [0, 1] of a complex ``fill`` against the ``observed`` values on the ``held``
    bins: ``argmin_g sum |observed - g fill|^2`` = ``Re<fill, observed> / |fill|^2``, clipped (0 if no bins).
    g ~ 0 where the prior cannot predict the bins (speckle: the zero fill is the better guess), ~1 where it can."""
    f, o = fill[held], observed[held]
    den = float(np.sum(np.abs(f) ** 2))
    if f.size == 0 or den <= 0:
        return 0.0
    return float(np.clip(np.real(np.vdot(f, o)) / den, 0.0, 1.0))


def frame_phase(n_freq: int, n_frames: int, hop: int) -> np.ndarray:
    """``(n_freq, n_frames)`` complex64 ``exp(-2j pi (k - n_freq/2) m hop / n_freq)``: multiplying a
    :func:`sarpipe.rfi.stft.stft` plane by it removes the phase a bin's frequency gains from frame ``m`` to
    ``m + 1`` (each frame's DFT is referenced to its own start), so a steady tone reads constant along frames."""
    k = np.arange(n_freq)[:, None] - n_freq // 2
    m = np.arange(n_frames)[None, :]
    return np.exp(-2j * np.pi * ((k * m * hop) % n_freq) / n_freq).astype(np.complex64)


def _reim(spec: np.ndarray) -> np.ndarray:
    """``(K, H, W)`` complex -> ``(2K, H, W)`` real (re, im of each)."""
    return np.stack([spec.real, spec.imag], axis=1).reshape(-1, *spec.shape[1:]).astype(np.float32)


def _complex(planes: np.ndarray) -> np.ndarray:
    p = planes.reshape(-1, 2, *planes.shape[1:])
    return (p[:, 0] + 1j * p[:, 1]).astype(np.complex64)


class DAPMethod(CleanupMethod):
    """Cleanup method ``dap``: inpaint the bins a detector marks as RFI with a deep audio prior (no training).

    ``detector``: ``"notch"`` (the time-frequency CFAR mask, default), ``"difnet"`` (its mask > 0.5) or
    ``"given"`` (``ctx.extra["tf_mask"]``, bool of the batch's shape); ``detector_params``: for that method.
    ``share``: ``"stack"`` | ``"warm"`` | ``"pulse"`` (module docstring); ``stack``: pulses per fit;
    ``iterations`` (the first fit) / ``warm_iterations`` (later warm fits); ``stop``, ``holdout``,
    ``check_every``, ``patience``: :func:`fit_prior`'s; ``width``: filter-count scale (1 = the paper's
    35..140 filters); ``crop``: fit only the frequency rows within ``crop`` bins of a masked bin (0 = all rows);
    ``threads``: torch CPU threads (None = leave as is); ``device``: auto | cpu | cuda[:N].
    ``holdout_shape``: ``"gap"`` (held-out bins = :func:`gap_shaped_holdout` of each pulse's marks, default) or
    ``"random"`` (``holdout`` of the positions); ``gain``: ``"pulse"`` (each pulse's fill scaled by its
    :func:`fill_gain` on its held-out bins, the smaller of the gap's two copies' gains: ~0 where the prior cannot
    predict clutter speckle, so DAP falls back to the notch's zeros, ~1 where the signal under the marks is
    deterministic) or ``"none"``; ``align``: fit the :func:`frame_phase`-aligned plane (needs ``ctx.stft.hop``).
    Returns the RFI estimate ``mask * (x - g f(z))`` (the chain subtracts it: masked bins become ``g f(z)``).
    """

    name = "dap"
    domain = "tf"

    def __init__(
        self,
        detector: str = "notch",
        detector_params: dict[str, Any] | None = None,
        *,
        share: str = "stack",
        stack: int = 64,
        iterations: int = 300,
        warm_iterations: int = 60,
        stop: str = "holdout",
        holdout: float = 0.1,
        check_every: int = 20,
        patience: int = 4,
        width: float = 0.5,
        crop: int = 8,
        seed: int = 0,
        threads: int | None = None,
        device: str = "auto",
        gain: str = "pulse",
        holdout_shape: str = "gap",
        align: bool = True,
    ):
        if detector not in ("notch", "difnet", "given"):
            raise InputError(f"detector must be notch, difnet or given, got {detector!r}", where="--param detector")
        if share not in ("stack", "warm", "pulse"):
            raise InputError(f"share must be stack, warm or pulse, got {share!r}", where="--param share")
        if gain not in ("pulse", "none"):
            raise InputError(f"gain must be pulse or none, got {gain!r}", where="--param gain")
        if holdout_shape not in ("gap", "random"):
            raise InputError(
                f"holdout_shape must be gap or random, got {holdout_shape!r}", where="--param holdout_shape"
            )
        if stop not in ("holdout", "discrepancy", "fixed"):
            raise InputError(f"stop must be holdout, discrepancy or fixed, got {stop!r}", where="--param stop")
        for key, v in (("stack", stack), ("iterations", iterations), ("warm_iterations", warm_iterations)):
            if int(v) < 1:
                raise InputError(f"{key} must be >= 1, got {v}", where=f"--param {key}")
        if not 0 < float(width) <= 4:
            raise InputError(f"width must lie in (0, 4], got {width}", where="--param width")
        from ..models.torch_method import resolve_device

        self.detector, self.detector_params = detector, dict(detector_params or {})
        self.share, self.stack = share, int(stack)
        self.iterations, self.warm_iterations = int(iterations), int(warm_iterations)
        self.stop, self.holdout = stop, float(holdout)
        self.check_every, self.patience = int(check_every), int(patience)
        self.width, self.crop, self.seed = float(width), int(crop), int(seed)
        self.threads = None if threads is None else int(threads)
        self.device = str(device)
        self.gain, self.holdout_shape, self.align = gain, holdout_shape, bool(align)
        self._device = resolve_device(device)
        self._detector: CleanupMethod | None = None
        #: per fit of the last call: (pulses, chosen iteration, seconds)
        self.last_fits: list[tuple[int, int, float]] = []
        #: per pulse of the last call that was filled: (pulse index in the batch, fill gain)
        self.last_gains: list[tuple[int, float]] = []

    def rfi_mask(self, x: np.ndarray, ctx: MethodContext) -> np.ndarray:
        """Bool ``x.shape``: the bins to inpaint."""
        if self.detector == "given":
            m = ctx.extra.get("tf_mask") if ctx.extra else None
            if m is None or np.shape(m) != x.shape:
                raise InputError(
                    "detector=given needs ctx.extra['tf_mask'] of the batch's shape", where="--param detector"
                )
            return np.asarray(m, bool)
        if self._detector is None:
            from ..rfi.methods import create_method

            self._detector = create_method(self.detector, **self.detector_params)
        out = self._detector(x, ctx)
        if out.kind == "mask":
            return np.asarray(out.data) > 0.5
        from ..rfi.metrics import estimate_mask

        return np.asarray(estimate_mask(x, out.rfi_estimate(x)), bool)

    def _rows(self, mask: np.ndarray) -> slice:
        if self.crop <= 0:
            return slice(0, mask.shape[1])
        rows = np.flatnonzero(mask.any(axis=(0, 2)))
        lo = max(int(rows[0]) - self.crop, 0)
        hi = min(int(rows[-1]) + self.crop + 1, mask.shape[1])
        if hi - lo < 8:  # the U-Net pools twice; keep a few rows
            lo, hi = max(0, min(lo, mask.shape[1] - 8)), min(mask.shape[1], max(hi, lo + 8))
        return slice(lo, hi)

    def _gain(self, fill: np.ndarray, obs: np.ndarray, mask: np.ndarray, held: np.ndarray) -> float:
        """The pulse's fill gain; with the gap-shaped holdout the smaller of the two copies' gains (each side's
        estimate alone is noisy on speckle: a fill is kept only as far as both copies of the gap confirm it)."""
        if self.holdout_shape != "gap":
            return fill_gain(fill, obs, held & ~mask)
        copies = [gap_shaped_holdout(mask, side) & held for side in (1, -1)]
        kept = [fill_gain(fill, obs, c) for c in copies if c.any()]
        return min(kept) if kept else 0.0

    def inpaint(self, x: np.ndarray, mask: np.ndarray, hop: int | None = None) -> np.ndarray:
        """``x`` ``(n, H, W)`` complex with the ``mask`` bins replaced by ``g * f(z)`` (``g``: the pulse's fill
        gain, 1 with ``gain="none"``). ``hop``: the STFT hop [samples], for ``align`` (None = no alignment)."""
        out = np.array(x, dtype=np.complex64)
        todo = np.flatnonzero(mask.any(axis=(1, 2)))
        self.last_fits, self.last_gains = [], []
        if todo.size == 0:
            return out
        # the prior fits the frame-phase-aligned plane (a steady tone constant along frames); undone on the fill
        phase = frame_phase(x.shape[1], x.shape[2], hop) if self.align and hop else np.ones(x.shape[1:], np.complex64)
        xa = out * phase
        with torch_threads(self.threads):  # restored after: the caller's threads are not this method's
            group = 1 if self.share in ("warm", "pulse") else self.stack
            net = None
            for g, lo in enumerate(range(0, todo.size, group)):
                idx = todo[lo : lo + group]
                if self.share == "stack" and idx.size < group and g > 0:  # the last, short stack: reuse full ones
                    idx = todo[max(todo.size - group, 0) :]
                rows = self._rows(mask[idx])
                obs = _reim(xa[idx][:, rows])
                seen = np.repeat(~mask[idx][:, rows], 2, axis=0)
                held = None
                if self.holdout_shape == "gap":
                    held = np.repeat(np.stack([gap_shaped_holdout(mask[i, rows]) for i in idx]), 2, axis=0)
                warm = self.share == "warm" and net is not None
                res = fit_prior(
                    obs,
                    seen,
                    iterations=self.warm_iterations if warm else self.iterations,
                    stop=self.stop,  # type: ignore[arg-type]
                    holdout=self.holdout,
                    check_every=self.check_every,
                    patience=self.patience,
                    width=self.width,
                    seed=self.seed + g,
                    net=net if warm else None,
                    device=self._device,
                    holdout_mask=held,
                )
                if self.share == "warm":
                    net = res.net
                fill = _complex(res.output) * np.conj(phase[rows])[None]
                for k, i in enumerate(idx):
                    scale = 1.0
                    if self.gain == "pulse":  # fill and observation in the same (unaligned) frame here
                        scale = self._gain(fill[k], x[i, rows], mask[i, rows], res.holdout[2 * k])
                    self.last_gains.append((int(i), scale))
                    sub = out[i, rows]
                    sub[mask[i, rows]] = scale * fill[k][mask[i, rows]]
                    out[i, rows] = sub
                self.last_fits.append((int(idx.size), res.iteration, res.seconds))
            return out

    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        spec = np.asarray(x)
        if spec.ndim != 3:
            raise ValueError(f"dap: expected (n_pulses, n_freq, n_frames) spectrograms, got shape {spec.shape}")
        if spec.shape[0] == 0:
            return MethodOutput("estimate", np.zeros(spec.shape, np.complex64))
        mask = self.rfi_mask(spec, ctx)
        cleaned = self.inpaint(spec, mask, getattr(ctx.stft, "hop", None))
        return MethodOutput("estimate", (spec - cleaned).astype(np.complex64))
