"""Sams-Net, sliced-attention source separation on magnitude spectrograms (Li, Chen, Hou, Li, 2020).

Tensors are ``(B, channels, F, T)``: ``F`` frequency bins, ``T`` time frames. Network (:class:`SamsNet`):

- embedding: the mixture magnitude ``|X|`` (1 channel), divided by its RMS over each sample's bins (the mask is
  then independent of the mixture's scale, which for SAR spans many decades), -> 3x3 conv to ``d`` channels;
- ``modules`` x :class:`SlicedAttentionBlock`:
  1. :class:`SlicedSelfAttention`: 1x1 convs give ``Q``, ``K``, ``V`` (``d`` channels each); the ``T`` frames are
     cut into ``slices`` equal slices of ``L = ceil(T / slices)`` frames; per head (``d / heads`` channels) a
     token is one frame, its feature the head's channels over all ``F`` bins (``D = d / heads * F``), and
     scaled dot-product attention ``softmax(Q K^T / sqrt(D)) V`` runs among the ``L`` frames of each slice only;
  2. a 3x3 conv merges the heads' concatenated outputs; residual + LayerNorm;
  3. depthwise-separable conv: 3x3 depthwise, 1x1 pointwise, then ReLU; residual + LayerNorm.
  LayerNorm normalises the ``d`` channels of each time-frequency bin (the transformer's per-token norm).
- output: a 1x1 conv to one map per source and a softmax over the sources (``mask="softmax"``, the masks sum to
  1 in every bin, so the estimates' magnitudes add up to the mixture's) or an independent sigmoid per source
  (``mask="sigmoid"``). Estimate ``k`` is ``M_k |X| exp(i angle X)``: the mixture's phase (:func:`separate`).

Frames not divisible by ``slices``: the frames are zero-padded at the end to ``slices * L``, the padded frames are
excluded from every softmax as keys (a large negative logit), and the output is cropped back to ``T``; real frames
therefore never see padding, and a frame's output depends only on the real frames of its own slice.

Training (:func:`train_samsnet`): MSE between the estimated and the true source magnitudes, Adam (lr 1e-4, the
paper's). The 3x3 convs (embedding, head merge, depthwise) are the only layers that mix neighbouring frames, so a
module as a whole sees one frame beyond a slice edge per 3x3 conv; the attention itself never crosses an edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SamsNet",
    "SlicedAttentionBlock",
    "SlicedSelfAttention",
    "separate",
    "sliced_attention",
    "train_samsnet",
]

_MASKED = -1e9  # logit of a padded key: finite, so an all-padding slice gives no NaN (and is cropped anyway)


def sliced_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slices: int, heads: int) -> torch.Tensor:
    """Multi-head scaled dot-product attention among the frames of each time slice.

    ``q``, ``k``, ``v``: ``(B, C, F, T)`` with ``C`` divisible by ``heads``. Returns ``(B, C, F, T)``, the heads'
    outputs concatenated along the channels in head order. ``T`` not divisible by ``slices``: zero-padded to
    ``slices * ceil(T / slices)`` frames, padded keys masked out, output cropped to ``T``.
    """
    b, c, f, t = q.shape
    if c % heads:
        raise ValueError(f"{c} channels do not split into {heads} heads")
    length = -(-t // slices)
    pad = slices * length - t

    def tokens(x: torch.Tensor) -> torch.Tensor:
        # (B, C, F, T) -> (B, heads, slices, L, D) with D = C / heads * F
        x = F.pad(x, (0, pad))
        x = x.reshape(b, heads, c // heads, f, slices, length)
        return x.permute(0, 1, 4, 5, 2, 3).reshape(b, heads, slices, length, (c // heads) * f)

    qt, kt, vt = tokens(q), tokens(k), tokens(v)
    logits = qt @ kt.transpose(-1, -2) / math.sqrt(qt.shape[-1])  # (B, heads, slices, L, L)
    if pad:
        real = torch.arange(slices * length, device=q.device).reshape(slices, length) < t
        logits = logits.masked_fill(~real[None, None, :, None, :], _MASKED)
    out = torch.softmax(logits, dim=-1) @ vt  # (B, heads, slices, L, D)
    out = out.reshape(b, heads, slices, length, c // heads, f).permute(0, 1, 4, 5, 2, 3)
    return out.reshape(b, c, f, slices * length)[..., :t]


class SlicedSelfAttention(nn.Module):
    """1x1 convs to ``Q``, ``K``, ``V`` and :func:`sliced_attention` (no head merge: that is the block's 3x3 conv)."""

    def __init__(self, channels: int, heads: int, slices: int):
        super().__init__()
        self.heads = heads
        self.slices = slices
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sliced_attention(self.query(x), self.key(x), self.value(x), self.slices, self.heads)


def _channel_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SlicedAttentionBlock(nn.Module):
    """Sliced attention, 3x3 head-merge conv, residual + LayerNorm; depthwise-separable conv (3x3 depthwise,
    1x1 pointwise, ReLU), residual + LayerNorm."""

    def __init__(self, channels: int, heads: int, slices: int):
        super().__init__()
        self.attention = SlicedSelfAttention(channels, heads, slices)
        self.merge = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm_attention = nn.LayerNorm(channels)
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.norm_conv = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _channel_norm(self.norm_attention, x + self.merge(self.attention(x)))
        return _channel_norm(self.norm_conv, x + F.relu(self.pointwise(self.depthwise(x))))


class SamsNet(nn.Module):
    """Mixture magnitude ``(B, 1, F, T)`` -> masks ``(B, sources, F, T)`` (see the module docstring).

    Paper configuration: ``channels=64, heads=2, slices=12, modules=3``.
    """

    def __init__(
        self,
        sources: int = 2,
        channels: int = 64,
        heads: int = 2,
        slices: int = 12,
        modules: int = 3,
        mask: Literal["softmax", "sigmoid"] = "softmax",
    ):
        super().__init__()
        if mask not in ("softmax", "sigmoid"):
            raise ValueError(f"mask must be 'softmax' or 'sigmoid', not {mask!r}")
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.mask = mask
        self.embed = nn.Conv2d(1, channels, 3, padding=1)
        self.blocks = nn.ModuleList(SlicedAttentionBlock(channels, heads, slices) for _ in range(modules))
        self.to_masks = nn.Conv2d(channels, sources, 1)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        rms = magnitude.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
        x = self.embed(magnitude / (rms + 1e-12))
        for block in self.blocks:
            x = block(x)
        logits = self.to_masks(x)
        return torch.softmax(logits, dim=1) if self.mask == "softmax" else torch.sigmoid(logits)


def separate(model: SamsNet, mixture: torch.Tensor) -> torch.Tensor:
    """Complex mixture spectrograms ``(B, F, T)`` -> complex source estimates ``(B, sources, F, T)``: each mask
    times the mixture magnitude, with the mixture's phase."""
    magnitude = mixture.abs()
    masks = model(magnitude[:, None])
    return masks * mixture[:, None]  # M |X| exp(i angle X) = M X


def train_samsnet(
    model: SamsNet,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | Callable[[], tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float = 1e-4,
) -> list[float]:
    """Adam on the MSE between ``mask * |X|`` and the true source magnitudes; returns the loss per step.

    ``batches`` yields (or, if callable, returns) ``(mixture_magnitude (B, 1, F, T), source_magnitudes (B, S, F, T))``.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        mix, sources = batches() if callable(batches) else next(batches)
        loss = F.mse_loss(model(mix) * mix, sources)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses
