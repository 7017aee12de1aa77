"""Training Sams-Net to separate radar echo from RFI: the recipe, the simulated two-source data, the loop.

Data (:func:`separation_pair`): the pulses of DIFNet's training-data machinery
(:func:`sarpipe.models.difnet_data.make_pulse`: clutter with texture and dark stretches, strong scatterers, thermal
noise, and drifting / pulsed / fluctuating narrowband and broadband emitters at SIR ``sir_db``, several sensors),
sample ``i`` of a split drawn from ``(seed, split, i)``. Source 0 is the radar echo (clutter + targets + noise,
``E``), source 1 the RFI (``R``); the mixture is ``X = E + R``, all as STFTs (:mod:`sarpipe.rfi.stft`, the chain's
transform). Network input: the model-input transform of ``X`` (``log1p-median-std/1``,
:func:`sarpipe.models.torch_method.spectrogram_to_input`, the one DIFNet uses; its RMS is 1, so Sams-Net's own RMS
scaling leaves it as it is).

Loss (the paper's magnitude MSE, :func:`separation_loss`): ``mean((M_E |X| - |E|)^2 + (M_R |X| - |R|)^2)`` with
every magnitude of a sample divided by that sample's echo RMS ``sqrt(mean |E|^2)``: a loss in units of the echo's
power, so a scene's error counts by what it does to the echo whatever the SIR or the sensor's gain.
Optimiser: Adam (:class:`~sarpipe.models.training.OptimizerConfig` with ``weight_decay: 0``, for which AdamW is
Adam; its warm-up and cosine schedule are a function of the step). Validation on the held-out split: the echo's
SDR in the TF domain, ``10 log10(sum |E|^2 / sum |M_E X - E|^2)`` (no distortion-filter projection), and the
pixel accuracy / IoU of ``M_R > 0.5`` against the true mask ``|R| > |E|``.

This module imports no torch at import time (the command's ``--help`` and ``sarpipe stages`` stay light).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..models.difnet_data import DIFNetDataConfig, make_pulse
from ..models.training import OptimizerConfig
from ..models.weights import open_training_folder
from ..pipeline.registry import LocalPath

__all__ = [
    "SOURCES",
    "SamsNetArchConfig",
    "SamsNetTrainConfig",
    "TrainSamsNetParams",
    "load_samsnet_config",
    "separation_batch",
    "separation_loss",
    "separation_pair",
    "separation_scores",
    "train_samsnet_rfi",
]

#: The separated sources, in the network's output order.
SOURCES = ("echo", "rfi")


class SamsNetArchConfig(BaseModel):
    """Network size (:class:`sarpipe.spectral.samsnet.SamsNet`; the paper: 64 channels, 2 heads, 12 slices, 3
    modules)."""

    model_config = ConfigDict(extra="forbid")

    channels: int = Field(32, ge=1)
    heads: int = Field(2, ge=1)
    slices: int = Field(8, ge=1)
    modules: int = Field(2, ge=0)
    mask: Literal["softmax", "sigmoid"] = "softmax"


class SamsNetTrainConfig(BaseModel):
    """The training recipe (YAML keys ``model``, ``data``, ``optimizer``, ``steps``, ...)."""

    model_config = ConfigDict(extra="forbid")

    model: SamsNetArchConfig = SamsNetArchConfig()
    data: DIFNetDataConfig = DIFNetDataConfig(frames=64)
    optimizer: OptimizerConfig = OptimizerConfig(lr=1e-4, weight_decay=0.0, batch_size=8)
    steps: int = Field(4000, ge=1, description="optimizer steps in all")
    validation_every: int = Field(500, ge=1, description="validation after every this many steps")
    log_every: int = Field(20, ge=1)
    seed: int = Field(0, description="seeds the network's initial weights")
    device: str = "cpu"
    threads: int | None = Field(1, ge=1, description="torch CPU threads (None: torch's default)")


class TrainSamsNetParams(BaseModel):
    """The ``train_samsnet`` operation (``sarpipe train samsnet`` and the pipeline stage): the recipe file."""

    model_config = ConfigDict(extra="forbid")

    config_file: LocalPath = Field(
        ..., description="Sams-Net training recipe (YAML), e.g. sarpipe/spectral/recipes/samsnet_cpu.yaml"
    )


def load_samsnet_config(path: str | os.PathLike) -> SamsNetTrainConfig:
    """Read a Sams-Net training recipe from YAML; problems name FILE:LINE:COL and the key."""
    from ..yamlconf import load_model

    return load_model(SamsNetTrainConfig, path)


# --------------------------------------------------------------------------------------------- data


def separation_pair(cfg: DIFNetDataConfig, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(STFT of the echo ``E``, STFT of the RFI ``R``) of sample ``index`` of ``split``, complex64
    ``(nperseg, frames)`` each (module docstring)."""
    from ..rfi.stft import stft

    echo, rfi, _band = make_pulse(cfg, split, index)  # type: ignore[arg-type]
    s = stft(np.stack([echo, rfi]), cfg.stft_params())
    return np.ascontiguousarray(s[0]), np.ascontiguousarray(s[1])


def separation_batch(echo: np.ndarray, rfi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """STFTs ``(B, F, T)`` of the echoes and the RFI -> (network input ``(B, 1, F, T)``, magnitudes ``(B, 3, F, T)``:
    ``|X|``, ``|E|``, ``|R|`` over the echo's RMS), float32."""
    from ..models.torch_method import spectrogram_to_input

    mix = echo + rfi
    scale = np.sqrt(np.mean(np.abs(echo) ** 2, axis=(1, 2), keepdims=True)) + 1e-30
    mags = np.stack([np.abs(mix), np.abs(echo), np.abs(rfi)], axis=1) / scale[:, None]
    return spectrogram_to_input(mix)[:, None], mags.astype(np.float32)


def separation_loss(masks: Any, mags: Any) -> Any:
    """The paper's magnitude MSE over both sources: masks ``(B, 2, F, T)``, magnitudes as :func:`separation_batch`."""
    return ((masks * mags[:, :1] - mags[:, 1:]) ** 2).mean() * 2


def separation_scores(rfi_mask: np.ndarray, echo: np.ndarray, rfi: np.ndarray) -> dict[str, float]:
    """Validation scores of RFI masks ``(B, F, T)`` (the echo mask is ``1 - M_R`` for softmax masks): mean echo
    SDR [dB] after and before (``X`` itself as the estimate), PA and IoU of ``M_R > 0.5`` against ``|R| > |E|``."""
    from ..rfi.metrics import iou, pixel_accuracy

    mix = echo + rfi
    err = (1.0 - rfi_mask) * mix - echo
    p_e = np.sum(np.abs(echo) ** 2, axis=(1, 2))
    sdr = 10 * np.log10(p_e / np.maximum(np.sum(np.abs(err) ** 2, axis=(1, 2)), 1e-30))
    sdr0 = 10 * np.log10(p_e / np.maximum(np.sum(np.abs(rfi) ** 2, axis=(1, 2)), 1e-30))
    true = np.abs(rfi) > np.abs(echo)
    return {
        "sdr_db": float(np.mean(sdr)),
        "sdr_mixture_db": float(np.mean(np.minimum(sdr0, 60.0))),  # an RFI-free sample counts as 60 dB
        "pa": pixel_accuracy(rfi_mask > 0.5, true),
        "iou": iou(rfi_mask > 0.5, true),
    }


# --------------------------------------------------------------------------------------------- training


def _validation_set(cfg: SamsNetTrainConfig) -> tuple[np.ndarray, np.ndarray]:
    pairs = [separation_pair(cfg.data, "validation", i) for i in range(cfg.data.validation_samples)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _validate(net: Any, val: tuple[np.ndarray, np.ndarray], device: Any, batch: int) -> dict[str, float]:
    import torch

    echo, rfi = val
    x, _mags = separation_batch(echo, rfi)
    net.eval()
    with torch.inference_mode():
        m = np.concatenate(
            [
                net(torch.from_numpy(x[i : i + batch]).to(device))[:, 1].float().cpu().numpy()
                for i in range(0, len(x), batch)
            ]
        )
    net.train()
    return separation_scores(m, echo, rfi)


def _card(cfg: SamsNetTrainConfig, n_params: int, step: int, seconds: float, v: dict[str, Any] | None) -> str:
    vf = cfg.data.valid_for()
    a = cfg.model
    scores = (
        f"on {cfg.data.validation_samples} held-out simulated pulses: echo SDR {v['sdr_db']:.2f} dB (mixture "
        f"{v['sdr_mixture_db']:.2f} dB), RFI mask > 0.5 PA {100 * v['pa']:.2f} %, IoU {100 * v['iou']:.2f} %"
        if v
        else "no validation was run"
    )
    return f"""# Sams-Net echo / RFI separation weights (sarpipe)

Made by `sarpipe.spectral.samsnet_training.train_samsnet_rfi` (`sarpipe train samsnet`); the full recipe is
`training.recipe` in `config.json`. See docs/models/samsnet.md.

- Architecture: SamsNet(channels {a.channels}, heads {a.heads}, slices {a.slices}, modules {a.modules}, mask {a.mask}), sources {list(SOURCES)}; {n_params:,} parameters.
- Input: one pulse's spectrogram, transform `log1p-median-std/1`; trained on {cfg.data.nperseg} x {cfg.data.frames} tiles.
- Valid for: STFT {vf.stft}; range sampling rate {vf.range_sampling_rate[0] / 1e6:g}..{vf.range_sampling_rate[1] / 1e6:g} MHz; chirp bandwidth {vf.chirp_bandwidth[0] / 1e6:g}..{vf.chirp_bandwidth[1] / 1e6:g} MHz.
- Data: simulated on the fly (`sarpipe.models.difnet_data`), SIR {list(cfg.data.sir_db)} dB, seed {cfg.data.seed}.
- Training: {step} steps of batch {cfg.optimizer.batch_size}, Adam lr {cfg.optimizer.lr:g} ({cfg.optimizer.schedule}, {cfg.optimizer.warmup_steps} warm-up steps); {seconds / 60:.1f} min on {cfg.device}, {cfg.threads} thread(s).
- Validation {scores}.
"""


def train_samsnet_rfi(
    config: SamsNetTrainConfig | str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool = False
) -> dict[str, Any]:
    """Train Sams-Net per ``config`` into ``out_dir`` (``train_config.json``, ``log.jsonl``, ``weights/``); returns
    ``weights``, ``validation`` (the last record) and ``reused``.

    Called again on a folder that holds the finished run of the same recipe it returns that run's scores and
    trains nothing; a folder holding anything else is an :class:`InputError` unless ``overwrite`` (which empties
    it). No checkpoints: a stopped run starts again.
    """
    import torch

    from ..models.torch_method import INPUT_TRANSFORM, resolve_device, torch_threads
    from ..models.weights import save_weights
    from .samsnet import SamsNet

    cfg = config if isinstance(config, SamsNetTrainConfig) else load_samsnet_config(config)
    out = Path(out_dir)
    cfg_json = json.loads(cfg.model_dump_json())
    t = open_training_folder(out, cfg_json, overwrite, "Sams-Net")
    if t is not None:
        return {"weights": out / "weights", "validation": t.get("validation"), "reused": True}
    log_path = out / "log.jsonl"
    log_path.unlink(missing_ok=True)

    def write(rec: dict[str, Any]) -> None:
        with open(log_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")

    device = resolve_device(cfg.device)
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        net = SamsNet(sources=len(SOURCES), **cfg.model.model_dump()).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay)
        bs = cfg.optimizer.batch_size
        n_train = cfg.data.train_samples
        t0 = time.monotonic()
        val = _validation_set(cfg)
        write({"event": "start", "step": 0, "threads": torch.get_num_threads(), "time": time.time()})
        validation: list[dict[str, Any]] = []
        loss_value = float("nan")
        # a fixed training set small enough is kept in memory (drawn once, the same every epoch)
        per_sample = 16 * cfg.data.nperseg * cfg.data.frames
        cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = (
            {} if n_train is not None and n_train * per_sample <= 1 << 30 else None
        )

        def pair(i: int) -> tuple[np.ndarray, np.ndarray]:
            if cache is None:
                return separation_pair(cfg.data, "train", i)
            if i not in cache:
                cache[i] = separation_pair(cfg.data, "train", i)
            return cache[i]

        net.train()
        for step in range(cfg.steps):
            idx = np.arange(step * bs, (step + 1) * bs)
            if n_train is not None:
                idx = idx % n_train
            pairs = [pair(int(i)) for i in idx]
            x, mags = separation_batch(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))
            lr = cfg.optimizer.lr_at(step, cfg.steps)
            for group in opt.param_groups:
                group["lr"] = lr
            loss = separation_loss(net(torch.from_numpy(x).to(device)), torch.from_numpy(mags).to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_value = float(loss.detach())
            s = step + 1
            if s % cfg.log_every == 0 or s == cfg.steps:
                write({"event": "train", "step": s, "loss": loss_value, "lr": lr, "seconds": time.monotonic() - t0})
            if s % cfg.validation_every == 0 or s == cfg.steps:
                v = {"step": s, **_validate(net, val, device, bs)}
                validation.append(v)
                write({"event": "validation", **v})
        net.eval()
        seconds = time.monotonic() - t0
        last = validation[-1] if validation else None
        n_params = sum(p.numel() for p in net.parameters())
        weights = save_weights(
            out / "weights",
            model="samsnet",
            architecture={"sources": len(SOURCES), **cfg.model.model_dump()},
            state_dict=net.state_dict(),
            valid_for=cfg.data.valid_for(),
            input_transform=INPUT_TRANSFORM,
            card=_card(cfg, n_params, cfg.steps, seconds, last),
            tile=[cfg.data.nperseg, cfg.data.frames],
            training={
                "recipe": cfg_json,
                "sources": list(SOURCES),
                "steps": cfg.steps,
                "seconds": seconds,
                "device": str(device),
                "validation": last,
                "validation_history": validation,
                "final_loss": loss_value,
            },
            overwrite=True,  # the folder is this run's own (checked above)
        )
        write({"event": "done", "step": cfg.steps, "weights": str(weights)})
        return {"weights": weights, "validation": last, "reused": False}
