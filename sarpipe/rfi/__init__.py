"""RFI chain: detection in the focused image, image -> pulse mapping, pulse-wise STFT, cleanup methods, metrics.

Flow (DIFNet paper): detect RFI in the image (:mod:`.detect`) -> map the flagged lines to the echo pulses that
built them (:mod:`.pulses`, refined by the echo-domain detector :mod:`.echo_detect`) -> STFT those pulses
(:mod:`.stft`) -> a cleanup method predicts the RFI (:mod:`.methods`: ``notch``/``fnotch`` in :mod:`.notch`, ``esf``
in :mod:`.esf`, learned models later) -> subtract -> ISTFT -> replace only those pulses -> re-image
(:mod:`.clean`). Metrics as docs/design.md section 4 defines them: :mod:`.metrics`. See docs/rfi.md.
"""

from .clean import CleanResult, DetectionSettings, RFIDetection, clean, clean_pulses, detect
from .methods import (
    CleanupMethod,
    MethodContext,
    MethodOutput,
    create_method,
    method_names,
    register_lazy_method,
    register_method,
    register_sr,
    wrap_sr,
)
from .stft import STFTParams, istft, stft

__all__ = [
    "CleanResult",
    "CleanupMethod",
    "DetectionSettings",
    "RFIDetection",
    "STFTParams",
    "MethodContext",
    "MethodOutput",
    "clean",
    "clean_pulses",
    "create_method",
    "detect",
    "istft",
    "register_lazy_method",
    "register_sr",
    "register_method",
    "method_names",
    "stft",
    "wrap_sr",
]
