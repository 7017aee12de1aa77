"""SFSRNet-style super-resolution around any cleanup method (Rixen & Renz, AAAI 2022): ``--sr F``.

The wrapped method runs on the coarse grid of :mod:`sarpipe.spectral.sr_grid` (the STFT at ``F`` times the hop,
``1/F`` of the frames, the whole band); the SR network restores its RFI share on the full grid from the
full-resolution mixture, the up-sampled estimates and the heuristically corrected estimates.

Network (:class:`SRNet`), input ``(B, 5, n_freq, n_frames)`` (:func:`~sarpipe.spectral.sr_grid.sr_features`:
mixture, up-sampled RFI and echo, corrected RFI and echo, each ``ln(1 + a / median |S|)``): convolutions of
``channels = (c1, c2, c3)`` then ``C = 2`` filters (one per source: RFI, echo), 'same' zero padding, ReLU
between them. The paper's filters are 128 / 256 / 128 / C with kernels 5 / 9 / 11 / 11; the shipped CPU weights
use 8 / 8 / 8 / 2 with kernels 5 / 5 / 7 / 7 (the paper's size, ~6.7 M multiply-adds per bin against ~6.5 k, would
cost more than the methods ``--sr`` is meant to make cheaper; at 2048-sample pulses even the earlier 8 / 16 / 8 / 2
with the paper's kernels, ~29 k, took 20-30 % of the wrapped call). Output: the RFI share ``sigmoid(logit(h) + d_rfi - d_echo)`` (= the softmax over the
two sources of ``ln h + d_rfi`` and ``ln(1 - h) + d_echo``), ``h`` the heuristic share, ``d`` the network's two
maps: the network corrects the heuristic, and with its last layer at zero it *is* the heuristic. The share is
returned as the method's mask (``kind="mask"``): the chain removes ``share * S``. A method that returns an
estimate ``R`` is read as its share ``min(|R| / |S|, 1)``, so DAP's in-painted echo is not carried through ``--sr``.

Per-method fine-tuned weights (:data:`TUNED_WEIGHTS`, made by a recipe with ``fine_tune:``,
:mod:`sarpipe.spectral.sr_training`): with the default weights, around a method for which tuned SR weights are
shipped, made from that method's *same* weights (the SHA-256 of its ``model.safetensors``, recorded at tuning), the
tuned SR network restores spectrograms of up to the tuning's ``max_frames`` full frames; everything else gets the
generic network. ``last_weights`` names the folder used by the last call.

A pulse-domain method (``notch``) has no STFT grid to coarsen: it runs on the whole pulses and its estimate is
taken onto the coarse grid, so ``--sr`` around it saves nothing (it measures how well the SR carries an estimate).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..rfi.methods import CleanupMethod, MethodContext, MethodOutput, register_sr
from ..rfi.stft import STFTParams, istft, stft
from .sr_grid import SR_INPUT_TRANSFORM, coarse_frame_count, sr_features

__all__ = [
    "PAPER_ARCHITECTURE",
    "SHIPPED_WEIGHTS",
    "TUNED_WEIGHTS",
    "SRNet",
    "SuperResolvedMethod",
    "count_parameters",
    "load_sr_network",
    "method_weights_sha256",
    "sr_share",
]

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "sr"

#: SR weights fine-tuned for one method (by its registered name), used with the default weights (module docstring).
TUNED_WEIGHTS = {name: Path(__file__).parent / "weights" / f"sr_{name}" for name in ("difnet", "samsnet")}


def method_weights_sha256(method: Any) -> str | None:
    """The SHA-256 of a learned method's ``model.safetensors`` as its weights folder records it (None: none)."""
    import json

    folder = getattr(method, "weights", None)
    try:
        return json.loads((Path(str(folder)) / "config.json").read_text()).get("weights_sha256")
    except (OSError, ValueError, TypeError):
        return None


def load_sr_network(weights: Any, default: Path, *, missing: str, where: str) -> tuple[Any, Any, Path]:
    """An SR network from the folder ``weights`` (None: ``default``), checked as every learned method's weights are
    (:func:`sarpipe.models.weights.load_network`): ``(net, bundle, folder)``."""
    from ..models.weights import load_network

    return load_network(
        weights,
        default,
        model="sfsrnet",
        input_transform=SR_INPUT_TRANSFORM,
        build=SRNet,
        missing=missing,
        where=where,
    )


#: SFSRNet's filters and kernels (its C = 2 sources here: RFI and echo).
PAPER_ARCHITECTURE: dict[str, Any] = {"channels": [128, 256, 128], "kernels": [5, 9, 11, 11], "sources": 2}

_EPS = 1e-4  # the heuristic share is clipped to [eps, 1 - eps] before its logit


