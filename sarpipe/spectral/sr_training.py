"""Training the SR network of ``--sr`` (:mod:`sarpipe.spectral.sr`): recipe, data, loop, weights folder.

Trained once, for every method: the network never sees a particular method's output. It learns to restore a
family of estimators (:func:`estimator_share`) from their coarse-grid values: on the simulated pulses of
:mod:`sarpipe.models.difnet_data` (``S = STFT(echo + rfi)``, ``R = |STFT(rfi)|``, ``E = |STFT(echo)|``) an
estimator is a rule applied bin by bin on the full grid: the binary mask ``R > g E`` (``g`` drawn in
``threshold_db``; ``g = 1`` is the true mask of :func:`sarpipe.rfi.metrics.true_tf_mask`) or, with probability
``soft_probability``, the soft share ``R^q / (R^q + (g E)^q)``, ``q`` in {1, 2}; then widened along frequency by
``0..max_dilation`` bins (a notch that cuts wide). The network's input is that rule on the coarse frames (plus
``flip_rate`` random errors, which it cannot predict, so it learns not to copy them into the missing frames); its
target is the same rule on the full grid. Loss: the energy-weighted error of the predicted share against that
target, ``sum |S|^2 (share - target)^2 / sum |S|^2`` per spectrogram (the error of the cleaned spectrogram, what
PSNR and SDR measure), plus ``bce_weight`` x their binary cross-entropy.
Adam; the training pulses are drawn once (``train_samples``) and the rule is drawn again for every use, from
``(seed, step)``.

Fine-tuning for one method (``fine_tune:`` in the recipe, :class:`SRFineTuneConfig`): the network starts from
SR weights (default: the shipped generic ones) and learns from that method's own output instead of the family:
its input is the method's share on the coarse grid of each training pulse, its target the same method's share on
the full grid (``target: method``: the SR restores what the method would have said at full resolution) or the
true mask ``R > E`` (``target: truth``). The method's shares are computed once per pulse, before training.

``train_sr(config, out_dir)`` writes ``out_dir/train_config.json`` and ``out_dir/weights`` (a weights folder of
:mod:`sarpipe.models.weights` with its card); called again on a folder holding the finished run of the same recipe
it returns that run's scores and trains nothing. The module imports no torch until training starts.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..models.difnet_data import DIFNetDataConfig
from ..models.weights import open_training_folder
from ..pipeline.registry import LocalPath

__all__ = [
    "SRArchConfig",
    "SREstimatorConfig",
    "SRFineTuneConfig",
    "SRTrainConfig",
    "TrainSRParams",
    "estimator_share",
    "load_sr_config",
    "spectrogram_psnr",
    "train_sr",
]


class SRArchConfig(BaseModel):
    """Filters of the first three convolutions and the four kernels (:class:`sarpipe.spectral.sr.SRNet`)."""

    model_config = ConfigDict(extra="forbid")

    channels: list[int] = Field([8, 8, 8], min_length=3, max_length=3)
    kernels: list[int] = Field([5, 5, 7, 7], min_length=4, max_length=4)


class SREstimatorConfig(BaseModel):
    """The estimator family the network learns to up-sample (module docstring)."""

    model_config = ConfigDict(extra="forbid")

    threshold_db: tuple[float, float] = (-6.0, 6.0)
    exact_probability: float = Field(0.3, ge=0, le=1, description="probability of g = 1 (the true mask)")
    soft_probability: float = Field(0.3, ge=0, le=1)
    max_dilation: int = Field(2, ge=0)
    flip_rate: tuple[float, float] = (0.0, 0.02)


class SRFineTuneConfig(BaseModel):
    """Fine-tuning on one learned method's output (module docstring)."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field("difnet", description="a learned (torch) cleanup method, by its registered name")
    params: dict[str, Any] = Field(
        default_factory=lambda: {"device": "cpu", "strict": False},
        description="the method's parameters (its shares are computed with these)",
    )
    start: str | None = Field(None, description="SR weights folder to start from (None: the shipped generic ones)")
    target: Literal["method", "truth"] = "method"
    max_frames: int = Field(128, ge=2, description="the tuned weights are used for full grids up to this many frames")


class SRTrainConfig(BaseModel):
    """The SR training recipe (YAML keys as below)."""

    model_config = ConfigDict(extra="forbid")

    data: DIFNetDataConfig = DIFNetDataConfig(frames=65)
    factor: int = Field(2, ge=2)
    model: SRArchConfig = SRArchConfig()
    estimators: SREstimatorConfig = SREstimatorConfig()
    train_samples: int = Field(1200, ge=4)
    validation_samples: int = Field(200, ge=4)
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(16, ge=1)
    crop_bins: int | None = Field(64, ge=8, description="train on random bands of this many frequency bins (None: all)")
    lr: float = Field(2e-3, gt=0)
    bce_weight: float = Field(0.1, ge=0, description="weight of the cross-entropy beside the energy-weighted error")
    seed: int = 0
    threads: int = Field(1, ge=1)
    fine_tune: SRFineTuneConfig | None = None


class TrainSRParams(BaseModel):
    """The ``train_sr`` operation (``sarpipe train sr`` and the pipeline stage): the recipe file."""

    model_config = ConfigDict(extra="forbid")

    config_file: LocalPath = Field(
        ..., description="SR training recipe (YAML), e.g. sarpipe/spectral/recipes/sr_cpu.yaml"
    )


def load_sr_config(path: str | os.PathLike) -> SRTrainConfig:
    """Read an SR training recipe from YAML; problems name FILE:LINE:COL and the key."""
    from ..yamlconf import load_model

    return load_model(SRTrainConfig, path)


def estimator_share(rfi: np.ndarray, echo: np.ndarray, rule: dict[str, Any]) -> np.ndarray:
    """One estimator of the family: ``rfi``, ``echo`` magnitudes ``(..., n_freq, n_frames)`` -> share in [0, 1].

    ``rule``: ``gain`` (``g``), ``power`` (None: binary ``R > g E``; ``q``: ``R^q / (R^q + (g E)^q)``),
    ``dilation`` (bins of widening along frequency, a running maximum)."""
    import scipy.ndimage

    r = np.asarray(rfi, np.float64)
    e = float(rule["gain"]) * np.asarray(echo, np.float64)
    q = rule.get("power")
    if q is None:
        share = (r > e).astype(np.float32)
    else:
        rq, eq = r**q, e**q
        share = np.divide(rq, rq + eq, out=np.zeros_like(rq), where=(rq + eq) > 0).astype(np.float32)
    d = int(rule.get("dilation", 0))
    if d:
        share = scipy.ndimage.maximum_filter1d(share, 2 * d + 1, axis=-2, mode="nearest")
    return share


def _draw_rule(cfg: SREstimatorConfig, rng: np.random.Generator) -> dict[str, Any]:
    gain = 1.0 if rng.random() < cfg.exact_probability else 10 ** (rng.uniform(*cfg.threshold_db) / 20)
    power = int(rng.choice([1, 2])) if rng.random() < cfg.soft_probability else None
    return {
        "gain": float(gain),
        "power": power,
        "dilation": int(rng.integers(0, cfg.max_dilation + 1)),
        "flip": float(rng.uniform(*cfg.flip_rate)),
    }


def spectrogram_psnr(cleaned: np.ndarray, reference: np.ndarray) -> float:
    """PSNR [dB] of cleaned spectrograms against the RFI-free ones, pooled, peak = the reference's maximum."""
    mse = float(np.mean(np.abs(np.asarray(cleaned) - np.asarray(reference)) ** 2))
    return 10 * math.log10(float(np.max(np.abs(reference)) ** 2) / mse) if mse > 0 else math.inf


def _pulses(cfg: SRTrainConfig, split: str, n: int) -> dict[str, np.ndarray]:
    """Spectrograms of ``n`` simulated pulses: mixture ``S`` (complex), ``R``, ``E`` magnitudes, echo STFT."""
    from ..models.difnet_data import make_pulse
    from ..rfi.stft import stft

    p = cfg.data.stft_params()
    s, r, e = [], [], []
    for i in range(n):
        echo, rfi, _band = make_pulse(cfg.data, split, i)  # type: ignore[arg-type]
        s.append(stft((echo + rfi)[None], p)[0])
        r.append(np.abs(stft(rfi[None], p)[0]))
        e.append(stft(echo[None], p)[0])
    return {"S": np.stack(s), "R": np.stack(r).astype(np.float32), "E": np.stack(e)}


