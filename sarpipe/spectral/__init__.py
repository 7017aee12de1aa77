"""Cleanup without a clean twin, on any complex spectrogram batch (audio or SAR): the deep audio prior
(:mod:`sarpipe.spectral.dap`) and the Score-CAM denoiser (:mod:`sarpipe.spectral.scorecam`).

torch is imported only inside those modules (importing this package imports nothing heavy).
"""