class SRNet(nn.Module):
    """The SR network of the module docstring; ``forward(features, heuristic)`` -> RFI-share logits
    ``(B, n_freq, n_frames)``."""

    def __init__(
        self,
        channels: tuple[int, int, int] | list[int] = (8, 8, 8),
        kernels: tuple[int, int, int, int] | list[int] = (5, 5, 7, 7),
        sources: int = 2,
        inputs: int = 5,
        factor: int = 2,
    ):
        super().__init__()
        if len(channels) != 3 or len(kernels) != 4 or min(channels) < 1 or any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"bad SR size channels={channels}, kernels={kernels} (three widths, four odd kernels)")
        if sources != 2:
            raise ValueError("the SAR SR separates two sources (RFI, echo)")
        self.channels, self.kernels = [int(c) for c in channels], [int(k) for k in kernels]
        self.sources, self.inputs, self.factor = int(sources), int(inputs), int(factor)
        widths = [self.inputs, *self.channels, self.sources]
        layers: list[nn.Module] = []
        for i, k in enumerate(self.kernels):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2))
            if i < 3:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        last = self.body[-1]
        nn.init.zeros_(last.weight)  # start from the heuristic
        nn.init.zeros_(last.bias)

    def architecture(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "kernels": self.kernels,
            "sources": self.sources,
            "inputs": self.inputs,
            "factor": self.factor,
        }

    def forward(self, features: torch.Tensor, heuristic: torch.Tensor) -> torch.Tensor:
        d = self.body(features).float()
        h = heuristic.float().clamp(_EPS, 1 - _EPS)
        return torch.log(h) - torch.log1p(-h) + d[:, 0] - d[:, 1]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def sr_share(
    net: SRNet, features: np.ndarray, heuristic: np.ndarray, *, device: Any = None, amp: bool = True, batch: int = 16
) -> np.ndarray:
    """The network's RFI share ``(n, n_freq, n_frames)`` float32 in ``[0, 1]`` for :func:`sr_features` output.

    ``amp``: :func:`~sarpipe.models.torch_method.amp_autocast` (bfloat16 on CUDA and on CPUs with native bf16)."""
    from ..models.torch_method import amp_autocast

    dev = device or next(net.parameters()).device
    out = np.empty(heuristic.shape, np.float32)
    with torch.inference_mode():
        for lo in range(0, features.shape[0], batch):
            f = torch.from_numpy(np.ascontiguousarray(features[lo : lo + batch])).to(dev)
            h = torch.from_numpy(np.ascontiguousarray(heuristic[lo : lo + batch])).to(dev)
            if dev.type == "cpu":
                f = f.contiguous(memory_format=torch.channels_last)
            with amp_autocast(dev, amp):
                out[lo : lo + batch] = torch.sigmoid(net(f, h)).float().cpu().numpy()
    return out


def _factor(value: Any) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = float("nan")
    if not (f >= 2 and f.is_integer()):
        raise InputError(
            f"the SR factor must be a whole number >= 2 (frames kept: 1 in F), got {value!r}", where="--sr"
        )
    return int(f)