def _method_shares(cfg: SRTrainConfig, d: dict[str, np.ndarray], method: Any) -> None:
    """Add the fine-tuning method's coarse-grid share and the target (``cshare``, ``target``) to ``d``."""
    from ..models.torch_method import spectrogram_to_input
    from .sr_grid import coarse_frame_count

    f, ft = cfg.factor, cfg.fine_tune
    nc = coarse_frame_count(d["S"].shape[-1], f)
    coarse, target = [], []
    for lo in range(0, d["S"].shape[0], 64):  # the method's own batching (and packing) within 64 pulses
        s = d["S"][lo : lo + 64]
        coarse.append(method.predict(spectrogram_to_input(s[..., ::f][..., :nc])))
        if ft.target == "method":
            target.append(method.predict(spectrogram_to_input(s)))
    d["cshare"] = np.clip(np.concatenate(coarse), 0, 1).astype(np.float32)
    if ft.target == "method":
        d["target"] = np.clip(np.concatenate(target), 0, 1).astype(np.float32)
    else:
        d["target"] = estimator_share(d["R"], np.abs(d["E"]), {"gain": 1.0, "power": None})


def _package_relative(path: Any) -> str:
    """``path`` relative to the sarpipe package (``sarpipe/...``) when inside it, else as given."""
    p, pkg = Path(str(path)).resolve(), Path(__file__).resolve().parents[1]
    return str(Path("sarpipe") / p.relative_to(pkg)) if p.is_relative_to(pkg) else str(path)


def _tuning_method(ft: SRFineTuneConfig) -> Any:
    from ..errors import InputError
    from ..models.torch_method import TorchMethod
    from ..rfi import create_method

    method = create_method(ft.method, **ft.params)
    if not isinstance(method, TorchMethod):
        raise InputError(f"fine_tune.method {ft.method!r} is not a learned (torch) method", where="fine_tune.method")
    return method


def _example(cfg: SRTrainConfig, d: dict[str, np.ndarray], idx: np.ndarray, rng: np.random.Generator):
    """(features, heuristic, target, coarse share) of the spectrograms ``idx``, a rule drawn for each (fine-tuning:
    the method's coarse share and the stored target)."""
    from .sr_grid import coarse_frame_count, sr_features

    f = cfg.factor
    nt = d["S"].shape[-1]
    nc = coarse_frame_count(nt, f)
    if "cshare" in d:
        s = d["S"][idx]
        feats, heur = sr_features(s, s[..., ::f][..., :nc], d["cshare"][idx], f)
        return feats, heur, d["target"][idx], d["cshare"][idx]
    targets, coarse_shares = [], []
    for i in idx:
        rule = _draw_rule(cfg.estimators, rng)
        full = estimator_share(d["R"][i], np.abs(d["E"][i]), rule)
        c = full[..., ::f][..., :nc].copy()
        flip = rng.random(c.shape) < rule["flip"]
        c[flip] = 1.0 - c[flip]
        targets.append(full)
        coarse_shares.append(c)
    s = d["S"][idx]
    feats, heur = sr_features(s, s[..., ::f][..., :nc], np.stack(coarse_shares), f)
    return feats, heur, np.stack(targets).astype(np.float32), np.stack(coarse_shares)


def _loss(logits: Any, target: Any, mixture: Any, bce_weight: float) -> Any:
    """Energy-weighted share error ``sum |S|^2 (share - target)^2 / sum |S|^2`` per spectrogram (the error of the
    cleaned spectrogram against the one the target cleans, which is what PSNR and SDR see), mean over the batch, plus
    ``bce_weight`` x the binary cross-entropy (which keeps the quiet bins in view)."""
    import torch
    import torch.nn.functional as F

    power = mixture.float() ** 2
    err = (torch.sigmoid(logits) - target) ** 2
    weighted = (power * err).sum(dim=(1, 2)) / power.sum(dim=(1, 2)).clamp_min(1e-30)
    return weighted.mean() + bce_weight * F.binary_cross_entropy_with_logits(logits, target)


