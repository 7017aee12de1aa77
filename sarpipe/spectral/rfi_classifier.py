"""The multi-label RFI-kind classifier behind the Score-CAM denoiser, its simulated training data and training.

Kinds (:data:`RFI_CLASSES`): ``none``, ``narrowband`` (tones and slow sweeps), ``chirp`` (sawtooth sweeps),
``sinfm`` (sinusoidal FM). A pulse may hold several kinds at once (the benchmark's pulses hold 5-7 emitters of
several kinds), so each kind has its own sigmoid output and the loss is the binary cross-entropy per kind; ``none``
is 1 exactly when no emitter transmits. Sample ``i`` of a split (:func:`labelled_pulse`): the clutter + targets +
noise echo of :func:`sarpipe.models.difnet_data.make_pulse` (drawn with RFI off); every ``rfi_free_every``-th
sample keeps no RFI, the others get 0..``narrowband_count[1]`` narrowband and 0..``broadband_count[1]`` broadband
emitters (at least one) from :func:`sarpipe.models.difnet_data.draw_emitters`, scaled together to an SIR from
``sir_db``. The labels are the simulator's own ``kind`` of each emitter that transmits inside the receive window
(a gated emitter whose gate stays shut in the window is not a label), never a clean twin.

Network (:class:`RFIClassifier`), input ``(B, 1, H, W)`` (the model-input transform of
:mod:`sarpipe.models.torch_method`), U-shaped so that its last conv layer is at the input's resolution (a
saliency map as sharp as a tone line): encoder conv3x3(1->c) ReLU [skip 1], max-pool 2, conv3x3(c->2c) ReLU
[skip 2], max-pool 2, conv3x3(2c->4c) ReLU; decoder bilinear x2, concatenate skip 2, conv3x3(6c->2c) ReLU,
bilinear x2, concatenate skip 1, conv3x3(3c->2c) ReLU (the Score-CAM layer, :meth:`RFIClassifier.features`,
``2c`` maps of ``H x W``); global average pooling (the embedding, :meth:`RFIClassifier.embed`); a linear layer to
4 logits (:meth:`RFIClassifier.scores` = their sigmoids). The buffer ``general_maps`` holds the class-general
Score-CAM maps (:func:`sarpipe.spectral.scorecam.class_general_maps`), saved with the weights.
"""

from __future__ import annotations

import json
import math
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

__all__ = ["RFI_CLASSES", "RFIClassifier", "ScoreCAMTrainConfig", "labelled_pulse", "train_scorecam"]

RFI_CLASSES = ("none", "narrowband", "chirp", "sinfm")