@register_sr("sfsrnet")
class SuperResolvedMethod(CleanupMethod):
    """``method`` run on the coarse grid at ``factor``, its RFI share restored by the SR network (module docstring).

    ``weights``: an SR weights folder (default: the shipped one); ``device``: auto | cpu | cuda[:N]; ``amp``:
    bfloat16 autocast where native; ``batch``: spectrograms per forward pass; ``strict``: refuse an STFT, sampling
    rate, chirp band or factor outside what the weights were trained for (False: warn and apply them).
    After each call ``last_seconds`` holds the time of the method and of the SR step [s].
    """

    domain = "tf"

    def __init__(
        self,
        method: CleanupMethod,
        factor: Any,
        *,
        weights: str | None = None,
        device: str = "auto",
        amp: bool = True,
        batch: int = 16,
        strict: bool = True,
    ):
        from ..models.torch_method import resolve_device

        self.factor = _factor(factor)
        net, bundle, path = load_sr_network(
            weights,
            SHIPPED_WEIGHTS,
            missing="no shipped SR weights; train with `sarpipe train sr CONFIG -o DIR` and pass its DIR/weights",
            where="--sr",
        )
        if net.factor != self.factor:
            text = f"the SR weights in {path} were trained for --sr {net.factor}, not {self.factor}"
            if strict:
                raise InputError(text, where="--sr")
            import warnings

            warnings.warn(text, RuntimeWarning, stacklevel=2)
        self.method = method
        self.name = method.name  # type: ignore[misc]  # the record names the method; its `sr` entry says the rest
        self.whole_block = method.whole_block  # type: ignore[misc]
        self.weights, self.device, self.amp = str(path), str(device), bool(amp)
        self.batch, self.strict = int(batch), bool(strict)
        self._device = resolve_device(device)
        self._bundle = bundle
        self._net = net.to(self._device).eval()
        self.last_seconds: dict[str, float] = {}
        self._warned = False
        self._tuned: tuple[Any, int] | None = None  # (network, max full frames)
        self.tuned_weights: str | None = None
        tuned = TUNED_WEIGHTS.get(str(method.name)) if weights is None else None
        if tuned is not None and (tuned / "config.json").is_file():
            tnet, tbundle, _tp = load_sr_network(tuned, tuned, missing="", where="--sr")
            ft = tbundle.training.get("fine_tune", {})
            sha = method_weights_sha256(method)
            if tnet.factor == self.factor and sha is not None and sha == ft.get("method_weights_sha256"):
                self._tuned = (tnet.to(self._device).eval(), int(ft.get("max_frames", 0)))
                self.tuned_weights = str(tuned)
        self.last_weights = self.weights

    def coarse_stft(self, p: STFTParams) -> STFTParams:
        """The coarse grid's STFT: the same window and ``nperseg``, ``factor`` times the hop."""
        try:
            return STFTParams(p.nperseg, p.hop * self.factor, p.window)
        except InputError as exc:
            raise InputError(
                f"--sr {self.factor} needs hop x {self.factor} <= nperseg with an invertible window; "
                f"STFT {p.as_dict()}: {exc}",
                where="--sr",
            ) from exc

    def coarse_share(self, spec: np.ndarray, ctx: MethodContext) -> tuple[np.ndarray, np.ndarray]:
        """(coarse spectrograms, the wrapped method's RFI share on them), both ``(n, n_freq, n_coarse)``."""
        p, f = ctx.stft, self.factor
        pc = self.coarse_stft(p)
        nc = coarse_frame_count(spec.shape[-1], f)
        coarse = np.ascontiguousarray(spec[..., ::f][..., :nc])  # coarse frame k = full frame f k
        tile = getattr(self.method, "tile", None)
        one_tile = isinstance(tile, (list, tuple)) and len(tile) == 2 and spec.shape[-1] <= tile[1]
        if one_tile and getattr(self.method, "pack_gap", None) is None and not self._warned:
            import warnings

            self._warned = True  # one tile either way: no saving, and the coarse tile is mostly padding
            warnings.warn(
                f"--sr {f}: the full grid's {spec.shape[-1]} frames fit in one of {self.method.name}'s {tile[1]}-frame "
                f"tiles, so --sr saves no time unless short pulses are packed (--param pack_gap=0) and the method "
                f"sees a coarse grid that is mostly padding (docs/models/sr.md, short pulses); without packing it "
                f"pays for pulses longer than {tile[1] * p.hop} samples",
                RuntimeWarning,
                stacklevel=3,
            )
        if self.method.domain == "tf":
            cctx = MethodContext(
                attrs=ctx.attrs,
                stft=pc,
                pulse_indices=ctx.pulse_indices,
                n_samples=(nc - 1) * pc.hop,
                extra={**dict(ctx.extra), "sr_factor": f, "sr_full_stft": p},
            )
            out = self.method(coarse, cctx)
            if out.kind == "mask":
                return coarse, np.clip(np.asarray(out.data, np.float32), 0, 1)
            r = np.abs(out.rfi_estimate(coarse))
        else:
            pulses = istft(spec, ctx.n_samples, p)
            r = np.abs(stft(self.method(pulses, ctx).rfi_estimate(pulses), pc)[..., :nc])
        a = np.abs(coarse)
        return coarse, np.clip(np.divide(r, a, out=np.zeros_like(r), where=a > 0), 0, 1).astype(np.float32)

    def restore(self, spec: np.ndarray, coarse: np.ndarray, share: np.ndarray) -> np.ndarray:
        """The SR network's full-grid RFI share from the full spectrograms and the coarse share."""
        feats, heuristic = sr_features(spec, coarse, share, self.factor)
        net, self.last_weights = self._net, self.weights
        if self._tuned is not None and spec.shape[-1] <= self._tuned[1]:
            net, self.last_weights = self._tuned[0], str(self.tuned_weights)
        return sr_share(net, feats, heuristic, device=self._device, amp=self.amp, batch=self.batch)

    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        problems = self._bundle.valid_for.problems(ctx.stft.as_dict(), ctx.fs, ctx.radar_band)
        if problems:
            text = f"the SR weights in {self.weights} do not apply here: " + "; ".join(problems)
            if self.strict:
                raise InputError(text, where="--sr")
            import warnings

            warnings.warn(text, RuntimeWarning, stacklevel=2)
        spec = np.asarray(x)
        if spec.ndim != 3:
            raise ValueError(f"sr: expected (n_pulses, n_freq, n_frames) spectrograms, got shape {spec.shape}")
        if spec.shape[0] == 0:
            return MethodOutput("mask", np.zeros(spec.shape, np.float32))
        t0 = time.perf_counter()
        coarse, share = self.coarse_share(spec, ctx)
        t1 = time.perf_counter()
        mask = self.restore(spec, coarse, share)
        self.last_seconds = {"method": t1 - t0, "sr": time.perf_counter() - t1}
        return MethodOutput("mask", mask)

    def params(self) -> dict[str, Any]:
        inner = self.method.params()
        out = {**inner, "sr_model": "sfsrnet", "sr_factor": self.factor, "sr_weights": self.weights}
        if self.tuned_weights is not None:
            out["sr_tuned_weights"] = self.tuned_weights
            out["sr_tuned_max_frames"] = self._tuned[1]
        return out
