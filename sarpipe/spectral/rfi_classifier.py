"""The RFI-type classifier behind the Score-CAM denoiser, its simulated training data and its training.

Classes (:data:`RFI_CLASSES`): ``none``, ``narrowband`` (tones and slow sweeps), ``chirp`` (sawtooth sweeps),
``sinfm`` (sinusoidal FM). Sample ``i`` of a split has class ``i % 4`` (balanced by construction, so no class is
rare and no WGAN augmentation is needed); its pulse is the clutter + targets + noise echo of
:func:`sarpipe.models.difnet_data.make_pulse` (drawn with RFI off) plus one emitter of that class drawn by
:func:`sarpipe.models.difnet_data.draw_emitters` (redrawn until the simulator's own ``kind`` is the class) and
scaled to an SIR from ``sir_db``. The label is the simulator's parameter, never a clean twin.

Network (:class:`RFIClassifier`), input ``(B, 1, H, W)`` (the model-input transform of
:mod:`sarpipe.models.torch_method`): conv3x3(1->c) ReLU maxpool2, conv3x3(c->2c) ReLU maxpool2, conv3x3(2c->2c)
ReLU, conv3x3(2c->2c) ReLU (the last conv layer, :meth:`RFIClassifier.features`), global average pooling (the
embedding, :meth:`RFIClassifier.embed`), a linear layer to 4 logits. The buffer ``general_maps`` holds the
class-general Score-CAM maps (:func:`sarpipe.spectral.scorecam.class_general_maps`), saved with the weights.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..models.difnet_data import SPLITS, DIFNetDataConfig, draw_emitters, interference, make_pulse
from ..models.torch_method import torch_threads
from ..models.weights import open_training_folder

__all__ = ["RFI_CLASSES", "RFIClassifier", "ScoreCAMTrainConfig", "classified_pulse", "train_scorecam"]

RFI_CLASSES = ("none", "narrowband", "chirp", "sinfm")


class RFIClassifier(nn.Module):
    """The small spectrogram CNN of the module docstring."""

    def __init__(self, channels: int = 16, n_classes: int = 4, map_size: tuple[int, int] | list[int] = (128, 64)):
        super().__init__()
        c = int(channels)
        self.channels, self.n_classes, self.map_size = c, int(n_classes), [int(v) for v in map_size]
        self.conv1 = nn.Conv2d(1, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.conv4 = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.fc = nn.Linear(2 * c, self.n_classes)
        self.register_buffer("general_maps", torch.zeros(self.n_classes, *self.map_size))

    def architecture(self) -> dict[str, Any]:
        return {"channels": self.channels, "n_classes": self.n_classes, "map_size": self.map_size}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv layer's activations ``(B, 2c, H/4, W/4)``."""
        y = F.max_pool2d(F.relu(self.conv1(x)), 2)
        y = F.max_pool2d(F.relu(self.conv2(y)), 2)
        return F.relu(self.conv4(F.relu(self.conv3(y))))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