def _validate(net: Any, cfg: SRTrainConfig, d: dict[str, np.ndarray]) -> dict[str, float]:
    """Spectrogram PSNR of the cleaned validation set (``S - share S`` against ``STFT(echo)``) for the full-grid
    rule, the SR network, the heuristic and the plain interpolation of the coarse share, and the SR's loss."""
    import torch

    from .sr import sr_share
    from .sr_grid import upsample_frames

    rng = np.random.default_rng([cfg.seed, 1, 99])
    n = d["S"].shape[0]
    feats, heur, target, coarse = _example(cfg, d, np.arange(n), rng)
    pred = sr_share(net, feats, heur, amp=False)
    mixture = torch.from_numpy(np.expm1(feats[:, 0]))
    interp = upsample_frames(coarse, cfg.factor, d["S"].shape[-1])
    s, ref = d["S"], d["E"]
    t = torch.from_numpy(target)
    p = torch.from_numpy(pred).clamp(1e-6, 1 - 1e-6)
    loss = float(_loss(torch.log(p) - torch.log1p(-p), t, mixture, cfg.bce_weight))
    return {
        "loss": loss,
        "psnr_full_rule": spectrogram_psnr(s - target * s, ref),
        "psnr_sr": spectrogram_psnr(s - pred * s, ref),
        "psnr_heuristic": spectrogram_psnr(s - heur * s, ref),
        "psnr_interpolation": spectrogram_psnr(s - interp * s, ref),
        "mae_sr": float(np.mean(np.abs(pred - target))),
        "mae_interpolation": float(np.mean(np.abs(interp - target))),
    }


def _card(cfg: SRTrainConfig, n_params: int, seconds: float, v: dict[str, float]) -> str:
    vf = cfg.data.valid_for()
    ft = cfg.fine_tune
    tuned = (
        ""
        if ft is None
        else f"\nFine-tuned for `{ft.method}` ({ft.params}) on its own coarse-grid output, target: {ft.target}; used "
        f"automatically around that method with the same weights, for full grids up to {ft.max_frames} frames.\n"
    )
    return f"""# SR weights for `--sr {cfg.factor}` (sarpipe)
{tuned}
SFSRNet-style super-resolution of any cleanup method's RFI share (sarpipe.spectral.sr); made by
`sarpipe train sr` (sarpipe.spectral.sr_training), recipe in `config.json` (`training.recipe`).

- Architecture: convolutions {cfg.model.channels + [2]} with kernels {cfg.model.kernels}; {n_params:,} parameters.
- Grid: STFT {vf.stft}, coarse grid {cfg.factor} x the hop; {cfg.data.nperseg} x {cfg.data.frames} training spectrograms.
- Valid for: range sampling rate {vf.range_sampling_rate[0] / 1e6:g}..{vf.range_sampling_rate[1] / 1e6:g} MHz; chirp bandwidth {vf.chirp_bandwidth[0] / 1e6:g}..{vf.chirp_bandwidth[1] / 1e6:g} MHz.
- Training: {cfg.train_samples} simulated pulses, {cfg.steps} Adam steps (lr {cfg.lr:g}, batch {cfg.batch_size}), {seconds / 60:.1f} min at {cfg.threads} CPU thread(s).
- Validation ({cfg.validation_samples} held-out pulses, {"the method's shares" if ft else "estimator family of the recipe"}; cleaned-spectrogram PSNR):
  SR {v["psnr_sr"]:.2f} dB, heuristic {v["psnr_heuristic"]:.2f} dB, plain interpolation {v["psnr_interpolation"]:.2f} dB,
  {"the method" if ft else "the rule"} on the full grid {v["psnr_full_rule"]:.2f} dB; mean |share error| SR {v["mae_sr"]:.4f} vs interpolation {v["mae_interpolation"]:.4f}.
See docs/models/sr.md for scores around real methods.
"""


def train_sr(
    config: SRTrainConfig | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Train the SR network per ``config`` into ``out_dir`` (module docstring). Returns ``weights`` (the folder),
    ``validation`` (the scores of :func:`_validate`), ``seconds`` and ``reused``; ``progress``: print a line every
    50 steps."""
    cfg = config if isinstance(config, SRTrainConfig) else load_sr_config(config)
    out = Path(out_dir)
    cfg_json = json.loads(cfg.model_dump_json())
    t = open_training_folder(out, cfg_json, overwrite, "SR")
    if t is not None:
        return {
            "weights": out / "weights",
            "validation": t.get("validation"),
            "seconds": t.get("seconds"),
            "reused": True,
        }
    from ..models.torch_method import torch_threads

    with torch_threads(cfg.threads):
        return _train(cfg, out, progress)


def _train(cfg: SRTrainConfig, out: Path, progress: bool = False) -> dict[str, Any]:
    import torch

    from ..errors import InputError
    from ..models.weights import save_weights
    from .sr import SRNet, count_parameters, method_weights_sha256
    from .sr_grid import SR_INPUT_TRANSFORM

    t0 = time.perf_counter()
    train = _pulses(cfg, "train", cfg.train_samples)
    val = _pulses(cfg, "validation", cfg.validation_samples)
    torch.manual_seed(cfg.seed)
    tuned: dict[str, Any] = {}
    if cfg.fine_tune is None:
        net = SRNet(cfg.model.channels, cfg.model.kernels, factor=cfg.factor)
    else:
        from .sr import SHIPPED_WEIGHTS, load_sr_network

        ft = cfg.fine_tune
        method = _tuning_method(ft)
        with warnings.catch_warnings():  # the training sensors may lie outside the method's weights (strict=False)
            warnings.simplefilter("ignore", RuntimeWarning)
            _method_shares(cfg, train, method)
            _method_shares(cfg, val, method)
        start = ft.start or SHIPPED_WEIGHTS
        net, start_bundle, _p = load_sr_network(
            ft.start,
            SHIPPED_WEIGHTS,
            missing="no shipped SR weights to start from: give fine_tune.start",
            where="fine_tune.start",
        )
        if net.factor != cfg.factor:
            raise InputError(f"{start}: SR weights for --sr {net.factor}, not {cfg.factor}", where="fine_tune.start")
        tuned = {
            "method": ft.method,
            "method_weights": _package_relative(getattr(method, "weights", "")),
            "method_weights_sha256": method_weights_sha256(method),
            "start": _package_relative(start),
            "target": ft.target,
            "max_frames": ft.max_frames,
        }
    t_data = time.perf_counter() - t0
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    log = []
    net.train()
    for step in range(cfg.steps):
        rng = np.random.default_rng([cfg.seed, 0, step])
        idx = rng.integers(0, cfg.train_samples, cfg.batch_size)
        feats, heur, target, _c = _example(cfg, train, idx, rng)
        if cfg.crop_bins and cfg.crop_bins < heur.shape[1]:  # the network is convolutional: a band is an example
            r0 = int(rng.integers(0, heur.shape[1] - cfg.crop_bins + 1))
            band = slice(r0, r0 + cfg.crop_bins)
            feats, heur, target = feats[:, :, band], heur[:, band], target[:, band]
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))  # cosine decay to 0
        for g in opt.param_groups:
            g["lr"] = lr
        logits = net(torch.from_numpy(feats), torch.from_numpy(heur))
        loss = _loss(logits, torch.from_numpy(target), torch.from_numpy(np.expm1(feats[:, 0])), cfg.bce_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == cfg.steps - 1:
            log.append((step, float(loss.detach())))
            if progress:
                msg = f"sr step {step}/{cfg.steps} loss {log[-1][1]:.4f} {time.perf_counter() - t0:.0f} s"
                print(msg, file=sys.stderr, flush=True)
    v = _validate(net, cfg, val)
    seconds = time.perf_counter() - t0
    save_weights(
        out / "weights",
        model="sfsrnet",
        architecture=net.architecture(),
        state_dict=net.state_dict(),
        valid_for=cfg.data.valid_for(),
        input_transform=SR_INPUT_TRANSFORM,
        card=_card(cfg, count_parameters(net), seconds, v),
        tile=None,
        training={
            "recipe": json.loads(cfg.model_dump_json()),
            "validation": v,
            "seconds": seconds,
            "data_seconds": t_data,
            "loss_log": log,
            **({"fine_tune": tuned} if tuned else {}),
        },
        overwrite=True,  # the folder is this run's own (checked above)
    )
    return {"weights": out / "weights", "validation": v, "seconds": seconds, "reused": False}
