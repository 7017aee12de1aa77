"""DIFNet (Lyu, Fang, Tian, J. Infrared Millim. Waves 43(6), 2024): a U-shaped window-attention network that
maps the magnitude of one pulse's spectrogram to its RFI mask, and the cleanup method ``difnet`` built on it.

Architecture (``C`` channels, ``L`` levels, ``M x M`` windows), tensors ``(B, channels, H, W)``:

- input projection: three 3x3 convolutions with ReLU, 1 -> C -> C -> C;
- encoder level ``i = 0..L-1`` (``C_i = C 2^i`` channels, size ``H / 2^i``): a Transformer block, then a 4x4
  stride-2 convolution (half size, double channels);
- bottleneck: a Transformer block at ``C 2^L`` channels;
- decoder level ``i = L-1..0``: a 2x2 stride-2 transposed convolution to ``C_i`` channels (double size), the
  encoder's level-``i`` output concatenated (skip connection), a Transformer block at ``2 C_i`` channels;
- output projection: a 3x3 convolution 2C -> 1, then a sigmoid (the RFI mask, 1 = RFI).

Transformer block (the paper's eqs. 6-7): ``X' = LocalMAM(LN(X)) + X``, ``X'' = CNNs(LN(X')) + X'``, LN over
channels; LocalMAM: multi-head self-attention inside non-overlapping ``M x M`` windows,
``softmax(Q K^T / sqrt(d) + B) V`` with a learned relative position bias ``B`` looked up from a table of
``(2M - 1)^2`` entries per head, then a linear projection; CNNs: three 3x3 convolutions with ReLU between them.
Heads: ``heads`` at C channels, doubling with the channels (a constant head width ``C / heads``).

Inputs of any ``H x W`` are padded by reflection to a multiple of ``M 2^L`` and the output is cropped back.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..rfi.methods import MethodContext
from .torch_method import INPUT_TRANSFORM, TorchMethod
from .weights import load_network

__all__ = [
    "PAPER_ARCHITECTURE",
    "SHIPPED_WEIGHTS",
    "DIFNet",
    "DIFNetBlock",
    "DIFNetMethod",
    "LocalWindowAttention",
    "count_parameters",
    "relative_position_index",
    "window_merge",
    "window_partition",
]

#: Where the weights shipped with sarpipe live (a weights folder, :mod:`sarpipe.models.weights`).
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "difnet"

#: The paper's configuration (its inputs are 512 x 512).
PAPER_ARCHITECTURE: dict[str, Any] = {"channels": 16, "levels": 4, "window": 8, "heads": 1}


def window_partition(x: torch.Tensor, m: int) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * H/m * W/m, m*m, C)``: non-overlapping ``m x m`` windows, row-major inside each."""
    b, h, w, c = x.shape
    x = x.view(b, h // m, m, w // m, m, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, m * m, c)


def window_merge(windows: torch.Tensor, m: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * H/m * W/m, m*m, C)`` -> ``(B, H, W, C)``."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // m) * (w // m))
    x = windows.view(b, h // m, w // m, m, m, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def relative_position_index(m: int) -> torch.Tensor:
    """``(m*m, m*m)`` int64: for window positions ``i = (yi, xi)``, ``j = (yj, xj)`` the table row
    ``(yi - yj + m - 1) (2m - 1) + (xi - xj + m - 1)`` in ``[0, (2m - 1)^2)``; equal offsets share a row."""
    ys, xs = torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # (2, m*m)
    rel = coords[:, :, None] - coords[:, None, :] + (m - 1)  # (2, N, N), each in [0, 2m-2]
    return rel[0] * (2 * m - 1) + rel[1]


class LocalWindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with the learned relative position bias (eqs. 8-11)."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"{dim} channels do not split into {heads} heads")
        self.heads, self.window = heads, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", relative_position_index(window), persistent=False)

    def bias(self) -> torch.Tensor:
        """The bias ``B``, ``(heads, M*M, M*M)``."""
        n = self.window * self.window
        return self.bias_table[self.bias_index.reshape(-1)].reshape(n, n, self.heads).permute(2, 0, 1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        bw, n, c = windows.shape
        qkv = self.qkv(windows).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        bias = self.bias().unsqueeze(0).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # softmax(QK^T/sqrt(d) + B) V
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class DIFNetBlock(nn.Module):
    """``X' = LocalMAM(LN(X)) + X``, ``X'' = CNNs(LN(X')) + X'`` on ``(B, C, H, W)`` (H, W multiples of M)."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim)
        self.attn = LocalWindowAttention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.cnn = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        t = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        win = window_partition(self.norm1(t), self.window)
        t = t + window_merge(self.attn(win), self.window, h, w)
        y = self.cnn(self.norm2(t).permute(0, 3, 1, 2))
        return t.permute(0, 3, 1, 2) + y


class DIFNet(nn.Module):
    """The U-shaped network of the module docstring; ``forward`` maps ``(B, 1, H, W)`` inputs to masks in [0, 1]."""

    def __init__(self, channels: int = 16, levels: int = 4, window: int = 8, heads: int = 1):
        super().__init__()
        if channels < 1 or levels < 0 or window < 1 or heads < 1:
            raise ValueError(f"bad DIFNet size channels={channels}, levels={levels}, window={window}, heads={heads}")
        if channels % heads:
            raise ValueError(f"channels={channels} must be a multiple of heads={heads}")
        self.channels, self.levels, self.window, self.heads = channels, levels, window, heads
        c = channels
        self.input_proj = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.encoders = nn.ModuleList([DIFNetBlock(c << i, heads << i, window) for i in range(levels)])
        self.downs = nn.ModuleList([nn.Conv2d(c << i, c << (i + 1), 4, stride=2, padding=1) for i in range(levels)])
        self.bottleneck = DIFNetBlock(c << levels, heads << levels, window)
        ups, decoders = [], []
        for i in reversed(range(levels)):
            c_in = c << levels if i == levels - 1 else 2 * (c << (i + 1))
            ups.append(nn.ConvTranspose2d(c_in, c << i, 2, stride=2))
            decoders.append(DIFNetBlock(2 * (c << i), heads << (i + 1), window))
        self.ups, self.decoders = nn.ModuleList(ups), nn.ModuleList(decoders)
        self.output_proj = nn.Conv2d(2 * c if levels else c, 1, 3, padding=1)

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this (``M 2^L``)."""
        return self.window << self.levels

    def architecture(self) -> dict[str, int]:
        return {"channels": self.channels, "levels": self.levels, "window": self.window, "heads": self.heads}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        k = self.multiple
        ph, pw = (-h) % k, (-w) % k
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        y = self.input_proj(x)
        skips = []
        for block, down in zip(self.encoders, self.downs):
            y = block(y)
            skips.append(y)
            y = down(y)
        y = self.bottleneck(y)
        for up, block, skip in zip(self.ups, self.decoders, reversed(skips)):
            y = block(torch.cat([up(y), skip], dim=1))
        return torch.sigmoid(self.output_proj(y))[..., :h, :w]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class DIFNetMethod(TorchMethod):
    """Cleanup method ``difnet``: the RFI mask predicted by DIFNet from each spectrogram's magnitude.

    ``weights``: a weights folder (default: the shipped one, :data:`SHIPPED_WEIGHTS`); ``strict``: refuse an STFT,
    sampling rate or chirp bandwidth outside what the weights are valid for (False: apply anyway, with a warning).
    The other parameters are :class:`~sarpipe.models.torch_method.TorchMethod`'s; ``tile`` defaults to the tile
    the weights were trained on (``tile=whole``: no tiling; the network is convolutional and windowed, so it runs
    on whole spectrograms too, with fewer padded bins but more memory).
    """

    name = "difnet"

    def __init__(self, weights: str | None = None, *, strict: bool = True, **kw: Any):
        super().__init__(**kw)
        net, bundle, path = load_network(
            weights,
            SHIPPED_WEIGHTS,
            model="difnet",
            input_transform=INPUT_TRANSFORM,
            build=DIFNet,
            missing="no shipped DIFNet weights yet; train with sarpipe.models.training.train_difnet(config, "
            "out_dir) (`sarpipe train difnet CONFIG.yaml -o DIR`) and pass --param weights=DIR/weights",
        )
        self.weights = str(path)
        self.strict = bool(strict)
        if self.tile is None and bundle.tile:
            self.tile = list(bundle.tile)
        self._bundle = bundle
        self.set_model(net)

    def check_context(self, ctx: MethodContext) -> None:
        self._bundle.check_applies(ctx, weights=self.weights, strict=self.strict)

    def bytes_per_sample(self, height: int, width: int) -> int:
        # level-0 activations dominate: ~40 float32 maps of C channels plus the attention of each window
        net = self._model
        k = net.multiple
        hp, wp = math.ceil(height / k) * k, math.ceil(width / k) * k
        return int(4 * hp * wp * net.channels * 48)

    def pack_align(self, tile_frames: int) -> int:
        # level-0 attention windows then never hold two pulses (deeper levels' windows and the convs do)
        return self._model.window

    def pack_row_frames(self, tile_frames: int) -> int:
        # windowed and convolutional: a frame's mask does not depend on the row's width, so rows of 8 tiles
        return 8 * tile_frames
