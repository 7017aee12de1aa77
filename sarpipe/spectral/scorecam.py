"""Score-CAM saliency (Wang et al., CVPR-W 2020) and the Score-CAM denoiser (Elias, IJCNN 2023), batched.

Score-CAM of class ``c`` for input ``x`` (``(1, H, W)``) and a classifier whose last convolutional layer gives
``K`` activation maps ``A_k`` (``h x w``):

1. ``H_k`` = ``A_k`` up-sampled bilinearly to ``H x W``, then min-max normalised to ``[0, 1]`` (0 where constant);
2. ``w_k = p_c(x * H_k) - p_c(x_b)``: the increase in the softmax probability of ``c`` that the masked input
   causes over the baseline ``x_b = 0`` (the class-score increase);
3. ``L = ReLU(sum_k w_k H_k)``, min-max normalised to ``[0, 1]``.

The ``K`` masked inputs of every sample go through the classifier in batches of ``batch`` (:func:`score_cam`);
:func:`score_cam_reference` is the one-channel-at-a-time form it must equal.

Denoiser: the class-general map of each class is the mean Score-CAM of that class's most representative training
samples (:func:`class_general_maps`: K-Means++ on the classifier's embedding, ``k`` by the elbow method, the real
sample nearest each centroid). A spectrogram's own map is added to the general map of its predicted class,
the sum rescaled to ``[0, 1]`` and thresholded (``threshold``, ~0.7): the binary mask of the RFI's
time-frequency signature, which the chain removes (:class:`ScoreCAMMethod`, cleanup method ``scorecam``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.torch_method import torch_threads
from ..rfi.methods import CleanupMethod, MethodContext, MethodOutput

__all__ = [
    "SHIPPED_WEIGHTS",
    "ScoreCAMMethod",
    "class_general_maps",
    "elbow_k",
    "kmeans_pp",
    "score_cam",
    "score_cam_reference",
    "upsampled_maps",
]

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "scorecam"


def upsampled_maps(acts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(N, K, h, w)`` activations -> ``(N, K, H, W)`` bilinear up-sampled, each map min-max normalised."""
    up = F.interpolate(acts, size=size, mode="bilinear", align_corners=False)
    lo = up.amin(dim=(2, 3), keepdim=True)
    hi = up.amax(dim=(2, 3), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (up - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(up))


def _normalise(m: torch.Tensor) -> torch.Tensor:
    lo = m.amin(dim=(-2, -1), keepdim=True)
    hi = m.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (m - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(m))


@torch.no_grad()
def score_cam(
    model: Any, x: torch.Tensor, target: torch.Tensor | None = None, *, batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score-CAM maps ``(N, H, W)`` in ``[0, 1]`` for inputs ``x`` ``(N, 1, H, W)`` and the weights ``(N, K)``.

    ``model`` has ``features(x) -> (N, K, h, w)`` (the last conv layer) and ``forward(x) -> logits``.
    ``target``: class per sample (None = the predicted class).
    """
    n, _, hh, ww = x.shape
    if target is None:
        target = model(x).argmax(1)
    target = torch.as_tensor(target, dtype=torch.long).reshape(n)
    maps = upsampled_maps(model.features(x), (hh, ww))  # (N, K, H, W)
    k = maps.shape[1]
    base = torch.softmax(model(torch.zeros_like(x[:1])), 1)[0]  # the baseline x_b = 0 (one for all)
    masked = (x * maps).reshape(n * k, 1, hh, ww)  # sample-major: row i*K + j is sample i, channel j
    tgt = target.repeat_interleave(k)
    scores = torch.empty(n * k, dtype=x.dtype)
    for lo in range(0, n * k, batch):
        p = torch.softmax(model(masked[lo : lo + batch]), 1)
        scores[lo : lo + batch] = p.gather(1, tgt[lo : lo + batch, None])[:, 0]
    weights = scores.reshape(n, k) - base[target][:, None]
    cam = torch.relu((weights[:, :, None, None] * maps).sum(1))
    return _normalise(cam), weights


@torch.no_grad()
def score_cam_reference(model: Any, x: torch.Tensor, target: int) -> torch.Tensor:
    """One sample ``(1, 1, H, W)``, one activation channel at a time (the plain form :func:`score_cam` batches)."""
    hh, ww = x.shape[-2:]
    acts = model.features(x)[0]
    base = float(torch.softmax(model(torch.zeros_like(x)), 1)[0, target])
    cam = torch.zeros((hh, ww), dtype=x.dtype)
    for a in acts:
        up = F.interpolate(a[None, None], size=(hh, ww), mode="bilinear", align_corners=False)[0, 0]
        span = float(up.max() - up.min())
        h = (up - up.min()) / span if span > 0 else torch.zeros_like(up)
        w = float(torch.softmax(model(x * h), 1)[0, target]) - base
        cam += w * h
    return _normalise(torch.relu(cam))


# ------------------------------------------------------------------------------ representatives


def kmeans_pp(
    x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 50
) -> tuple[np.ndarray, np.ndarray, float]:
    """K-Means with K-Means++ seeding on rows of ``x`` ``(n, d)``: (centroids ``(k, d)``, labels, inertia)."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    k = min(k, n)
    centers = [x[rng.integers(n)]]
    d2 = ((x - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centers.append(x[rng.choice(n, p=p)])
        d2 = np.minimum(d2, ((x - centers[-1]) ** 2).sum(1))
    c = np.array(centers)
    labels = np.zeros(n, int)
    for _ in range(iterations):
        dist = ((x[:, None, :] - c[None]) ** 2).sum(2)
        new = dist.argmin(1)
        if _ and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            if np.any(labels == j):
                c[j] = x[labels == j].mean(0)
    dist = ((x[:, None, :] - c[None]) ** 2).sum(2)
    labels = dist.argmin(1)
    return c, labels, float(dist[np.arange(n), labels].sum())


def elbow_k(inertias: list[float]) -> int:
    """``k`` (1-based) at the elbow of the inertia curve for k = 1, 2, ...: the point farthest from the chord
    joining the first and last points (both axes scaled to [0, 1])."""
    y = np.asarray(inertias, np.float64)
    if y.size < 3:
        return int(y.size)
    xs = np.linspace(0.0, 1.0, y.size)
    span = y[0] - y[-1]
    ys = (y - y[-1]) / span if span > 0 else np.zeros_like(y)
    # chord from (0, 1) to (1, 0): distance is |x + y - 1| / sqrt(2); below the chord = the bend
    return int(np.argmax(1.0 - xs - ys)) + 1


def class_general_maps(
    model: Any, inputs: np.ndarray, labels: np.ndarray, n_classes: int, *, k_max: int = 8, seed: int = 0
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """``(n_classes, H, W)`` mean Score-CAM over each class's representative samples, and their indices.

    ``inputs``: ``(n, H, W)`` model inputs; ``labels``: their classes. Representatives: per class, K-Means++ on the
    classifier's embedding with ``k`` by the elbow over 1..``k_max``, the real sample nearest each centroid.
    """
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.asarray(inputs, np.float32)[:, None])
    with torch.no_grad():
        emb = model.embed(x).numpy()
    out = np.zeros((n_classes, *inputs.shape[1:]), np.float32)
    chosen: dict[int, list[int]] = {}
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        if idx.size == 0:
            continue
        e = emb[idx]
        fits = [kmeans_pp(e, k, rng) for k in range(1, min(k_max, idx.size) + 1)]
        k = elbow_k([f[2] for f in fits])
        centers = fits[k - 1][0]
        near = sorted({int(idx[np.argmin(((e - ctr) ** 2).sum(1))]) for ctr in centers})
        cams, _w = score_cam(model, x[near], torch.full((len(near),), c))
        out[c] = cams.mean(0).numpy()
        chosen[c] = near
    return out, chosen


# ------------------------------------------------------------------------------ cleanup method


class ScoreCAMMethod(CleanupMethod):
    """Cleanup method ``scorecam``: the Score-CAM denoiser's binary mask (module docstring).

    ``weights``: a weights folder (default: the shipped one); ``threshold``: on the rescaled own + general map;
    ``general``: weight of the class-general map (0 = the spectrogram's own map only); ``batch``: masked inputs
    per forward pass; ``threads``: torch CPU threads (None = as is); ``device``: auto | cpu | cuda[:N];
    ``strict``: refuse an STFT or sensor outside the weights' span.
    """

    name = "scorecam"
    domain = "tf"

    def __init__(
        self,
        weights: str | None = None,
        *,
        threshold: float = 0.7,
        general: float = 1.0,
        batch: int = 128,
        threads: int | None = None,
        device: str = "auto",
        strict: bool = True,
    ):
        from ..models.torch_method import INPUT_TRANSFORM, resolve_device
        from ..models.weights import load_network
        from .rfi_classifier import RFIClassifier

        if not 0 < float(threshold) < 1:
            raise InputError(f"threshold must lie in (0, 1), got {threshold}", where="--param threshold")
        net, bundle, path = load_network(
            weights,
            SHIPPED_WEIGHTS,
            model="scorecam",
            input_transform=INPUT_TRANSFORM,
            build=RFIClassifier,
            missing="no shipped Score-CAM classifier weights; train with `sarpipe train scorecam CONFIG -o DIR` and "
            "pass --param weights=DIR/weights",
        )
        self.weights = str(path)
        self.threshold, self.general = float(threshold), float(general)
        self.batch = int(batch)
        self.threads = None if threads is None else int(threads)
        self.device, self.strict = str(device), bool(strict)
        self._device = resolve_device(device)
        self._bundle = bundle
        self._model = net.to(self._device).eval()

    def check_context(self, ctx: MethodContext) -> None:
        self._bundle.check_applies(ctx, weights=self.weights, strict=self.strict)

    def masks(self, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bool masks of ``spec``'s shape, predicted class per spectrogram)."""
        from ..models.torch_method import spectrogram_to_input

        with torch_threads(self.threads):  # restored after: the caller's threads are not this method's
            z = torch.from_numpy(spectrogram_to_input(spec)[:, None]).to(self._device)
            net = self._model
            with torch.no_grad():
                cls = net(z).argmax(1)
            out = np.zeros(spec.shape, bool)
            rfi = torch.nonzero(cls != 0)[:, 0]
            if rfi.numel():
                cam, _w = score_cam(net, z[rfi], cls[rfi], batch=self.batch)
                general = F.interpolate(net.general_maps[None], size=spec.shape[1:], mode="bilinear")[0]
                total = cam + self.general * general[cls[rfi]]
                total = total / total.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
                out[rfi.cpu().numpy()] = (total > self.threshold).cpu().numpy()
            return out, cls.cpu().numpy()

    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        self.check_context(ctx)
        spec = np.asarray(x)
        if spec.ndim != 3:
            raise ValueError(f"scorecam: expected (n_pulses, n_freq, n_frames) spectrograms, got {spec.shape}")
        if spec.shape[0] == 0:
            return MethodOutput("mask", np.zeros(spec.shape, np.float32))
        return MethodOutput("mask", self.masks(spec)[0].astype(np.float32))

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}
