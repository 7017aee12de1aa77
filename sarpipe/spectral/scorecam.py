"""Score-CAM saliency (Wang et al., CVPR-W 2020) and the Score-CAM denoiser (Elias, IJCNN 2023), batched.

Score-CAM of class ``c`` for input ``x`` (``(1, H, W)``) and a classifier whose last convolutional layer gives
``K`` activation maps ``A_k`` (``h x w``):

1. ``H_k`` = ``A_k`` up-sampled bilinearly to ``H x W``, then min-max normalised to ``[0, 1]`` (0 where constant);
2. ``w_k = p_c(x * H_k) - p_c(x_b)``: the increase in the softmax probability of ``c`` that the masked input
   causes over the baseline ``x_b = 0`` (the class-score increase);
3. ``L = ReLU(sum_k w_k H_k)``, min-max normalised to ``[0, 1]``.

The ``K`` masked inputs of every sample go through the classifier in batches of ``batch`` (:func:`score_cam`);
:func:`score_cam_reference` is the one-channel-at-a-time form it must equal.

For a multi-label classifier (``score_activation = "sigmoid"``: one independent probability per class) the class
score is the sigmoid of the class's logit, and :func:`score_cam_all_classes` gives the map of every class the
classifier calls present from one pass of the ``K`` masked inputs (they do not depend on the class), combined by
the maximum; :func:`score_cam_reference` per class is its one-at-a-time form.

Denoiser: the class-general map of each class is the mean Score-CAM of that class's most representative training
samples (:func:`class_general_maps`: K-Means++ on the classifier's embedding, ``k`` by the elbow method, the real
sample nearest each centroid). A spectrogram's own map of each present class is added to that class's general map
and the sum rescaled to ``[0, 1]``; the maximum over the present classes (:func:`rfi_saliency`) is thresholded
(``threshold``, ~0.7 in the paper): the binary mask of the RFI's time-frequency signature, which the chain removes
(:class:`ScoreCAMMethod`, cleanup method ``scorecam``).

Refinement (ours, not the paper's; off unless ``refine_pfa`` is given, :func:`refine_mask`): inside the Score-CAM
mask only the cells that a per-frame CFAR finds above the pulse's own robust background (the running median of
``|S|^2`` along frequency, :func:`sarpipe.rfi.notch.cfar_mask`) are kept: the saliency says *where* the RFI is,
the CFAR keeps its thin lines instead of the blob around them.
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
    "class_scores",
    "elbow_k",
    "kmeans_pp",
    "refine_mask",
    "rfi_saliency",
    "score_cam",
    "score_cam_all_classes",
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


def class_scores(model: Any, x: torch.Tensor) -> torch.Tensor:
    """Class scores ``(N, C)`` Score-CAM weighs by: softmax of the logits, or their sigmoids for a multi-label
    model (``model.score_activation == "sigmoid"``)."""
    logits = model(x)
    if getattr(model, "score_activation", "softmax") == "sigmoid":
        return torch.sigmoid(logits)
    return torch.softmax(logits, 1)


def _masked_scores(
    model: Any, x: torch.Tensor, maps: torch.Tensor, base: torch.Tensor, batch: int, amp: bool = False
) -> torch.Tensor:
    """Class scores ``(N, K, C)`` of the masked inputs ``x * maps``, ``batch`` at a time. A constant activation map
    normalises to 0, so its masked input is the zero baseline: it scores ``base`` and is not run (exact).
    ``amp``: these forward passes (the method's cost) in :func:`~sarpipe.models.torch_method.amp_autocast`, inputs
    channels-last on the CPU; the maps, the baseline and the presence scores stay float32."""
    from ..models.torch_method import amp_autocast

    fast = amp_autocast(x.device, amp)
    channels_last = x.device.type == "cpu" and isinstance(fast, torch.autocast)  # the bf16 path only
    n, k = maps.shape[:2]
    live = torch.nonzero(maps.flatten(2).amax(2).reshape(-1) > 0)[:, 0]  # rows i*K + j (sample i, channel j)
    scores = base.to(x.dtype).repeat(n * k, 1)
    flat_maps = maps.reshape(n * k, 1, *maps.shape[2:])
    sample = live // k
    for lo in range(0, live.numel(), batch):
        rows = live[lo : lo + batch]
        masked = x[sample[lo : lo + batch]] * flat_maps[rows]
        if channels_last:
            masked = masked.contiguous(memory_format=torch.channels_last)
        with fast:
            scores[rows] = class_scores(model, masked).to(scores.dtype)
    return scores.reshape(n, k, -1)


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
        target = class_scores(model, x).argmax(1)
    target = torch.as_tensor(target, dtype=torch.long).reshape(n)
    maps = upsampled_maps(model.features(x), (hh, ww))  # (N, K, H, W)
    k = maps.shape[1]
    base = class_scores(model, torch.zeros_like(x[:1]))[0]  # the baseline x_b = 0 (one for all)
    all_scores = _masked_scores(model, x, maps, base, batch)  # (N, K, C)
    weights = all_scores.gather(2, target[:, None, None].expand(n, k, 1))[:, :, 0] - base[target][:, None]
    cam = torch.relu((weights[:, :, None, None] * maps).sum(1))
    return _normalise(cam), weights


@torch.no_grad()
def score_cam_all_classes(
    model: Any, x: torch.Tensor, present: torch.Tensor, *, batch: int = 64, amp: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score-CAM of every present class: (the maximum over each sample's present classes ``(N, H, W)``, 0 where
    none; the per-class maps ``(N, C, H, W)``, each normalised to ``[0, 1]``).

    ``present``: ``(N, C)`` bool. The ``K`` masked inputs of a sample are the same for every class, so one pass
    scores them all; each class's weights are its score increases over the zero baseline. ``amp``: that pass in
    reduced precision (:func:`_masked_scores`).
    """
    n, _, hh, ww = x.shape
    present = torch.as_tensor(present, dtype=torch.bool).reshape(n, -1)
    maps = upsampled_maps(model.features(x), (hh, ww))  # (N, K, H, W)
    base = class_scores(model, torch.zeros_like(x[:1]))[0]  # (C,)
    weights = _masked_scores(model, x, maps, base, batch, amp) - base  # (N, K, C)
    cams = _normalise(torch.relu(torch.einsum("nkc,nkhw->nchw", weights, maps)))
    combined = torch.where(present[:, :, None, None], cams, torch.zeros_like(cams)).amax(1)
    return combined, cams


@torch.no_grad()
def score_cam_reference(model: Any, x: torch.Tensor, target: int) -> torch.Tensor:
    """One sample ``(1, 1, H, W)``, one activation channel at a time (the plain form :func:`score_cam` batches)."""
    hh, ww = x.shape[-2:]
    acts = model.features(x)[0]
    base = float(class_scores(model, torch.zeros_like(x))[0, target])
    cam = torch.zeros((hh, ww), dtype=x.dtype)
    for a in acts:
        up = F.interpolate(a[None, None], size=(hh, ww), mode="bilinear", align_corners=False)[0, 0]
        span = float(up.max() - up.min())
        h = (up - up.min()) / span if span > 0 else torch.zeros_like(up)
        w = float(class_scores(model, x * h)[0, target]) - base
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

    ``inputs``: ``(n, H, W)`` model inputs; ``labels``: their classes ``(n,)`` or multi-hot ``(n, n_classes)`` (a
    sample counts for every class it holds). Representatives: per class, K-Means++ on the
    classifier's embedding with ``k`` by the elbow over 1..``k_max``, the real sample nearest each centroid.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    holds = labels > 0.5 if labels.ndim == 2 else labels[:, None] == np.arange(n_classes)
    x = torch.from_numpy(np.asarray(inputs, np.float32)[:, None])
    with torch.no_grad():
        emb = model.embed(x).numpy()
    out = np.zeros((n_classes, *inputs.shape[1:]), np.float32)
    chosen: dict[int, list[int]] = {}
    for c in range(n_classes):
        idx = np.flatnonzero(holds[:, c])
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


# ------------------------------------------------------------------------------ denoiser


def rfi_saliency(
    net: Any, spec: np.ndarray, *, general: float = 1.0, batch: int = 128, chunk: int = 32, amp: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(saliency ``(N, F, T)`` float32 in ``[0, 1]``, present kinds ``(N, C)`` bool) of complex spectrograms.

    Per present RFI kind (score > 0.5; class 0 ``none`` is never a kind to remove): its own Score-CAM map plus
    ``general`` x its class-general map (``net.general_maps``), rescaled to peak 1; the maximum over the present
    kinds (0 for a pulse with none). Pulses go through in chunks of ``chunk`` (memory: ``chunk x K`` maps).
    ``amp``: the masked inputs' scores in reduced precision (:func:`_masked_scores`).
    """
    from ..models.torch_method import spectrogram_to_input

    device = next(net.parameters()).device
    z_all = torch.from_numpy(spectrogram_to_input(spec)[:, None])
    out = np.zeros(spec.shape, np.float32)
    present_all = np.zeros((spec.shape[0], net.n_classes), bool)
    gmaps = F.interpolate(net.general_maps[None], size=spec.shape[1:], mode="bilinear", align_corners=False)[0]
    for lo in range(0, spec.shape[0], chunk):
        z = z_all[lo : lo + chunk].to(device)
        with torch.no_grad():
            present = class_scores(net, z) > 0.5
        present[:, 0] = False
        present_all[lo : lo + chunk] = present.cpu().numpy()
        rows = torch.nonzero(present.any(1))[:, 0]
        if not rows.numel():
            continue
        _combined, cams = score_cam_all_classes(net, z[rows], present[rows], batch=batch, amp=amp)
        total = cams + general * gmaps[None]
        total = total / total.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
        total = torch.where(present[rows][:, :, None, None], total, torch.zeros_like(total)).amax(1)
        out[lo + rows.cpu().numpy()] = total.cpu().numpy()
    return out, present_all


def refine_mask(
    mask: np.ndarray,
    spec: np.ndarray,
    pfa: float,
    segments: list[tuple[int, int]] | None = None,
    *,
    window_bins: int = 31,
    dilate_bins: int = 1,
) -> np.ndarray:
    """``mask`` (``(..., F, T)`` bool) kept only where the per-frame CFAR of ``spec`` (same shape) fires: ``|S|^2``
    above ``-ln(pfa)/ln 2`` times its running median over ``window_bins`` frequency bins (inside and outside the
    radar band apart, ``segments``), detections widened by ``dilate_bins`` in frequency (window leakage)."""
    from ..rfi.notch import cfar_mask

    s = np.swapaxes(np.asarray(spec), -1, -2)  # (..., T, F): the CFAR runs along frequency
    power = s.real.astype(np.float32) ** 2 + s.imag.astype(np.float32) ** 2
    hit = cfar_mask(power, pfa, window_bins, segments)
    grown = hit.copy()
    for k in range(1, int(dilate_bins) + 1):
        grown[..., k:] |= hit[..., :-k]
        grown[..., :-k] |= hit[..., k:]
    return np.asarray(mask, bool) & np.swapaxes(grown, -1, -2)


# ------------------------------------------------------------------------------ cleanup method


class ScoreCAMMethod(CleanupMethod):
    """Cleanup method ``scorecam``: the Score-CAM denoiser's binary mask (module docstring).

    ``weights``: a weights folder (default: the shipped one); ``threshold``: on the saliency (None = the one the
    training tuned for this form, 0.7 if it tuned none); ``general``: weight of the class-general maps (0 = the
    spectrogram's own maps only); ``refine_pfa``: None = the paper's form; a false-alarm rate (or ``"tuned"``, the
    training's choice) = our CFAR refinement inside the mask (:func:`refine_mask`); ``batch``: masked inputs per
    forward pass; ``threads``: torch CPU threads (None = as is); ``device``: auto | cpu | cuda[:N]; ``amp``: the
    masked inputs' forward passes in bfloat16 where native (CUDA, CPUs with AMX / AVX-512 BF16; docs/models/
    scorecam.md measures the change); ``strict``: refuse an STFT or sensor outside the weights' span.
    """

    name = "scorecam"
    domain = "tf"

    def __init__(
        self,
        weights: str | None = None,
        *,
        threshold: float | None = None,
        general: float = 1.0,
        refine_pfa: float | str | None = None,
        batch: int = 128,
        threads: int | None = None,
        device: str = "auto",
        amp: bool = True,
        strict: bool = True,
    ):
        from ..models.torch_method import INPUT_TRANSFORM, resolve_device
        from ..models.weights import load_network
        from .rfi_classifier import RFIClassifier

        net, bundle, path = load_network(
            weights,
            SHIPPED_WEIGHTS,
            model="scorecam",
            input_transform=INPUT_TRANSFORM,
            build=RFIClassifier,
            missing="no shipped Score-CAM classifier weights; train with `sarpipe train scorecam CONFIG -o DIR` and "
            "pass --param weights=DIR/weights",
        )
        tuned = dict(bundle.training.get("tuned") or {})
        if refine_pfa == "tuned":
            if "refine_pfa" not in tuned:
                raise InputError(f"the weights {path} hold no tuned refine_pfa", where="--param refine_pfa")
            refine_pfa = tuned["refine_pfa"]
        if refine_pfa is not None and not 0 < float(refine_pfa) < 1:
            raise InputError(f"refine_pfa must lie in (0, 1), got {refine_pfa}", where="--param refine_pfa")
        if threshold is None:
            threshold = tuned.get("threshold" if refine_pfa is None else "refine_threshold", 0.7)
        if not 0 < float(threshold) < 1:
            raise InputError(f"threshold must lie in (0, 1), got {threshold}", where="--param threshold")
        self.weights = str(path)
        self.threshold, self.general = float(threshold), float(general)
        self.refine_pfa = None if refine_pfa is None else float(refine_pfa)
        self.batch = int(batch)
        self.threads = None if threads is None else int(threads)
        self.device, self.amp, self.strict = str(device), bool(amp), bool(strict)
        self._device = resolve_device(device)
        self._bundle = bundle
        self._model = net.to(self._device).eval()

    def check_context(self, ctx: MethodContext) -> None:
        self._bundle.check_applies(ctx, weights=self.weights, strict=self.strict)

    def masks(self, spec: np.ndarray, segments: list[tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(bool masks of ``spec``'s shape, present RFI kinds ``(N, 4)`` bool; ``none`` is never set).
        ``segments``: the refinement's in-band / out-of-band frequency runs (None = one run)."""
        with torch_threads(self.threads):  # restored after: the caller's threads are not this method's
            sal, present = rfi_saliency(self._model, spec, general=self.general, batch=self.batch, amp=self.amp)
        mask = sal > self.threshold
        if self.refine_pfa is not None:
            mask = refine_mask(mask, spec, self.refine_pfa, segments)
        return mask, present

    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        from ..rfi.notch import band_segments, in_band

        self.check_context(ctx)
        spec = np.asarray(x)
        if spec.ndim != 3:
            raise ValueError(f"scorecam: expected (n_pulses, n_freq, n_frames) spectrograms, got {spec.shape}")
        if spec.shape[0] == 0:
            return MethodOutput("mask", np.zeros(spec.shape, np.float32))
        segs = band_segments(in_band(ctx.frequencies, ctx.radar_band)) if self.refine_pfa is not None else None
        return MethodOutput("mask", self.masks(spec, segs)[0].astype(np.float32))

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}