class RFIClassifier(nn.Module):
    """The U-shaped multi-label spectrogram CNN of the module docstring."""

    #: Score-CAM's class score is the sigmoid of the class's logit (multi-label), not a softmax over classes
    score_activation = "sigmoid"

    def __init__(self, channels: int = 8, n_classes: int = 4, map_size: tuple[int, int] | list[int] = (128, 64)):
        super().__init__()
        c = int(channels)
        self.channels, self.n_classes, self.map_size = c, int(n_classes), [int(v) for v in map_size]
        self.enc1 = nn.Conv2d(1, c, 3, padding=1)
        self.enc2 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.bottom = nn.Conv2d(2 * c, 4 * c, 3, padding=1)
        self.dec2 = nn.Conv2d(6 * c, 2 * c, 3, padding=1)
        self.dec1 = nn.Conv2d(3 * c, 2 * c, 3, padding=1)
        self.fc = nn.Linear(2 * c, self.n_classes)
        self.register_buffer("general_maps", torch.zeros(self.n_classes, *self.map_size))

    def architecture(self) -> dict[str, Any]:
        return {"channels": self.channels, "n_classes": self.n_classes, "map_size": self.map_size}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv layer's activations ``(B, 2c, H, W)`` (full resolution; H, W divisible by 4)."""
        s1 = F.relu(self.enc1(x))
        s2 = F.relu(self.enc2(F.max_pool2d(s1, 2)))
        y = F.relu(self.bottom(F.max_pool2d(s2, 2)))
        y = F.interpolate(y, size=s2.shape[-2:], mode="bilinear", align_corners=False)
        y = F.relu(self.dec2(torch.cat([y, s2], 1)))
        y = F.interpolate(y, size=s1.shape[-2:], mode="bilinear", align_corners=False)
        return F.relu(self.dec1(torch.cat([y, s1], 1)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)``, one independent (sigmoid) output per kind."""
        return self.fc(self.embed(x))

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Probability that each kind is present ``(B, n_classes)``."""
        return torch.sigmoid(self(x))


class ScoreCAMTrainConfig(BaseModel):
    """Training recipe: the pulse simulator's settings, sizes, optimiser, the denoiser's general-map settings and
    the pulses its threshold is tuned on."""

    model_config = ConfigDict(extra="forbid")

    data: DIFNetDataConfig = DIFNetDataConfig(frames=64)
    channels: int = Field(8, ge=1)
    rfi_free_every: int = Field(8, ge=2, description="every n-th training pulse holds no RFI")
    train_samples: int = Field(2000, ge=4)
    validation_samples: int = Field(400, ge=4)
    steps: int = Field(1500, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    k_max: int = Field(8, ge=1, description="largest k tried by the elbow method")
    representatives_from: int = Field(400, ge=4, description="training samples the K-Means runs on")
    tune_pulses: int = Field(
        32, ge=0, description="pulses of the data's own mix (training seed) the thresholds are chosen on; 0 = none"
    )
    seed: int = 0
    threads: int = Field(1, ge=1)


def labelled_pulse(
    cfg: DIFNetDataConfig, split: str, index: int, rfi_free_every: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(echo without RFI, RFI, both complex64; multi-hot labels ``(4,)`` float32 over :data:`RFI_CLASSES`) of
    sample ``index`` of ``split`` (module docstring)."""
    quiet = cfg.model_copy(update={"rfi_free_fraction": 1.0})
    echo, _none, (fs, bw, _tp) = make_pulse(quiet, split, index)  # type: ignore[arg-type]
    labels = np.zeros(len(RFI_CLASSES), np.float32)
    if int(index) % int(rfi_free_every) == 0:
        labels[0] = 1.0
        return echo, np.zeros_like(echo), labels
    rng = np.random.default_rng([int(cfg.seed), SPLITS[split], int(index), 7])
    n = echo.size
    window = n / fs
    while True:
        n_nb = int(rng.integers(0, int(cfg.narrowband_count[1]) + 1))  # type: ignore[index]
        n_bb = int(rng.integers(0, int(cfg.broadband_count[1]) + 1))  # type: ignore[index]
        if n_nb + n_bb:
            break
    mix = cfg.model_copy(update={"narrowband_count": (n_nb, n_nb), "broadband_count": (n_bb, n_bb)})
    ems = draw_emitters(mix, rng, bw, window)
    t_rel = np.arange(n) / fs
    t_abs = float(rng.uniform(*map(float, cfg.pulse_time))) + t_rel
    # one emitter at a time with the same generator: the sum is interference(ems, ...) itself, and each emitter's
    # own waveform says whether it transmits inside this window
    parts = [interference([em], t_abs, t_rel, window, bw, rng) for em in ems]
    r = np.sum(parts, axis=0)
    for em, part in zip(ems, parts):
        if np.any(part != 0):
            labels[RFI_CLASSES.index(em["kind"])] = 1.0
    p_r = float(np.mean(np.abs(r) ** 2))
    if p_r == 0:  # every emitter gated off in this window: an RFI-free pulse
        labels[0] = 1.0
        return echo, np.zeros_like(echo), labels
    p_s = float(np.mean(np.abs(echo.astype(np.complex128)) ** 2))
    sir = float(rng.uniform(*map(float, cfg.sir_db)))
    rfi = (r * math.sqrt(p_s / p_r * 10 ** (-sir / 10))).astype(np.complex64)
    return echo, rfi, labels


def _dataset(cfg: ScoreCAMTrainConfig, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    from ..models.torch_method import spectrogram_to_input
    from ..rfi.stft import stft

    p = cfg.data.stft_params()
    xs, ys = [], []
    for i in range(n):
        echo, rfi, labels = labelled_pulse(cfg.data, split, i, cfg.rfi_free_every)
        xs.append(stft((echo + rfi)[None], p)[0])
        ys.append(labels)
    return spectrogram_to_input(np.stack(xs)), np.stack(ys)


def _card(cfg: ScoreCAMTrainConfig, scores: dict[str, Any], seconds: float, reps: dict) -> str:
    per = ", ".join(f"{c} {100 * a:.1f} %" for c, a in zip(RFI_CLASSES, scores["per_class"]))
    tuned = scores.get("tuned") or {}
    return f"""# Score-CAM multi-label RFI-kind classifier (sarpipe)

Kinds {list(RFI_CLASSES)}, one sigmoid each; a U-shaped {cfg.channels}-channel CNN (sarpipe.spectral.rfi_classifier)
whose Score-CAM layer is at full resolution, on the log1p-median-std/1 transform of {cfg.data.nperseg} x
{cfg.data.frames} spectrograms (STFT {cfg.data.nperseg}/{cfg.data.hop}/{cfg.data.window}).
Trained on {cfg.train_samples} simulated pulses of 1..several emitters of mixed kinds (labels = the simulator's
emitter kinds), binary cross-entropy, {cfg.steps} Adam steps (lr {cfg.lr}, batch {cfg.batch_size}), {seconds:.0f} s
on a shared 2-core CPU at {cfg.threads} thread(s).
Validation ({cfg.validation_samples} held-out pulses): every kind right {100 * scores["exact"]:.1f} %; per kind {per}.
Class-general Score-CAM maps from {sum(len(v) for v in reps.values())} representative samples (K-Means++ + elbow).
Thresholds tuned on {cfg.tune_pulses} training-seed pulses: {tuned}.
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
        loss = F.binary_cross_entropy_with_logits(net(X[idx]), Y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            log.append((step, float(loss.detach())))
    net.eval()
    with torch.no_grad():
        prob = torch.cat([net.scores(torch.from_numpy(xv[i : i + 128, None])) for i in range(0, len(yv), 128)])
    pred = prob.numpy() > 0.5
    truth = yv > 0.5
    scores: dict[str, Any] = {
        "exact": float(np.mean(np.all(pred == truth, axis=1))),
        "per_class": [float(np.mean(pred[:, c] == truth[:, c])) for c in range(len(RFI_CLASSES))],
    }
    n_rep = min(cfg.representatives_from, len(yt))
    general, reps = class_general_maps(net, xt[:n_rep], yt[:n_rep], len(RFI_CLASSES), k_max=cfg.k_max, seed=cfg.seed)
    net.general_maps.copy_(torch.from_numpy(general))
    scores["tuned"] = _tune(net, cfg) if cfg.tune_pulses else {}
    seconds = time.perf_counter() - t0
    training = {
        "recipe": json.loads(cfg.model_dump_json()),
        "validation_accuracy": scores["exact"],
        "validation_per_class": scores["per_class"],
        "tuned": scores["tuned"],
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
        card=_card(cfg, scores, seconds, reps),
        tile=None,
        training=training,
        overwrite=True,  # the folder is this run's own (checked above)
    )
    return {
        "weights": out / "weights",
        "validation_accuracy": scores["exact"],
        "per_class": scores["per_class"],
        "tuned": scores["tuned"],
        "seconds": seconds,
        "reused": False,
    }


#: thresholds and refinement false-alarm rates the tuning tries
TUNE_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.85)
TUNE_PFAS = (1e-3, 3e-3, 1e-2, 3e-2, 0.1)


def _tune(net: RFIClassifier, cfg: ScoreCAMTrainConfig) -> dict[str, Any]:
    """Thresholds with the best mean IoU + PA (the two scores a mask is judged by) against ``true_tf_mask`` on
    ``tune_pulses`` pulses of the data's own RFI mix (:func:`~sarpipe.models.difnet_data.make_pulse`, the training
    seed's validation stream, never a benchmark seed): ``threshold`` for the paper's form, ``refine_threshold`` /
    ``refine_pfa`` for the refined one; the IoU and PA there beside them."""
    from ..rfi.metrics import iou, pixel_accuracy, true_tf_mask
    from ..rfi.notch import band_segments, in_band
    from ..rfi.stft import frequencies, stft
    from .scorecam import refine_mask, rfi_saliency

    p = cfg.data.stft_params()
    pulses = [make_pulse(cfg.data, "validation", i) for i in range(cfg.tune_pulses)]
    echo = np.stack([e for e, _r, _b in pulses])
    rfi = np.stack([r for _e, r, _b in pulses])
    spec = stft(echo + rfi, p)
    truth = true_tf_mask(rfi, echo, p)
    sal, _present = rfi_saliency(net, spec, general=1.0)
    segs = [band_segments(in_band(frequencies(b[0], p), b[1])) for _e, _r, b in pulses]

    def scores(mask: np.ndarray) -> tuple[float, float]:
        n = len(truth)
        return (
            float(np.mean([iou(mask[i], truth[i]) for i in range(n)])),
            float(np.mean([pixel_accuracy(mask[i], truth[i]) for i in range(n)])),
        )

    plain = {t: scores(sal > t) for t in TUNE_THRESHOLDS}
    refined = {}
    for pfa in TUNE_PFAS:
        cfar = np.stack([refine_mask(np.ones(spec.shape[1:], bool), spec[i], pfa, segs[i]) for i in range(len(spec))])
        for t in TUNE_THRESHOLDS:
            refined[(t, pfa)] = scores((sal > t) & cfar)
    best = max(plain, key=lambda t: sum(plain[t]))
    best_r = max(refined, key=lambda k: sum(refined[k]))
    return {
        "threshold": best,
        "iou": plain[best][0],
        "pa": plain[best][1],
        "refine_threshold": best_r[0],
        "refine_pfa": best_r[1],
        "refine_iou": refined[best_r][0],
        "refine_pa": refined[best_r][1],
    }
