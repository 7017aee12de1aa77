"""Cleanup method ``samsnet``: Sams-Net separates each pulse's spectrogram into radar echo and RFI; the RFI
source's estimate is subtracted in the time-frequency domain.

Per spectrogram ``S`` (the chain's STFT): the model input is ``log1p-median-std/1`` of ``S``
(:func:`sarpipe.models.torch_method.spectrogram_to_input`), cut into the tiles the weights were trained on and
blended as every :class:`~sarpipe.models.torch_method.TorchMethod` does; Sams-Net gives a magnitude mask per source
(softmax over echo and RFI: ``M_E + M_R = 1``), and the RFI estimate is ``M_R |S| exp(i angle S) = M_R S`` (the
mixture's phase). The chain subtracts it, leaving the echo source's estimate ``M_E S``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..errors import InputError
from ..models.torch_method import INPUT_TRANSFORM, TorchMethod
from ..models.weights import load_network
from ..rfi.methods import MethodContext, MethodOutput
from .samsnet import SamsNet
from .samsnet_training import SOURCES

__all__ = ["SHIPPED_WEIGHTS", "SamsNetMethod", "SourceMask"]

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "samsnet"


class SourceMask(nn.Module):
    """One source's mask of a :class:`SamsNet`: ``(B, 1, F, T)`` input -> ``(B, 1, F, T)`` mask of ``source``."""

    def __init__(self, net: SamsNet, source: int):
        super().__init__()
        self.net, self.source = net, int(source)

    def forward(self, x: Any) -> Any:
        return self.net(x)[:, self.source : self.source + 1]


class SamsNetMethod(TorchMethod):
    """Cleanup method ``samsnet`` (module docstring): the RFI source's estimate ``M_R S``.

    ``weights``: a weights folder (default: the shipped one, :data:`SHIPPED_WEIGHTS`); ``strict``: refuse an STFT,
    sampling rate or chirp bandwidth outside what the weights are valid for (False: apply anyway, with a warning).
    The other parameters are :class:`~sarpipe.models.torch_method.TorchMethod`'s; ``tile`` defaults to the tile
    the weights were trained on (the slices cut that tile's frames, so another tile changes what attends to what).
    """

    name = "samsnet"

    def __init__(self, weights: str | None = None, *, strict: bool = True, **kw: Any):
        super().__init__(**kw)

        def two_sources(net: SamsNet, cfg_path: Path) -> None:
            if net.to_masks.out_channels != len(SOURCES):
                raise InputError(
                    f"{cfg_path}: a Sams-Net of {net.to_masks.out_channels} sources, not {list(SOURCES)}",
                    where=str(cfg_path),
                )

        net, bundle, path = load_network(
            weights,
            SHIPPED_WEIGHTS,
            model="samsnet",
            input_transform=INPUT_TRANSFORM,
            build=SamsNet,
            missing="no shipped Sams-Net weights; train with `sarpipe train samsnet CONFIG.yaml -o DIR` and pass "
            "--param weights=DIR/weights",
            check=two_sources,
        )
        self.weights = str(path)
        self.strict = bool(strict)
        if self.tile is None and bundle.tile:
            self.tile = list(bundle.tile)
        self._bundle = bundle
        self.set_model(SourceMask(net, SOURCES.index("rfi")))

    def check_context(self, ctx: MethodContext) -> None:
        self._bundle.check_applies(ctx, weights=self.weights, strict=self.strict)

    def bytes_per_sample(self, height: int, width: int) -> int:
        # ~12 float32 maps of d channels per module (Q, K, V, attention, merge, norms, convs)
        net = self._model.net
        return int(4 * height * width * net.to_masks.in_channels * (12 * len(net.blocks) + 4))

    def pack_align(self, tile_frames: int) -> int:
        # the slice length of a tile: no attention slice holds frames of two pulses (rows are one tile wide)
        return -(-int(tile_frames) // self._model.net.blocks[0].attention.slices)

    def __call__(self, x: np.ndarray, ctx: MethodContext) -> MethodOutput:
        spec = np.asarray(x)
        rfi_mask = super().__call__(spec, ctx).data
        return MethodOutput("estimate", (rfi_mask * spec).astype(np.complex64))