class ScoreCAMTrainConfig(BaseModel):
    """Training recipe: the pulse simulator's settings, sizes, optimiser, the denoiser's general-map settings."""

    model_config = ConfigDict(extra="forbid")

    data: DIFNetDataConfig = DIFNetDataConfig(frames=64)
    channels: int = Field(16, ge=1)
    train_samples: int = Field(2000, ge=4)
    validation_samples: int = Field(400, ge=4)
    steps: int = Field(1500, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    k_max: int = Field(8, ge=1, description="largest k tried by the elbow method")
    representatives_from: int = Field(400, ge=4, description="training samples the K-Means runs on")
    seed: int = 0
    threads: int = Field(1, ge=1)


def classified_pulse(cfg: DIFNetDataConfig, split: str, index: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(echo without RFI, RFI, class index) of sample ``index`` of ``split`` (module docstring), complex64."""
    import math

    label = int(index) % len(RFI_CLASSES)
    quiet = cfg.model_copy(update={"rfi_free_fraction": 1.0})
    echo, _none, (fs, bw, _tp) = make_pulse(quiet, split, index)  # type: ignore[arg-type]
    if label == 0:
        return echo, np.zeros_like(echo), 0
    rng = np.random.default_rng([int(cfg.seed), SPLITS[split], int(index), 7])
    n = echo.size
    window = n / fs
    kind = RFI_CLASSES[label]
    one = cfg.model_copy(
        update={
            "narrowband_count": (1, 1) if label == 1 else (0, 0),
            "broadband_count": (0, 0) if label == 1 else (1, 1),
        }
    )
    for _ in range(100):
        ems = draw_emitters(one, rng, bw, window)
        if ems and ems[0]["kind"] == kind:
            break
    t_rel = np.arange(n) / fs
    t_abs = float(rng.uniform(*map(float, cfg.pulse_time))) + t_rel
    r = interference(ems[:1], t_abs, t_rel, window, bw, rng)
    p_r = float(np.mean(np.abs(r) ** 2))
    p_s = float(np.mean(np.abs(echo.astype(np.complex128)) ** 2))
    sir = float(rng.uniform(*map(float, cfg.sir_db)))
    rfi = (r * math.sqrt(p_s / max(p_r, 1e-30) * 10 ** (-sir / 10))).astype(np.complex64)
    return echo, rfi, label


def _dataset(cfg: ScoreCAMTrainConfig, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    from ..models.torch_method import spectrogram_to_input
    from ..rfi.stft import stft

    p = cfg.data.stft_params()
    xs, ys = [], []
    for i in range(n):
        echo, rfi, label = classified_pulse(cfg.data, split, i)
        xs.append(stft((echo + rfi)[None], p)[0])
        ys.append(label)
    return spectrogram_to_input(np.stack(xs)), np.array(ys)


def _card(cfg: ScoreCAMTrainConfig, acc: float, per_class: list[float], seconds: float, reps: dict) -> str:
    return f"""# Score-CAM RFI-type classifier (sarpipe)

Classes {list(RFI_CLASSES)}; a {cfg.channels}-channel 4-layer CNN (sarpipe.spectral.rfi_classifier) on the
log1p-median-std/1 transform of {cfg.data.nperseg} x {cfg.data.frames} spectrograms (STFT {cfg.data.nperseg}/{cfg.data.hop}/{cfg.data.window}).
Trained on {cfg.train_samples} simulated pulses (balanced classes; labels = the simulator's emitter kind),
{cfg.steps} Adam steps (lr {cfg.lr}, batch {cfg.batch_size}), {seconds:.0f} s on a shared 2-core CPU at 1 thread.
Validation accuracy on {cfg.validation_samples} held-out pulses: {100 * acc:.1f} % (per class:
{", ".join(f"{c} {100 * a:.1f} %" for c, a in zip(RFI_CLASSES, per_class))}).
Class-general Score-CAM maps from {sum(len(v) for v in reps.values())} representative samples (K-Means++ + elbow).
See docs/models/scorecam.md.
"""


def train_scorecam(
    config: ScoreCAMTrainConfig | str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool = False
) -> dict[str, Any]:
    """Train the classifier, compute the class-general maps, write ``out_dir/weights``; returns the scores
    (``weights``, ``validation_accuracy``, ``per_class``, ``seconds``, and ``reused``: an earlier run's).

    ``out_dir`` also gets ``train_config.json`` (the resolved recipe): called again on a folder that holds the
    finished run of the same recipe, it returns that run's scores and trains nothing. A folder that holds anything
    else (other files, a run of another recipe) is an :class:`InputError` unless ``overwrite``, which empties it.
    """
    from .scorecam_training import load_scorecam_config

    cfg = config if isinstance(config, ScoreCAMTrainConfig) else load_scorecam_config(config)
    out = Path(out_dir)
    cfg_json = json.loads(cfg.model_dump_json())
    t = open_training_folder(out, cfg_json, overwrite, "Score-CAM")
    if t is not None:
        return {
            "weights": out / "weights",
            "validation_accuracy": t.get("validation_accuracy"),
            "per_class": t.get("validation_per_class"),
            "seconds": t.get("seconds"),
            "reused": True,
        }
    with torch_threads(cfg.threads):
        return _train(cfg, out)


def _train(cfg: ScoreCAMTrainConfig, out: Path) -> dict[str, Any]:
    from ..models.torch_method import INPUT_TRANSFORM
    from ..models.weights import save_weights
    from .scorecam import class_general_maps

    t0 = time.perf_counter()
    xt, yt = _dataset(cfg, "train", cfg.train_samples)
    xv, yv = _dataset(cfg, "validation", cfg.validation_samples)
    t_data = time.perf_counter() - t0
    torch.manual_seed(cfg.seed)
    net = RFIClassifier(cfg.channels, len(RFI_CLASSES), xt.shape[1:])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    X, Y = torch.from_numpy(xt[:, None]), torch.from_numpy(yt)
    log = []
    for step in range(cfg.steps):
        idx = torch.from_numpy(rng.integers(0, len(yt), cfg.batch_size))
        loss = F.cross_entropy(net(X[idx]), Y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            log.append((step, float(loss.detach())))
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(torch.from_numpy(xv[i : i + 128, None])).argmax(1) for i in range(0, len(yv), 128)])
    pred = pred.numpy()
    acc = float(np.mean(pred == yv))
    per_class = [float(np.mean(pred[yv == c] == c)) for c in range(len(RFI_CLASSES))]
    n_rep = min(cfg.representatives_from, len(yt))
    general, reps = class_general_maps(net, xt[:n_rep], yt[:n_rep], len(RFI_CLASSES), k_max=cfg.k_max, seed=cfg.seed)
    net.general_maps.copy_(torch.from_numpy(general))
    seconds = time.perf_counter() - t0
    training = {
        "recipe": json.loads(cfg.model_dump_json()),
        "validation_accuracy": acc,
        "validation_per_class": per_class,
        "seconds": seconds,
        "data_seconds": t_data,
        "representatives": {RFI_CLASSES[c]: v for c, v in reps.items()},
        "loss_log": log,
    }
    save_weights(
        out / "weights",
        model="scorecam",
        architecture=net.architecture(),
        state_dict=net.state_dict(),
        valid_for=cfg.data.valid_for(),
        input_transform=INPUT_TRANSFORM,
        card=_card(cfg, acc, per_class, seconds, reps),
        tile=None,
        training=training,
        overwrite=True,  # the folder is this run's own (checked above)
    )
    return {
        "weights": out / "weights",
        "validation_accuracy": acc,
        "per_class": per_class,
        "seconds": seconds,
        "reused": False,
    }
